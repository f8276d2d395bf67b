#pragma once
// What the daemon tells the operator: an Event of a kind. The kind, not the wording, decides
// how the journal files it: the IPOPSEC_ACTION field it is logged under and, for the key
// events, the journald MESSAGE_ID that `journalctl MESSAGE_ID=...` finds and
// systemd/ipop-ipsec.catalog explains (`journalctl -x`). This table is the one place the
// journal's interface is decided: rewording a message changes neither; the ids never change
// once published.

#include <string>
#include <string_view>
#include <vector>

namespace ipopsec {

enum class Severity { debug, info, warning, error };

// journald MESSAGE_IDs of the key events (128-bit, stable).
namespace message_id {
inline constexpr const char* kPoliciesChanged = "4ccd12982419451ab62d72ae9076a2cb";
inline constexpr const char* kIkeRestarted = "8a025b010ef6457db5db6bf28266009f";
inline constexpr const char* kIkeRestartFailed = "8af5599230a54f0f918eaf21f37d5485";
inline constexpr const char* kReloadRefused = "f5c33688d1d547ac866ff433a792405e";
inline constexpr const char* kCertificateProblem = "07f03062d179434482ea6a09d92b5643";
inline constexpr const char* kConflictHeld = "bd91aeb16368456c9ba29579978e8356";
inline constexpr const char* kRangeRefused = "0b8418125b8147b68b35894886909da9";
inline constexpr const char* kIkeLost = "2c384a87c5274621afeb919a250c6761";
}  // namespace message_id

enum class EventKind {
  policyInstalled,     // install (debug) / a policy the kernel refused (error)
  policyRemoved,       // remove
  policiesChanged,     // policies: the summary of a change, what the kernel holds now
  policiesObserved,    // observe: policies or SAs changed by another process
  fileWritten,         // write: a file written or removed, or why not
  kernelUnreadable,    // list: the kernel's table could not be read
  renderFailed,        // render: the desired state could not be computed
  rangeRefused,        // refuse: a range that would cut the node off its LAN
  conflictHeld,        // conflict: a selector held by someone else's policy
  certificateProblem,  // certificates (warning, error): unusable or about to be
  certificatesUsable,  // certificates (info): usable again
  ikeRestarting,       // restart (info): begins, with the reason
  ikeRestarted,        // restart (info): done
  ikeRestartFailed,    // restart (error)
  ikeRestartCutShort,  // restart (info): a config reload changed the control under it
  ikeReloading,        // reload (info): a configuration or credentials load begins
  ikeReloaded,         // reload (info): done, or a CRL in force without any action (racoon)
  ikeReloadFailed,     // reload (error): a restart follows
  ikeReloadCutShort,   // reload (info)
  revokedPeersCut,     // cut (info)
  revokedPeersCutFailed,  // cut (error): a restart follows
  ikeLost,             // repair (warning): the IKE daemon lost what a peer needs
  ikeRepair,           // repair (info)
  larvalFlushed,       // flush-larval
  acquireRetried,      // acquire-retry
  reloadRefused,       // refuse-reload: a SIGHUP's config refused, the running one kept
};

struct EventKindInfo {
  EventKind kind;
  const char* action;     // IPOPSEC_ACTION
  const char* messageId;  // "" when the kind has none
};
// Every kind, in the enum's order.
const std::vector<EventKindInfo>& eventKinds();
const EventKindInfo& describe(EventKind kind);

// Something worth telling the operator; the daemon logs it (with the fields as structured
// journal fields).
struct Event {
  Severity severity = Severity::info;
  EventKind kind = EventKind::policiesChanged;
  std::string range;
  std::string message;
  std::string_view action() const { return describe(kind).action; }
  std::string_view messageId() const { return describe(kind).messageId; }
};

}  // namespace ipopsec
