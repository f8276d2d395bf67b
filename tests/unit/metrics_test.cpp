// The metrics renderer (daemon.metrics_file): the exact text for a small status, label
// escaping, and every rendered output valid in Prometheus' text format (the checker in
// unit/prometheus_text.hpp, itself tested on broken input here).

#include "core/status/metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/policy/policy.hpp"
#include "unit/prometheus_text.hpp"
#include "unit/reconciler_fixture.hpp"
#include "support/policy_builders.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

namespace {


// IPOP up, one range protected by the kernel, nothing wrong.
NodeStatus protectedNode(const Config& cfg) {
  NodeStatus st;
  st.desired.ipopUp = true;
  st.desired.ranges = {cidr("10.254.0.0/16")};
  st.desired.certsUsable = true;
  st.kernelPolicies = buildPolicies(st.desired.ranges, cfg);
  st.protectedRanges = protectedRanges(st.kernelPolicies);
  st.policiesExact = true;
  return st;
}

TEST(Metrics, TheIkeSideSaysWhichPartIsMissing) {
  Config cfg;
  NodeStatus st = protectedNode(cfg);
  st.ikeTrapsExpected = {IkeTrap{cidr("10.254.0.0/16"), *IpAddress::parse("10.254.0.16")}};
  st.ikeProblems = {"strongswan.service holds no trap policy for 10.254.0.0/16"};
  std::string text = renderMetrics(st, cfg, MetricsCounters{}, std::nullopt);
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_healthy 0\n"));
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_ike_ready 0\n"));
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_ike_traps{state=\"expected\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_ike_traps{state=\"present\"} 0\n"));
}

TEST(Metrics, ExactTextForASmallStatus) {
  Config cfg;
  NodeStatus st = protectedNode(cfg);
  ASSERT_TRUE(st.healthy());
  ASSERT_EQ(st.kernelPolicies.size(), 4u);  // out and in, range->range and ANY->range
  st.desired.certExpiry = std::chrono::system_clock::time_point(std::chrono::seconds(1893456000));
  std::string text = renderMetrics(st, cfg, MetricsCounters{2, 1, 0}, 1234us);
  EXPECT_EQ(text,
            "# HELP ipop_ipsec_info The daemon's version, IKE backend and IPOP interface (always 1).\n"
            "# TYPE ipop_ipsec_info gauge\n"
            "ipop_ipsec_info{version=\"" IPOPSEC_VERSION "\",backend=\"racoon\",interface=\"ipop\"} 1\n"
            "# HELP ipop_ipsec_healthy 1 when IPOP is up, the kernel holds exactly the wanted policies and nothing is "
            "wrong (ipop-ipsecd status).\n"
            "# TYPE ipop_ipsec_healthy gauge\n"
            "ipop_ipsec_healthy 1\n"
            "# HELP ipop_ipsec_ipop_up 1 when the tap exists, is up with carrier and has an address inside the protected ranges.\n"
            "# TYPE ipop_ipsec_ipop_up gauge\n"
            "ipop_ipsec_ipop_up 1\n"
            "# HELP ipop_ipsec_range_protected 1 when the kernel holds both protect policies (in and out) of the range; "
            "every range desired or in the kernel.\n"
            "# TYPE ipop_ipsec_range_protected gauge\n"
            "ipop_ipsec_range_protected{range=\"10.254.0.0/16\"} 1\n"
            "# HELP ipop_ipsec_ike_ready 1 when the IKE daemon runs and holds what a peer needs to connect (its trap "
            "policies with strongSwan), or is not expected to run (IPOP down); 0 names a problem in ipop-ipsecd status "
            "(ike_problems).\n"
            "# TYPE ipop_ipsec_ike_ready gauge\n"
            "ipop_ipsec_ike_ready 1\n"
            "# HELP ipop_ipsec_ike_traps The IKE daemon's trap policies (strongSwan): expected for the ranges the node "
            "initiates in, and present in the kernel.\n"
            "# TYPE ipop_ipsec_ike_traps gauge\n"
            "ipop_ipsec_ike_traps{state=\"expected\"} 0\n"
            "ipop_ipsec_ike_traps{state=\"present\"} 0\n"
            "# HELP ipop_ipsec_policies_installed XFRM policies owned by the daemon (its priorities) in the kernel.\n"
            "# TYPE ipop_ipsec_policies_installed gauge\n"
            "ipop_ipsec_policies_installed 4\n"
            "# HELP ipop_ipsec_ike_restarts_total Completed restarts of the IKE daemon.\n"
            "# TYPE ipop_ipsec_ike_restarts_total counter\n"
            "ipop_ipsec_ike_restarts_total 2\n"
            "# HELP ipop_ipsec_ike_restart_failures_total Failed IKE restarts and configuration reloads.\n"
            "# TYPE ipop_ipsec_ike_restart_failures_total counter\n"
            "ipop_ipsec_ike_restart_failures_total 1\n"
            "# HELP ipop_ipsec_ike_reloads_total Successful reloads of the IKE configuration without a restart "
            "(strongswan.load_command).\n"
            "# TYPE ipop_ipsec_ike_reloads_total counter\n"
            "ipop_ipsec_ike_reloads_total 0\n"
            "# HELP ipop_ipsec_certificate_expiry_timestamp_seconds When the host certificate expires (notAfter), in "
            "seconds since the Unix epoch.\n"
            "# TYPE ipop_ipsec_certificate_expiry_timestamp_seconds gauge\n"
            "ipop_ipsec_certificate_expiry_timestamp_seconds 1893456000\n"
            "# HELP ipop_ipsec_last_reconcile_duration_seconds How long the last reconcile after a network event took.\n"
            "# TYPE ipop_ipsec_last_reconcile_duration_seconds gauge\n"
            "ipop_ipsec_last_reconcile_duration_seconds 0.001234\n");
  EXPECT_THAT(checkPrometheusText(text), IsEmpty());
}

