#include "daemon/daemon.hpp"

#include <algorithm>
#include <csignal>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "core/policy/ownership.hpp"
#include "daemon/state_file.hpp"
#include "os/systemd/logging.hpp"

namespace ipopsec {
namespace {

spdlog::level::level_enum toSpd(Severity s) {
  switch (s) {
    case Severity::debug: return spdlog::level::debug;
    case Severity::info: return spdlog::level::info;
    case Severity::warning: return spdlog::level::warn;
    case Severity::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

Daemon::Daemon(boost::asio::io_context& io, std::string configPath, Config cfg, DaemonPorts ports)
    : io_(io),
      configPath_(std::move(configPath)),
      cfg_(std::move(cfg)),
      ports_(std::move(ports)),
      timer_(ports_.clock->timer()),
      watchdog_(ports_.clock->timer()),
      resync_(ports_.clock->timer()),
      statusLog_(ports_.clock->timer()),
      certTimer_(ports_.clock->timer()),
      signals_(io, SIGHUP, SIGTERM, SIGINT),
      metricsTimer_(ports_.clock->timer()) {}

Daemon::~Daemon() = default;

void Daemon::log(const Event& e) {
  LogFields f = fieldsOf(e.kind, cfg_.ipop.interface, e.range);
  // UNIT= names a systemd unit only: with ike.control: command the message names the command.
  if ((e.action() == "restart" || e.action() == "reload") && cfg_.ike.control == IkeControl::systemd) f.unit = cfg_.ike.unit;
  logEvent(toSpd(e.severity), f, e.message);
}

int Daemon::run() {
  if (int rc = start()) return rc;
  waitSignals();
  io_.run();
  return 0;
}

int Daemon::start() {
  for (const auto& w : cfg_.warnings) spdlog::warn("{}: {}", configPath_, w);

  // The directories it writes in, created if missing and cleared of the temp files of a
  // predecessor killed mid-write.
  if (auto ec = ports_.files->prepareDir(cfg_.daemon.stateDir, true))
    spdlog::warn("cannot create state directory {}: {}", cfg_.daemon.stateDir, ec.message());
  if (!cfg_.daemon.rememberDir.empty())
    if (auto ec = ports_.files->prepareDir(cfg_.daemon.rememberDir, true))
      spdlog::warn("cannot create {} (daemon.remember_dir): {}", cfg_.daemon.rememberDir, ec.message());
  if (!cfg_.daemon.metricsFile.empty()) {
    auto slash = cfg_.daemon.metricsFile.find_last_of('/');
    ports_.files->prepareDir(slash == 0 ? "/" : cfg_.daemon.metricsFile.substr(0, slash), false);
  }

  reconciler_ = std::make_unique<Reconciler>(cfg_, *ports_.policies, *ports_.files, *ports_.certs, *ports_.ike,
                                             *ports_.clock, [this](const Event& e) { log(e); },
                                             [clock = ports_.clock.get()] { return clock->wallNow(); });
  reconciler_->setOnChange([this] { onChange(); });
  fileStepTimer_ = ports_.clock->timer();
  // The IKE unit's state by systemd's signals (a stop, a crash, a restart by anyone): judged
  // and repaired at once, not at the next resync.
  ports_.ike->watchState([this](const std::string& state) { onIkeState(state); });
  watchCertificates();
  adoptRunningState();

  if (auto wd = ports_.notifier->watchdogInterval()) {
    spdlog::info("watchdog every {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(*wd).count());
    watchdogTick();
  }
  resyncTick();
  spdlog::info("ipop-ipsecd {} watching '{}' ({} backend, {} control)", IPOPSEC_VERSION, cfg_.ipop.interface,
               cfg_.ike.backend == IkeBackend::racoon ? "racoon" : "strongswan",
               cfg_.ike.control == IkeControl::systemd ? "systemd " + cfg_.ike.unit : std::string("command"));
  ports_.policyWatch->onStatesFlushed([this](const std::string& what) {
    if (stopping_ || !ready_) return;
    reconciler_->ikeStatesFlushed(what);
  });
  try {
    ports_.policyWatch->start([this](const std::string& what) { onPolicyEvent(what); },
                              [this](const Policy& changed) { return policyConcernsUs(changed); },
                              [this] { onAcquire(); });
  } catch (const std::exception& e) {
    spdlog::critical("cannot follow the kernel's XFRM policy events: {}", e.what());
    return 1;
  }
  try {
    ports_.links->start([this] { onNetChange(); });
  } catch (const std::exception& e) {
    spdlog::critical("cannot watch the network over rtnetlink: {}", e.what());
    return 1;
  }
  return 0;
}

// An event batch: its policies at once (the policy step); the file step once the events are
// calm (scheduleFileStep).
void Daemon::onNetChange() {
  if (stopping_) return;
  auto t0 = std::chrono::steady_clock::now();
  reconciler_->reconcilePolicies(ports_.links->snapshot());
  policyStepTime_ = std::chrono::steady_clock::now() - t0;
  if (!ready_) {
    runFileStep();  // the first reconcile is whole before READY=1
    return;
  }
  scheduleFileStep();
}

// The file step (certificates, render, fsync'ed writes, state.json, metrics: milliseconds on a
// busy disk) runs once no rtnetlink or XFRM batch came for kFileStepCalm, so that a change
// arriving just after another never waits behind the first one's writes; and at the latest
// kFileStepLongestWait after the first event it follows, so that a storm cannot hold back the
// files and the IKE daemon for ever. Per event only the time is noted: the timer is armed once
// per burst and looks at the last event when it fires.
void Daemon::scheduleFileStep() {
  const auto now = ports_.clock->now();
  fileStepLastEvent_ = now;
  if (fileStepFirstEvent_) return;  // armed for this burst
  fileStepFirstEvent_ = now;
  fileStepTimer_->at(now + kFileStepCalm, [this] { onFileStepTimer(); });
}

void Daemon::onFileStepTimer() {
  if (!fileStepFirstEvent_) return;
  const auto calm = *fileStepLastEvent_ + kFileStepCalm, latest = *fileStepFirstEvent_ + kFileStepLongestWait;
  if (const auto now = ports_.clock->now(); now < calm && now < latest) {
    fileStepTimer_->at(std::min(calm, latest), [this] { onFileStepTimer(); });  // an event came meanwhile
    return;
  }
  runFileStep();
}

void Daemon::runFileStep() {
  if (stopping_ || !reconciler_) return;
  // A batch the kernel has queued meanwhile goes first: its policy step runs now (through
  // onNetChange, which finds the file step already scheduled), and this file step writes the
  // files once, for the last state.
  if (ready_) ports_.links->drain();
  fileStepFirstEvent_.reset();
  fileStepLastEvent_.reset();
  if (fileStepTimer_) fileStepTimer_->cancel();  // this file step covers every event so far
  if (stopping_) return;
  auto t0 = std::chrono::steady_clock::now();
  inFileStep_ = true;  // the metrics are written once, below, with this reconcile's duration
  reconciler_->reconcileFiles();
  inFileStep_ = false;
  auto fileStep = std::chrono::steady_clock::now() - t0;
  auto us = [](auto d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
  spdlog::debug("reconciled in {} us (policy step {} us, file step {} us)", us(policyStepTime_ + fileStep),
                us(policyStepTime_), us(fileStep));
  // Whole milliseconds in the metrics: a reconcile that changed nothing else then leaves the
  // file as it is (no fsync'ed rewrite per netlink event on a flapping link).
  lastReconcile_ = std::chrono::ceil<std::chrono::milliseconds>(policyStepTime_ + fileStep);
  writeMetrics();
  if (!ready_) {
    ready_ = true;
    ports_.notifier->ready();
  }
}

// A change by another process matters when it touched a policy at one of the daemon's
// priorities (its own, deleted or expired), or one with the id (dir + selector) of a policy
// the daemon wants or holds: the kernel's id ignores the priority, so such an add replaced
// the daemon's policy. Everything else (charon's per-SA and trap policies) is left alone.
bool Daemon::policyConcernsUs(const Policy& changed) const {
  if (ports_.policies->ownership().owns(changed)) return true;
  auto sameId = [&](const Policy& p) { return p.dir == changed.dir && p.sel == changed.sel; };
  const auto& st = reconciler_->status();
  // The IKE daemon's trap for one of the ranges (out local -> range): its removal leaves the
  // node unable to start a connection (Reconciler::checkIke).
  if (isTrapOf(changed, st.ikeTrapsExpected)) return true;
  return std::any_of(st.desired.policies.begin(), st.desired.policies.end(), sameId) ||
         std::any_of(st.kernelPolicies.begin(), st.kernelPolicies.end(), sameId);
}

void Daemon::onPolicyEvent(const std::string& what) {
  if (stopping_ || !ready_) return;  // the first reconcile reads the kernel anyway
  spdlog::debug("xfrm: {}; reconciling", what);
  reconciler_->kernelChanged();
  reconciler_->reconcilePolicies(ports_.links->snapshot());
  scheduleFileStep();
}

void Daemon::onIkeState(const std::string& state) {
  if (stopping_) return;
  if (state != reconciler_->status().ikeUnitState) spdlog::debug("{} is {}", ports_.ike->name(), state);
  reconciler_->ikeStateChanged(state);
}

void Daemon::onAcquire() {
  if (stopping_ || !ready_) return;
  reconciler_->acquired();
  armTimer();
}

void Daemon::onChange() {
  std::string line = statusLine();
  // STATUS= is one short line (systemctl status); the journal and state.json get the details.
  std::string shortLine = reconciler_->shortStatus(reloadRefused_.empty() ? "" : "RELOAD REFUSED: " + reloadRefused_);
  if (shortLine != lastShortStatus_) {
    ports_.notifier->status(shortLine);
    lastShortStatus_ = shortLine;
  }
  // The journal's status line: one per change that lasts, not one per step of a change
  // (a reconcile, the restart it starts at once and its completion come within milliseconds).
  if (line != lastStatus_ && !statusLogArmed_) {
    statusLogArmed_ = true;
    // Cancelled by shutdown() (which writes the last status line itself) and with this Daemon.
    statusLog_->at(ports_.clock->now() + std::chrono::milliseconds(100), [this] {
      statusLogArmed_ = false;
      logStatus();
    });
  }
  // The IKE unit's state is a D-Bus round trip: ask after each restart result and at
  // every resync, not at every reconcile.
  const auto& st = reconciler_->status();
  if (st.lastRestartResult != lastRestartResult_ || st.restartFailures != lastRestartFailures_) {
    lastRestartResult_ = st.lastRestartResult;
    lastRestartFailures_ = st.restartFailures;
    // Posted: the Reconciler is in the middle of telling us about a change.
    boost::asio::post(io_, [this] {
      if (!stopping_ && reconciler_) reconciler_->ikeStateChanged(ports_.ike->state());
    });
  }
  std::string json = stateJson(cfg_, *reconciler_, st.ikeUnitState, line, reloadRefused_);
  // Write only when something but the timestamp changed.
  auto strip = [](const std::string& s) { return s.substr(0, s.find("\"pid\"")); };
  if (strip(json) != strip(lastStateJson_)) {
    if (auto ec = ports_.files->write(cfg_.daemon.statePath(), json, 0644))
      spdlog::warn("cannot write {}: {}", cfg_.daemon.statePath(), ec.message());
    lastStateJson_ = json;
  }
  if (!inFileStep_) writeMetrics();
  armTimer();
}

std::string Daemon::statusLine() const {
  std::string line = reconciler_->statusLine();
  if (!reloadRefused_.empty()) line += "; RELOAD REFUSED, running config kept: " + reloadRefused_;
  return line;
}

void Daemon::logStatus() {
  std::string line = statusLine();
  if (line == lastStatus_) return;
  spdlog::info("status: {}", line);
  lastStatus_ = line;
}


}  // namespace ipopsec
