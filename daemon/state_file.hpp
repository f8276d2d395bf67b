#pragma once
// The state file /run/ipop-ipsec/state.json: written atomically at every reconcile,
// read by `ipop-ipsecd status` and by the daemon itself at start (to know which inputs
// the running IKE daemon was last started with).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/reconciler.hpp"

namespace ipopsec {

// `status`: the STATUS= line (the reconciler's, with what the daemon adds); `reloadRefused`:
// why the last reload was refused, "" when it was not.
// A JSON string literal (quotes, backslash, control characters escaped).
std::string jsonString(const std::string& s);

std::string stateJson(const Config& cfg, const Reconciler& r, const std::string& ikeUnitState, const std::string& status,
                      const std::string& reloadRefused);

struct SavedState {
  std::string status;            // the STATUS= line
  bool healthy = false;
  bool ipopUp = false;
  std::string tapState;
  std::vector<std::string> addresses;
  std::vector<std::string> ranges;
  std::vector<std::string> policies;  // Policy::str() of what the kernel had
  std::vector<std::string> refused;
  std::vector<std::string> protectedRanges;  // what the kernel protected (both policies in)
  std::vector<std::string> conflicts;
  std::vector<std::uint32_t> ownedPriorities;  // priorities of the daemon's policies, configured and earlier
  std::string lastError;
  std::string reloadRefused;
  bool certificatesUsable = false;
  std::string certificateExpiry;  // the host certificate's notAfter, ISO 8601 UTC; "" when unknown
  std::vector<std::string> certificateProblems;
  std::vector<std::string> certificateWarnings;
  std::string lastRestart;
  std::string lastRestartResult;
  std::string ikeUnit;
  std::string ikeUnitState;
  std::string ikeInputs;
  long long writtenAt = 0;       // unix seconds
  int pid = 0;
};

// Parses a state file's text; nullopt (with `error`) when it isn't one.
std::optional<SavedState> parseState(const std::string& text, std::string* error);

}  // namespace ipopsec
