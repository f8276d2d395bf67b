// The whole daemon (the real binary) on the real kernel, in a private network namespace
// per test: a real tap, real rtnetlink events, real XFRM policies. IKE control is
// `command`: a script that records each restart and the tap's addresses at that moment.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "integration/daemon_fixture.hpp"
#include "integration/netns.hpp"
#include "integration/pki_fixtures.hpp"
#include "integration/spd_sampler.hpp"
#include "integration/tap_carrier.hpp"
#include "os/netlink/xfrm.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class DaemonTest : public DaemonFixture {};

TEST_F(DaemonTest, TapCreatedAfterStartGetsPoliciesAndOneRestartAfterTheAddressExists) {
  writeConfig("  ranges: auto\n");
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return stateHas("\"tap_state\": \"absent\""); }));
  EXPECT_TRUE(owned().empty());
  tapUp();
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16"); }));
  // out and in, ESP transport, required.
  std::string xfrm = sh("ip xfrm policy");
  EXPECT_NE(xfrm.find("src 10.254.0.0/16 dst 10.254.0.0/16 \n\tdir out priority 250000"), std::string::npos) << xfrm;
  EXPECT_NE(xfrm.find("dir in priority 250000"), std::string::npos) << xfrm;
  EXPECT_NE(xfrm.find("proto esp reqid 0 mode transport"), std::string::npos) << xfrm;
  ASSERT_TRUE(waitFor([&] { return restarts() == 1; }));
  EXPECT_NE(readFile(dir_ / "restarts.log").find("10.254.0.16/16"), std::string::npos)
      << "the IKE daemon must be restarted only once the tap has its address";
  ASSERT_TRUE(waitFor([&] { return stateHas("\"last_restart_result\": \"done\""); }));
  EXPECT_NE(readFile(dir_ / "racoon.conf").find("remote anonymous"), std::string::npos);
  EXPECT_NE(readFile(dir_ / "ipsec-tools.conf").find("10.254.0.0/16 10.254.0.0/16"), std::string::npos);
  // Duplicate events (same address re-added, link set up again): no further restart.
  shStatus("ip addr add 10.254.0.16/16 dev ipop");
  sh("ip link set ipop up");
  sh("ip addr add 10.254.0.99/16 dev ipop && ip addr del 10.254.0.99/16 dev ipop");
  std::this_thread::sleep_for(1500ms);  // longer than quiet period + min interval: a restart would have happened
  EXPECT_EQ(restarts(), 1);
}

// The first start after IPOP comes up happens as soon as everything is ready (policies in,
// files written, certificates usable): the quiet period (10 s here) only coalesces later
// changes. Measured from the address to the restart command running.
TEST_F(DaemonTest, TheFirstStartFollowsTheAddressAtOnceNotAfterTheQuietPeriod) {
  writeConfig("  ranges: auto\n");
  std::string cfg = readFile(dir_ / "ipop-ipsecd.yaml");
  cfg.replace(cfg.find("quiet_period: 300ms"), 19, "quiet_period: 10s");
  std::ofstream(dir_ / "ipop-ipsecd.yaml") << cfg;
  std::ofstream(dir_ / "restart.sh") << "#!/bin/sh\ndate +%s.%N >> " << (dir_ / "restarts.log").string() << "\n";
  sh("ip tuntap add dev ipop mode tap && ip link set ipop up");
  TapCarrier carrier("ipop");  // IPOP's controller holds the tap open: carrier
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return stateHas("\"tap_state\": \"no address\""); }));
  auto wall = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  double added = wall();
  sh("ip addr add 10.254.0.16/16 dev ipop");
  ASSERT_TRUE(waitFor([&] { return restarts() == 1; }, 5s)) << "the first start must not wait for the quiet period";
  double started = std::stod(readFile(dir_ / "restarts.log"));
  double ms = (started - added) * 1000;
  std::cout << "first start " << ms << " ms after the address (quiet period 10 s)\n";
  EXPECT_LT(ms, 5000) << "well under the 10 s quiet period";
}

TEST_F(DaemonTest, AddressMovedToAnotherRangeNeverLeavesTheRangeWithoutPolicies) {
  writeConfig("  ranges: auto\n");
  tapUp();
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16") && restarts() == 1; }));
  // Sample the SPD as fast as we can while the address moves.
  SpdGapSampler sampler;
  sh("ip addr add 10.77.0.16/16 dev ipop && ip addr del 10.254.0.16/16 dev ipop");
  bool moved = waitFor([&] { return protects("10.77.0.0/16"); });
  std::this_thread::sleep_for(50ms);
  sampler.stop();
  ASSERT_TRUE(moved);
  EXPECT_GT(sampler.samples(), 10);
  EXPECT_EQ(sampler.gaps(), 0) << "a moment without any protect policy was observed";
  ASSERT_TRUE(waitFor([&] { return readFile(dir_ / "ipsec-tools.conf").find("10.77.0.0/16") != std::string::npos; }));
  EXPECT_EQ(readFile(dir_ / "ipsec-tools.conf").find("10.254.0.0/16"), std::string::npos);
  // racoon.conf is byte-identical (no listen): racoon learns the new policies over PF_KEY,
  // so no restart tears down the SAs it already has. An absence: observed over one whole
  // coalescing window (quiet period 300 ms + min interval 1 s).
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(restarts(), 1) << "a range change with an unchanged racoon.conf restarted the IKE daemon";
}

