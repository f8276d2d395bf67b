#pragma once
// The composition root: one io_context, one thread. Owns the ports, wires the link
// monitor's events, the policy and certificate watches, signals and timers to the one
// Reconciler, and tells systemd where it stands.

#include <utility>  // before any Asio header (Boost 1.74 + g++ 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status/metrics.hpp"
#include "core/reconcile/reconciler.hpp"

namespace ipopsec {

// Every side effect of the daemon, behind the ports of lib/core/ports.hpp: the real adapters
// (realPorts) in production, the fakes of tests/unit/fakes.hpp in the daemon's unit tests.
struct DaemonPorts {
  std::unique_ptr<LinkMonitor> links;
  std::unique_ptr<PolicyTable> policies;
  std::unique_ptr<PolicyWatch> policyWatch;
  std::unique_ptr<FileStore> files;
  std::unique_ptr<IkeController> ike;
  std::unique_ptr<Notifier> notifier;
  std::unique_ptr<Clock> clock;
  std::unique_ptr<CertificateInspector> certs;
  std::unique_ptr<DirectoryWatch> certWatch;
  std::unique_ptr<ConfigSource> config;  // the config file again at SIGHUP
};

// The real adapters (lib/os) for `cfg`. Throws std::system_error when the kernel's XFRM
// interface cannot be opened (no CAP_NET_ADMIN).
DaemonPorts realPorts(boost::asio::io_context& io, const Config& cfg);

class Daemon {
 public:
  Daemon(boost::asio::io_context& io, std::string configPath, Config cfg, DaemonPorts ports);
  ~Daemon();
  // Sets up and starts following the ports' events; 0, or the exit code of a start that
  // failed (the reason is logged). The io_context runs the rest.
  int start();
  // start(), then runs the io_context until SIGTERM/SIGINT. Returns the process exit code.
  int run();
  // What SIGHUP does: load, validate and apply the config file (or refuse it, keeping the
  // running config).
  void reload();
  // What SIGTERM/SIGINT does: stop following events; the policies stay in the kernel.
  void shutdown(int signal);

  const Reconciler& reconciler() const { return *reconciler_; }
  const Config& config() const { return cfg_; }
  // The reconciler's status line, with a refused reload (journal, state.json).
  std::string statusLine() const;
  // The file step after rtnetlink or XFRM events waits for a calm spell (no batch for
  // kFileStepCalm), at most kFileStepLongestWait after the first event it follows.
  static constexpr std::chrono::milliseconds kFileStepCalm{2}, kFileStepLongestWait{250};

 private:
  void onNetChange();
  void scheduleFileStep();
  void runFileStep();
  void onFileStepTimer();
  void onPolicyEvent(const std::string& what);
  void onIkeState(const std::string& state);  // the IKE unit's state changed (systemd's signal)
  void onAcquire();  // the kernel's ACQUIRE: a larval state to ask again (ike.acquire_retry)
  bool policyConcernsUs(const Policy& changed) const;
  void onChange();
  void writeMetrics(bool heartbeat = false);
  void removeMetrics();
  void armTimer();
  void watchdogTick();
  void resyncTick();
  void armCertificateTimer();
  void waitSignals();
  void log(const Event& e);
  void watchCertificates();
  void onCertificatesChanged();
  void adoptRunningState();
  void logStatus();

  boost::asio::io_context& io_;
  std::string configPath_;
  Config cfg_;
  DaemonPorts ports_;
  std::vector<std::string> certDirs_;
  std::unique_ptr<Reconciler> reconciler_;
  // The Daemon's timers, all on the Clock port (virtual time in the unit tests): the IKE
  // scheduler's and the Reconciler's deadline, the watchdog, the resync, the status line's
  // delay, the certificates' next instant (expiry, nextUpdate, a warning's day).
  std::unique_ptr<Timer> timer_, watchdog_, resync_, statusLog_, certTimer_;
  bool statusLogArmed_ = false;
  boost::asio::signal_set signals_;
  bool ready_ = false;
  bool stopping_ = false;
  std::string lastStatus_, lastShortStatus_;
  std::string reloadRefused_;  // the first issue of the last refused reload; "" after a good one
  std::string lastStateJson_;
  std::string lastRestartResult_;
  int lastRestartFailures_ = 0;
  // daemon.metrics_file: the text last written there without its timestamp (rewritten when
  // it changes, and by the heartbeat metricsTimer_ every daemon.metrics_interval), the
  // duration of the last reconcile after a network event.
  std::string lastMetrics_, lastMetricsPath_;
  std::unique_ptr<Timer> metricsTimer_;
  bool metricsWarned_ = false;
  std::optional<std::chrono::nanoseconds> lastReconcile_;
  std::chrono::steady_clock::duration policyStepTime_{};
  // While a file step is scheduled: the first and the last event it follows.
  std::unique_ptr<Timer> fileStepTimer_;
  std::optional<std::chrono::steady_clock::time_point> fileStepFirstEvent_, fileStepLastEvent_;
  bool inFileStep_ = false;
};

}  // namespace ipopsec
