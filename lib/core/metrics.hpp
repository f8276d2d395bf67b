#pragma once
// The node's state in Prometheus' text exposition format (version 0.0.4), for
// node_exporter's textfile collector (daemon.metrics_file). Pure: the daemon writes the
// result atomically when it changes.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "core/config.hpp"
#include "core/reconciler.hpp"

namespace ipopsec {

// Monotonic over the daemon's life (the daemon adds what an earlier reconciler counted).
struct MetricsCounters {
  std::uint64_t ikeRestarts = 0;
  std::uint64_t ikeRestartFailures = 0;  // failed IKE restarts and reloads
  std::uint64_t ikeReloads = 0;
};

// Families, each with # HELP and # TYPE, all named ipopsec_*: info, healthy, ipop_up,
// range_protected{range} (every range desired or with policies in the kernel),
// policies_installed, the three IKE counters, certificate_expiry_timestamp_seconds (when the
// host certificate's expiry is known) and last_reconcile_duration_seconds (when measured).
std::string renderMetrics(const NodeStatus& status, const Config& cfg, const MetricsCounters& counters,
                          std::optional<std::chrono::nanoseconds> lastReconcile = std::nullopt);

// A label value as the text format quotes it: backslash, double quote and newline escaped.
std::string escapeLabelValue(const std::string& v);

}  // namespace ipopsec
