// "Logs and status say what the kernel holds, never what was intended": the Reconciler
// over kernels that differ from their acknowledgements (tests/unit/fakes.hpp): one that
// acknowledges an install and then does not hold the policy, and one whose read-back (the
// list() after the changes) fails. The log ("now protecting"), the status (protected
// ranges, both status lines), healthy and the metrics must follow what list() reads back;
// a range whose policies could not be read back is never reported as protected, and the
// IKE daemon is not started onto it.

#include <gtest/gtest.h>

#include "core/status/metrics.hpp"
#include "core/reconcile/reconciler.hpp"
#include "reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;

namespace {

struct ReadBackTest : ReconcilerFixture {
  std::string metrics() { return renderMetrics(r->status(), r->config(), MetricsCounters{}); }
  static bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }
  // The "policies: ..." events' messages, one per line.
  std::string policyEvents() {
    std::string s;
    for (const auto& e : events)
      if (e.action() == "policies") s += e.message + "\n";
    return s;
  }
  // After the IKE daemon's start (it is started only onto a node that protects): healthy.
  void completeStart() {
    runFor(5s);
    while (!unit.pending.empty()) unit.complete();
  }
  // The node protects 172.31.0.0/16 and nothing is wrong: said everywhere.
  void expectProtectedAndSaid() {
    EXPECT_EQ(r->status().protectedRanges, std::vector<Cidr>{C("172.31.0.0/16")});
    EXPECT_TRUE(has(policyEvents(), "now protecting 172.31.0.0/16")) << policyEvents();
    EXPECT_TRUE(has(r->statusLine(), "protecting 172.31.0.0/16")) << r->statusLine();
    EXPECT_FALSE(has(r->statusLine(), "NOT protecting")) << r->statusLine();
    EXPECT_TRUE(has(metrics(), "ipop_ipsec_range_protected{range=\"172.31.0.0/16\"} 1")) << metrics();
  }
};

// The kernel acknowledges every install but does not hold the in policy R->R: the range is
// not protected (only out is), and nothing may say otherwise.
TEST_F(ReadBackTest, AcknowledgedButNotHeldIsNotProtected) {
  policies.dropAfterAck = [](const Policy& p) {
    return p.dir == Direction::in && p.sel.src == p.sel.dst && p.action == PolicyAction::protect;
  };
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  make(cfg());
  r->reconcile(net);
  ASSERT_EQ(policies.log.size(), 4u) << "four installs acknowledged";
  EXPECT_TRUE(r->status().protectedRanges.empty()) << joinRanges(r->status().protectedRanges);
  EXPECT_EQ(r->status().kernelPolicies.size(), 3u) << "what list() read back, not the 4 acknowledged";
  EXPECT_FALSE(r->status().policiesExact);
  EXPECT_FALSE(r->status().healthy());
  EXPECT_FALSE(has(policyEvents(), "now protecting")) << policyEvents();
  EXPECT_TRUE(has(policyEvents(), "NOT protecting 172.31.0.0/16 (the kernel does not hold its policies)"))
      << policyEvents();
  EXPECT_TRUE(has(r->statusLine(), "NOT protecting 172.31.0.0/16")) << r->statusLine();
  EXPECT_FALSE(has(r->statusLine(), "; protecting 172.31.0.0/16")) << r->statusLine();
  EXPECT_TRUE(has(r->shortStatus(), "nothing protected; NOT protecting 1 range(s)")) << r->shortStatus();
  const std::string m = metrics();
  EXPECT_TRUE(has(m, "ipop_ipsec_range_protected{range=\"172.31.0.0/16\"} 0")) << m;
  EXPECT_TRUE(has(m, "ipop_ipsec_healthy 0")) << m;
  EXPECT_TRUE(has(m, "ipop_ipsec_policies_installed 3")) << m;
  completeStart();
  EXPECT_EQ(unit.restarts, 0) << "no IKE start onto a range the kernel does not protect";
  EXPECT_FALSE(r->status().healthy());

  // The kernel holds what it is given again: the next reconcile (an event) says so.
  policies.dropAfterAck = nullptr;
  r->reconcile(net);
  expectProtectedAndSaid();
  completeStart();
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_TRUE(r->status().healthy()) << r->statusLine();
  EXPECT_TRUE(has(metrics(), "ipop_ipsec_healthy 1"));
}

