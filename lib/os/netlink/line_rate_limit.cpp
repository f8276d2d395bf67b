#include "os/netlink/line_rate_limit.hpp"

namespace ipopsec::rtnl {

LineRateLimit::Admission LineRateLimit::admit(Clock::time_point now) {
  Admission a;
  if (!started_ || now >= windowStart_ + window_ || now < windowStart_) {
    a.suppressedBefore = takeSuppressed();
    started_ = true;
    windowStart_ = now;
    inWindow_ = 0;
  }
  if (inWindow_ < perWindow_) {
    ++inWindow_;
    a.log = true;
  } else {
    a.firstSuppressed = pending_ == 0;
    ++pending_;
    ++suppressedTotal_;
  }
  return a;
}

std::string suppressedLine(std::uint64_t count, unsigned perSecond) {
  return "suppressed " + std::to_string(count) + " more malformed " + (count == 1 ? "message" : "messages") +
         " (at most " + std::to_string(perSecond) + " are logged per second; all are counted and skipped)";
}

}  // namespace ipopsec::rtnl
