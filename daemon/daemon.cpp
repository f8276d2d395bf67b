#include "daemon/daemon.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sstream>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "core/policy/ownership.hpp"
#include "daemon/state_file.hpp"
#include "os/files/config_loader.hpp"
#include "os/files/file_store.hpp"
#include "os/systemd/logging.hpp"

namespace ipopsec {
namespace {

// Everything the daemon owns announces its changes: links and addresses (rtnetlink), the
// XFRM policies (XFRMNLGRP_POLICY: an `ip xfrm policy flush` is repaired at once, by
// XfrmPolicyWatch), the certificate files (inotify). What stays on this timer has no event
// the daemon can wait for: a file changed under an inotify watch that cannot see it (a
// remount, a bind mount replaced, an NFS-backed /etc), and the IKE unit's state, asked
// over D-Bus (the daemon does not subscribe to systemd's PropertiesChanged for it). It is
// not what keeps the policies in place.
constexpr auto kResyncInterval = std::chrono::seconds(30);

spdlog::level::level_enum toSpd(Severity s) {
  switch (s) {
    case Severity::debug: return spdlog::level::debug;
    case Severity::info: return spdlog::level::info;
    case Severity::warning: return spdlog::level::warn;
    case Severity::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string statePath(const Config& cfg) { return cfg.daemon.stateDir + "/" + Config::Daemon::kStateFile; }

// The directories holding the certificate files (certificate_dir, and the directory of
// any file configured by absolute path).
std::vector<std::string> certificateDirs(const Config& cfg) {
  std::vector<std::string> dirs{cfg.racoon.certificateDir};
  for (const auto* name : {&cfg.racoon.caCert, &cfg.racoon.hostCert, &cfg.racoon.hostKey}) {
    const std::string path = certificatePath(cfg, *name);
    auto slash = path.find_last_of('/');
    dirs.push_back(slash == 0 ? "/" : path.substr(0, slash));
  }
  std::sort(dirs.begin(), dirs.end());
  dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
  return dirs;
}

}  // namespace

Daemon::Daemon(boost::asio::io_context& io, std::string configPath, Config cfg, DaemonPorts ports)
    : io_(io),
      configPath_(std::move(configPath)),
      cfg_(std::move(cfg)),
      ports_(std::move(ports)),
      timer_(io),
      watchdog_(io),
      resync_(io),
      statusLog_(io),
      signals_(io, SIGHUP, SIGTERM, SIGINT),
      metricsTimer_(io) {}

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

  if (::mkdir(cfg_.daemon.stateDir.c_str(), 0755) != 0 && errno != EEXIST)
    spdlog::warn("cannot create state directory {}: {}", cfg_.daemon.stateDir, std::strerror(errno));
  removeStaleTemps(cfg_.daemon.stateDir);  // temp files of a predecessor killed mid-write
  if (!cfg_.daemon.rememberDir.empty()) {
    if (::mkdir(cfg_.daemon.rememberDir.c_str(), 0755) != 0 && errno != EEXIST)
      spdlog::warn("cannot create {} (daemon.remember_dir): {}", cfg_.daemon.rememberDir, std::strerror(errno));
    removeStaleTemps(cfg_.daemon.rememberDir);
  }
  if (!cfg_.daemon.metricsFile.empty()) {
    auto slash = cfg_.daemon.metricsFile.find_last_of('/');
    removeStaleTemps(slash == 0 ? "/" : cfg_.daemon.metricsFile.substr(0, slash));
  }

  reconciler_ = std::make_unique<Reconciler>(cfg_, *ports_.policies, *ports_.files, *ports_.certs, *ports_.ike,
                                             *ports_.clock, [this](const Event& e) { log(e); });
  reconciler_->setOnChange([this] { onChange(); });
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

// What this daemon's predecessor left: the auto ranges it remembered, the priorities its
// policies carry, and the inputs the IKE daemon still runs with.
void Daemon::adoptRunningState() {
  std::string text, err;
  if (cfg_.protect.autoRanges && !cfg_.daemon.rememberDir.empty()) {
    // The ranges the tap gave before (persistent, also across a reboot): their policies go
    // in at the first reconcile, before the tap has its address. A bad line is named and
    // skipped; the file is rewritten once the tap confirms a range.
    std::string path = cfg_.daemon.rememberDir + "/" + Config::Daemon::kRememberFile, saved;
    if (!ports_.files->read(path, saved)) {
      std::vector<Cidr> ranges;
      std::istringstream in(saved);
      int n = 0;
      for (std::string line; std::getline(in, line);) {
        ++n;
        if (line.empty() || line[0] == '#') continue;
        std::string why;
        auto c = Cidr::parse(line, &why);
        if (!c)
          spdlog::warn("{}:{}: not a range ({}); ignored", path, n, why);
        else if (c->family() == Family::v6 && !cfg_.protect.ipv6)
          continue;
        else
          ranges.push_back(c->network());
      }
      if (!ranges.empty()) {
        std::string list;
        for (const auto& r : ranges) list += (list.empty() ? "" : ", ") + r.str();
        spdlog::info("holding {} from the last run ({}) until the tap has its address", list, path);
        reconciler_->assumeRemembered(ranges);
      }
    }
  }
  if (!ports_.files->read(statePath(cfg_), text))
    if (auto saved = parseState(text, &err); saved && !saved->ownedPriorities.empty()) {
      // (The state file's protected_ranges are not taken as in force: a predecessor killed
      // between moving its policies and writing the state file leaves a range there that it
      // had already given up; what is in force at start is what the kernel holds.)
      // Policies an earlier configuration installed at other priorities are still this
      // daemon's: owned, so that they are migrated (replaced in place) and not refused as
      // foreign. Recorded in the state file at every change.
      ports_.policies->setPriorities(cfg_.xfrm.protectPriority, cfg_.xfrm.bypassPriority, saved->ownedPriorities);
      if (!ports_.policies->earlierPriorities().empty()) {
        std::string list;
        for (auto e : ports_.policies->earlierPriorities()) list += (list.empty() ? "" : ", ") + std::to_string(e);
        spdlog::info("policies at priority {} are this daemon's from an earlier configuration: they are moved to "
                     "{}/{}", list, cfg_.xfrm.protectPriority, cfg_.xfrm.bypassPriority);
      }
    }
  // The IKE daemon may still be running from before a daemon restart: if the inputs it
  // was started with are remembered, don't restart it for nothing...
  if (!ports_.files->read(statePath(cfg_), text))
    if (auto saved = parseState(text, &err); saved && !saved->ikeInputs.empty()) {
      reconciler_->assumeLastRestart(parseRfc3339(saved->lastRestart), saved->lastRestartResult,
                                     saved->lastActionReason);
      // ... but only if it IS running: its lifetime is not tied to ours (a crash, restart or
      // stop of ipop-ipsecd leaves it running), but it may have been stopped or died while no
      // ipop-ipsecd watched; then it is started again once IPOP is up. With control: command
      // there is nothing to ask.
      std::string ike = cfg_.ike.control == IkeControl::systemd ? ports_.ike->state() : std::string("active");
      if (cfg_.ike.control == IkeControl::systemd) reconciler_->ikeStateChanged(ike);
      if (ike == "active" || ike == "reloading") {
        // With what it runs: the restart and reload parts and the CRL, so that a new CRL is
        // loaded (not a restart) and judged against the one it really loaded.
        auto known = [](const std::string& s) { return s.empty() ? std::nullopt : std::optional<std::string>(s); };
        reconciler_->assumeIkeStarted(saved->ikeInputs, known(saved->ikeRestartInputs), known(saved->ikeReloadInputs));
        if (saved->ikeCrl)
          reconciler_->assumeCrlRunning(saved->ikeCrl->fingerprint, saved->ikeCrl->revoked,
                                        parseRfc3339(saved->ikeCrl->loadedAt));
      } else
        spdlog::info("{} is {}: it will be (re)started once IPOP is up", ports_.ike->name(), ike);
    }
}

// An event batch: its policies at once (the policy step); the file step once no event is
// pending (runFileStep, posted behind the handlers already queued).
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

void Daemon::scheduleFileStep() {
  if (fileStepPosted_) return;  // one file step for the whole burst
  fileStepPosted_ = true;
  boost::asio::post(io_, [this] { runFileStep(); });
}

void Daemon::runFileStep() {
  if (stopping_ || !reconciler_) return;
  // A batch the kernel has queued meanwhile goes first: its policy step runs now (through
  // onNetChange, which finds this file step already posted), and this file step writes the
  // files once, for the last state.
  if (ready_) ports_.links->drain();
  fileStepPosted_ = false;
  if (stopping_) return;
  auto t0 = std::chrono::steady_clock::now();
  inFileStep_ = true;  // the metrics are written once, below, with this reconcile's duration
  reconciler_->reconcileFiles(ports_.links->snapshot());
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
  if (PolicyOwnership(cfg_.xfrm.protectPriority, cfg_.xfrm.bypassPriority, ports_.policies->earlierPriorities())
          .owns(changed))
    return true;
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
    statusLog_.expires_after(std::chrono::milliseconds(100));
    statusLog_.async_wait([this](boost::system::error_code ec) {
      // Aborted (shutdown, or this Daemon destroyed while the io_context lives on): touch
      // nothing of it. shutdown() writes the last status line itself.
      if (ec) return;
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
    if (auto ec = ports_.files->write(statePath(cfg_), json, 0644))
      spdlog::warn("cannot write {}: {}", statePath(cfg_), ec.message());
    lastStateJson_ = json;
  }
  if (!inFileStep_) writeMetrics();
  armTimer();
}

void Daemon::writeMetrics(bool heartbeat) {
  if (stopping_) return;  // removed by shutdown(), not written again
  const std::string& path = cfg_.daemon.metricsFile;
  if (path != lastMetricsPath_) removeMetrics();  // a reload moved the file or turned it off
  if (path.empty()) return;
  const auto& st = reconciler_->status();
  MetricsCounters c;
  c.ikeRestarts += st.ikeRestartsTotal;
  c.ikeRestartFailures += st.ikeRestartFailuresTotal;
  c.ikeReloads += st.ikeReloadsTotal;
  // The SAs of each protected range, from the kernel's SAD (an IKE daemon's work, which
  // sends no event the daemon follows: current at each change and at every resync).
  std::optional<std::vector<RangeSas>> sas;
  std::vector<SaFact> facts;
  if (!ports_.policies->listSas(facts)) {
    std::vector<IpAddress> local;
    if (st.desired.localAddress) local.push_back(*st.desired.localAddress);
    sas.emplace();
    for (const auto& r : st.protectedRanges) {
      SaSummary sum = summarizeSas(facts, {r}, local);
      sas->push_back(RangeSas{r, sum.esp, sum.peers.size()});
    }
  }
  std::string text = renderMetrics(st, cfg_, c, lastReconcile_, sas);
  if (!heartbeat && path == lastMetricsPath_ && text == lastMetrics_) return;
  // The next heartbeat comes metrics_interval after this write: a file whose timestamp
  // stops advancing says its writer is gone (the alert rule in docs/operations.md, "Monitoring with Prometheus").
  metricsTimer_.expires_after(cfg_.daemon.metricsInterval);
  metricsTimer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) writeMetrics(true);
  });
  if (auto ec = ports_.files->write(path, text + renderMetricsTimestamp(std::chrono::system_clock::now()), 0644)) {
    // Said once until a write succeeds; the next change or heartbeat tries again.
    if (!metricsWarned_) spdlog::warn("cannot write {} (daemon.metrics_file): {}", path, ec.message());
    metricsWarned_ = true;
    return;
  }
  metricsWarned_ = false;
  lastMetrics_ = std::move(text);
  lastMetricsPath_ = path;
}

// The file goes with the daemon (a clean stop, a reload that moves it or turns it off): a
// node without ipop-ipsecd exports none of its metrics rather than old ones.
void Daemon::removeMetrics() {
  metricsTimer_.cancel();
  if (lastMetricsPath_.empty()) return;
  if (auto ec = ports_.files->remove(lastMetricsPath_))
    spdlog::warn("cannot remove {} (daemon.metrics_file): {}", lastMetricsPath_, ec.message());
  lastMetricsPath_.clear();
  lastMetrics_.clear();
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

void Daemon::armTimer() {
  auto d = reconciler_->deadline();
  if (!d) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(*d);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    reconciler_->onTimer(ports_.links->snapshot());
    armTimer();
  });
}

