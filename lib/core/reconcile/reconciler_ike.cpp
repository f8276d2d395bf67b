// The Reconciler's IKE actions: run what the IkeScheduler asks for through the IKE
// controller, account for the result, and remove stale larval states once the IKE daemon
// listens. (Deciding when is IkeScheduler's job; reconcile() feeds it.)

#include "core/reconcile/reconciler.hpp"

#include <algorithm>
#include <ctime>
#include <iterator>
#include <utility>

namespace ipopsec {

void Reconciler::startIkeAction() {
  IkeAction action = scheduler_.pendingAction();
  if (action == IkeAction::loadCreds && !ike_.canLoadCreds()) action = IkeAction::reload;
  if (action == IkeAction::reload && !ike_.canReload()) action = IkeAction::restart;
  // Why: what asked for the step (a repair, IPOP coming up), else what the scheduler knows.
  std::string reason = std::exchange(pendingReason_, std::string());
  if (reason.empty()) {
    if (scheduler_.consecutiveFailures() > 0)
      reason = "retrying after a failure (" + status_.lastRestartResult + ")";
    else if (!scheduler_.startedInputs())
      reason = "IPOP is up at " + (status_.desired.localAddress ? status_.desired.localAddress->str() : "?") +
               " and " + ike_.name() + " does not run with this configuration yet";
    else if (auto crl = crlRunning_ ? crlChange(crlRunning_->first, crlRunning_->second, status_.desired.ikeCrl,
                                                   status_.desired.ikeRevoked)
                                     : std::string();
             !crl.empty())
      reason = crl;
    else
      reason = action == IkeAction::reload ? "its configuration changed" : "its configuration or certificates changed";
  }
  crlInFlight_.emplace(status_.desired.ikeCrl, status_.desired.ikeRevoked);
  status_.lastActionReason = reason;
  scheduler_.begin(clock_.now());
  ikeActionUnderWay_ = true;
  repairForStop_ = false;
  listening_.reset();
  acquireRetry_.restart();  // the action's own removal, once the IKE daemon listens, covers them
  std::string ranges = joinRanges(status_.desired.ranges);
  if (action == IkeAction::loadCreds)
    emit(Severity::info, EventKind::ikeReloading, ranges,
         "loading the changed credentials into " + ike_.name() +
             " (strongswan.load_creds_command; it keeps running, no connection is reloaded, no SA touched): " + reason);
  else if (action == IkeAction::reload)
    emit(Severity::info, EventKind::ikeReloading, ranges,
         "loading the changed IKE configuration (" + ike_.name() + " keeps running): " + reason);
  else
    emit(Severity::info, EventKind::ikeRestarting, ranges, "restarting " + ike_.name() + ": " + reason);
  ike_.run(action, [this, action, ranges](std::error_code ec, const std::string& detail) {
    afterIkeAction(action, ec, detail, ranges);
  });
  changed();  // status: being restarted, and why
}

void Reconciler::afterIkeAction(IkeAction action, std::error_code ec, const std::string& detail,
                                const std::string& ranges) {
  const bool reload = action != IkeAction::restart;  // a reload or a credentials load: it keeps running
  const char* what = reload ? "reload" : "restart";
  const std::string why = detail.empty() ? ec.message() : detail;
  ikeActionUnderWay_ = !ec;  // until the IKE daemon listens (below); a failed one is over
  if (ec == std::errc::operation_canceled) {
    // A reload of this daemon's config changed how the IKE daemon is controlled while the
    // action ran: not a failure of the IKE daemon; the new control runs it again.
    scheduler_.cancelled();
    emit(Severity::info, reload ? EventKind::ikeReloadCutShort : EventKind::ikeRestartCutShort, ranges, std::string("the IKE ") + what + " was cut short (" + why +
                                           "); running it again with " + ike_.name());
    changed();
    return;
  }
  scheduler_.finished(!ec, clock_.now());
  std::vector<std::string> newlyRevoked;
  if (!ec) {
    if (crlRunning_ && crlInFlight_ && !crlInFlight_->first.empty())
      std::set_difference(crlInFlight_->second.begin(), crlInFlight_->second.end(), crlRunning_->second.begin(),
                          crlRunning_->second.end(), std::back_inserter(newlyRevoked));
    crlRunning_ = std::exchange(crlInFlight_, std::nullopt);
    crlLoadedAt_ = wall_();
    // Serials whose cut could not run nor be replaced by a restart: cut with this load; a
    // restart ends their SAs anyway.
    if (!reload) uncut_.clear();
    for (auto& s : std::exchange(uncut_, {}))
      if (std::find(newlyRevoked.begin(), newlyRevoked.end(), s) == newlyRevoked.end()) newlyRevoked.push_back(s);
  }
  status_.restartFailures = scheduler_.consecutiveFailures();
  if (ec) {
    ++status_.ikeRestartFailuresTotal;
    if (reload) {
      status_.lastRestartResult = "reload failed: " + why;
      emit(Severity::error, EventKind::ikeReloadFailed, ranges,
           std::string(action == IkeAction::loadCreds ? "loading the credentials" : "loading the IKE configuration") +
               " failed: " + why + "; restarting " + ike_.name() + " instead");
    } else {
      status_.lastRestartResult = "failed: " + why;
      emit(Severity::error, EventKind::ikeRestartFailed, ranges, ike_.name() + " restart failed: " + why + "; retrying with backoff");
    }
    changed();
    return;
  }
  if (reload) {
    ++status_.reloads;
    ++status_.ikeReloadsTotal;
    emit(Severity::info, EventKind::ikeReloaded, ranges,
         action == IkeAction::loadCreds ? "IKE credentials loaded (the CRL in force in " + ike_.name() + ")"
                                        : std::string("IKE configuration loaded"));
    if (!newlyRevoked.empty()) cutRevoked(newlyRevoked);
  } else {
    ++status_.ikeRestartsTotal;
    status_.lastRestart = wall_();
    status_.lastRestartResult = "done";
    emit(Severity::info, EventKind::ikeRestarted, ranges, ike_.name() + " restarted");
  }
  // A packet that raced the restart left a larval state that would stall its peer for
  // ~30 s: drop those so that the next packet triggers a fresh ACQUIRE. Only once the IKE
  // daemon listens: a unit reports "started" before its IKE socket is bound, and a packet
  // in between would leave a larval state again.
  ike_.whenListening([this, ranges](bool listening) {
    ikeActionUnderWay_ = false;
    listening_ = listening;
    if (!listening)
      emit(Severity::warning, EventKind::larvalFlushed, ranges,
           ike_.name() + " does not listen on UDP port 500 yet; removing stale larval states anyway");
    removeLarval(EventKind::larvalFlushed, "stale larval states",
                 "removed stale larval states (" + ike_.name() + (listening ? " listens)" : " not listening yet)"));
    checkIke();
    changed();
  });
  changed();
}

void Reconciler::cutRevoked(const std::vector<std::string>& serials) {
  std::string list;
  for (const auto& s : serials) list += (list.empty() ? "" : ", ") + s;
  const std::string ranges = joinRanges(status_.desired.ranges);
  const std::string why = "the new CRL revokes serial" + std::string(serials.size() > 1 ? "s " : " ") + list;
  // Restarts instead; when another IKE action is pending, the serials go with the next load
  // (a restart ends their SAs anyway).
  auto restartInstead = [this, serials](const std::string& reason) {
    if (!repair(reason)) uncut_.insert(uncut_.end(), serials.begin(), serials.end());
  };
  if (!ike_.canCut()) {
    restartInstead(why + " (no strongswan.cut_command to end only those peers' SAs)");
    return;
  }
  status_.lastActionReason = why + ": cutting the SAs with the peers that presented it";
  emit(Severity::info, EventKind::revokedPeersCut, ranges,
       "cutting the SAs with the peers whose certificates the new CRL revokes (" + list + "); " + ike_.name() +
           " keeps running, every other SA stays");
  ike_.cut(serials, [this, why, ranges, restartInstead](std::error_code ec, const std::string& detail) {
    if (ec) {
      emit(Severity::error, EventKind::revokedPeersCutFailed, ranges, "cutting the SAs with revoked peers failed: " + (detail.empty() ? ec.message() : detail) +
                                               "; restarting " + ike_.name() + " instead");
      restartInstead(why + " and cutting only those peers' SAs failed");
    } else {
      emit(Severity::info, EventKind::revokedPeersCut, ranges, why + ": " + detail);
    }
    changed();
  });
}

std::string Reconciler::stoppedReason() const {
  return ike_.name() + " is " + status_.ikeUnitState +
         " while IPOP is up (stopped by `systemctl stop`, or it died); to take IPsec down on this node: systemctl "
         "stop ipop-ipsecd, ipop-ipsecd flush, systemctl stop " + ike_.name();
}

bool Reconciler::repair(const std::string& reason) {
  const Desired& d = status_.desired;
  if (!d.ipopUp || !d.certsUsable || !status_.lastError.empty()) return false;
  if (!scheduler_.repair(clock_.now())) return false;
  pendingReason_ = reason;
  emit(Severity::warning, EventKind::ikeLost, joinRanges(d.ranges), ike_.name() + " needs a restart: " + reason);
  return true;
}

void Reconciler::ikeStateChanged(const std::string& unitState) {
  const bool news = unitState != status_.ikeUnitState;
  status_.ikeUnitState = unitState;
  // Our own restart passes through deactivating, inactive and activating while its job runs:
  // not a loss. Once it is done, a stopped unit is one (also while the daemon still waits for
  // it to listen, and at every resync until a repair is under way).
  bool repairing = false;
  if (runStateOf(unitState) == IkeRunState::running && repairForStop_ && scheduler_.cancelRepair()) {
    // It came back by itself (systemd's Restart= after a crash) before the repair ran: a
    // restart now would only tear down what it set up.
    repairForStop_ = false;
    pendingReason_.clear();
    emit(Severity::info, EventKind::ikeRepair, joinRanges(status_.desired.ranges),
         ike_.name() + " is " + unitState + " again by itself: no restart needed");
    repairing = true;
  } else if (runStateOf(unitState) == IkeRunState::stopped && !scheduler_.inFlight()) {
    repairing = repair(stoppedReason());
    repairForStop_ = repairForStop_ || repairing;
    if (!repairing && news && status_.desired.ipopUp)
      emit(Severity::warning, EventKind::policiesObserved, joinRanges(status_.desired.ranges),
           ike_.name() + " is " + unitState + ": no peer can connect to this node");
  }
  if (news || repairing) changed();
}

void Reconciler::ikeStatesFlushed(const std::string& what) {
  if (!status_.desired.ipopUp) return;
  if (!repair("its SAs were removed from the kernel by another process (" + what +
              "): its connections have no keys left, and it does not know"))
    return;
  changed();
}

void Reconciler::checkIke() {
  auto& st = status_;
  auto expected = expectedTraps(cfg_, st.desired);
  std::vector<IkeTrap> present;
  bool known = true;
  if (!expected.empty()) {
    std::vector<Policy> foreign;
    if (policies_.listForeign(foreign))
      known = false;  // cannot tell (a fake, or the dump failed): no verdict
    else
      present = presentTraps(expected, foreign);
  }
  if (!known) present = expected;
  // A trap the kernel held at the last check, still wanted, and gone now while nothing of
  // ours was under way: removed behind the IKE daemon's back (`ip xfrm policy flush`,
  // `deleteall`). charon does not put it back by itself; a restart does.
  std::vector<std::string> lost;
  // An adopted IKE daemon's traps have not been seen by this run: all expected ones count.
  const bool adopted = std::exchange(adoptedUnchecked_, adoptedUnchecked_ && (!known || expected.empty()));
  for (const auto& t : adopted ? expected : st.ikeTrapsPresent)
    if (holds(expected, t) && !holds(present, t)) lost.push_back(t.str());
  st.ikeTrapsExpected = std::move(expected);
  st.ikeTrapsPresent = std::move(present);
  if (!lost.empty() && !scheduler_.inFlight() && !ikeActionUnderWay_ && !scheduler_.pending()) {
    std::string list;
    for (const auto& l : lost) list += (list.empty() ? "" : ", ") + l;
    // A stop removes the traps too, and charon removes them before systemd's signal for the
    // unit arrives: ask the unit now. Stopping or stopped, the unit's own signal repairs it,
    // with the right words; (re)starting by itself (Restart=), it brings its traps back.
    if (cfg_.ike.control == IkeControl::systemd) st.ikeUnitState = ike_.state();
    auto run = runStateOf(st.ikeUnitState);
    if (run == IkeRunState::running || run == IkeRunState::unknown)
      repair("its trap policies (" + list + ") " +
             (adopted ? "are missing (removed while no ipop-ipsecd was watching)" : "were removed by another process"));
    else if (run == IkeRunState::stopped)
      repairForStop_ = repair(stoppedReason()) || repairForStop_;
  }
}

void Reconciler::judgeIke() {
  auto& st = status_;
  st.ikeProblems.clear();
  const Desired& d = st.desired;
  if (!d.ipopUp || !d.certsUsable) return;  // not expected to run: the tap or the certificates say why
  const std::string name = ike_.name();
  if (scheduler_.inFlight() && scheduler_.inFlightAction() == IkeAction::restart) {
    st.ikeProblems.push_back(name + " is being restarted (" + st.lastActionReason + ")");
    return;
  }
  auto run = runStateOf(st.ikeUnitState);
  if (run == IkeRunState::stopped || run == IkeRunState::transition) {
    std::string p = name + " is " + st.ikeUnitState + ": no peer can connect";
    if (scheduler_.pending()) p += "; restart pending";
    st.ikeProblems.push_back(p);
    return;
  }
  if (!scheduler_.startedInputs() && !scheduler_.inFlight()) {
    if (!pendingReason_.empty())
      st.ikeProblems.push_back(name + " needs a restart: " + pendingReason_ + "; restart pending");
    else
      st.ikeProblems.push_back(name + " has not been started with this configuration yet" +
                               std::string(st.restartFailures ? " (restart failing)" : ""));
    return;
  }
  if (listening_ && !*listening_) st.ikeProblems.push_back(name + " does not listen on UDP port 500");
  if (ikeActionUnderWay_ || scheduler_.inFlight()) return;  // traps come with the loaded configuration
  for (const auto& t : st.ikeTrapsExpected) {
    if (!holds(st.ikeTrapsPresent, t))
      st.ikeProblems.push_back(name + " holds no trap policy for " + t.range.str() + " (" + t.str() +
                               "): this node cannot start a connection in that range" +
                               (scheduler_.pending() ? "; restart pending" : ""));
  }
}

}  // namespace ipopsec
