// The one-line details SystemdUnit reports (declared in systemd_unit.hpp), pure functions.

#include <string>

#include "os/systemd/systemd_unit.hpp"

namespace ipopsec {

// --- the details SystemdUnit reports ---------------------------------------

namespace unitdetail {
namespace {

constexpr const char* kNoSuchUnit = "org.freedesktop.systemd1.NoSuchUnit";
constexpr const char* kUnitMasked = "org.freedesktop.systemd1.UnitMasked";

// A detail is one log line: what came over the bus may not break it.
std::string oneLine(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return s;
}

// What systemd's job results mean (systemd's job_result_table; systemctl's wording).
const char* resultMeaning(const std::string& result) {
  if (result == "failed") return "the unit failed to (re)start";
  if (result == "dependency") return "a unit it requires failed to start";
  if (result == "timeout") return "the job timed out";
  if (result == "canceled") return "the job was canceled before it finished";
  if (result == "skipped") return "the job did not apply to the unit's state";
  if (result == "invalid") return "the job is not valid for the unit's state";
  if (result == "assert") return "an Assert condition of the unit failed";
  if (result == "unsupported") return "the operation or unit type is not supported on this system";
  if (result == "collected") return "the queued job was garbage-collected";
  if (result == "once") return "the unit may be started only once and already was";
  if (result == "frozen") return "the unit is frozen";
  return nullptr;
}

std::string journalHint(const std::string& unit) { return "see `journalctl -u " + unit + "`"; }

}  // namespace

std::string notInstalled(const std::string& unit) {
  std::string s = unit + " is not installed (no such unit)";
  if (unit == "racoon.service") s += "; racoon is not packaged in Debian: use `ike.backend: strongswan`";
  return s;
}

std::string callFailed(const std::string& unit, const std::string& errorName, const std::string& errorMessage) {
  if (errorName == kNoSuchUnit) return notInstalled(unit);
  if (errorName == kUnitMasked) return unit + " is masked: `systemctl unmask " + unit + "` to let it be restarted";
  std::string s = "RestartUnit(" + unit + ") failed: " + oneLine(errorName.empty() ? "unknown error" : errorName);
  if (!errorMessage.empty()) s += ": " + oneLine(errorMessage);
  return s;
}

std::string jobFinished(const std::string& unit, const std::string& job, const std::string& result) {
  if (result == "done") return "restarted " + unit + " (job " + job + ": done)";
  std::string s = "restart of " + unit + " failed: job result '" + oneLine(result) + "' (";
  if (const char* meaning = resultMeaning(result)) s += std::string(meaning) + "; ";
  return s + "job " + oneLine(job) + "); " + journalHint(unit);
}

std::string unitState(const std::string& loadState, const std::string& activeState) {
  if (loadState == "not-found" || loadState == "masked") return loadState;
  return activeState;
}

}  // namespace unitdetail

}  // namespace ipopsec
