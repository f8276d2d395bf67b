#pragma once
// Level-triggered reconciliation: every event only calls reconcile(); the reconciler
// recomputes the desired state from what it observes now, diffs it against the kernel
// and the files, and applies the difference idempotently (make-before-break, never
// removing a policy because of an error). The IKE restart - the only expensive step - is
// coalesced by a IkeScheduler and run when the daemon's timer reaches deadline().
// Pure logic over the ports: no syscalls, no Asio.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/reconcile/acquire_retry.hpp"
#include "core/reconcile/cert_cache.hpp"
#include "core/reconcile/desired.hpp"
#include "core/reconcile/ike_health.hpp"
#include "core/ports.hpp"
#include "core/reconcile/ike_scheduler.hpp"
#include "core/reconcile/plan.hpp"
#include "core/reconcile/range_memory.hpp"
#include "core/status/events.hpp"

namespace ipopsec {

// "10.254.0.0/16,10.253.0.0/16": ranges as the events and the status line name them.
std::string joinRanges(const std::vector<Cidr>& ranges);

struct NodeStatus {
  Desired desired;
  std::vector<Policy> kernelPolicies;  // owned policies read back from the kernel after apply
  std::vector<Cidr> protectedRanges;   // ranges whose in and out protect policies the kernel holds
  bool policiesExact = false;          // kernel == desired
  // The IKE unit's state as systemd last announced it (ActiveState, "not-found", "masked"),
  // or, with ike.control: command, the last command's outcome; "unknown" before either.
  std::string ikeUnitState = "unknown";
  // What keeps a peer from connecting on the IKE side (core/reconcile/ike_health.hpp), in words an
  // operator acts on: the IKE daemon stopped, being restarted, without its trap policies.
  // Empty when it runs and holds what it needs (or is not expected to run: IPOP down).
  std::vector<std::string> ikeProblems;
  // The traps the IKE daemon must hold (strongSwan) and those the kernel holds.
  std::vector<IkeTrap> ikeTrapsExpected, ikeTrapsPresent;
  std::optional<std::chrono::system_clock::time_point> lastRestart;  // wall clock, for display
  std::string lastRestartResult;
  // Why the last IKE action (restart or reload) was started: "IPOP came up", "charon's trap
  // policies were removed by another process", ...
  std::string lastActionReason;
  std::string lastError;
  int restartFailures = 0;
  int reloads = 0;  // successful reloads of the IKE configuration (no restart)
  // Monotonic, for the metrics (restartFailures above is consecutive and resets): completed
  // IKE restarts, failed IKE actions (restart or reload), successful reloads.
  std::uint64_t ikeRestartsTotal = 0;
  std::uint64_t ikeRestartFailuresTotal = 0;
  std::uint64_t ikeReloadsTotal = 0;
  // The last reconcile that changed the kernel's policies: from its start (right after the
  // event that caused it) to the kernel holding the change, and when that was (wall clock).
  std::optional<std::chrono::nanoseconds> lastChangeReaction;
  std::optional<std::chrono::system_clock::time_point> lastChange;
  bool healthy() const;  // protected and nothing wrong
};

class Reconciler {
 public:
  using EventSink = std::function<void(const Event&)>;
  using WallClock = std::function<std::chrono::system_clock::time_point()>;

  // `certs` reads the certificate files at the first reconcile and again only after
  // certificatesChanged(), setConfig(), or a reconcile that found the certificate
  // directory changed under it; judgeCertificates() decides at every reconcile whether the
  // IKE daemon may run on them (never restarted onto an unusable set).
  Reconciler(Config cfg, PolicyTable& policies, FileStore& files, CertificateInspector& certs, IkeController& ike,
             Clock& clock, EventSink events, WallClock wall = [] { return std::chrono::system_clock::now(); });

