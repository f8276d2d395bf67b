// The Reconciler's IKE actions: run what the IkeScheduler asks for through the IKE
// controller, account for the result, and remove stale larval states once the IKE daemon
// listens. (Deciding when is IkeScheduler's job; reconcile() feeds it.)

#include "core/reconciler.hpp"

#include <algorithm>
#include <ctime>

namespace ipopsec {

void Reconciler::startIkeAction() {
  IkeAction action = scheduler_.pendingAction();
  if (action == IkeAction::reload && !ike_.canReload()) action = IkeAction::restart;
  scheduler_.begin(clock_.now());
  ikeActionUnderWay_ = true;
  larvalRetryAt_.reset();  // the action's own removal, once the IKE daemon listens, covers them
  std::string ranges = joinRanges(status_.desired.ranges);
  if (action == IkeAction::reload)
    emit(Severity::info, "reload", ranges, "loading the changed IKE configuration (" + ike_.name() + " keeps running)");
  else
    emit(Severity::info, "restart", ranges, "restarting " + ike_.name());
  ike_.run(action, [this, action, ranges](std::error_code ec, const std::string& detail) {
    afterIkeAction(action, ec, detail, ranges);
  });
}

void Reconciler::afterIkeAction(IkeAction action, std::error_code ec, const std::string& detail,
                                const std::string& ranges) {
  const bool reload = action == IkeAction::reload;
  const char* what = reload ? "reload" : "restart";
  const std::string why = detail.empty() ? ec.message() : detail;
  ikeActionUnderWay_ = !ec;  // until the IKE daemon listens (below); a failed one is over
  if (ec == std::errc::operation_canceled) {
    // A reload of this daemon's config changed how the IKE daemon is controlled while the
    // action ran: not a failure of the IKE daemon; the new control runs it again.
    scheduler_.cancelled();
    emit(Severity::info, what, ranges, std::string("the IKE ") + what + " was cut short (" + why +
                                           "); running it again with " + ike_.name());
    changed();
    return;
  }
  scheduler_.finished(!ec, clock_.now());
  status_.restartFailures = scheduler_.consecutiveFailures();
  if (ec) {
    ++status_.ikeRestartFailuresTotal;
    if (reload) {
      status_.lastRestartResult = "reload failed: " + why;
      emit(Severity::error, what, ranges,
           "loading the IKE configuration failed: " + why + "; restarting " + ike_.name() + " instead");
    } else {
      status_.lastRestartResult = "failed: " + why;
      emit(Severity::error, what, ranges, ike_.name() + " restart failed: " + why + "; retrying with backoff");
    }
    changed();
    return;
  }
  if (reload) {
    ++status_.reloads;
    ++status_.ikeReloadsTotal;
    emit(Severity::info, what, ranges, "IKE configuration loaded");
  } else {
    ++status_.ikeRestartsTotal;
    status_.lastRestart = wall_();
    status_.lastRestartResult = "done";
    emit(Severity::info, what, ranges, ike_.name() + " restarted");
  }
  // A packet that raced the restart left a larval state that would stall its peer for
  // ~30 s: drop those so that the next packet triggers a fresh ACQUIRE. Only once the IKE
  // daemon listens: a unit reports "started" before its IKE socket is bound, and a packet
  // in between would leave a larval state again.
  ike_.whenListening([this, ranges](bool listening) {
    ikeActionUnderWay_ = false;
    if (!listening)
      emit(Severity::warning, "flush-larval", ranges,
           ike_.name() + " does not listen on UDP port 500 yet; removing stale larval states anyway");
    removeLarval("flush-larval", "stale larval states",
                 "removed stale larval states (" + ike_.name() + (listening ? " listens)" : " not listening yet)"));
  });
  changed();
}

}  // namespace ipopsec
