#pragma once
// The composition root: one io_context, one thread. Owns the adapters, wires the
// link monitor's events, signals and timers to the Reconciler, and tells systemd
// where it stands.

#include <utility>  // before any Asio header (Boost 1.74 + g++ 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "core/reconciler.hpp"

namespace ipopsec {

class NetlinkLinkMonitor;
class XfrmPolicyTable;
class XfrmPolicyWatch;
class AtomicFileStore;
class SdNotifier;
class SteadyClock;
class OpenSslInspector;
class InotifyWatch;

class Daemon {
 public:
  Daemon(boost::asio::io_context& io, std::string configPath, Config cfg);
  ~Daemon();
  // Runs until SIGTERM/SIGINT. Returns the process exit code.
  int run();

 private:
  std::unique_ptr<UnitManager> makeUnitManager(const Config& cfg);
  void wireReloader(bool newReconciler);
  void onNetChange();
  void onPolicyEvent(const std::string& what);
  void onChange();
  void writeMetrics();
  void armTimer();
  void reload();
  void shutdown(int signal);
  void watchdogTick();
  void resyncTick();
  void waitSignals();
  void log(const Event& e);
  void watchCertificates();
  void onCertificatesChanged();

  boost::asio::io_context& io_;
  std::string configPath_;
  Config cfg_;
  std::unique_ptr<NetlinkLinkMonitor> monitor_;
  std::unique_ptr<XfrmPolicyTable> policies_;
  std::unique_ptr<XfrmPolicyWatch> policyWatch_;
  std::unique_ptr<AtomicFileStore> files_;
  std::unique_ptr<UnitManager> unit_;
  std::unique_ptr<UnitManager> reloader_;  // strongswan.load_command; null with racoon
  std::vector<std::string> reloaderArgv_;
  std::vector<std::unique_ptr<UnitManager>> retiredUnits_;  // kept alive until exit (a job may be in flight)
  std::unique_ptr<SdNotifier> notifier_;
  std::unique_ptr<SteadyClock> clock_;
  std::unique_ptr<OpenSslInspector> certs_;
  std::unique_ptr<InotifyWatch> certWatch_;
  std::vector<std::string> certDirs_;
  std::unique_ptr<Reconciler> reconciler_;
  boost::asio::steady_timer timer_, watchdog_, resync_, statusLog_;
  bool statusLogArmed_ = false;
  void logStatus();
  // The reconciler's status line, with a refused reload (journal, state.json).
  std::string statusLine() const;
  boost::asio::signal_set signals_;
  bool ready_ = false;
  bool stopping_ = false;
  std::string lastStatus_, lastShortStatus_;
  std::string reloadRefused_;  // the first issue of the last refused reload; "" after a good one
  std::string lastStateJson_;
  std::string ikeState_ = "unknown";
  std::string lastRestartResult_;
  int lastRestartFailures_ = 0;
  // daemon.metrics_file: the text last written there (rewritten only when it changes), the
  // counts of reconcilers a reload replaced (the counters stay monotonic), the duration of
  // the last reconcile after a network event.
  std::string lastMetrics_, lastMetricsPath_;
  bool metricsWarned_ = false;
  MetricsCounters countersBefore_;
  std::optional<std::chrono::nanoseconds> lastReconcile_;
  bool inNetChange_ = false;
};

}  // namespace ipopsec
