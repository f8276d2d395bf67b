#pragma once
// Runs an operator-given command as an IKE action.

#include <utility>  // before any boost/asio header (Boost 1.74 + g++12)

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "os/ike/ike_runner.hpp"

namespace ipopsec {

// Runs argv (no shell; argv[0] is looked up in PATH when it has no '/') with stdin on
// /dev/null and stdout+stderr captured (the last 64 KiB are kept). Exit status 0 is
// success; otherwise the error is UnitErrc::commandFailed with detail
// "exited with status N: <last output line>". On timeout the command's process group
// gets SIGTERM, then SIGKILL after `killGrace`; done then gets std::errc::timed_out once
// the command has been reaped.
class CommandRunner final : public IkeRunner {
 public:
  // Throws std::invalid_argument when argv is empty.
  CommandRunner(boost::asio::io_context& io, std::vector<std::string> argv, std::chrono::milliseconds timeout,
                     std::chrono::milliseconds killGrace = std::chrono::seconds(5));
  ~CommandRunner() override;
  CommandRunner(const CommandRunner&) = delete;
  CommandRunner& operator=(const CommandRunner&) = delete;

  void run(Done done) override;
  // Not a live probe: "unknown" before the first restart, "activating" while one runs,
  // then "active" or "failed" after the last restart's result.
  std::string state() override;

  static constexpr std::size_t kMaxOutput = 64 * 1024;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ipopsec
