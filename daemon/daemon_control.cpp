// The Daemon's timers and signals: the IKE scheduler's deadline, SIGHUP (reload) and
// SIGTERM/SIGINT (shutdown), the watchdog, the certificate directory watch and the resync.

#include "daemon/daemon.hpp"

#include <algorithm>
#include <csignal>

#include <spdlog/spdlog.h>

#include "core/config/config_issue.hpp"
#include "os/systemd/logging.hpp"

namespace ipopsec {
namespace {

// Everything the daemon owns announces its changes: links and addresses (rtnetlink), the
// XFRM policies (XFRMNLGRP_POLICY: an `ip xfrm policy flush` is repaired at once, by
// XfrmPolicyWatch; charon's trap policies for the protected ranges concern the daemon too,
// policyConcernsUs), the certificate files (inotify; a directory missing at watch time is
// followed through its nearest existing ancestor's IN_CREATE/IN_MOVED_TO, InotifyWatch), the
// IKE unit's state (systemd's PropertiesChanged, IkeController::watchState), and the instants
// at which the certificates' verdict changes are timed exactly (armCertificateTimer). What
// stays on this timer has no event the daemon can wait for:
// - a file changed under an inotify watch that cannot see it (a remount, a bind mount
//   replaced, an NFS- or FUSE-backed /etc), and a watch lost to an inotify queue overflow
//   or to a failed inotify_add_watch (rearm);
// - the IKE unit's state asked again over D-Bus, so that a stopped unit whose repair was
//   held back (a policy error at the time) is repaired; not the UDP 500 listener, probed
//   after each restart or reload only (no event when the socket closes; the unit's signals
//   and charon's trap policies cover a charon that stops);
// - the wall clock set (NTP step, suspend): the certificate timer runs on the monotonic
//   clock, and is rearmed after this reconcile;
// - the kernel's SA counts in the metrics when no metrics heartbeat is configured.
// It is not what keeps the policies in place. Five minutes: the issue's bound for an idle
// daemon's wakeups (24), and the longest an invisible change of the above waits; a change of
// a certificate on NFS is an operator's rollout, not a reaction to an attack.
constexpr auto kResyncInterval = std::chrono::minutes(5);

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

void Daemon::armTimer() {
  armCertificateTimer();
  auto d = reconciler_->deadline();
  if (!d) {
    timer_->cancel();
    return;
  }
  if (timer_->pending() == d) return;  // already set for that instant
  timer_->at(*d, [this] {
    if (stopping_) return;
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
    Config next = ports_.config->load(configPath_);
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
    // The old priorities stay owned until their policies are gone (PolicyOwnership::moveTo):
    // the next reconcile replaces each policy in place at its new priority (make before
    // break), and the state file then records only the priorities still in use.
    if (PolicyOwnership owned = ports_.policies->ownership();
        owned.moveTo(next.xfrm.protectPriority, next.xfrm.bypassPriority)) {
      spdlog::info("policy priorities change from {}/{} to {}/{}: moving this daemon's policies",
                   ports_.policies->ownership().protectPriority(), ports_.policies->ownership().bypassPriority(),
                   owned.protectPriority(), owned.bypassPriority());
      ports_.policies->setOwnership(std::move(owned));
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
  statusLog_->cancel();
  logStatus();
  spdlog::info("{}: stopping; policies stay in the kernel (fail closed)", sig == SIGINT ? "SIGINT" : "SIGTERM");
  ports_.notifier->stopping();
  removeMetrics();
  ports_.links->stop();
  ports_.policyWatch->stop();
  timer_->cancel();
  watchdog_->cancel();
  resync_->cancel();
  certTimer_->cancel();
  signals_.cancel();
  io_.stop();
}

void Daemon::watchdogTick() {
  auto wd = ports_.notifier->watchdogInterval();
  if (!wd || stopping_) return;
  ports_.notifier->watchdog();
  watchdog_->at(ports_.clock->now() + *wd / 2, [this] { watchdogTick(); });
}

void Daemon::watchCertificates() {
  certDirs_ = certificateDirs(cfg_);
  if (auto ec = ports_.certWatch->watch(certDirs_, [this] { onCertificatesChanged(); })) {
    // Not fatal: the resync timer still re-reads the certificates (every kResyncInterval).
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
  resync_->at(ports_.clock->now() + kResyncInterval, [this] {
    if (stopping_) return;
    ports_.certWatch->rearm();
    if (ready_) {
      reconciler_->ikeStateChanged(ports_.ike->state());
      reconciler_->certificatesChanged();  // a change inotify could not see (e.g. a remount)
      reconciler_->reconcile(ports_.links->snapshot());
      armCertificateTimer();  // the wall clock may have been set meanwhile
    }
    resyncTick();
  });
}

// The certificates are judged again at the first instant their verdict may change
// (CertVerdict::nextChange: an expiry, a CRL's nextUpdate, a warning window's day), on the
// wall clock, converted to the monotonic clock the timers run on.
void Daemon::armCertificateTimer() {
  if (stopping_ || !reconciler_) return;
  const auto& at = reconciler_->status().desired.certRecheckAt;
  if (!at) {
    certTimer_->cancel();
    return;
  }
  auto in = std::max(std::chrono::duration_cast<std::chrono::steady_clock::duration>(*at - ports_.clock->wallNow()),
                     std::chrono::steady_clock::duration::zero());
  certTimer_->at(ports_.clock->now() + in, [this] {
    if (stopping_ || !ready_) return;
    spdlog::debug("judging the certificates again: their verdict may change now");
    reconciler_->reconcile(ports_.links->snapshot());
    armCertificateTimer();
  });
}

}  // namespace ipopsec