TEST(Metrics, UnknownExpiryAndUnmeasuredReconcileAreOmitted) {
  Config cfg;
  std::string text = renderMetrics(NodeStatus{}, cfg, {});
  EXPECT_THAT(text, Not(HasSubstr("ipop_ipsec_certificate_expiry_timestamp_seconds")));
  EXPECT_THAT(text, Not(HasSubstr("ipop_ipsec_last_reconcile_duration_seconds")));
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_healthy 0\n"));
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_ipop_up 0\n"));
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_policies_installed 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("ipop_ipsec_range_protected{")));
  EXPECT_THAT(checkPrometheusText(text), IsEmpty());
}

TEST(Metrics, EveryRangeDesiredOrInTheKernelHasASample) {
  Config cfg;
  NodeStatus st = protectedNode(cfg);
  // Wanted but not (yet) protected, and protected by the kernel but no longer wanted; one
  // range whose out policy alone is left (someone deleted the in policy): not protected.
  st.desired.ranges = {cidr("10.254.0.0/16"), cidr("fd00:1::/64")};
  auto half = buildPolicies({cidr("10.9.0.0/16")}, cfg);
  for (const auto& p : half)
    if (p.dir == Direction::out) st.kernelPolicies.push_back(p);
  std::string text = renderMetrics(st, cfg, {});
  EXPECT_THAT(text, HasSubstr("ipop_ipsec_range_protected{range=\"10.9.0.0/16\"} 0\n"
                              "ipop_ipsec_range_protected{range=\"10.254.0.0/16\"} 1\n"
                              "ipop_ipsec_range_protected{range=\"fd00:1::/64\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_policies_installed 6\n"));  // 4 + the two out policies of 10.9.0.0/16
  EXPECT_THAT(checkPrometheusText(text), IsEmpty());
}

TEST(Metrics, LastChangeAndSasOfTheRanges) {
  Config cfg;
  NodeStatus st = protectedNode(cfg);
  std::string before = renderMetrics(st, cfg, {}, std::nullopt, std::vector<RangeSas>{});
  EXPECT_THAT(before, Not(HasSubstr("ipop_ipsec_last_change_")));  // no change yet
  EXPECT_THAT(before, Not(HasSubstr("ipop_ipsec_range_sas")));     // no range with SAs reported
  st.lastChangeReaction = 1500us;
  st.lastChange = std::chrono::system_clock::time_point(std::chrono::seconds(1764600000));
  std::vector<RangeSas> sas{{cidr("fd00:1::/64"), 0, 0}, {cidr("10.254.0.0/16"), 4, 2}};
  std::string text = renderMetrics(st, cfg, {}, std::nullopt, sas);
  EXPECT_THAT(text, HasSubstr("# TYPE ipop_ipsec_last_change_reaction_seconds gauge\n"
                              "ipop_ipsec_last_change_reaction_seconds 0.001500\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE ipop_ipsec_last_change_timestamp_seconds gauge\n"
                              "ipop_ipsec_last_change_timestamp_seconds 1764600000\n"));
  // Sorted by range, one sample per range in each family.
  EXPECT_THAT(text, HasSubstr("# TYPE ipop_ipsec_range_sas gauge\n"
                              "ipop_ipsec_range_sas{range=\"10.254.0.0/16\"} 4\n"
                              "ipop_ipsec_range_sas{range=\"fd00:1::/64\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE ipop_ipsec_range_sa_peers gauge\n"
                              "ipop_ipsec_range_sa_peers{range=\"10.254.0.0/16\"} 2\n"
                              "ipop_ipsec_range_sa_peers{range=\"fd00:1::/64\"} 0\n"));
  EXPECT_THAT(checkPrometheusText(text), IsEmpty()) << text;
}

