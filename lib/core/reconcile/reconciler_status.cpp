// What the Reconciler says about the node: healthy or not, the one-line status for the
// journal and state.json, and the short one for systemd's STATUS=.

#include "core/reconcile/reconciler.hpp"

#include <algorithm>
#include <ctime>

namespace ipopsec {

bool NodeStatus::healthy() const {
  return desired.ipopUp && policiesExact && desired.refused.empty() && desired.conflicts.empty() && lastError.empty() &&
         restartFailures == 0 && desired.certsUsable && ikeProblems.empty();
}

std::string Reconciler::shortStatus(const std::string& extra) const {
  const Desired& d = status_.desired;
  const std::string& tap = cfg_.ipop.interface;
  std::string s;
  if (d.tapState == TapState::absent)
    s = "waiting for '" + tap + "'";
  else if (d.tapState == TapState::down)
    s = "'" + tap + "' down";
  else if (d.tapState == TapState::noCarrier)
    s = "'" + tap + "' has no carrier (IPOP not connected)";
  else if (d.tapState == TapState::noAddress)
    s = "'" + tap + "' has no address in range";
  else
    s = "'" + tap + "' up at " + (d.localAddress ? d.localAddress->str() : std::string("?"));
  const auto& in = status_.protectedRanges;
  if (in.empty())
    s += "; nothing protected";
  else if (in.size() <= 2)
    s += "; protecting " + joinRanges(in);
  else
    s += "; protecting " + std::to_string(in.size()) + " ranges";
  std::vector<std::string> problems;
  if (!extra.empty()) problems.push_back(extra);
  std::size_t missing = 0;
  for (const auto& r : d.ranges)
    if (!std::binary_search(in.begin(), in.end(), r)) ++missing;
  if (missing) problems.push_back("NOT protecting " + std::to_string(missing) + " range(s)");
  if (!d.conflicts.empty()) problems.push_back("CONFLICT");
  if (!d.refused.empty()) problems.push_back("REFUSED");
  if (!d.certProblems.empty()) problems.push_back("certificate problem");
  if (status_.restartFailures)
    problems.push_back("IKE restart failing");
  else if (!status_.ikeProblems.empty()) {
    // The details are in statusLine(); here a few words of what is wrong.
    auto run = runStateOf(status_.ikeUnitState);
    std::size_t traps = status_.ikeTrapsExpected.size() - std::min(status_.ikeTrapsExpected.size(),
                                                                   status_.ikeTrapsPresent.size());
    if (scheduler_.inFlight())
      problems.push_back("restarting " + ike_.name());
    else if (run == IkeRunState::stopped || run == IkeRunState::transition)
      problems.push_back("IKE " + ike_.name() + " " + status_.ikeUnitState);
    else if (traps)
      problems.push_back("IKE trap missing for " + std::to_string(traps) + " range(s)");
    else
      problems.push_back("IKE not ready");
  }
  if (!status_.lastError.empty()) problems.push_back("ERROR");
  for (const auto& p : problems) s += "; " + p;
  if (!problems.empty()) s += " (ipop-ipsecd status)";
  if (s.size() > kShortStatusMax) s = s.substr(0, kShortStatusMax - 3) + "...";
  return s;
}

std::string Reconciler::statusLine() const {
  std::string s = describe(cfg_, status_.desired, status_.protectedRanges);
  if (status_.lastRestart) {
    auto t = std::chrono::system_clock::to_time_t(*status_.lastRestart);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    s += ", " + ike_.name() + " restarted " + buf + " UTC";
  } else if (scheduler_.inFlight()) {
    s += ", restarting " + ike_.name();
  } else if (status_.desired.ipopUp && scheduler_.pending()) {
    s += ", " + ike_.name() + " restart pending";
  }
  if (status_.restartFailures) s += "; restart failing (" + status_.lastRestartResult + ")";
  for (const auto& p : status_.ikeProblems) s += "; " + p;
  if (!lastWaiting_.empty())
    s += "; " + lastWaiting_;
  else if (!status_.desired.certProblems.empty())
    s += "; certificate problem: " + status_.desired.certProblems.front();
  if (!status_.desired.certWarnings.empty()) {
    // The short form ("host-cert.pem expires on ... (in 12 days)"); the log has the fix.
    const std::string& w = status_.desired.certWarnings.front();
    s += "; certificate warning: " + w.substr(0, w.find(": "));
  }
  if (!status_.lastError.empty()) s += "; ERROR " + status_.lastError;
  return s;
}

}  // namespace ipopsec
