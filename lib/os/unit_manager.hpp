#pragma once
// The real UnitManagers: restart the IKE daemon through systemd (sd-bus, RestartUnit +
// JobRemoved) or by running an operator-given command.
//
// Both complete `done` on the io_context (never inside restart() itself), allow at most
// one restart in flight (a second restart() completes at once with
// std::errc::operation_in_progress), and bound every wait by the configured timeout
// (std::errc::timed_out). Destroying a manager with a restart in flight cancels it:
// its `done` is not called.

#include <utility>  // before any boost/asio header (Boost 1.74 + g++12)

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "core/ports.hpp"

namespace ipopsec {

// Failures of the unit itself (the detail string says more).
enum class UnitErrc {
  jobFailed = 1,  // systemd finished the restart job with a result other than "done"
  callFailed,     // the RestartUnit call itself failed (no such unit, access denied, ...)
  commandFailed,  // the restart command exited non-zero or was killed by a signal
};
const std::error_category& unitCategory();
std::error_code make_error_code(UnitErrc e);

// The one-line details SystemdUnitManager reports, as pure functions (tested on their own).
namespace unitdetail {

// "<unit> is not installed (no such unit)", and for racoon.service the Debian 12 hint:
// "; on Debian 12 racoon is not packaged: use `ike.backend: strongswan`".
std::string notInstalled(const std::string& unit);

// The detail of a RestartUnit call that systemd answered with the D-Bus error
// `errorName` / `errorMessage`: org.freedesktop.systemd1.NoSuchUnit is notInstalled(unit),
// org.freedesktop.systemd1.UnitMasked says how to unmask it, anything else is
// "RestartUnit(<unit>) failed: <name>: <message>".
std::string callFailed(const std::string& unit, const std::string& errorName, const std::string& errorMessage);

// The detail of a finished restart job. "done": "restarted <unit> (job <job>: done)".
// Any other result (failed, dependency, timeout, canceled, skipped, ...): names the unit,
// the result (quoted) and what it means when systemd documents it, the job, and where to
// look: "...; see `journalctl -u <unit>`".
std::string jobFinished(const std::string& unit, const std::string& job, const std::string& result);

// What state() reports for a unit with these LoadState and ActiveState properties:
// "not-found" (the unit does not exist) and "masked" win over the ActiveState (which
// systemd gives as "inactive" for both); otherwise the ActiveState.
std::string unitState(const std::string& loadState, const std::string& activeState);

}  // namespace unitdetail

// Restarts `unit` with org.freedesktop.systemd1.Manager.RestartUnit(unit, "replace") on
// the system bus, and completes when systemd reports the job's result (JobRemoved).
// The bus is opened lazily; when it can't be (no systemd: -ENOENT), restart() completes
// with that error and the next restart() tries again.
class SystemdUnitManager final : public UnitManager {
 public:
  SystemdUnitManager(boost::asio::io_context& io, std::string unit, std::chrono::milliseconds timeout);
  ~SystemdUnitManager() override;
  SystemdUnitManager(const SystemdUnitManager&) = delete;
  SystemdUnitManager& operator=(const SystemdUnitManager&) = delete;

  void restart(Done done) override;
  // The unit's ActiveState, read synchronously (bounded by min(timeout, 2 s)); "not-found"
  // for a unit that does not exist (LoadState "not-found", or LoadUnit answering
  // NoSuchUnit), "masked" for a masked one (unitdetail::unitState); "unknown" when it can't
  // be read.
  std::string state() override;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Runs argv (no shell; argv[0] is looked up in PATH when it has no '/') with stdin on
// /dev/null and stdout+stderr captured (the last 64 KiB are kept). Exit status 0 is
// success; otherwise the error is UnitErrc::commandFailed with detail
// "exited with status N: <last output line>". On timeout the command's process group
// gets SIGTERM, then SIGKILL after `killGrace`; done then gets std::errc::timed_out once
// the command has been reaped.
class CommandUnitManager final : public UnitManager {
 public:
  // Throws std::invalid_argument when argv is empty.
  CommandUnitManager(boost::asio::io_context& io, std::vector<std::string> argv, std::chrono::milliseconds timeout,
                     std::chrono::milliseconds killGrace = std::chrono::seconds(5));
  ~CommandUnitManager() override;
  CommandUnitManager(const CommandUnitManager&) = delete;
  CommandUnitManager& operator=(const CommandUnitManager&) = delete;

  void restart(Done done) override;
  // Not a live probe: "unknown" before the first restart, "activating" while one runs,
  // then "active" or "failed" after the last restart's result.
  std::string state() override;

  static constexpr std::size_t kMaxOutput = 64 * 1024;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ipopsec

template <>
struct std::is_error_code_enum<ipopsec::UnitErrc> : std::true_type {};