void Daemon::waitSignals() {
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      reload();
      waitSignals();
    } else {
      shutdown(sig);
    }
  });
}

void Daemon::reload() {
  ports_.notifier->reloading();
  spdlog::info("reloading {}", configPath_);
  try {
    Config next = loadConfig(configPath_);
    // What a reload applies, key by key (docs/operations.md, "Configuration"; the man page): everything, except
    // daemon.state_dir (the IKE units' drop-ins test the ipop-up flag in it, and `status`
    // reads state.json there): a change of it needs `systemctl restart ipop-ipsecd`.
    if (next.daemon.stateDir != cfg_.daemon.stateDir)
      throw ConfigError({ConfigIssue{configPath_, 0, 0, "daemon.state_dir",
                                     "cannot change on reload (the IKE units' start condition and `status` read it): "
                                     "restart the service to apply it"}});
    for (const auto& w : next.warnings) spdlog::warn("{}: {}", configPath_, w);
    if (next.daemon.logLevel != cfg_.daemon.logLevel) {
      // Said before the change, so that it shows whichever way the level moves.
      spdlog::info("log level is now {} (was {})", next.daemon.logLevel, cfg_.daemon.logLevel);
      spdlog::default_logger()->set_level(parseLogLevel(next.daemon.logLevel));
    }
    if (next.xfrm.protectPriority != cfg_.xfrm.protectPriority || next.xfrm.bypassPriority != cfg_.xfrm.bypassPriority) {
      // The old priorities stay owned until their policies are gone: the next reconcile
      // replaces each policy in place at its new priority (make before break), and the
      // state file then records only the priorities still in use.
      auto earlier = ports_.policies->earlierPriorities();
      earlier.push_back(cfg_.xfrm.protectPriority);
      earlier.push_back(cfg_.xfrm.bypassPriority);
      ports_.policies->setPriorities(next.xfrm.protectPriority, next.xfrm.bypassPriority, earlier);
      spdlog::info("policy priorities change from {}/{} to {}/{}: moving this daemon's policies", cfg_.xfrm.protectPriority,
                   cfg_.xfrm.bypassPriority, next.xfrm.protectPriority, next.xfrm.bypassPriority);
    }
    cfg_ = next;
    // One reconciler and one IKE controller for the daemon's lifetime: a changed ike.control,
    // ike.unit, ike.restart_command, ike.restart_timeout or strongswan.load_command swaps only
    // the controller's runner (an action in flight on the old one is cut short and run again).
    ports_.ike->reconfigure(cfg_);
    reconciler_->setConfig(cfg_);
    if (certificateDirs(cfg_) != certDirs_) watchCertificates();
    spdlog::info("reloaded {}", configPath_);
    reloadRefused_.clear();
    reconciler_->reconcile(ports_.links->snapshot());
  } catch (const ConfigError& e) {
    for (const auto& issue : e.issues())
      logEvent(spdlog::level::err, fieldsOf(EventKind::reloadRefused, cfg_.ipop.interface), "reload refused: " + issue.str());
    std::string first = e.issues().empty() ? std::string("invalid config") : e.issues().front().str();
    // Kept in STATUS=, status and state.json until a reload succeeds: a refusal must not be
    // forgotten at the next status change.
    reloadRefused_ = first;
    ports_.notifier->ready();
    onChange();
    return;
  }
  ports_.notifier->ready();
  onChange();
}

