#include "core/ike_scheduler.hpp"

#include <algorithm>

namespace ipopsec {

IkeScheduler::IkeScheduler(duration quietPeriod, duration minInterval, duration maxBackoff)
    : quiet_(quietPeriod), minInterval_(minInterval), maxBackoff_(maxBackoff) {}

void IkeScheduler::setTiming(duration quietPeriod, duration minInterval) {
  quiet_ = quietPeriod;
  minInterval_ = minInterval;
}

void IkeScheduler::observe(bool ready, const std::string& inputs, time_point now) {
  pendingRestart_.reset();
  pendingInitiating_.clear();
  if (!ready) {
    // Never (re)start while IPOP is down or the node isn't fully applied. What changes
    // while down is picked up when it is up again (inputs then differ from started_).
    pending_.reset();
    return;
  }
  if (started_ == inputs && !inFlight_) {
    pending_.reset();
    return;
  }
  if (inFlight_ == inputs) {
    pending_.reset();  // the restart under way already carries these inputs
    return;
  }
  if (pending_ != inputs) {
    // The first change after a calm spell (nothing pending, nothing under way, no change or
    // step for a whole quiet period): a reload of it runs at once (see deadline()).
    if (!pending_ && (!lastActivity_ || now - *lastActivity_ >= quiet_)) leading_ = true;
    pending_ = inputs;
    pendingSince_ = now;  // every real change restarts the quiet period
    lastActivity_ = now;
  }
}

void IkeScheduler::observe(bool ready, const std::string& inputs, const std::string& restartInputs,
                               time_point now, const std::vector<std::string>& initiating) {
  observe(ready, inputs, now);
  if (pending_) {
    pendingRestart_ = restartInputs;
    pendingInitiating_ = initiating;
    std::sort(pendingInitiating_.begin(), pendingInitiating_.end());
  }
}

bool IkeScheduler::urgent() const {
  if (!pending_ || pendingAction() != IkeAction::reload) return false;
  if (lastUrgent_ && pendingSince_ - *lastUrgent_ < quiet_) return false;  // a flapping address waits
  return !std::includes(startedInitiating_.begin(), startedInitiating_.end(), pendingInitiating_.begin(),
                        pendingInitiating_.end());
}

IkeAction IkeScheduler::pendingAction() const {
  if (forceRestart_ || !started_ || !startedRestart_ || !pendingRestart_ || *pendingRestart_ != *startedRestart_)
    return IkeAction::restart;
  return IkeAction::reload;
}

std::optional<IkeScheduler::time_point> IkeScheduler::deadline() const {
  if (!pending_ || inFlight_) return std::nullopt;
  // The first start, and the start after IPOP came up, happen as soon as everything is
  // ready; the quiet period coalesces the changes after that.
  // So does a reload after a calm spell: it tears nothing down, and the quiet period is for
  // a burst, which the changes right after it make (they wait for the quiet period again).
  // And a reload that lets the node initiate where it could not: its traffic waits for it.
  const bool atOnce = immediate_ || !started_ || (leading_ && pendingAction() == IkeAction::reload) || urgent();
  time_point t = atOnce ? pendingSince_ : pendingSince_ + quiet_;
  if (lastStart_ && pendingAction() == IkeAction::restart) t = std::max(t, *lastStart_ + minInterval_);
  if (backoffUntil_) t = std::max(t, *backoffUntil_);
  return t;
}

bool IkeScheduler::due(time_point now) const {
  auto d = deadline();
  return d && now >= *d;
}

void IkeScheduler::begin(time_point now) {
  if (urgent()) lastUrgent_ = now;
  inFlightAction_ = pendingAction();
  inFlightInitiating_ = std::move(pendingInitiating_);
  pendingInitiating_.clear();
  inFlight_ = pending_;
  inFlightRestart_ = pendingRestart_;
  pending_.reset();
  pendingRestart_.reset();
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
    startedRestart_ = inFlightRestart_;
    startedInitiating_ = inFlightInitiating_;
    failures_ = 0;
    backoffUntil_.reset();
    forceRestart_ = false;
  } else {
    // A reload that failed: charon may not run at all; the retry restarts it.
    if (inFlightAction_ == IkeAction::reload) forceRestart_ = true;
    ++failures_;
    // 2 s, 4 s, 8 s ... up to maxBackoff_, counted from the failure.
    auto backoff = std::chrono::duration_cast<duration>(std::chrono::seconds(1)) * (1LL << std::min(failures_, 16));
    backoffUntil_ = now + std::min<duration>(backoff, maxBackoff_);
    if (!pending_) {
      pending_ = inFlight_;  // retry the same inputs
      pendingRestart_ = inFlightRestart_;
      pendingInitiating_ = inFlightInitiating_;
      pendingSince_ = now;
    }
  }
  inFlight_.reset();
  inFlightRestart_.reset();
  if (pending_ == started_) pending_.reset();
}

void IkeScheduler::cancelled() {
  if (!inFlight_) return;
  if (!pending_) {
    pending_ = inFlight_;
    pendingRestart_ = inFlightRestart_;
    pendingInitiating_ = inFlightInitiating_;
  }
  started_.reset();
  startedRestart_.reset();
  startedInitiating_.clear();
  immediate_ = true;
  inFlight_.reset();
  inFlightRestart_.reset();
}

}  // namespace ipopsec
