#pragma once
// When to (re)start the IKE daemon: pure decision logic, driven by a clock value.
// Coalesces the expensive step only: a quiet period after the last change of what the
// IKE daemon depends on, a minimum interval between two restarts, and exponential
// backoff after a failed restart. Never restarts while IPOP is down.

#include <chrono>
#include <optional>
#include <string>

namespace ipopsec {

class RestartScheduler {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  RestartScheduler(duration quietPeriod, duration minInterval, duration maxBackoff = std::chrono::minutes(5));
  void setTiming(duration quietPeriod, duration minInterval);

  // After every reconcile. `inputs` is a canonical fingerprint of everything the IKE
  // daemon depends on; `ready` = IPOP is up, policies and files applied, certificates
  // present. A restart becomes pending when ready and inputs differ from those the IKE
  // daemon was last (re)started with.
  void observe(bool ready, const std::string& inputs, time_point now);

  // The IKE daemon is already running with these inputs (e.g. remembered across a
  // daemon restart): no restart needed for them.
  void assumeStarted(const std::string& inputs) { started_ = inputs; }

  // When the daemon should call due(); nullopt when nothing is pending or a restart is in flight.
  std::optional<time_point> deadline() const;
  // True when a restart should start now. The caller then calls begin() and, later, finished().
  bool due(time_point now) const;
  void begin(time_point now);
  void finished(bool ok, time_point now);

  bool pending() const { return pending_.has_value(); }
  bool inFlight() const { return inFlight_.has_value(); }
  int consecutiveFailures() const { return failures_; }
  const std::optional<std::string>& startedInputs() const { return started_; }
  std::optional<time_point> lastStart() const { return lastStart_; }

 private:
  duration quiet_, minInterval_, maxBackoff_;
  std::optional<std::string> started_;   // inputs of the last successful restart
  std::optional<std::string> pending_;   // inputs waiting for a restart
  time_point pendingSince_{};            // last change of pending_
  std::optional<std::string> inFlight_;
  std::optional<time_point> lastStart_;
  std::optional<time_point> backoffUntil_;
  int failures_ = 0;
};

}  // namespace ipopsec