// The reconciler records when it last changed the kernel's policies (and how long that took
// from the start of its reconcile): set by a change, kept by a reconcile that changes nothing.
struct MetricsReconcilerTest : ReconcilerFixture {};

TEST_F(MetricsReconcilerTest, LastChangeIsRecordedOnlyWhenThePoliciesChange) {
  auto c = cfg();
  c.protect.autoRanges = false;
  c.protect.ranges = {C("172.31.0.0/16")};
  auto wall = std::chrono::system_clock::time_point(std::chrono::seconds(1764600000));
  r = std::make_unique<Reconciler>(c, policies, files, certs, unit, clock, [this](const Event& e) { events.push_back(e); },
                                   [&wall] { return wall; });
  EXPECT_FALSE(r->status().lastChange);
  EXPECT_FALSE(r->status().lastChangeReaction);
  r->reconcile(net);
  ASSERT_TRUE(r->status().lastChange);
  EXPECT_EQ(*r->status().lastChange, wall);
  ASSERT_TRUE(r->status().lastChangeReaction);
  EXPECT_EQ(*r->status().lastChangeReaction, std::chrono::nanoseconds(0));  // the fake clock stood still
  auto first = wall;
  wall += std::chrono::seconds(60);
  r->reconcile(net);  // nothing to change
  EXPECT_EQ(*r->status().lastChange, first);
  policies.installed.clear();  // someone flushed them: the next reconcile puts them back
  r->reconcile(net);
  EXPECT_EQ(*r->status().lastChange, wall);
  std::string text = renderMetrics(r->status(), c, {});
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_last_change_timestamp_seconds 1764600060\n"));
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_last_change_reaction_seconds 0.000000\n"));
}

// The sign of life: when the file was written (the daemon appends it at every write, the
// idle heartbeat's included), whole seconds of the wall clock.
TEST(Metrics, TimestampOfTheWrite) {
  auto written = std::chrono::system_clock::time_point(std::chrono::seconds(1764600000) + 999ms);
  EXPECT_EQ(renderMetricsTimestamp(written),
            "# HELP ipop_ipsec_metrics_timestamp_seconds When ipop-ipsecd last wrote this file, in seconds since the "
            "Unix epoch: rewritten at least every daemon.metrics_interval while it runs, so an older value means the "
            "daemon is gone.\n"
            "# TYPE ipop_ipsec_metrics_timestamp_seconds gauge\n"
            "ipop_ipsec_metrics_timestamp_seconds 1764600000\n");
  // Appended to the rest, the whole file is valid, the family once.
  Config cfg;
  std::string file = renderMetrics(protectedNode(cfg), cfg, {}, 1ms) + renderMetricsTimestamp(written);
  EXPECT_THAT(checkPrometheusText(file), IsEmpty()) << file;
  EXPECT_THAT(renderMetrics(protectedNode(cfg), cfg, {}), Not(HasSubstr("ipop_ipsec_metrics_timestamp_seconds")))
      << "the rest of the text does not change with the time alone (the daemon compares it to skip a rewrite)";
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(escapeLabelValue("plain 10.0.0.0/8"), "plain 10.0.0.0/8");
  EXPECT_EQ(escapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escapeLabelValue("\\\\"), "\\\\\\\\");
  // The config refuses such an interface name; the renderer still never breaks a line.
  Config cfg;
  cfg.ipop.interface = "ta\"p\\0\n";
  cfg.ike.backend = IkeBackend::strongswan;
  std::string text = renderMetrics(protectedNode(cfg), cfg, {}, 1s);
  EXPECT_THAT(text, HasSubstr(",backend=\"strongswan\",interface=\"ta\\\"p\\\\0\\n\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nipop_ipsec_last_reconcile_duration_seconds 1.000000\n"));
  EXPECT_THAT(checkPrometheusText(text), IsEmpty());
}

