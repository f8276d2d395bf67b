#pragma once
// When to run an IKE action (restart the IKE daemon, or reload its configuration): pure
// decision logic, driven by a clock value.
// Coalesces the expensive step only: a quiet period after the last change of what the
// IKE daemon depends on, a minimum interval between two restarts, and exponential
// backoff after a failed restart. Never restarts while IPOP is down. What needs no waiting
// does not wait: the first start, the start after IPOP came up, a reload for the first
// change after a calm spell (a quiet period without changes or steps), and a reload that
// lets the node initiate where the running configuration cannot (the tap got an address
// in a range) run at once.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ipopsec {

// What the scheduler asks for: a full restart of the IKE daemon, or - when the daemon
// runs and only inputs it can re-read without a restart changed (strongSwan: the swanctl
// configuration) - the cheap reload (swanctl --load-all), or - when only credentials the
// running daemon loads by themselves changed (strongSwan: a new CRL in x509crl/) - loadCreds
// (swanctl --load-creds), which reloads no connection and so touches no SA.
enum class IkeAction { restart, reload, loadCreds };
const char* toString(IkeAction a);  // "restart", "reload", "load-creds"

class IkeScheduler {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  // `quietPeriod` (the config's ike.quiet_period) gives three durations, each with its own
  // job and name here (Timing): the coalescing delay, the calm spell and the urgent-reload
  // interval. One key, because an operator tunes them together: all three are "how long a
  // burst of changes lasts".
  IkeScheduler(duration quietPeriod, duration minInterval, duration maxBackoff = std::chrono::minutes(5));
  void setTiming(duration quietPeriod, duration minInterval);
  struct Timing {
    // A step waits this long after the last change of its inputs, so that a burst of
    // changes gives one step (unless it runs at once: deadline()).
    duration coalesceDelay;
    // A change after this long without changes or steps is the first of a burst: a reload
    // of it runs at once (the burst's later changes are coalesced).
    duration calmSpell;
    // At most one at-once reload for a new initiating address per this interval (a
    // flapping address waits for the coalescing delay instead).
    duration urgentReloadInterval;
    duration minInterval;  // between two restarts (ike.min_interval)
    duration maxBackoff;   // the longest wait after failed steps
  };
  static Timing timingFor(duration quietPeriod, duration minInterval, duration maxBackoff);
  const Timing& timing() const { return timing_; }

  // After every reconcile. `inputs` is a canonical fingerprint of everything the IKE
  // daemon depends on; `ready` = IPOP is up, policies and files applied, certificates
  // present. A restart becomes pending when ready and inputs differ from those the IKE
  // daemon was last (re)started with.
  void observe(bool ready, const std::string& inputs, time_point now);
  // The same, for an IKE daemon that can reload: `restartInputs` is the part of `inputs`
  // that needs a restart (certificates); when it equals that of the running daemon, a
  // change of the rest is applied by a reload. A reload is coalesced by the quiet period
  // like a restart, but not held back by the minimum interval. A failed reload (the
  // daemon may not run at all) makes the retry a restart.
  // `initiating`: one entry per range in which the configuration initiates (strongSwan: the
  // tap's address there, "range=address"). A reload whose set has an entry the running
  // configuration lacks runs at once: until it does, the node's own traffic in that range
  // is held by the drop policies (a DHCP move: the old address goes, the new one comes; the
  // first event may already be reloading). At most one such reload per quiet period.
  // `reloadInputs`: the part of `inputs` whose change needs the reload (strongSwan: the
  // connections and certificates, not the CRL); when it equals that of the running daemon
  // too, the change is credentials only and the step is IkeAction::loadCreds. nullopt: every
  // change that is no restart is a reload.
  void observe(bool ready, const std::string& inputs, const std::string& restartInputs, time_point now,
               const std::vector<std::string>& initiating = {},
               const std::optional<std::string>& reloadInputs = std::nullopt);
  // What the pending (or in-flight) step is.
  IkeAction pendingAction() const;
  IkeAction inFlightAction() const { return inFlightAction_; }

