#pragma once
// The state file /run/ipop-ipsec/state.json: written atomically at every reconcile,
// read by `ipop-ipsecd status` and by the daemon itself at start (to know which inputs
// the running IKE daemon was last started with).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/reconcile/reconciler.hpp"

namespace ipopsec {

// A JSON string literal (quotes, backslash, control characters escaped).
std::string jsonString(const std::string& s);

// The file's layout version, its "schema_version" key (the first one). Files of earlier
// releases have none (read as 0); parseState refuses a newer version than this one.
inline constexpr int kStateSchemaVersion = 1;

// Every time in the file (certificate_expiry, last_restart, written_at) is RFC 3339 in UTC
// with whole seconds: "2026-12-01T16:19:25Z".
std::string rfc3339(std::chrono::system_clock::time_point t);
// The reverse: nullopt unless `s` is exactly such a time.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& s);

// The state file's text. `status`: the STATUS= line (the reconciler's, with what the daemon
// adds); `reloadRefused`: why the last reload was refused, "" when it was not.
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
  std::string certificateExpiry;  // the host certificate's notAfter, RFC 3339 UTC; "" when unknown
  std::vector<std::string> certificateProblems;
  std::vector<std::string> certificateWarnings;
  std::string lastRestart;        // RFC 3339 UTC; "" before the first restart
  std::string lastRestartResult;
  std::string lastActionReason;               // why the last IKE restart or reload was started
  std::vector<std::string> ikeProblems;       // what keeps a peer from connecting, IKE side
  std::string ikeUnit;
  std::string ikeUnitState;
  std::string ikeInputs;
  std::string ikeRestartInputs, ikeReloadInputs;  // "" when unknown (an earlier release, racoon)
  // The CRL the IKE daemon runs with ("ike_crl"); nullopt when unknown (null, absent).
  struct Crl {
    std::string fingerprint;           // "" = no CRL
    std::vector<std::string> revoked;  // upper-case hex serials
    std::string loadedAt;              // RFC 3339 UTC; "" when unknown
  };
  std::optional<Crl> ikeCrl;
  int schemaVersion = 0;         // 0: a file of a release before schema_version existed
  std::string writtenAt;         // RFC 3339 UTC (an earlier release's unix seconds are converted)
  int pid = 0;
};

// Parses a state file's text; nullopt (with `error`) when it isn't one.
std::optional<SavedState> parseState(const std::string& text, std::string* error);

}  // namespace ipopsec