TEST(Metrics, EveryOutputIsValidTextFormat) {
  Config cfg;
  std::vector<NodeStatus> statuses{NodeStatus{}, protectedNode(cfg)};
  NodeStatus down = protectedNode(cfg);
  down.desired.ipopUp = false;
  down.restartFailures = 3;
  down.desired.certExpiry = std::chrono::system_clock::time_point{};  // the epoch: 0
  statuses.push_back(down);
  NodeStatus many;
  for (const char* r : {"10.1.0.0/16", "10.2.0.0/16", "fd00::/64", "192.168.77.0/24"}) many.desired.ranges.push_back(cidr(r));
  many.kernelPolicies = buildPolicies({cidr("10.1.0.0/16"), cidr("fd00::/64")}, cfg);
  many.protectedRanges = protectedRanges(many.kernelPolicies);
  statuses.push_back(many);
  int n = 0;
  for (const auto& st : statuses)
    for (auto counters : {MetricsCounters{}, MetricsCounters{1, 2, 3}, MetricsCounters{~0ULL, 0, ~0ULL}})
      for (auto d : {std::optional<std::chrono::nanoseconds>{}, std::optional<std::chrono::nanoseconds>{0ns},
                     std::optional<std::chrono::nanoseconds>{std::chrono::hours(1)}}) {
        std::string text = renderMetrics(st, cfg, counters, d);
        EXPECT_THAT(checkPrometheusText(text), IsEmpty()) << text;
        // Everything is ours.
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);)
          EXPECT_TRUE(line.rfind("ipop_ipsec_", 0) == 0 || line.rfind("# HELP ipop_ipsec_", 0) == 0 ||
                      line.rfind("# TYPE ipop_ipsec_", 0) == 0)
              << line;
        ++n;
      }
  EXPECT_EQ(n, 36);
}

// The checker itself: it must catch what it is there to catch.
TEST(PrometheusTextChecker, RejectsBrokenInput) {
  const std::string ok = "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\"} 1\n";
  EXPECT_THAT(checkPrometheusText(ok), IsEmpty());
  EXPECT_THAT(checkPrometheusText("# HELP a x\n# TYPE a gauge\na{l=\"v\",} 1.5e3 1700000000000\na NaN\n"), IsEmpty());
  auto bad = [](const std::string& text, const std::string& what) {
    auto errors = checkPrometheusText(text);
    std::string all;
    for (const auto& e : errors) all += e + "\n";
    EXPECT_THAT(all, HasSubstr(what)) << text;
  };
  bad("", "empty");
  bad("# HELP a x\n# TYPE a gauge\na 1", "newline");
  bad("# HELP a x\n# TYPE a gauge\n\na 1\n", "empty line");
  bad("a 1\n", "before its TYPE");
  bad("# TYPE a gauge\n# HELP a x\na 1\n", "TYPE of a before its HELP");
  bad("# HELP a x\n# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE");
  bad("# HELP a x\n# HELP a y\n# TYPE a gauge\na 1\n", "second HELP");
  bad("# HELP a x\n# TYPE a gauge\na 1\n# HELP a y\n", "after its samples");
  bad("# HELP a x\n# TYPE a gaug\na 1\n", "invalid type");
  bad("# HELP 1a x\n# TYPE 1a gauge\n1a 1\n", "invalid metric name");
  bad("# HELP a-b x\n# TYPE a-b gauge\n", "invalid metric name");
  bad("# HELP a x\n# TYPE a gauge\na{1l=\"v\"} 1\n", "invalid label name");
  bad("# HELP a x\n# TYPE a gauge\na{l=\"v\",l=\"w\"} 1\n", "label l twice");
  bad("# HELP a x\n# TYPE a gauge\na{l=v} 1\n", "malformed labels");
  bad("# HELP a x\n# TYPE a gauge\na{l=\"v} 1\n", "malformed labels");
  bad("# HELP a x\n# TYPE a gauge\na{l=\"\\x\"} 1\n", "invalid escape");
  bad("# HELP a x\n# TYPE a gauge\na one\n", "invalid value");
  bad("# HELP a x\n# TYPE a gauge\na 0x10\n", "invalid value");
  bad("# HELP a x\n# TYPE a gauge\na\n", "no value");
  bad("# HELP a x\n# TYPE a gauge\na 1 2 3\n", "trailing text");
  bad("# HELP a x\n# TYPE a gauge\na 1\na 2\n", "twice");
  bad("# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\na 1\nb 1\na{l=\"v\"} 1\n", "not in one group");
  bad("# HELP c x\n# TYPE c counter\nc 1\n", "does not end in _total");
  bad("# HELP a x\\q\n# TYPE a gauge\na 1\n", "invalid escape in HELP");
}

}  // namespace
