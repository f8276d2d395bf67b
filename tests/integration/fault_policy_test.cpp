// Fault injection: the kernel refuses one of the daemon's policies. A foreign policy (an
// operator's, or another IKE daemon's) with the same selector as one the daemon wants sits
// in the SPD first; the daemon must not overwrite it (XFRM would, silently), so that one
// install fails. Expected: the error is reported (state.json last_error, log), every other
// policy is installed, the foreign one is untouched, the IKE daemon is not restarted on a
// half-applied set, retries back off, and once the foreign policy is gone the daemon
// heals by itself.

#include <signal.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "integration/fault_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class FaultPolicyTest : public FaultFixture {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();
    prepare("fault-policy");
    writeRestartScript();
    std::ofstream(dir_ / "ipop-ipsecd.yaml")
        << "ipop:\n  interface: ipop\nprotect:\n  ranges: [10.254.0.0/16, 10.77.0.0/16]\n  exclude: [10.254.0.1]\n"
        << "ike:\n  control: command\n  restart_command: [\"" << (dir_ / "restart.sh").string() << "\"]\n"
        << "  quiet_period: 100ms\n  min_interval: 200ms\n"
        << "racoon:\n  config: " << (dir_ / "racoon.conf").string() << "\n  spd_file: "
        << (dir_ / "ipsec-tools.conf").string() << "\n  certificate_dir: " << (dir_ / "certs").string() << "\n"
        << "daemon:\n  state_dir: " << (dir_ / "run").string() << "\n  remember_dir: " << (dir_ / "lib").string() << "\n  log_level: debug\n";
    sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
    carrier_ = TapCarrier("ipop");  // IPOP's controller holds the tap open: carrier
  }
};

TEST_F(FaultPolicyTest, ForeignPolicyWithTheSameSelectorIsReportedOthersInstalledAndHealedWhenGone) {
  // The foreign policy: same id (dir in + selector) as one the daemon wants, priority 7.
  sh("ip xfrm policy add src 10.77.0.0/16 dst 10.77.0.0/16 dir in priority 7");
  start();
  std::vector<std::string> others{
      "in 0.0.0.0/0 -> 10.254.0.0/16 esp/transport/require prio 250000",
      "in 0.0.0.0/0 -> 10.77.0.0/16 esp/transport/require prio 250000",
      "out 0.0.0.0/0 -> 10.254.0.0/16 esp/transport/require prio 250000",
      "out 0.0.0.0/0 -> 10.254.0.1/32 bypass prio 1000",
      "out 0.0.0.0/0 -> 10.77.0.0/16 esp/transport/require prio 250000",
      "in 10.254.0.0/16 -> 10.254.0.0/16 esp/transport/require prio 250000",
      "in 10.254.0.1/32 -> 10.254.0.0/16 bypass prio 1000",
      "out 10.254.0.0/16 -> 10.254.0.0/16 esp/transport/require prio 250000",
      "out 10.254.0.0/16 -> 10.254.0.1/32 bypass prio 1000",
      "out 10.77.0.0/16 -> 10.77.0.0/16 esp/transport/require prio 250000",
  };
  std::sort(others.begin(), others.end());
  ASSERT_TRUE(waitUntil([&] { return owned() == others; })) << "every other policy is installed";
  ASSERT_TRUE(waitUntil([&] { return stateHas("kernel refused policy in 10.77.0.0/16 -> 10.77.0.0/16"); })) << state();
  EXPECT_TRUE(stateHas("\"healthy\": false"));
  EXPECT_TRUE(stateHas("\"policies_exact\": false"));
  EXPECT_NE(readFile(dir_ / "daemon.log").find("kernel refused policy in 10.77.0.0/16"), std::string::npos);
  std::string foreign = sh("ip xfrm policy show dir in src 10.77.0.0/16 dst 10.77.0.0/16");
  EXPECT_NE(foreign.find("priority 7"), std::string::npos) << "the foreign policy must be left as it was:\n" << foreign;
  EXPECT_EQ(foreign.find("esp"), std::string::npos) << foreign;
  // Retried with backoff, not in a loop: a handful of attempts in a second, not thousands.
  double cpu0 = daemon_.cpuSeconds();
  ASSERT_TRUE(waitUntil(
      [&] {
        std::string log = readFile(dir_ / "daemon.log");
        int n = 0;
        for (auto p = log.find("kernel refused policy"); p != std::string::npos; p = log.find("kernel refused policy", p + 1))
          ++n;
        return n >= 6;  // 0.2 s, 0.4 s, 0.8 s backoff: the third retry is ~1.4 s in
      },
      10s));
  EXPECT_LT(daemon_.cpuSeconds() - cpu0, 0.3);
  EXPECT_FALSE(fs::exists(dir_ / "restarts.log")) << "no IKE restart on a half-applied policy set";

  // The operator removes the foreign policy: the next retry completes the set.
  sh("ip xfrm policy delete src 10.77.0.0/16 dst 10.77.0.0/16 dir in");
  ASSERT_TRUE(waitUntil([&] { return owned().size() == 11; }, 30s));
  ASSERT_TRUE(waitUntil([&] { return stateHas("\"healthy\": true") && stateHas("\"last_error\": \"\""); })) << state();
  ASSERT_TRUE(waitUntil([&] { return restarts() == 1; }));
}

