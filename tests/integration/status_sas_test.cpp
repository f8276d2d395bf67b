// `ipop-ipsecd status` tells "protected" (the policies) from "encrypted, with whom" (the
// ESP SAs of the protected ranges in the kernel's SAD): the real binary, the real kernel,
// and the larval SA of a negotiation an IKE daemon has not answered.

#include "integration/daemon_fixture.hpp"

namespace ipopsec::test {
namespace {

class StatusSasTest : public DaemonFixture {
 protected:
  std::string status(const std::string& args = "") {
    std::string out;
    shStatus(std::string(IPOPSEC_BINARY) + " status --config " + (dir_ / "ipop-ipsecd.yaml").string() + " " + args, &out);
    return out;
  }
};

// This host's kernel has no ESP type (keyed SAs cannot be added here): the keyed count is
// checked on real ESP in the UML mesh (tests/system/uml_mesh.sh); here, what the SAD holds
// when no IKE daemon answers: nothing keyed, and the larval state of a pending negotiation.
TEST_F(StatusSasTest, StatusSaysWhenNothingIsEncryptedAndCountsPendingNegotiations) {
  writeConfig("  ranges: [10.254.0.0/16]\n");
  sh("ip link add ipop type veth peer name peer0 && ip link set peer0 up");
  sh("ip addr add 10.254.0.16/16 dev ipop && ip link set ipop up");
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16") && stateHas("\"healthy\": true"); }));
  std::string text = status();
  EXPECT_NE(text.find("ipsec SAs:  no ESP SA\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ike:        ike.restart_command " + (dir_ / "restart.sh").string()), std::string::npos)
      << "with ike.control: command, status names the command, not a unit it does not use\n" << text;
  EXPECT_NE(status("--json").find("\"esp_sas\": 0,"), std::string::npos);

  // A key manager listening (ip's), a packet into the range: the kernel makes a larval SA.
  startAcquireMonitor();
  ASSERT_TRUE(waitFor([&] {
    shStatus("ping -c1 -W1 10.254.0.17");
    return status().find("1 larval") != std::string::npos;
  }));
  text = status();
  EXPECT_NE(text.find("ipsec SAs:  no ESP SA; 1 larval (negotiation pending)"), std::string::npos) << text;
  std::string json = status("--json");
  EXPECT_NE(json.find("\"larval_sas\": 1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"esp_peers\": []"), std::string::npos) << json;
}

}  // namespace
}  // namespace ipopsec::test
