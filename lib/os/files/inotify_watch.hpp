#pragma once
// Watches directories with inotify on the daemon's io_context and reports "something in
// them changed", debounced: editors and `cp` replace a file in several steps (truncate,
// write, close; or write a temporary file, rename it over the old one), and the
// certificate set is only worth re-checking once they are done. This is the one place
// in the daemon where a debounce timer is right: the reconcile it triggers is cheap, but
// judging a half-written file would log a spurious error.
//
// A directory that does not exist (yet) is not an error: its nearest existing ancestor
// is watched instead, and the watch moves down as soon as the directory appears (and up
// again if it is removed). rearm() re-tries as well (the daemon calls it on its resync timer).

#include <utility>  // before any Asio header (Boost 1.74 + g++ 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "core/ports.hpp"

namespace ipopsec {

class InotifyWatch final : public DirectoryWatch {
 public:
  // Quiet time after the last event before onChange runs, and the longest a steady
  // stream of events may postpone it.
  static constexpr std::chrono::milliseconds kDefaultDebounce{200};
  static constexpr std::chrono::milliseconds kMaxDelay{2000};

  explicit InotifyWatch(boost::asio::io_context& io, std::chrono::milliseconds debounce = kDefaultDebounce);
  ~InotifyWatch() override;
  InotifyWatch(const InotifyWatch&) = delete;
  InotifyWatch& operator=(const InotifyWatch&) = delete;

  // Watches `dirs` (absolute paths) and calls `onChange` on the io_context after a burst
  // of changes in any of them. Replaces a previous set (also used on reload). Errors:
  // inotify_init1's (EMFILE, ENOSYS...); a directory that can't be watched is not one.
  std::error_code watch(std::vector<std::string> dirs, std::function<void()> onChange) override;
  // Re-tries directories that are not watched themselves yet (missing at the last try).
  void rearm() override;
  void stop();

  // The path actually watched for each requested directory: itself, or while it is
  // missing its nearest existing ancestor ("" when not even "/" could be watched).
  std::vector<std::string> watchedPaths() const override;
  bool watchingAll() const;

 private:
  void rebuild();
  void read();
  void onEvents(std::size_t n);
  void changed();

  boost::asio::io_context& io_;
  std::chrono::milliseconds debounce_;
  boost::asio::posix::stream_descriptor sd_;
  boost::asio::steady_timer timer_;
  std::function<void()> onChange_;
  std::vector<std::string> dirs_;
  std::vector<std::string> watched_;  // per dirs_ entry
  std::map<int, std::vector<std::size_t>> wds_;  // watch descriptor -> dirs_ indexes
  std::chrono::steady_clock::time_point firstEvent_{};
  bool timerArmed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  alignas(8) char buf_[16384];
};

}  // namespace ipopsec
