#pragma once
// What runs one IKE action (a restart, or a reload): systemd (SystemdUnit, sd-bus) or an
// operator-given command (CommandRunner). IkeDaemonControl (ike_control.hpp) composes them
// into the IkeController port.
//
// Every runner completes `done` on the io_context (never inside run() itself), allows at
// most one action in flight (a second run() completes at once with
// std::errc::operation_in_progress), and bounds every wait by its timeout
// (std::errc::timed_out). Destroying a runner with an action in flight cancels it: its
// `done` is not called.

#include <functional>
#include <string>
#include <system_error>
#include <type_traits>

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

// errno as an error_code, and as text: how the runners report a failed system call.
inline std::error_code errnoCode(int e) { return {e, std::generic_category()}; }
inline std::string errnoText(int e) { return std::generic_category().message(e); }

class IkeRunner {
 public:
  using Done = IkeController::Done;
  virtual ~IkeRunner() = default;
  virtual void run(Done done) = 0;
  virtual std::string state() = 0;
  // Follows the state by events where the mechanism has them (systemd's PropertiesChanged
  // for the unit): `onState(state)` on the io_context after each change. A runner without
  // events ignores it.
  virtual void watch(std::function<void(const std::string&)> onState) { (void)onState; }
};

}  // namespace ipopsec

template <>
struct std::is_error_code_enum<ipopsec::UnitErrc> : std::true_type {};