  // A new, already validated config (SIGHUP). Applied by the next reconcile().
  void setConfig(Config cfg);
  const Config& config() const { return cfg_; }
  // The IKE daemon already runs with these inputs (state remembered across a restart).
  // `restartInputs`, `reloadInputs`: its restart and reload parts when remembered too (state
  // file), so that a later change is judged as if this run had made the last step (a new CRL
  // is loaded, not a restart); nullopt: unknown, the next change restarts.
  void assumeIkeStarted(const std::string& inputs, std::optional<std::string> restartInputs = std::nullopt,
                        std::optional<std::string> reloadInputs = std::nullopt) {
    scheduler_.assumeStarted(inputs, std::move(restartInputs), std::move(reloadInputs));
    adoptedUnchecked_ = true;
  }
  // The CRL the IKE daemon runs with (fingerprint, sorted revoked serials) and when it was
  // loaded, as an earlier run recorded it (state file): a new CRL is judged against it (a
  // routine refresh, or the serials it newly revokes, which are cut).
  void assumeCrlRunning(std::string fingerprint, std::vector<std::string> revoked,
                        std::optional<std::chrono::system_clock::time_point> loadedAt) {
    std::sort(revoked.begin(), revoked.end());
    crlRunning_.emplace(std::move(fingerprint), std::move(revoked));
    crlLoadedAt_ = loadedAt;
  }
  // The CRL the IKE daemon runs with since the last successful action, or since it was
  // written for racoon (which reads it at every verification); nullopt when unknown.
  const std::optional<std::pair<std::string, std::vector<std::string>>>& crlRunning() const { return crlRunning_; }
  std::optional<std::chrono::system_clock::time_point> crlLoadedAt() const { return crlLoadedAt_; }
  // What an earlier run of the daemon recorded of the IKE daemon's last restart (state file),
  // so that status does not forget it when ipop-ipsecd itself restarts.
  void assumeLastRestart(std::optional<std::chrono::system_clock::time_point> at, std::string result,
                         std::string reason) {
    status_.lastRestart = at;
    status_.lastRestartResult = std::move(result);
    status_.lastActionReason = std::move(reason);
  }
  // The ranges this daemon protected before it restarted (state file): protection in force
  // even if its policies were deleted while no daemon ran.
  void assumeProtected(std::vector<Cidr> ranges);
  // With `ranges: auto`: the ranges the tap gave before (daemon.remember_dir), installed and
  // held from the start until the tap has an address. Provisional: unlike ranges in force,
  // they yield to an underlay conflict (a node rebooted into a LAN that overlaps them).
  void assumeRemembered(std::vector<Cidr> ranges);
  // Writes the remembered auto ranges now if a write is pending (the daemon stops).
  void flushRemembered();

  // The certificate files changed (inotify) or may have (resync): inspect them again at the
  // next reconcile. In between, the last inspection is reused (the verdict, which depends on
  // the time, is judged anew each time), so an address event's reaction does not wait for
  // OpenSSL. A new config (setConfig) also re-inspects.
  void certificatesChanged() { certCache_.stale(); }

  // Recompute and apply now: the policy step, then the file step.
  void reconcile(const NetSnapshot& net);
  // The policy step, for every batch of events at once: the policies the observed network
  // asks for, planned against what the kernel holds (planPolicies), applied and read back.
  // Touches no file; leaves the file step pending. Status and the log say what the kernel
  // holds after it; the state of the IKE daemon's files is the last file step's.
  void reconcilePolicies(const NetSnapshot& net);
  // The file step for the state the last policy step applied, if one is pending: the
  // certificates, the rendered files (fsync'ed writes), the ipop-up flag, the remembered
  // auto ranges, the IKE scheduler; then the change is announced (setOnChange). The daemon
  // runs it once no event is pending, so a burst of N changes writes each file once. The IKE
  // daemon is only ever (re)started on inputs whose files this step wrote. It reads no
  // snapshot: the tap's facts are the policy step's (Desired::tapState, tapAddresses).
  void reconcileFiles();
  bool filesPending() const { return filesPending_; }
  // The kernel's policy table may have changed behind the daemon's back (a PolicyWatch
  // event, the resync): the next policy step reads it whole. In between, a policy step
  // plans from its own last read-back (a full dump after each apply): the watch reports
  // every change another process makes to the daemon's policies, so an address change's
  // reaction does not wait for a dump of the table before its policies go in. reconcile(),
  // setConfig() and a failed read always read it whole.
  void kernelChanged() { kernelKnown_ = false; }
  // The daemon arms one timer for this (IKE restart or retry after an error).
  std::optional<Clock::time_point> deadline() const;
  // Timer fired: start the IKE restart if it is due, retry a failed apply if due.
  // `net` is the current snapshot (a retry reconciles).
  void onTimer(const NetSnapshot& net);

