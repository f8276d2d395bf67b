// Issue 22 (3), on the real kernel: a tap that is up and addressed but has NO-CARRIER (IPOP's
// controller does not hold it open) gets its policies (fail closed), but the daemon neither
// writes the ipop-up flag nor runs its IKE restart command, and the metrics say IPOP is not
// up; the controller opening the tap (carrier) is IPOP coming up. The real daemon in a
// private network namespace; the controller is a TapCarrier.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/daemon_fixture.hpp"
#include "integration/tap_carrier.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

class CarrierDaemonTest : public DaemonFixture {
 protected:
  fs::path prom() { return dir_ / "ipop-ipsec.prom"; }
  fs::path flag() { return dir_ / "run" / "ipop-up"; }
  bool metricsSay(const std::string& s) { return readFile(prom()).find(s) != std::string::npos; }
  void configure() { writeConfig("  ranges: auto\n", "", "  metrics_file: " + prom().string() + "\n"); }
};

TEST_F(CarrierDaemonTest, NoCarrierTapIsProtectedButStartsNoIkeDaemonUntilTheControllerOpensIt) {
  configure();
  sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
  ASSERT_THAT(sh("ip link show dev ipop"), HasSubstr("NO-CARRIER")) << "the kernel's view of a tap nobody holds";
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16") && stateHas("\"tap_state\": \"no carrier\""); }))
      << state();
  ASSERT_TRUE(waitFor([&] { return metricsSay("\nipop_ipsec_ipop_up 0\n"); })) << readFile(prom());
  EXPECT_TRUE(stateHas("\"ipop_up\": false"));
  EXPECT_TRUE(stateHas("'ipop' has no carrier (IPOP's controller is not connected")) << state();
  EXPECT_TRUE(metricsSay("\nipop_ipsec_healthy 0\n"));
  // An absence, over one whole coalescing window (quiet period 300 ms + minimum interval 1 s;
  // a first start would not even wait for it).
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(restarts(), 0) << "the IKE daemon was started for a tap without carrier";
  EXPECT_FALSE(fs::exists(flag())) << "the ipop-up flag was written for a tap without carrier";
  auto policies = owned();

  // IPOP's controller opens the tap: carrier, IPOP is up.
  TapCarrier carrier("ipop");
  ASSERT_TRUE(waitFor([&] { return restarts() == 1; })) << state();
  EXPECT_THAT(readFile(dir_ / "restarts.log"), HasSubstr("10.254.0.16/16"));
  ASSERT_TRUE(waitFor([&] { return fs::exists(flag()) && metricsSay("\nipop_ipsec_ipop_up 1\n"); })) << readFile(prom());
  EXPECT_EQ(readFile(flag()), "10.254.0.16\n");
  ASSERT_TRUE(waitFor([&] { return stateHas("\"tap_state\": \"up\""); }));

  // The controller goes away: carrier lost. Policies kept, flag gone, no restart, reported.
  carrier.release();
  ASSERT_TRUE(waitFor([&] { return stateHas("\"tap_state\": \"no carrier\"") && !fs::exists(flag()); })) << state();
  ASSERT_TRUE(waitFor([&] { return metricsSay("\nipop_ipsec_ipop_up 0\n"); })) << readFile(prom());
  EXPECT_EQ(owned(), policies) << "fail closed: the policies stay";
  std::this_thread::sleep_for(1500ms);  // an absence: one whole coalescing window
  EXPECT_EQ(restarts(), 1) << "the IKE daemon was restarted for a tap that lost its carrier";

  // Back: IPOP came up again, the IKE daemon is restarted.
  carrier = TapCarrier("ipop");
  ASSERT_TRUE(waitFor([&] { return restarts() == 2; })) << state();
  ASSERT_TRUE(waitFor([&] { return fs::exists(flag()); }));
  EXPECT_EQ(owned(), policies);
}

// A tap its holder created (as IPOP's controller creates its own) reports operstate UNKNOWN,
// not UP, with carrier: that is IPOP up too.
TEST_F(CarrierDaemonTest, OperstateUnknownWithCarrierIsUp) {
  configure();
  TapCarrier carrier("ipop");  // creates the tap
  sh("ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
  std::string link = sh("ip link show dev ipop");
  ASSERT_THAT(link, HasSubstr("state UNKNOWN"));
  ASSERT_THAT(link, HasSubstr("LOWER_UP"));
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return restarts() == 1 && fs::exists(flag()); })) << state();
  EXPECT_TRUE(stateHas("\"tap_state\": \"up\""));
  ASSERT_TRUE(waitFor([&] { return metricsSay("\nipop_ipsec_ipop_up 1\n"); })) << readFile(prom());
}

}  // namespace
