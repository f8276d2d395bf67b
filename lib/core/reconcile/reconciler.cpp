#include "core/reconcile/reconciler.hpp"

#include <algorithm>

#include "core/policy/ownership.hpp"
#include "core/render/render_swanctl.hpp"

namespace ipopsec {

std::string joinRanges(const std::vector<Cidr>& ranges) {
  std::string s;
  for (const auto& r : ranges) s += (s.empty() ? "" : ",") + r.str();
  return s;
}

Reconciler::Reconciler(Config cfg, PolicyTable& policies, FileStore& files, CertificateInspector& certs,
                       IkeController& ike, Clock& clock, EventSink events, WallClock wall)
    : cfg_(std::move(cfg)),
      policies_(policies),
      files_(files),
      certs_(certs),
      ike_(ike),
      clock_(clock),
      events_(std::move(events)),
      wall_(std::move(wall)),
      certCache_(files, certs),
      scheduler_(cfg_.ike.quietPeriod, cfg_.ike.minInterval),
      acquireRetry_(cfg_.ike.acquireRetry) {}

void Reconciler::setConfig(Config cfg) {
  if (cfg.ike.acquireRetry != cfg_.ike.acquireRetry) acquireRetry_.setFirst(cfg.ike.acquireRetry);
  cfg_ = std::move(cfg);
  certCache_.stale();
  kernelKnown_ = false;  // the priorities that make a policy the daemon's may have changed
  scheduler_.setTiming(cfg_.ike.quietPeriod, cfg_.ike.minInterval);
}

void Reconciler::assumeProtected(std::vector<Cidr> ranges) { ranges_.assumeCommitted(std::move(ranges)); }

void Reconciler::assumeRemembered(std::vector<Cidr> ranges) { ranges_.assumeRemembered(std::move(ranges)); }

void Reconciler::emit(Severity s, EventKind kind, std::string range, std::string message) {
  if (events_) events_(Event{s, kind, std::move(range), std::move(message)});
}

void Reconciler::changed() {
  judgeIke();
  if (onChange_) onChange_();
}

std::string Reconciler::conflictAdvice(const Policy& wanted, const std::optional<Policy>& other) const {
  if (!other) return "";
  std::string s = "; the kernel already holds " + other->str() + " with the same selector, which is not this daemon's";
  if (PolicyOwnership::isBackendDefault(other->priority))
    s += " (its priority is a default of ipop-ipsecd: probably left by this daemon under another configuration "
         "whose state is lost)";
  s += "; if nothing else needs it, remove it with: ip xfrm policy delete dir " + std::string(toString(wanted.dir)) +
       " src " + wanted.sel.src.str() + " dst " + wanted.sel.dst.str();
  return s;
}

std::optional<Clock::time_point> Reconciler::deadline() const {
  auto r = scheduler_.deadline();
  for (const auto& at : {retryAt_, rememberAt_, acquireRetry_.at()})
    if (at && (!r || *at < *r)) r = at;
  return r;
}

void Reconciler::acquired() {
  if (ikeActionUnderWay_) return;
  acquireRetry_.acquired(clock_.now());
}

void Reconciler::removeLarval(EventKind kind, const std::string& what, const std::string& done) {
  const std::string ranges = joinRanges(status_.desired.ranges);
  if (auto ec = policies_.flushLarval(status_.desired.ranges))
    emit(Severity::warning, kind, ranges, "cannot remove " + what + ": " + ec.message());
  else
    emit(Severity::debug, kind, ranges, done);
}

void Reconciler::onTimer(const NetSnapshot& net) {
  auto now = clock_.now();
  if (rememberAt_ && now >= *rememberAt_) flushRemembered();
  if (acquireRetry_.due(now) && !ikeActionUnderWay_ && !status_.desired.ranges.empty())
    removeLarval(EventKind::acquireRetried, "larval states",
                 "removed the larval states of unanswered ACQUIREs: the next packet asks " + ike_.name() +
                     " again (the next removal waits " +
                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(acquireRetry_.nextWait(now)).count()) +
                     " ms after an ACQUIRE)");
  if (retryAt_ && now >= *retryAt_) {
    retryAt_.reset();
    reconcile(net);
    now = clock_.now();
  }
  if (scheduler_.due(now)) startIkeAction();
}

}  // namespace ipopsec