  // The kernel announced an ACQUIRE (a packet found no SA and got a larval state). If the
  // IKE daemon's attempt for it fails (a peer refusing while its own IKE daemon starts or
  // reloads), that larval state stays for net.core.xfrm_acq_expires (charon sets 165 s)
  // and no new attempt comes from this side. So, ike.acquire_retry after the first ACQUIRE
  // not yet handled, the larval states in the ranges are removed (never while an IKE
  // restart or reload is under way: that one removes them once the IKE daemon listens),
  // and the next packet asks the IKE daemon again; one still negotiating ignores it
  // (charon: "connection attempt pending"). While ACQUIREs keep coming, each removal waits
  // twice as long as the last, up to 16x (core/reconcile/acquire_retry.hpp: each retry of a
  // refused attempt costs a key exchange). The daemon re-arms its timer after this.
  void acquired();

  // The IKE unit's state changed (systemd's PropertiesChanged signal, or a read at the
  // resync): judged at once; an IKE daemon that stopped while IPOP is up and its inputs are
  // valid is restarted (repair), with the reason in the log and the status.
  void ikeStateChanged(const std::string& unitState);
  // Another process removed SAs behind the IKE daemon's back (`ip xfrm state flush`): its
  // connections have no keys left in the kernel, and it does not know. Repaired by a restart
  // (peers replace their half of the old SAs when the new IKE_SA comes with INITIAL_CONTACT).
  void ikeStatesFlushed(const std::string& what);

  // Called after every change of status (reconcile, restart finished): the daemon re-arms
  // its timer, updates STATUS= and the state file.
  void setOnChange(std::function<void()> f) { onChange_ = std::move(f); }

  const NodeStatus& status() const { return status_; }
  std::string statusLine() const;
  // The same, in at most kShortStatusMax characters, for systemd's STATUS= (shown by
  // `systemctl status`): where the node stands and which problems exist; `extra` (e.g. a
  // refused reload) goes right after the protection part. The details are in statusLine(),
  // `ipop-ipsecd status` and state.json.
  static constexpr std::size_t kShortStatusMax = 120;
  std::string shortStatus(const std::string& extra = "") const;
  const IkeScheduler& scheduler() const { return scheduler_; }

