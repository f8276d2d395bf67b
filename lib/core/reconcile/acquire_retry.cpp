#include "core/reconcile/acquire_retry.hpp"

#include <algorithm>

namespace ipopsec {

void AcquireRetry::setFirst(duration first) {
  first_ = std::max(first, duration::zero());
  wait_ = first_;
  at_.reset();
  lastRemoval_.reset();
}

AcquireRetry::duration AcquireRetry::nextWait(time_point now) const {
  // A calm of the longest wait since the last removal: the storm is over, start over.
  if (lastRemoval_ && now - *lastRemoval_ >= first_ * kMaxFactor) return first_;
  return wait_;
}

void AcquireRetry::acquired(time_point now) {
  if (first_ <= duration::zero() || at_) return;
  wait_ = nextWait(now);
  at_ = now + wait_;
}

bool AcquireRetry::due(time_point now) {
  if (!at_ || now < *at_) return false;
  at_.reset();
  lastRemoval_ = now;
  wait_ = std::min(wait_ * 2, first_ * kMaxFactor);
  return true;
}

void AcquireRetry::restart() {
  at_.reset();
  lastRemoval_.reset();
  wait_ = first_;
}

}  // namespace ipopsec
