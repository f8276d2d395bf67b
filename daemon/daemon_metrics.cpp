// Daemon::writeMetrics / removeMetrics: daemon.metrics_file (Prometheus textfile).

#include "daemon/daemon.hpp"

#include <spdlog/spdlog.h>

namespace ipopsec {

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
  metricsTimer_->at(ports_.clock->now() + cfg_.daemon.metricsInterval, [this] {
    if (!stopping_) writeMetrics(true);
  });
  if (auto ec = ports_.files->write(path, text + renderMetricsTimestamp(ports_.clock->wallNow()), 0644)) {
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
  metricsTimer_->cancel();
  if (lastMetricsPath_.empty()) return;
  if (auto ec = ports_.files->remove(lastMetricsPath_))
    spdlog::warn("cannot remove {} (daemon.metrics_file): {}", lastMetricsPath_, ec.message());
  lastMetricsPath_.clear();
  lastMetrics_.clear();
}

}  // namespace ipopsec