 private:
  // The policy step's apply: the plan through the PolicyTable port (adds in one batch, then
  // removes, make before break), then the read-back that status and the log report.
  bool applyPlan(const Desired& d, const PolicyPlan& plan, const std::vector<Policy>& current);
  void noteTap(const LinkState* tap);  // the tap's link transitions (tapCameUp_)
  enum class PolicyStep { unread, undecided, applied };  // the kernel unreadable / no desired state / done
  PolicyStep policyStep_ = PolicyStep::unread;
  bool filesPending_ = false;
  bool kernelKnown_ = false;  // lastKernel_ is what the kernel holds (read back, no event since)
  bool policiesOk_ = false;  // the last policy step left the kernel exactly as desired
  Desired policyPart_;        // its desired state (policy side), completed by the file step
  bool applyFiles(const Desired& d);
  bool applyIpopUpFlag(const Desired& d);
  // Runs the IKE action the scheduler asks for (restart, or reload when the controller
  // can), then removes stale larval states once the IKE daemon listens.
  void startIkeAction();
  void afterIkeAction(IkeAction action, std::error_code ec, const std::string& detail, const std::string& ranges);
  // The IKE daemon loaded a CRL that revokes these serials too: end the SAs with the peers
  // that presented such a certificate (IkeController::cut), every other SA stays; a cut that
  // fails (or no cut at all) restarts the IKE daemon instead.
  void cutRevoked(const std::vector<std::string>& serials);
  std::vector<std::string> uncut_;  // revoked serials whose cut failed while no restart could be scheduled
  // Removes the larval states in the desired ranges; logs `done` (debug) or the failure
  // ("cannot remove <what>: ...", warning) under `action`.
  void removeLarval(EventKind kind, const std::string& what, const std::string& done);
  void emit(Severity s, EventKind kind, std::string range, std::string message);
  void changed();
  // The IKE side of health (NodeStatus::ikeProblems) from what was observed; a trap that
  // was in the kernel and is gone while nothing of ours was under way is repaired.
  void checkIke();
  void judgeIke();
  // Restarts the IKE daemon for `reason` when it is expected to run (IPOP up, inputs valid)
  // and nothing is pending or under way already; the scheduler's minimum interval and
  // backoff bound it. False when nothing was scheduled.
  bool repair(const std::string& reason);
  std::string stoppedReason() const;  // the unit is inactive or failed (ikeUnitState) while IPOP is up
  std::string pendingReason_;  // why the pending step was asked for ("" = its inputs changed)
  // The CRL (Desired::ikeCrl, ikeRevoked) the IKE daemon runs with since the last successful
  // action (nullopt: unknown, e.g. adopted), and the one the action under way hands over.
  std::optional<std::pair<std::string, std::vector<std::string>>> crlRunning_, crlInFlight_;
  std::optional<std::chrono::system_clock::time_point> crlLoadedAt_;  // when crlRunning_ was handed over
  bool repairForStop_ = false;
  // The IKE daemon was adopted (assumeIkeStarted) and its traps not checked yet: missing at
  // the first check, they were lost while no ipop-ipsecd watched (repaired once).
  bool adoptedUnchecked_ = false;  // the pending step repairs a stopped unit (cancelled if it comes back)
  std::optional<bool> listening_;  // the last action's "does it listen on UDP 500"

  Config cfg_;
  PolicyTable& policies_;
  FileStore& files_;
  CertificateInspector& certs_;
  IkeController& ike_;
  Clock& clock_;
  EventSink events_;
  WallClock wall_;
  CertCache certCache_;
  IkeScheduler scheduler_;
  NodeStatus status_;
  std::optional<Clock::time_point> retryAt_;
  AcquireRetry acquireRetry_;  // acquired(): when to remove the larval states (backing off)
  bool ikeActionUnderWay_ = false;  // from startIkeAction() until the IKE daemon listens (or failed)
  Clock::time_point reconcileStart_{};  // for status_.lastChangeReaction
  int applyFailures_ = 0;
  std::vector<std::string> lastRefused_, lastConflicts_;
  // The owned policies the kernel held after the last apply: one of them missing at the next
  // reconcile was removed by someone else (`ip xfrm policy flush`), which is worth a warning.
  std::vector<Policy> lastKernel_;
  // Ranges in force (committed) and remembered ones the tap has not confirmed yet
  // (provisional), with their rules: core/reconcile/range_memory.hpp.
  RangeMemory ranges_;
  // After a full read of the kernel's policies (`kernel`: the daemon's, as list() gave them):
  // the earlier priorities none of them carries any more stop being the daemon's
  // (PolicyOwnership::forgetUnused), so that a policy another process puts there later is
  // not taken for one of its own.
  void forgetGonePriorities(const std::vector<Policy>& kernel);
  bool ipopSeen_ = false, tapLinkUp_ = false, tapCameUp_ = false;
  int tapIndex_ = 0;
  std::uint64_t tapUpCount_ = 0;  // LinkState::upCount at the last reconcile
  void remember();
  static constexpr std::chrono::milliseconds kRememberDelay{1000};
  std::optional<std::string> remembered_;  // the remember file's content as last read or written
  std::string rememberedPath_, pendingRemember_;
  std::optional<Clock::time_point> rememberAt_;
  std::string conflictAdvice(const Policy& wanted, const std::optional<Policy>& other) const;
  std::string lastWaiting_;
  std::vector<std::string> lastCertProblems_, lastCertWarnings_;
  std::function<void()> onChange_;
};

}  // namespace ipopsec
