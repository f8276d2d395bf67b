#include "daemon/daemon.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <cerrno>
#include <csignal>

#include <spdlog/spdlog.h>

#include "daemon/state_file.hpp"
#include "os/clock.hpp"
#include "os/config_loader.hpp"
#include "os/file_store.hpp"
#include "os/logging.hpp"
#include "os/notifier.hpp"
#include "os/rtnetlink.hpp"
#include "os/unit_manager.hpp"
#include "os/xfrm.hpp"

namespace ipopsec {
namespace {

// A safety net, not the fast path: re-read everything now and then, in case something
// changed that sends no event (an operator's `ip xfrm policy flush`, a certificate copied in).
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

}  // namespace

Daemon::Daemon(boost::asio::io_context& io, std::string configPath, Config cfg)
    : io_(io),
      configPath_(std::move(configPath)),
      cfg_(std::move(cfg)),
      timer_(io),
      watchdog_(io),
      resync_(io),
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
  monitor_ = std::make_unique<NetlinkLinkMonitor>(io_);
  monitor_->setLogger([](const std::string& line) { spdlog::warn("netlink: {}", line); });

  reconciler_ = std::make_unique<Reconciler>(cfg_, *policies_, *files_, *unit_, *clock_,
                                             [this](const Event& e) { log(e); });
  reconciler_->setOnChange([this] { onChange(); });

  // The IKE daemon may still be running from before a daemon restart: if the inputs it
  // was started with are remembered, don't restart it for nothing.
  {
    std::string text, err;
    if (!files_->read(statePath(cfg_), text))
      if (auto saved = parseState(text, &err); saved && !saved->ikeInputs.empty())
        reconciler_->assumeIkeStarted(saved->ikeInputs);
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
    monitor_->start([this] { onNetChange(); });
  } catch (const std::exception& e) {
    spdlog::critical("cannot watch the network over rtnetlink: {}", e.what());
    return 1;
  }
  io_.run();
  return 0;
}

void Daemon::onNetChange() {
  if (stopping_) return;
  reconciler_->reconcile(monitor_->snapshot());
  if (!ready_) {
    ready_ = true;
    notifier_->ready();
  }
}

void Daemon::onChange() {
  std::string line = reconciler_->statusLine();
  if (line != lastStatus_) {
    notifier_->status(line);
    spdlog::info("status: {}", line);
    lastStatus_ = line;
  }
  // The IKE unit's state is a D-Bus round trip: ask after each restart result and at
  // every resync, not at every reconcile.
  const auto& st = reconciler_->status();
  if (st.lastRestartResult != lastRestartResult_ || st.restartFailures != lastRestartFailures_) {
    lastRestartResult_ = st.lastRestartResult;
    lastRestartFailures_ = st.restartFailures;
    ikeState_ = unit_->state();
  }
  std::string json = stateJson(cfg_, *reconciler_, ikeState_);
  // Write only when something but the timestamp changed.
  auto strip = [](const std::string& s) { return s.substr(0, s.find("\"pid\"")); };
  if (strip(json) != strip(lastStateJson_)) {
    if (auto ec = files_->write(statePath(cfg_), json, 0644))
      spdlog::warn("cannot write {}: {}", statePath(cfg_), ec.message());
    lastStateJson_ = json;
  }
  armTimer();
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
    if (next.xfrm.protectPriority != cfg_.xfrm.protectPriority || next.xfrm.bypassPriority != cfg_.xfrm.bypassPriority)
      throw ConfigError({ConfigIssue{configPath_, 0, 0, "xfrm",
                                     "the policy priorities identify the policies this daemon owns and cannot "
                                     "change on reload; run 'ipop-ipsecd flush' and restart the service"}});
    for (const auto& w : next.warnings) spdlog::warn("{}: {}", configPath_, w);
    bool unitChanged = next.ike.control != cfg_.ike.control || next.ike.unit != cfg_.ike.unit ||
                       next.ike.restartCommand != cfg_.ike.restartCommand;
    cfg_ = next;
    if (unitChanged) {
      // The reconciler keeps a reference: retire the old manager (a job may still be
      // completing on it) and hand a new one over by rebuilding the reconciler.
      retiredUnits_.push_back(std::move(unit_));
      unit_ = makeUnitManager(cfg_);
      auto started = reconciler_->scheduler().startedInputs();
      reconciler_ = std::make_unique<Reconciler>(cfg_, *policies_, *files_, *unit_, *clock_,
                                                 [this](const Event& e) { log(e); });
      reconciler_->setOnChange([this] { onChange(); });
      if (started) reconciler_->assumeIkeStarted(*started);
    } else {
      reconciler_->setConfig(cfg_);
    }
    spdlog::info("reloaded {}", configPath_);
    reconciler_->reconcile(monitor_->snapshot());
  } catch (const ConfigError& e) {
    for (const auto& issue : e.issues()) spdlog::error("reload refused: {}", issue.str());
    std::string first = e.issues().empty() ? std::string("invalid config") : e.issues().front().str();
    notifier_->status("reload refused, running config kept: " + first);
    lastStatus_.clear();
  }
  notifier_->ready();
}

void Daemon::shutdown(int sig) {
  stopping_ = true;
  spdlog::info("{}: stopping; policies stay in the kernel (fail closed)", sig == SIGINT ? "SIGINT" : "SIGTERM");
  notifier_->stopping();
  monitor_->stop();
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

void Daemon::resyncTick() {
  resync_.expires_after(kResyncInterval);
  resync_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    if (ready_) {
      ikeState_ = unit_->state();
      reconciler_->reconcile(monitor_->snapshot());
    }
    resyncTick();
  });
}

}  // namespace ipopsec