// The installs are acknowledged but the read-back fails: unknown is not protected.
TEST_F(ReadBackTest, FailedReadBackIsNotReportedAsProtected) {
  policies.failReadBack = std::make_error_code(std::errc::no_buffer_space);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  make(cfg());
  r->reconcile(net);
  ASSERT_EQ(policies.installed.size(), 4u) << "the fake kernel holds them; only the read-back fails";
  EXPECT_TRUE(r->status().protectedRanges.empty()) << joinRanges(r->status().protectedRanges);
  EXPECT_TRUE(r->status().kernelPolicies.empty());
  EXPECT_FALSE(r->status().healthy());
  EXPECT_TRUE(has(r->status().lastError, "cannot read back the kernel's policies")) << r->status().lastError;
  EXPECT_FALSE(has(policyEvents(), "now protecting")) << policyEvents();
  EXPECT_TRUE(has(policyEvents(), "NOT protecting 172.31.0.0/16")) << policyEvents();
  EXPECT_TRUE(has(r->statusLine(), "NOT protecting 172.31.0.0/16")) << r->statusLine();
  EXPECT_TRUE(has(r->shortStatus(), "nothing protected")) << r->shortStatus();
  const std::string m = metrics();
  EXPECT_TRUE(has(m, "ipop_ipsec_range_protected{range=\"172.31.0.0/16\"} 0")) << m;
  EXPECT_TRUE(has(m, "ipop_ipsec_healthy 0")) << m;
  EXPECT_FALSE(r->scheduler().pending()) << "no IKE start onto policies that were not read back";
  ASSERT_TRUE(r->deadline()) << "a failed read-back is retried";

  // The retry reads the kernel (nothing to change, so its read succeeds): the range is
  // protected, said so, and only now the IKE daemon starts.
  runFor(5s);
  EXPECT_EQ(r->status().protectedRanges, std::vector<Cidr>{C("172.31.0.0/16")});
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_TRUE(has(r->statusLine(), "protecting 172.31.0.0/16")) << r->statusLine();
  EXPECT_TRUE(has(metrics(), "ipop_ipsec_range_protected{range=\"172.31.0.0/16\"} 1")) << metrics();
}

// A move (172.31 -> 10.254) whose read-back fails: the old range's removal was acknowledged
// and the new range's policies were not read back: neither is reported as protected (the
// range the kernel was last read to hold is gone by the daemon's own removal).
TEST_F(ReadBackTest, FailedReadBackAfterAMoveClaimsNeitherRange) {
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  make(cfg());
  r->reconcile(net);
  ASSERT_EQ(r->status().protectedRanges, std::vector<Cidr>{C("172.31.0.0/16")});
  policies.failReadBack = std::make_error_code(std::errc::no_buffer_space);
  net.links[7].addresses = {C("10.254.0.16/16")};
  r->reconcile(net);
  ASSERT_EQ(rangesOf(policies.all()), std::vector<Cidr>{C("10.254.0.0/16")}) << "moved in the fake kernel";
  EXPECT_TRUE(r->status().protectedRanges.empty()) << joinRanges(r->status().protectedRanges);
  EXPECT_FALSE(has(r->statusLine(), "; protecting")) << r->statusLine();
  EXPECT_FALSE(r->status().healthy());
  const std::string m = metrics();
  EXPECT_TRUE(has(m, "ipop_ipsec_range_protected{range=\"10.254.0.0/16\"} 0")) << m;
  EXPECT_FALSE(has(m, "ipop_ipsec_range_protected{range=\"172.31.0.0/16\"} 1")) << m;
  policies.failReadBack = {};
  runFor(60s);
  EXPECT_EQ(r->status().protectedRanges, std::vector<Cidr>{C("10.254.0.0/16")});
}

// The kernel stops holding a policy it held (acknowledged on a later update, then dropped):
// the next reconcile's read-back says the range is no longer protected.
TEST_F(ReadBackTest, ARangeTheKernelNoLongerHoldsIsNoLongerReported) {
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  make(cfg());
  r->reconcile(net);
  completeStart();
  ASSERT_TRUE(r->status().healthy()) << r->statusLine();
  // Someone removes the out policy; the kernel then acknowledges the daemon's reinstall and
  // does not hold it.
  policies.dropAfterAck = [](const Policy& p) { return p.dir == Direction::out && p.sel.src == p.sel.dst; };
  std::erase_if(policies.installed, [](const auto& kv) {
    return kv.second.dir == Direction::out && kv.second.sel.src == kv.second.sel.dst;
  });
  r->reconcile(net);
  EXPECT_TRUE(r->status().protectedRanges.empty()) << joinRanges(r->status().protectedRanges);
  EXPECT_FALSE(r->status().healthy());
  EXPECT_TRUE(has(r->statusLine(), "NOT protecting 172.31.0.0/16")) << r->statusLine();
  EXPECT_TRUE(has(metrics(), "ipop_ipsec_range_protected{range=\"172.31.0.0/16\"} 0")) << metrics();
  EXPECT_TRUE(has(policyEvents(), "no longer protecting 172.31.0.0/16") ||
              has(policyEvents(), "NOT protecting 172.31.0.0/16"))
      << policyEvents();
}

}  // namespace
