#pragma once
// A log line rate limit (the monitor's lines about skipped rtnetlink messages). Pure: the
// caller passes the time.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

namespace ipopsec::rtnl {

// Bounds the lines about skipped messages: anyone with CAP_NET_ADMIN can send the monitor's
// socket forged datagrams, one line each (a root flood once wrote 46 MB of log in 4 s). At
// most `perWindow` lines per window; the others are counted and reported in one summary line
// when the window ends. Pure (the caller passes the time).
class LineRateLimit {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LineRateLimit(unsigned perWindow, Clock::duration window = std::chrono::seconds(1))
      : perWindow_(perWindow), window_(window) {}

  struct Admission {
    bool log = false;                   // log this line
    std::uint64_t suppressedBefore = 0;  // lines dropped in the window that just ended: report them first
    bool firstSuppressed = false;       // this is the window's first dropped line (arm a timer for its summary)
  };
  Admission admit(Clock::time_point now);
  // The lines dropped and not yet reported, and resets that count (a summary is due).
  std::uint64_t takeSuppressed() { return std::exchange(pending_, 0); }
  // When the current window ends (for a timer that reports the summary).
  Clock::time_point windowEnd() const { return windowStart_ + window_; }
  std::uint64_t suppressedTotal() const { return suppressedTotal_; }
  unsigned perWindow() const { return perWindow_; }

 private:
  unsigned perWindow_;
  Clock::duration window_;
  Clock::time_point windowStart_{};
  bool started_ = false;
  unsigned inWindow_ = 0;
  std::uint64_t pending_ = 0;
  std::uint64_t suppressedTotal_ = 0;
};

// "suppressed 4321 more malformed messages (...)": the summary line for `count` dropped lines.
std::string suppressedLine(std::uint64_t count, unsigned perSecond);

}  // namespace ipopsec::rtnl
