#include "daemon/daemon.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sstream>

#include <spdlog/spdlog.h>

#include "daemon/state_file.hpp"
#include "os/clock.hpp"
#include "os/config_loader.hpp"
#include "os/file_store.hpp"
#include "os/inotify_watch.hpp"
#include "os/logging.hpp"
#include "os/notifier.hpp"
#include "os/cert_inspector.hpp"
#include "os/rtnetlink.hpp"
#include "os/unit_manager.hpp"
#include "os/xfrm.hpp"
#include "os/xfrm_watch.hpp"

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

std::string statePath(const Config& cfg) { return cfg.daemon.stateDir + "/state.json"; }

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

Daemon::Daemon(boost::asio::io_context& io, std::string configPath, Config cfg)
    : io_(io),
      configPath_(std::move(configPath)),
      cfg_(std::move(cfg)),
      timer_(io),
      watchdog_(io),
      resync_(io),
      statusLog_(io),
      signals_(io, SIGHUP, SIGTERM, SIGINT) {}

Daemon::~Daemon() = default;

std::unique_ptr<UnitManager> Daemon::makeUnitManager(const Config& cfg) {
  if (cfg.ike.control == IkeControl::command)
    return std::make_unique<CommandUnitManager>(io_, cfg.ike.restartCommand, cfg.ike.restartTimeout);
  return std::make_unique<SystemdUnitManager>(io_, cfg.ike.unit, cfg.ike.restartTimeout);
}

void Daemon::log(const Event& e) {
  LogFields f;
  f.interface = cfg_.ipop.interface;
  f.range = e.range;
  f.action = e.action;
  if (e.action == "restart") f.unit = cfg_.ike.unit;
  logEvent(toSpd(e.severity), f, e.message);
}