TEST_F(DaemonTest, AddressMovedWithListenOnTapRestartsTheIkeDaemonOnceMore) {
  writeConfig("  ranges: auto\n", "");
  {
    std::string text = readFile(dir_ / "ipop-ipsecd.yaml");
    text.replace(text.find("racoon:\n"), 8, "racoon:\n  listen_on_tap: true\n");
    std::ofstream(dir_ / "ipop-ipsecd.yaml") << text;
  }
  tapUp();
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16") && restarts() == 1; }));
  sh("ip addr add 10.77.0.16/16 dev ipop && ip addr del 10.254.0.16/16 dev ipop");
  ASSERT_TRUE(waitFor([&] { return restarts() == 2; }));
  EXPECT_NE(readFile(dir_ / "racoon.conf").find("10.77.0.16"), std::string::npos);
}

TEST_F(DaemonTest, TapDeletedAndRecreatedSeveralAddressesAndRestartOnlyWhileUp) {
  writeConfig("  ranges: auto\n");
  startDaemon();
  sh("ip tuntap add dev ipop mode tap && ip addr add 10.254.0.16/16 dev ipop");
  TapCarrier carrier("ipop");  // IPOP's controller holds the tap open: carrier
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16"); }));
  ASSERT_TRUE(waitFor([&] { return stateHas("\"tap_state\": \"down\""); }));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(restarts(), 0) << "never restart while the tap is down";
  sh("ip link set ipop up");
  ASSERT_TRUE(waitFor([&] { return restarts() == 1; }));
  sh("ip link del ipop");
  ASSERT_TRUE(waitFor([&] { return stateHas("\"tap_state\": \"absent\""); }));
  EXPECT_TRUE(protects("10.254.0.0/16")) << "policies are held while the tap is gone";
  EXPECT_TRUE(stateHas("\"ranges_held\": true"));
  sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop && "
     "ip addr add 10.99.0.16/24 dev ipop");
  carrier = TapCarrier("ipop");  // the new tap, held open again
  ASSERT_TRUE(waitFor([&] {
    return protectedRanges() == std::vector<Cidr>{*Cidr::parse("10.99.0.0/24"), *Cidr::parse("10.254.0.0/16")};
  }));
  ASSERT_TRUE(waitFor([&] { return restarts() == 2; })) << "IPOP came back: the IKE daemon is started again";
}

TEST_F(DaemonTest, Ipv6RangeGetsNeighbourDiscoveryBypass) {
  writeConfig("  ranges: [fd50::/64]\n");
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("fd50::/64"); }));
  std::string xfrm = sh("ip -6 xfrm policy");
  for (auto type : {"133", "134", "135", "136"})
    EXPECT_NE(xfrm.find(std::string("proto ipv6-icmp type ") + type), std::string::npos) << type << "\n" << xfrm;
  sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip -6 addr add fd50::16/64 dev ipop nodad");
  TapCarrier carrier("ipop");  // IPOP's controller holds the tap open: carrier
  ASSERT_TRUE(waitFor([&] { return restarts() == 1; }));
}

