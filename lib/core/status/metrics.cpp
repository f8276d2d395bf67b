#include "core/status/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

#include "core/reconcile/desired.hpp"

namespace ipopsec {
namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, const std::string& value, const std::string& labels = "") {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ';
  out += value;
  out += '\n';
}

std::string seconds(std::chrono::nanoseconds d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, std::chrono::duration<double>(d).count(), std::chars_format::fixed, 6);
  return std::string(buf, r.ptr);
}

}  // namespace

std::string escapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string renderMetricsTimestamp(std::chrono::system_clock::time_point written) {
  std::string out;
  family(out, "ipop_ipsec_metrics_timestamp_seconds", "gauge",
         "When ipop-ipsecd last wrote this file, in seconds since the Unix epoch: rewritten at least every "
         "daemon.metrics_interval while it runs, so an older value means the daemon is gone.");
  auto s = std::chrono::duration_cast<std::chrono::seconds>(written.time_since_epoch()).count();
  sample(out, "ipop_ipsec_metrics_timestamp_seconds", std::to_string(s));
  return out;
}

std::string renderMetrics(const NodeStatus& st, const Config& cfg, const MetricsCounters& counters,
                          std::optional<std::chrono::nanoseconds> lastReconcile,
                          const std::optional<std::vector<RangeSas>>& sas) {
  const Desired& d = st.desired;
  std::string out;
  auto b = [](bool v) { return std::string(v ? "1" : "0"); };

  family(out, "ipop_ipsec_info", "gauge", "The daemon's version, IKE backend and IPOP interface (always 1).");
  sample(out, "ipop_ipsec_info", "1",
         "version=\"" + escapeLabelValue(IPOPSEC_VERSION) + "\",backend=\"" +
             (cfg.ike.backend == IkeBackend::racoon ? "racoon" : "strongswan") + "\",interface=\"" +
             escapeLabelValue(cfg.ipop.interface) + "\"");

  family(out, "ipop_ipsec_healthy", "gauge",
         "1 when IPOP is up, the kernel holds exactly the wanted policies and nothing is wrong (ipop-ipsecd status).");
  sample(out, "ipop_ipsec_healthy", b(st.healthy()));

  family(out, "ipop_ipsec_ipop_up", "gauge",
         "1 when the tap exists, is up with carrier and has an address inside the protected ranges.");
  sample(out, "ipop_ipsec_ipop_up", b(d.ipopUp));

  // Every range the daemon wants or the kernel holds policies of: a range that lost its
  // protection shows as 0 instead of disappearing.
  std::vector<Cidr> ranges = d.ranges;
  for (const auto& r : rangesOf(st.kernelPolicies)) ranges.push_back(r);
  for (const auto& r : st.protectedRanges) ranges.push_back(r);
  std::sort(ranges.begin(), ranges.end());
  ranges.erase(std::unique(ranges.begin(), ranges.end()), ranges.end());
  family(out, "ipop_ipsec_range_protected", "gauge",
         "1 when the kernel holds both protect policies (in and out) of the range; every range desired or in the kernel.");
  for (const auto& r : ranges) {
    bool on = std::find(st.protectedRanges.begin(), st.protectedRanges.end(), r) != st.protectedRanges.end();
    sample(out, "ipop_ipsec_range_protected", b(on), "range=\"" + escapeLabelValue(r.str()) + "\"");
  }

  // The IKE half of health (core/reconcile/ike_health.hpp), part by part.
  family(out, "ipop_ipsec_ike_ready", "gauge",
         "1 when the IKE daemon runs and holds what a peer needs to connect (its trap policies with strongSwan), or "
         "is not expected to run (IPOP down); 0 names a problem in ipop-ipsecd status (ike_problems).");
  sample(out, "ipop_ipsec_ike_ready", b(st.ikeProblems.empty()));
  family(out, "ipop_ipsec_ike_traps", "gauge",
         "The IKE daemon's trap policies (strongSwan): expected for the ranges the node initiates in, and present "
         "in the kernel.");
  sample(out, "ipop_ipsec_ike_traps", std::to_string(st.ikeTrapsExpected.size()), "state=\"expected\"");
  sample(out, "ipop_ipsec_ike_traps", std::to_string(st.ikeTrapsPresent.size()), "state=\"present\"");

  family(out, "ipop_ipsec_policies_installed", "gauge", "XFRM policies owned by the daemon (its priorities) in the kernel.");
  sample(out, "ipop_ipsec_policies_installed", std::to_string(st.kernelPolicies.size()));

  family(out, "ipop_ipsec_ike_restarts_total", "counter", "Completed restarts of the IKE daemon.");
  sample(out, "ipop_ipsec_ike_restarts_total", std::to_string(counters.ikeRestarts));
  family(out, "ipop_ipsec_ike_restart_failures_total", "counter", "Failed IKE restarts and configuration reloads.");
  sample(out, "ipop_ipsec_ike_restart_failures_total", std::to_string(counters.ikeRestartFailures));
  family(out, "ipop_ipsec_ike_reloads_total", "counter",
         "Successful reloads of the IKE configuration without a restart (strongswan.load_command).");
  sample(out, "ipop_ipsec_ike_reloads_total", std::to_string(counters.ikeReloads));

  if (d.certExpiry) {
    family(out, "ipop_ipsec_certificate_expiry_timestamp_seconds", "gauge",
           "When the host certificate expires (notAfter), in seconds since the Unix epoch.");
    auto s = std::chrono::duration_cast<std::chrono::seconds>(d.certExpiry->time_since_epoch()).count();
    sample(out, "ipop_ipsec_certificate_expiry_timestamp_seconds", std::to_string(s));
  }
  if (lastReconcile) {
    family(out, "ipop_ipsec_last_reconcile_duration_seconds", "gauge",
           "How long the last reconcile after a network event took.");
    sample(out, "ipop_ipsec_last_reconcile_duration_seconds", seconds(*lastReconcile));
  }
  if (st.lastChangeReaction) {
    family(out, "ipop_ipsec_last_change_reaction_seconds", "gauge",
           "Reaction time of the last change of the kernel's policies: from the start of the reconcile the event "
           "caused to the kernel holding the change.");
    sample(out, "ipop_ipsec_last_change_reaction_seconds", seconds(*st.lastChangeReaction));
  }
  if (st.lastChange) {
    family(out, "ipop_ipsec_last_change_timestamp_seconds", "gauge",
           "When the daemon last changed the kernel's policies, in seconds since the Unix epoch.");
    auto s = std::chrono::duration_cast<std::chrono::seconds>(st.lastChange->time_since_epoch()).count();
    sample(out, "ipop_ipsec_last_change_timestamp_seconds", std::to_string(s));
  }
  if (sas && !sas->empty()) {
    std::vector<RangeSas> rs = *sas;
    std::sort(rs.begin(), rs.end(), [](const RangeSas& a, const RangeSas& b) { return a.range < b.range; });
    family(out, "ipop_ipsec_range_sas", "gauge", "ESP SAs of the protected range in the kernel (XFRM SAD).");
    for (const auto& r : rs)
      sample(out, "ipop_ipsec_range_sas", std::to_string(r.sas), "range=\"" + escapeLabelValue(r.range.str()) + "\"");
    family(out, "ipop_ipsec_range_sa_peers", "gauge",
           "Distinct peers the ESP SAs of the protected range in the kernel are with.");
    for (const auto& r : rs)
      sample(out, "ipop_ipsec_range_sa_peers", std::to_string(r.peers), "range=\"" + escapeLabelValue(r.range.str()) + "\"");
  }
  return out;
}

}  // namespace ipopsec