void Daemon::shutdown(int sig) {
  stopping_ = true;
  reconciler_->flushRemembered();
  statusLog_.cancel();
  logStatus();
  spdlog::info("{}: stopping; policies stay in the kernel (fail closed)", sig == SIGINT ? "SIGINT" : "SIGTERM");
  ports_.notifier->stopping();
  removeMetrics();
  ports_.links->stop();
  ports_.policyWatch->stop();
  timer_.cancel();
  watchdog_.cancel();
  resync_.cancel();
  signals_.cancel();
  io_.stop();
}

void Daemon::watchdogTick() {
  auto wd = ports_.notifier->watchdogInterval();
  if (!wd || stopping_) return;
  ports_.notifier->watchdog();
  watchdog_.expires_after(*wd / 2);
  watchdog_.async_wait([this](boost::system::error_code ec) {
    if (!ec) watchdogTick();
  });
}

void Daemon::watchCertificates() {
  certDirs_ = certificateDirs(cfg_);
  if (auto ec = ports_.certWatch->watch(certDirs_, [this] { onCertificatesChanged(); })) {
    // Not fatal: the resync timer still re-reads the certificates.
    spdlog::warn("cannot watch the certificate directory with inotify: {}; certificate changes are seen at the "
                 "next resync", ec.message());
    return;
  }
  auto watched = ports_.certWatch->watchedPaths();
  for (std::size_t i = 0; i < certDirs_.size() && i < watched.size(); ++i)
    if (watched[i] != certDirs_[i])
      spdlog::warn("certificate directory {} does not exist yet; watching {} until it appears", certDirs_[i],
                   watched[i].empty() ? std::string("nothing") : watched[i]);
}

void Daemon::onCertificatesChanged() {
  reconciler_->certificatesChanged();
  if (stopping_ || !ready_) return;  // before the first dump, the first reconcile reads them anyway
  spdlog::debug("certificate directory changed; re-checking the certificates");
  reconciler_->reconcile(ports_.links->snapshot());
}

void Daemon::resyncTick() {
  resync_.expires_after(kResyncInterval);
  resync_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    ports_.certWatch->rearm();
    if (ready_) {
      reconciler_->ikeStateChanged(ports_.ike->state());
      reconciler_->certificatesChanged();  // a change inotify could not see (e.g. a remount)
      reconciler_->reconcile(ports_.links->snapshot());
    }
    resyncTick();
  });
}

}  // namespace ipopsec