TEST_F(DaemonTest, PlaintextToTheRangeIsDroppedAndAnAcquireIsRaised) {
  writeConfig("  ranges: [10.254.0.0/16]\n");
  // A peer in a child namespace on a veth: the "other GroupVPN node".
  sh("ip link add ipop type veth peer name peer0");
  sh("ip addr add 10.254.0.16/16 dev ipop && ip link set ipop up");
  // The peer side lives in a namespace that disappears with the `unshare` process.
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t peer = ::fork();
  if (peer == 0) {
    ::close(pipefd[0]);
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(1);
    if (::write(pipefd[1], "x", 1) != 1) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  char c;
  ::close(pipefd[1]);
  ASSERT_EQ(::read(pipefd[0], &c, 1), 1);
  sh("ip link set peer0 netns " + std::to_string(peer));
  sh("nsenter -t " + std::to_string(peer) + " -n sh -c 'ip link set lo up; ip addr add 10.254.0.17/16 dev peer0; ip link set peer0 up'");
  EXPECT_EQ(shStatus("ping -c1 -W2 10.254.0.17"), 0) << "plaintext works before the daemon";
  std::string acquireLog = (dir_ / "acquire.log").string();
  sh("(timeout 8 ip xfrm monitor acquire > " + acquireLog + " 2>&1 &)");
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16"); }));
  EXPECT_NE(shStatus("ping -c1 -W1 10.254.0.17"), 0) << "plaintext must not leave once the policies are in";
  EXPECT_TRUE(waitFor([&] { return readFile(acquireLog).find("acquire proto esp") != std::string::npos; }))
      << readFile(acquireLog);
  ::kill(peer, SIGKILL);
  ::waitpid(peer, nullptr, 0);
}

TEST_F(DaemonTest, SigkillAndRestartKeepsPoliciesWithoutDuplicatesOrExtraRestart) {
  writeConfig("  ranges: auto\n");
  tapUp();
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16") && restarts() == 1; }));
  ASSERT_TRUE(waitFor([&] { return stateHas("\"last_restart_result\": \"done\""); }));
  auto before = owned();
  stopDaemon(SIGKILL);
  EXPECT_EQ(owned(), before) << "policies survive the daemon's death";
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return stateHas("\"pid\": " + std::to_string(daemon_.pid())); }));
  std::this_thread::sleep_for(1500ms);
  auto after = owned();
  EXPECT_EQ(after, before) << "adopted, no duplicates";
  EXPECT_EQ(restarts(), 1) << "the IKE daemon runs with the same inputs: no restart";
  std::string all = sh("ip xfrm policy | grep -c 'dir out priority 250000' || true");
  EXPECT_EQ(std::stoi(all), 2);  // R->R and ANY->R
}

// A reload that changes the restart command while a restart is still running: the old
// restart is cancelled (its completion must never reach the replaced reconciler) and the
// new command restarts the IKE daemon.
TEST_F(DaemonTest, ReloadWithANewRestartCommandWhileARestartRunsIsSafe) {
  std::ofstream(dir_ / "slow.sh") << "#!/bin/sh\necho started >> " << (dir_ / "slow.log").string() << "\nsleep 2\n";
  fs::permissions(dir_ / "slow.sh", fs::perms::owner_all);
  writeConfig("  ranges: auto\n");
  std::string text = readFile(dir_ / "ipop-ipsecd.yaml");
  text.replace(text.find("restart.sh"), std::string("restart.sh").size(), "slow.sh");
  std::ofstream(dir_ / "ipop-ipsecd.yaml") << text;
  tapUp();
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return countLinesIn(dir_ / "slow.log") == 1; })) << "the slow restart is running";
  writeConfig("  ranges: auto\n");  // back to restart.sh
  ::kill(daemon_.pid(), SIGHUP);
  ASSERT_TRUE(waitFor([&] { return restarts() == 1; })) << "the new command restarts the IKE daemon";
  std::this_thread::sleep_for(2500ms);  // past the old command's end: its completion must go nowhere
  ASSERT_EQ(::kill(daemon_.pid(), 0), 0) << "the daemon survived";
  sh("ip link set ipop down && ip link set ipop up");  // IPOP comes up again: a restart is due
  ASSERT_TRUE(waitFor([&] { return restarts() == 2; })) << "and still works";
  EXPECT_EQ(countLinesIn(dir_ / "slow.log"), 1);
}

TEST_F(DaemonTest, SighupWithBrokenConfigKeepsTheOldOneAndSigtermKeepsPolicies) {
  writeConfig("  ranges: [10.254.0.0/16]\n");
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16"); }));
  // A broken config: the running one stays.
  std::ofstream(dir_ / "ipop-ipsecd.yaml", std::ios::app) << "protect_typo: 1\n";
  ::kill(daemon_.pid(), SIGHUP);
  ASSERT_TRUE(waitFor([&] { return readFile(dir_ / "daemon.log").find("reload refused") != std::string::npos; }));
  EXPECT_NE(readFile(dir_ / "daemon.log").find("protect_typo"), std::string::npos);
  EXPECT_TRUE(protects("10.254.0.0/16"));
  // A good new config is applied.
  writeConfig("  ranges: [10.77.0.0/16]\n");
  ::kill(daemon_.pid(), SIGHUP);
  ASSERT_TRUE(waitFor([&] { return protects("10.77.0.0/16"); }));
  int status = stopDaemon(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(protects("10.77.0.0/16")) << "SIGTERM leaves the policies (fail closed)";
  // flush removes them, and only them.
  sh("ip xfrm policy add src 10.1.0.0/16 dst 10.1.0.0/16 dir out priority 7");
  sh(std::string(IPOPSEC_BINARY) + " flush --config " + (dir_ / "ipop-ipsecd.yaml").string());
  EXPECT_TRUE(owned().empty());
  EXPECT_NE(sh("ip xfrm policy").find("10.1.0.0/16"), std::string::npos) << "foreign policy untouched";
}

TEST_F(DaemonTest, RangeCoveringTheLanIsRefusedAndSaidInStatus) {
  writeConfig("  ranges: [192.168.0.0/16]\n");
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return stateHas("REFUSED"); }));
  EXPECT_TRUE(owned().empty());
  EXPECT_NE(readFile(dir_ / "daemon.log").find("192.168.0.0/16 covers 192.168.1.5/24 on 'eth0'"), std::string::npos);
  std::string out;
  EXPECT_NE(shStatus(std::string(IPOPSEC_BINARY) + " status --config " + (dir_ / "ipop-ipsecd.yaml").string(), &out), 0);
  EXPECT_NE(out.find("refused"), std::string::npos) << out;
}