// Another key manager at work (charon installs and removes per-SA and trap policies all the
// time): none of that is a reason to re-read the kernel. One of the daemon's own policies
// deleted, or replaced by one with its id, is: repaired at once. The events arrive in order,
// so once the deletion was handled, the unrelated changes before it were seen and left out.
TEST_F(FaultPolicyTest, AnotherKeyManagersPoliciesCauseNoReconcileTheDaemonsOwnDo) {
  start();
  ASSERT_TRUE(waitUntil([&] { return owned().size() == 11; })) << "all of its policies in";
  ASSERT_TRUE(waitUntil([&] { return stateHas("\"healthy\": true"); })) << state();
  auto reconcilesForEvents = [&] {
    std::string log = readFile(dir_ / "daemon.log");
    int n = 0;
    for (auto p = log.find("debug xfrm: "); p != std::string::npos; p = log.find("debug xfrm: ", p + 1)) ++n;
    return n;
  };
  const int before = reconcilesForEvents();
  for (int i = 0; i < 20; ++i) {
    const std::string peer = "10.254.1." + std::to_string(i + 1);
    sh("ip xfrm policy add src 10.254.0.16/32 dst " + peer + "/32 dir out priority 2400 tmpl proto esp mode transport reqid 7");
    sh("ip xfrm policy add src " + peer + "/32 dst 10.254.0.16/32 dir in priority 2400 tmpl proto esp mode transport reqid 7");
  }
  sh("ip xfrm policy add src 10.254.0.16/32 dst 10.254.0.0/16 dir out priority 2900 tmpl proto esp mode transport reqid 7");
  for (int i = 0; i < 20; ++i)
    sh("ip xfrm policy delete src 10.254.0.16/32 dst 10.254.1." + std::to_string(i + 1) + "/32 dir out");
  // Now one of its own, deleted by an operator.
  sh("ip xfrm policy delete src 10.254.0.0/16 dst 10.254.0.0/16 dir out");
  ASSERT_TRUE(waitUntil([&] { return reconcilesForEvents() > before; })) << "the deletion of its own policy is seen";
  ASSERT_TRUE(waitUntil([&] { return owned().size() == 11; })) << "and repaired";
  std::string log = readFile(dir_ / "daemon.log");
  EXPECT_EQ(reconcilesForEvents(), before + 1) << "one reconcile, for its own policy; none for the 61 others";
  EXPECT_NE(log.find("1 policy change(s) by another process (first: delete)"), std::string::npos) << log;
  EXPECT_NE(sh("ip xfrm policy show dir out src 10.254.0.16/32 dst 10.254.0.0/16").find("priority 2900"),
            std::string::npos)
      << "the other key manager's policies are left as they are";
}

}  // namespace
