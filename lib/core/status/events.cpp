#include "core/status/events.hpp"

namespace ipopsec {

const std::vector<EventKindInfo>& eventKinds() {
  using K = EventKind;
  namespace id = message_id;
  static const std::vector<EventKindInfo> kinds{
      {K::policyInstalled, "install", ""},
      {K::policyRemoved, "remove", ""},
      {K::policiesChanged, "policies", id::kPoliciesChanged},
      {K::policiesObserved, "observe", ""},
      {K::fileWritten, "write", ""},
      {K::kernelUnreadable, "list", ""},
      {K::renderFailed, "render", ""},
      {K::rangeRefused, "refuse", id::kRangeRefused},
      {K::conflictHeld, "conflict", id::kConflictHeld},
      {K::certificateProblem, "certificates", id::kCertificateProblem},
      {K::certificatesUsable, "certificates", ""},
      {K::ikeRestarting, "restart", ""},
      {K::ikeRestarted, "restart", id::kIkeRestarted},
      {K::ikeRestartFailed, "restart", id::kIkeRestartFailed},
      {K::ikeRestartCutShort, "restart", ""},
      {K::ikeReloading, "reload", ""},
      {K::ikeReloaded, "reload", ""},
      {K::ikeReloadFailed, "reload", ""},
      {K::ikeReloadCutShort, "reload", ""},
      {K::revokedPeersCut, "cut", ""},
      {K::revokedPeersCutFailed, "cut", ""},
      {K::ikeLost, "repair", id::kIkeLost},
      {K::ikeRepair, "repair", ""},
      {K::larvalFlushed, "flush-larval", ""},
      {K::acquireRetried, "acquire-retry", ""},
      {K::reloadRefused, "refuse-reload", id::kReloadRefused},
  };
  return kinds;
}

const EventKindInfo& describe(EventKind kind) { return eventKinds().at(static_cast<std::size_t>(kind)); }

}  // namespace ipopsec