  // The IKE daemon is already running with these inputs (e.g. remembered across a
  // daemon restart): no restart needed for them.
  // `restartInputs`, `reloadInputs`: its restart and reload parts, when remembered too; then
  // a later change is judged like one this run made (a new CRL is loaded, not a restart).
  // Unknown (nullopt): the next change is applied by a restart. Where it initiates is not
  // remembered: a reload that adds an entry is not urgent for an adopted daemon.
  void assumeStarted(const std::string& inputs, std::optional<std::string> restartInputs = std::nullopt,
                     std::optional<std::string> reloadInputs = std::nullopt) {
    started_ = Step{inputs, std::move(restartInputs), {}, std::move(reloadInputs)};
  }
  // The restart and reload parts of what the IKE daemon runs with (nullopt: unknown), for the
  // state file.
  std::optional<std::string> startedRestartInputs() const { return started_ ? started_->restart : std::nullopt; }
  std::optional<std::string> startedReloadInputs() const { return started_ ? started_->reload : std::nullopt; }

  // IPOP came up (again): the IKE daemon must be (re)started, and at once (not after the
  // quiet period, which coalesces later changes; the minimum interval and backoff still
  // bound a flapping tap).
  void ipopCameUp() {
    started_.reset();
    immediate_ = true;
  }

  // The IKE daemon lost what the last step gave it (it stopped, or another process removed
  // its kernel state): restart it with the same inputs, at once (the minimum interval and
  // the backoff after failures still bound it). False, and nothing changes, when there is
  // no started step to repeat or a step is pending or under way (it repairs as well).
  bool repair(time_point now);
  // The repair asked for is not needed any more (the unit came back by itself, systemd's
  // Restart=): the step it repeated counts as running again. False when no repair is pending
  // (begun, or replaced by a change of the inputs).
  bool cancelRepair();

  // When the daemon should call due(); nullopt when nothing is pending or a restart is in flight.
  std::optional<time_point> deadline() const;
  // True when a restart should start now. The caller then calls begin() and, later, finished().
  bool due(time_point now) const;
  void begin(time_point now);
  void finished(bool ok, time_point now);
  // The step in flight was cut short (the IKE control was reconfigured): not a failure.
  // What the IKE daemon now runs with is unknown, so a restart is pending at once (the
  // minimum interval still applies).
  void cancelled();

  bool pending() const { return pending_.has_value(); }
  bool inFlight() const { return inFlight_.has_value(); }
  int consecutiveFailures() const { return failures_; }
  std::optional<std::string> startedInputs() const {
    return started_ ? std::optional<std::string>(started_->inputs) : std::nullopt;
  }
  std::optional<time_point> lastStart() const { return lastStart_; }

 private:
  // One configuration of the IKE daemon: the fingerprint of its inputs, the part of them
  // whose change needs a restart (nullopt: unknown or not reloadable, i.e. a restart), and
  // where it initiates (sorted; unknown counts as nowhere).
  struct Step {
    std::string inputs;
    std::optional<std::string> restart;
    std::vector<std::string> initiating;
    // The part whose change needs a reload (nullopt: unknown, every change is at least one).
    std::optional<std::string> reload;
  };
  void note(bool ready, Step step, time_point now);
  bool urgent() const;  // the pending reload lets the node initiate somewhere new

  Timing timing_;
  std::optional<Step> started_;   // what the last successful step gave the IKE daemon
  std::optional<Step> pending_;   // waiting for a step
  time_point pendingSince_{};     // last change of pending_
  std::optional<Step> inFlight_;  // the step under way
  std::optional<time_point> lastStart_;
  std::optional<time_point> backoffUntil_;
  int failures_ = 0;
  IkeAction inFlightAction_ = IkeAction::restart;
  bool forceRestart_ = false;  // the last reload failed
  // The pending start is the first one (nothing started yet) or follows IPOP coming up:
  // no quiet period.
  bool immediate_ = false;
  bool repairPending_ = false;  // pending_ is repair()'s repeat of the started step
  // The pending change came after a calm spell: a reload of it needs no quiet period.
  bool leading_ = false;
  std::optional<time_point> lastActivity_;  // last change of the inputs, or step begun or ended
  std::optional<time_point> lastUrgent_;    // when the last at-once reload for a new address began
};

}  // namespace ipopsec