TEST_F(DaemonTest, BadConfigAtStartExitsWithExConfigNamingTheProblem) {
  writeConfig("  ranges: [172.31.0.0/33]\n");
  startDaemon();
  int status = daemon_.wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 78);
  EXPECT_NE(readFile(dir_ / "daemon.log").find("protect.ranges[0]"), std::string::npos) << readFile(dir_ / "daemon.log");
}

}  // namespace

namespace {

// Issue 13: a reload applies what it says. daemon.log_level and ike.restart_timeout are
// applied; daemon.state_dir is refused by name (it needs a restart), and the refusal is kept.
TEST_F(DaemonTest, ReloadAppliesTheLogLevelAndRefusesAStateDirChangeByName) {
  writeConfig("  ranges: auto\n");
  tapUp();
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("10.254.0.0/16") && restarts() == 1; }));
  auto debugLines = [&] {
    std::string log = readFile(dir_ / "daemon.log");
    int n = 0;
    for (auto p = log.find(" debug "); p != std::string::npos; p = log.find(" debug ", p + 1)) ++n;
    return n;
  };
  ASSERT_GT(debugLines(), 0);
  std::string text = readFile(dir_ / "ipop-ipsecd.yaml");
  text.replace(text.find("log_level: debug"), 16, "log_level: warn");
  std::ofstream(dir_ / "ipop-ipsecd.yaml") << text;
  ::kill(daemon_.pid(), SIGHUP);
  ASSERT_TRUE(waitFor([&] { return readFile(dir_ / "daemon.log").find("log level is now warn") != std::string::npos; }));
  int before = debugLines();
  sh("ip addr add 10.254.0.99/16 dev ipop && ip addr del 10.254.0.99/16 dev ipop");
  ASSERT_TRUE(waitFor([&] { return stateHas("10.254.0.16"); }));
  EXPECT_EQ(debugLines(), before) << "debug lines after the reload to log_level: warn";
  // state_dir: refused by name, the running config kept, the refusal kept in state.json.
  text.replace(text.find((dir_ / "run").string()), (dir_ / "run").string().size(), (dir_ / "run2").string());
  std::ofstream(dir_ / "ipop-ipsecd.yaml") << text;
  ::kill(daemon_.pid(), SIGHUP);
  ASSERT_TRUE(waitFor([&] { return stateHas("\"reload_refused\": \"") && stateHas("daemon.state_dir"); })) << state();
  EXPECT_NE(readFile(dir_ / "daemon.log").find("daemon.state_dir: cannot change on reload"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "run2" / "state.json"));
}

}  // namespace

namespace {

// Issue 12: one journal status line per change, not one per step of it (the reconcile, the
// IKE start it triggers at once, that start's completion: milliseconds apart).
TEST_F(DaemonTest, OneStatusLinePerChange) {
  writeConfig("  ranges: auto\n");
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return stateHas("\"tap_state\": \"absent\""); }));
  auto statusLines = [&] {
    std::string log = readFile(dir_ / "daemon.log");
    int n = 0;
    for (auto p = log.find(" status: "); p != std::string::npos; p = log.find(" status: ", p + 1)) ++n;
    return n;
  };
  ASSERT_TRUE(waitFor([&] { return statusLines() >= 1; }));
  int before = statusLines();
  tapUp();
  ASSERT_TRUE(waitFor([&] { return restarts() == 1 && stateHas("\"last_restart_result\": \"done\""); }));
  ASSERT_TRUE(waitFor([&] { return statusLines() > before; }));
  std::this_thread::sleep_for(300ms);  // past the 100 ms coalescing window: any further line is out
  int lines = statusLines() - before;
  std::cout << "status lines for tap up + IKE start: " << lines << "\n";
  EXPECT_LE(lines, 2) << readFile(dir_ / "daemon.log");
  EXPECT_NE(readFile(dir_ / "daemon.log").rfind("restarted"), std::string::npos);
}

}  // namespace
