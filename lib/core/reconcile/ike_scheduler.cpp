#include "core/reconcile/ike_scheduler.hpp"

#include <algorithm>

namespace ipopsec {

IkeScheduler::Timing IkeScheduler::timingFor(duration quietPeriod, duration minInterval, duration maxBackoff) {
  return Timing{quietPeriod, quietPeriod, quietPeriod, minInterval, maxBackoff};
}

IkeScheduler::IkeScheduler(duration quietPeriod, duration minInterval, duration maxBackoff)
    : timing_(timingFor(quietPeriod, minInterval, maxBackoff)) {}

void IkeScheduler::setTiming(duration quietPeriod, duration minInterval) {
  timing_ = timingFor(quietPeriod, minInterval, timing_.maxBackoff);
}

void IkeScheduler::observe(bool ready, const std::string& inputs, time_point now) {
  note(ready, Step{inputs, std::nullopt, {}, std::nullopt}, now);
}

const char* toString(IkeAction a) {
  switch (a) {
    case IkeAction::restart: return "restart";
    case IkeAction::reload: return "reload";
    case IkeAction::loadCreds: return "load-creds";
  }
  return "?";
}

void IkeScheduler::observe(bool ready, const std::string& inputs, const std::string& restartInputs,
                               time_point now, const std::vector<std::string>& initiating,
                               const std::optional<std::string>& reloadInputs) {
  Step step{inputs, restartInputs, initiating, reloadInputs};
  std::sort(step.initiating.begin(), step.initiating.end());
  note(ready, std::move(step), now);
}

void IkeScheduler::note(bool ready, Step step, time_point now) {
  if (!ready) {
    // Never (re)start while IPOP is down or the node isn't fully applied. What changes
    // while down is picked up when it is up again (inputs then differ from started_).
    pending_.reset();
    repairPending_ = false;
    return;
  }
  if (started_ && started_->inputs == step.inputs && !inFlight_) {
    pending_.reset();
    return;
  }
  if (inFlight_ && inFlight_->inputs == step.inputs) {
    pending_.reset();  // the step under way already carries these inputs
    return;
  }
  if (!pending_ || pending_->inputs != step.inputs) {
    repairPending_ = false;  // a step for new inputs, not a repeat
    // The first change after a calm spell (nothing pending, nothing under way, no change or
    // step for a whole calm spell): a reload of it runs at once (see deadline()).
    if (!pending_ && (!lastActivity_ || now - *lastActivity_ >= timing_.calmSpell)) leading_ = true;
    pendingSince_ = now;  // every real change restarts the coalescing delay
    lastActivity_ = now;
  }
  pending_ = std::move(step);
}

bool IkeScheduler::urgent() const {
  if (!pending_ || !started_ || pendingAction() != IkeAction::reload) return false;
  if (lastUrgent_ && pendingSince_ - *lastUrgent_ < timing_.urgentReloadInterval) return false;  // a flapping address waits
  return !std::includes(started_->initiating.begin(), started_->initiating.end(), pending_->initiating.begin(),
                        pending_->initiating.end());
}

IkeAction IkeScheduler::pendingAction() const {
  if (forceRestart_ || !started_ || !started_->restart || !pending_ || !pending_->restart ||
      *pending_->restart != *started_->restart)
    return IkeAction::restart;
  // Only credentials changed (the connections and certificates are those charon runs with):
  // loading them touches no SA. A failed load escalates like a failed reload.
  if (started_->reload && pending_->reload && *pending_->reload == *started_->reload) return IkeAction::loadCreds;
  return IkeAction::reload;
}

std::optional<IkeScheduler::time_point> IkeScheduler::deadline() const {
  if (!pending_ || inFlight_) return std::nullopt;
  // The first start, and the start after IPOP came up, happen as soon as everything is
  // ready; the coalescing delay coalesces the changes after that.
  // So does a reload after a calm spell: it tears nothing down, and the coalescing delay is for
  // a burst, which the changes right after it make (they wait for the coalescing delay again).
  // And a reload that lets the node initiate where it could not: its traffic waits for it.
  const bool atOnce = immediate_ || !started_ || (leading_ && pendingAction() != IkeAction::restart) || urgent();
  time_point t = atOnce ? pendingSince_ : pendingSince_ + timing_.coalesceDelay;
  if (lastStart_ && pendingAction() == IkeAction::restart) t = std::max(t, *lastStart_ + timing_.minInterval);
  if (backoffUntil_) t = std::max(t, *backoffUntil_);
  return t;
}

bool IkeScheduler::due(time_point now) const {
  auto d = deadline();
  return d && now >= *d;
}

void IkeScheduler::begin(time_point now) {
  if (urgent()) lastUrgent_ = now;
  repairPending_ = false;
  inFlightAction_ = pendingAction();
  inFlight_ = std::move(pending_);
  pending_.reset();
  leading_ = false;
  lastActivity_ = now;
  if (inFlightAction_ == IkeAction::restart) lastStart_ = now;  // the minimum interval is between restarts
}

void IkeScheduler::finished(bool ok, time_point now) {
  if (!inFlight_) return;
  lastActivity_ = now;
  if (ok) {
    immediate_ = false;
    started_ = inFlight_;
    failures_ = 0;
    backoffUntil_.reset();
    forceRestart_ = false;
  } else {
    // A reload (or credentials load) that failed: charon may not run at all; the retry restarts it.
    if (inFlightAction_ != IkeAction::restart) forceRestart_ = true;
    ++failures_;
    // 2 s, 4 s, 8 s ... up to timing_.maxBackoff, counted from the failure.
    auto backoff = std::chrono::duration_cast<duration>(std::chrono::seconds(1)) * (1LL << std::min(failures_, 16));
    backoffUntil_ = now + std::min<duration>(backoff, timing_.maxBackoff);
    if (!pending_) {
      pending_ = inFlight_;  // retry the same inputs
      pendingSince_ = now;
    }
  }
  inFlight_.reset();
  if (pending_ && started_ && pending_->inputs == started_->inputs) pending_.reset();
}

bool IkeScheduler::repair(time_point now) {
  if (!started_ || pending_ || inFlight_) return false;
  pending_ = started_;
  started_.reset();  // what runs now is not what the last step gave it: a restart
  immediate_ = true;
  repairPending_ = true;
  pendingSince_ = now;
  lastActivity_ = now;
  return true;
}

bool IkeScheduler::cancelRepair() {
  if (!repairPending_ || !pending_ || inFlight_) return false;
  started_ = std::move(pending_);
  pending_.reset();
  immediate_ = false;
  repairPending_ = false;
  return true;
}

void IkeScheduler::cancelled() {
  if (!inFlight_) return;
  if (!pending_) pending_ = inFlight_;
  started_.reset();
  immediate_ = true;
  inFlight_.reset();
}

}  // namespace ipopsec