int Daemon::run() {
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

  try {
    policies_ = std::make_unique<XfrmPolicyTable>(cfg_.xfrm.protectPriority, cfg_.xfrm.bypassPriority);
  } catch (const std::exception& e) {
    spdlog::critical("cannot open the kernel's XFRM interface: {} (needs CAP_NET_ADMIN)", e.what());
    return 1;
  }
  files_ = std::make_unique<AtomicFileStore>();
  unit_ = makeUnitManager(cfg_);
  notifier_ = std::make_unique<SdNotifier>();
  clock_ = std::make_unique<SteadyClock>();
  certs_ = std::make_unique<OpenSslInspector>();
  monitor_ = std::make_unique<NetlinkLinkMonitor>(io_);
  policyWatch_ = std::make_unique<XfrmPolicyWatch>(io_);
  monitor_->setLogger([](const std::string& line) { spdlog::warn("netlink: {}", line); });

  reconciler_ = std::make_unique<Reconciler>(cfg_, *policies_, *files_, *certs_, *unit_, *clock_,
                                             [this](const Event& e) { log(e); });
  reconciler_->setOnChange([this] { onChange(); });
  wireReloader(true);
  watchCertificates();

  // The IKE daemon may still be running from before a daemon restart: if the inputs it
  // was started with are remembered, don't restart it for nothing.
  {
    std::string text, err;
    if (cfg_.protect.autoRanges && !cfg_.daemon.rememberDir.empty()) {
      // The ranges the tap gave before (persistent, also across a reboot): their policies go
      // in at the first reconcile, before the tap has its address. A bad line is named and
      // skipped; the file is rewritten once the tap confirms a range.
      std::string path = cfg_.daemon.rememberDir + "/" + Config::Daemon::kRememberFile, saved;
      if (!files_->read(path, saved)) {
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
    if (!files_->read(statePath(cfg_), text))
      if (auto saved = parseState(text, &err); saved && !saved->ownedPriorities.empty()) {
        // (The state file's protected_ranges are not taken as in force: a predecessor killed
        // between moving its policies and writing the state file leaves a range there that it
        // had already given up; what is in force at start is what the kernel holds.)
        // Policies an earlier configuration installed at other priorities are still this
        // daemon's: owned, so that they are migrated (replaced in place) and not refused as
        // foreign. Recorded in the state file at every change.
        policies_->setPriorities(cfg_.xfrm.protectPriority, cfg_.xfrm.bypassPriority, saved->ownedPriorities);
        if (!policies_->owned().earlier.empty()) {
          std::string list;
          for (auto e : policies_->owned().earlier) list += (list.empty() ? "" : ", ") + std::to_string(e);
          spdlog::info("policies at priority {} are this daemon's from an earlier configuration: they are moved to "
                       "{}/{}", list, cfg_.xfrm.protectPriority, cfg_.xfrm.bypassPriority);
        }
      }
    if (!files_->read(statePath(cfg_), text))
      if (auto saved = parseState(text, &err); saved && !saved->ikeInputs.empty()) {
        // ... but only if it IS running: stopping ipop-ipsecd, or its crash, also stops the
        // IKE daemon's unit (StopPropagatedFrom= in the unit's drop-in), which must then be
        // started again once IPOP is up. With control: command there is nothing to ask.
        std::string ike = cfg_.ike.control == IkeControl::systemd ? unit_->state() : std::string("active");
        if (ike == "active" || ike == "reloading")
          reconciler_->assumeIkeStarted(saved->ikeInputs);
        else
          spdlog::info("{} is {}: it will be (re)started once IPOP is up", cfg_.ike.unit, ike);
      }
  }

  waitSignals();
  if (auto wd = notifier_->watchdogInterval()) {
    spdlog::info("watchdog every {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(*wd).count());
    watchdogTick();
  }
  resyncTick();
  spdlog::info("ipop-ipsecd {} watching '{}' ({} backend, {} control)", IPOPSEC_VERSION, cfg_.ipop.interface,
               cfg_.ike.backend == IkeBackend::racoon ? "racoon" : "strongswan",
               cfg_.ike.control == IkeControl::systemd ? "systemd " + cfg_.ike.unit : std::string("command"));
  try {
    policyWatch_->start(policies_->portId(), [this](const std::string& what) { onPolicyEvent(what); });
  } catch (const std::exception& e) {
    spdlog::critical("cannot follow the kernel's XFRM policy events: {}", e.what());
    return 1;
  }
  try {
    monitor_->start([this] { onNetChange(); });
  } catch (const std::exception& e) {
    spdlog::critical("cannot watch the network over rtnetlink: {}", e.what());
    return 1;
  }
  io_.run();
  return 0;
}

// strongSwan re-reads its configuration with swanctl --load-all: a change that needs no
// restart runs strongswan.load_command (through a CommandUnitManager) instead.
// `newReconciler`: the reconciler was rebuilt, so a load in flight must not complete into
// the old one: the old manager is destroyed, which cancels it. Otherwise a manager whose
// argv changed is retired (kept alive) so that a load in flight still completes.
void Daemon::wireReloader(bool newReconciler) {
  bool wanted = cfg_.ike.backend == IkeBackend::strongswan && !cfg_.strongswan.loadCommand.empty();
  if (reloader_ && (newReconciler || !wanted || reloaderArgv_ != cfg_.strongswan.loadCommand)) {
    if (newReconciler)
      reloader_.reset();
    else
      retiredUnits_.push_back(std::move(reloader_));
  }
  if (wanted && !reloader_) {
    reloader_ = std::make_unique<CommandUnitManager>(io_, cfg_.strongswan.loadCommand, cfg_.ike.restartTimeout);
    reloaderArgv_ = cfg_.strongswan.loadCommand;
  }
  reconciler_->setReloader(reloader_.get());
}

void Daemon::onNetChange() {
  if (stopping_) return;
  auto t0 = std::chrono::steady_clock::now();
  inNetChange_ = true;  // the metrics are written once, below, with this reconcile's duration
  reconciler_->reconcile(monitor_->snapshot());
  inNetChange_ = false;
  lastReconcile_ = std::chrono::steady_clock::now() - t0;
  spdlog::debug("reconciled in {} us", std::chrono::duration_cast<std::chrono::microseconds>(*lastReconcile_).count());
  // Whole milliseconds in the metrics: a reconcile that changed nothing else then leaves the
  // file as it is (no fsync'ed rewrite per netlink event on a flapping link).
  lastReconcile_ = std::chrono::ceil<std::chrono::milliseconds>(*lastReconcile_);
  writeMetrics();
  if (!ready_) {
    ready_ = true;
    notifier_->ready();
  }
}

void Daemon::onPolicyEvent(const std::string& what) {
  if (stopping_ || !ready_) return;  // the first reconcile reads the kernel anyway
  spdlog::debug("xfrm: {}; reconciling", what);
  reconciler_->reconcile(monitor_->snapshot());
}

void Daemon::onChange() {
  std::string line = statusLine();
  // STATUS= is one short line (systemctl status); the journal and state.json get the details.
  std::string shortLine = reconciler_->shortStatus(reloadRefused_.empty() ? "" : "RELOAD REFUSED: " + reloadRefused_);
  if (shortLine != lastShortStatus_) {
    notifier_->status(shortLine);
    lastShortStatus_ = shortLine;
  }
  // The journal's status line: one per change that lasts, not one per step of a change
  // (a reconcile, the restart it starts at once and its completion come within milliseconds).
  if (line != lastStatus_ && !statusLogArmed_) {
    statusLogArmed_ = true;
    statusLog_.expires_after(std::chrono::milliseconds(100));
    statusLog_.async_wait([this](boost::system::error_code ec) {
      statusLogArmed_ = false;
      if (!ec) logStatus();
    });
  }
  // The IKE unit's state is a D-Bus round trip: ask after each restart result and at
  // every resync, not at every reconcile.
  const auto& st = reconciler_->status();
  if (st.lastRestartResult != lastRestartResult_ || st.restartFailures != lastRestartFailures_) {
    lastRestartResult_ = st.lastRestartResult;
    lastRestartFailures_ = st.restartFailures;
    ikeState_ = unit_->state();
  }
  std::string json = stateJson(cfg_, *reconciler_, ikeState_, line, reloadRefused_);
  // Write only when something but the timestamp changed.
  auto strip = [](const std::string& s) { return s.substr(0, s.find("\"pid\"")); };
  if (strip(json) != strip(lastStateJson_)) {
    if (auto ec = files_->write(statePath(cfg_), json, 0644))
      spdlog::warn("cannot write {}: {}", statePath(cfg_), ec.message());
    lastStateJson_ = json;
  }
  if (!inNetChange_) writeMetrics();
  armTimer();
}

void Daemon::writeMetrics() {
  const std::string& path = cfg_.daemon.metricsFile;
  if (path.empty()) return;
  const auto& st = reconciler_->status();
  MetricsCounters c = countersBefore_;
  c.ikeRestarts += st.ikeRestartsTotal;
  c.ikeRestartFailures += st.ikeRestartFailuresTotal;
  c.ikeReloads += st.ikeReloadsTotal;
  std::string text = renderMetrics(st, cfg_, c, lastReconcile_);
  if (path == lastMetricsPath_ && text == lastMetrics_) return;
  if (auto ec = files_->write(path, text, 0644)) {
    // Said once until a write succeeds; the next change tries again.
    if (!metricsWarned_) spdlog::warn("cannot write {} (daemon.metrics_file): {}", path, ec.message());
    metricsWarned_ = true;
    return;
  }
  metricsWarned_ = false;
  lastMetrics_ = std::move(text);
  lastMetricsPath_ = path;
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
    reconciler_->onTimer(monitor_->snapshot());
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
  notifier_->reloading();
  spdlog::info("reloading {}", configPath_);
  try {
    Config next = loadConfig(configPath_);
    // What a reload applies, key by key (README "Reload", the man page): everything, except
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
      auto earlier = policies_->owned().earlier;
      earlier.push_back(cfg_.xfrm.protectPriority);
      earlier.push_back(cfg_.xfrm.bypassPriority);
      policies_->setPriorities(next.xfrm.protectPriority, next.xfrm.bypassPriority, earlier);
      spdlog::info("policy priorities change from {}/{} to {}/{}: moving this daemon's policies", cfg_.xfrm.protectPriority,
                   cfg_.xfrm.bypassPriority, next.xfrm.protectPriority, next.xfrm.bypassPriority);
    }
    bool unitChanged = next.ike.control != cfg_.ike.control || next.ike.unit != cfg_.ike.unit ||
                       next.ike.restartCommand != cfg_.ike.restartCommand ||
                       next.ike.restartTimeout != cfg_.ike.restartTimeout;
    cfg_ = next;
    if (unitChanged) {
      // The reconciler keeps a reference to its unit manager: build a new pair. The old
      // manager is destroyed after the old reconciler: that cancels a restart still in
      // flight on it, whose completion would otherwise call into the destroyed reconciler
      // (the new reconciler restarts the IKE daemon itself if its inputs call for it).
      auto oldUnit = std::move(unit_);
      unit_ = makeUnitManager(cfg_);
      auto started = reconciler_->scheduler().startedInputs();
      auto inForce = reconciler_->status().protectedRanges;
      countersBefore_.ikeRestarts += reconciler_->status().ikeRestartsTotal;
      countersBefore_.ikeRestartFailures += reconciler_->status().ikeRestartFailuresTotal;
      countersBefore_.ikeReloads += reconciler_->status().ikeReloadsTotal;
      reconciler_ = std::make_unique<Reconciler>(cfg_, *policies_, *files_, *certs_, *unit_, *clock_,
                                                 [this](const Event& e) { log(e); });
      reconciler_->assumeProtected(inForce);
      reconciler_->setOnChange([this] { onChange(); });
      oldUnit.reset();
      wireReloader(true);
      if (started) reconciler_->assumeIkeStarted(*started);
    } else {
      reconciler_->setConfig(cfg_);
      wireReloader(false);  // strongswan.load_command may have changed
    }
    if (certificateDirs(cfg_) != certDirs_) watchCertificates();
    spdlog::info("reloaded {}", configPath_);
    reloadRefused_.clear();
    reconciler_->reconcile(monitor_->snapshot());
  } catch (const ConfigError& e) {
    for (const auto& issue : e.issues())
      logEvent(spdlog::level::err, LogFields{cfg_.ipop.interface, "", "", "refuse-reload"}, "reload refused: " + issue.str());
    std::string first = e.issues().empty() ? std::string("invalid config") : e.issues().front().str();
    // Kept in STATUS=, status and state.json until a reload succeeds: a refusal must not be
    // forgotten at the next status change.
    reloadRefused_ = first;
    notifier_->ready();
    onChange();
    return;
  }
  notifier_->ready();
  onChange();
}

void Daemon::shutdown(int sig) {
  stopping_ = true;
  reconciler_->flushRemembered();
  statusLog_.cancel();
  logStatus();
  spdlog::info("{}: stopping; policies stay in the kernel (fail closed)", sig == SIGINT ? "SIGINT" : "SIGTERM");
  notifier_->stopping();
  monitor_->stop();
  policyWatch_->stop();
  timer_.cancel();
  watchdog_.cancel();
  resync_.cancel();
  signals_.cancel();
  io_.stop();
}

void Daemon::watchdogTick() {
  auto wd = notifier_->watchdogInterval();
  if (!wd || stopping_) return;
  notifier_->watchdog();
  watchdog_.expires_after(*wd / 2);
  watchdog_.async_wait([this](boost::system::error_code ec) {
    if (!ec) watchdogTick();
  });
}

void Daemon::watchCertificates() {
  certDirs_ = certificateDirs(cfg_);
  if (!certWatch_) certWatch_ = std::make_unique<InotifyWatch>(io_);
  if (auto ec = certWatch_->watch(certDirs_, [this] { onCertificatesChanged(); })) {
    // Not fatal: the resync timer still re-reads the certificates.
    spdlog::warn("cannot watch the certificate directory with inotify: {}; certificate changes are seen at the "
                 "next resync", ec.message());
    return;
  }
  auto watched = certWatch_->watchedPaths();
  for (std::size_t i = 0; i < certDirs_.size() && i < watched.size(); ++i)
    if (watched[i] != certDirs_[i])
      spdlog::warn("certificate directory {} does not exist yet; watching {} until it appears", certDirs_[i],
                   watched[i].empty() ? std::string("nothing") : watched[i]);
}

void Daemon::onCertificatesChanged() {
  reconciler_->certificatesChanged();
  if (stopping_ || !ready_) return;  // before the first dump, the first reconcile reads them anyway
  spdlog::debug("certificate directory changed; re-checking the certificates");
  reconciler_->reconcile(monitor_->snapshot());
}

void Daemon::resyncTick() {
  resync_.expires_after(kResyncInterval);
  resync_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    if (certWatch_) certWatch_->rearm();
    if (ready_) {
      ikeState_ = unit_->state();
      reconciler_->certificatesChanged();  // a change inotify could not see (e.g. a remount)
      reconciler_->reconcile(monitor_->snapshot());
    }
    resyncTick();
  });
}

}  // namespace ipopsec
