#pragma once
// The node's state in Prometheus' text exposition format (version 0.0.4), for
// node_exporter's textfile collector (daemon.metrics_file). Pure: the daemon writes the
// result atomically when it changes, and at least every daemon.metrics_interval with a
// fresh renderMetricsTimestamp() (a file whose timestamp stops advancing is stale: its
// writer died), and removes the file on a clean stop.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "core/reconcile/reconciler.hpp"

namespace ipopsec {

// Monotonic over the daemon's life (the daemon adds what an earlier reconciler counted).
struct MetricsCounters {
  std::uint64_t ikeRestarts = 0;
  std::uint64_t ikeRestartFailures = 0;  // failed IKE restarts and reloads
  std::uint64_t ikeReloads = 0;
};

// The ESP SAs the kernel holds for one protected range (the daemon fills these from its
// XFRM SA dump): how many, and with how many distinct peers.
struct RangeSas {
  Cidr range;
  std::size_t sas = 0;
  std::size_t peers = 0;
};

// Families, each with # HELP and # TYPE, all named ipop_ipsec_*: info, healthy, ipop_up,
// range_protected{range} (every range desired or with policies in the kernel),
// policies_installed, the three IKE counters, certificate_expiry_timestamp_seconds (when the
// host certificate's expiry is known), last_reconcile_duration_seconds (when measured),
// last_change_reaction_seconds and last_change_timestamp_seconds (once a reconcile changed
// the kernel's policies), and range_sas{range} / range_sa_peers{range} when `sas` is given
// (nullopt: the SAs were not read, the two families are left out).
std::string renderMetrics(const NodeStatus& status, const Config& cfg, const MetricsCounters& counters,
                          std::optional<std::chrono::nanoseconds> lastReconcile = std::nullopt,
                          const std::optional<std::vector<RangeSas>>& sas = std::nullopt);

// The family ipop_ipsec_metrics_timestamp_seconds (with # HELP and # TYPE): when the file
// was written, wall clock, whole seconds since the Unix epoch. The daemon appends it to
// renderMetrics()'s text at every write, the heartbeat's included.
std::string renderMetricsTimestamp(std::chrono::system_clock::time_point written);

// A label value as the text format quotes it: backslash, double quote and newline escaped.
std::string escapeLabelValue(const std::string& v);

}  // namespace ipopsec
