// Fault injection: the IKE daemon can't be restarted. No system bus (control: systemd with
// DBUS_SYSTEM_BUS_ADDRESS pointing nowhere), a restart command that fails, one that hangs.
// Expected: bounded retries with exponential backoff, visible in state.json
// (restart_failures, last_restart_result, the status line) and in the log, policies in
// place throughout, and no busy loop (the daemon's CPU time stays low while it retries).

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "integration/fault_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class FaultRestartTest : public FaultFixture {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();
    prepare("fault-restart");
    sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
    carrier_ = TapCarrier("ipop");  // IPOP's controller holds the tap open: carrier
  }

  void writeConfig(const std::string& ike) {
    std::ofstream(dir_ / "ipop-ipsecd.yaml")
        << "ipop:\n  interface: ipop\nprotect:\n  ranges: [10.254.0.0/16]\n"
        << "ike:\n" << ike << "  quiet_period: 100ms\n  min_interval: 200ms\n"
        << "racoon:\n  config: " << (dir_ / "racoon.conf").string() << "\n  spd_file: "
        << (dir_ / "ipsec-tools.conf").string() << "\n  certificate_dir: " << (dir_ / "certs").string() << "\n"
        << "daemon:\n  state_dir: " << (dir_ / "run").string() << "\n  remember_dir: " << (dir_ / "lib").string() << "\n  log_level: debug\n";
  }
  // A restart script: logs each attempt (monotonic seconds), then runs `body`.
  std::string script(const std::string& body) {
    auto p = dir_ / "restart.sh";
    std::ofstream(p) << "#!/bin/sh\ncut -d' ' -f1 /proc/uptime >> " << (dir_ / "attempts.log").string() << "\n"
                     << body << "\n";
    fs::permissions(p, fs::perms::owner_all);
    return p.string();
  }
  std::vector<double> attempts() {
    std::vector<double> v;
    std::istringstream in(readFile(dir_ / "attempts.log"));
    for (double t; in >> t;) v.push_back(t);
    return v;
  }
  int restartFailures() {
    std::string s = state();
    auto pos = s.find("\"restart_failures\": ");
    return pos == std::string::npos ? -1 : std::atoi(s.c_str() + pos + 20);
  }
  bool protects() {
    XfrmPolicyTable t(250000, 1000);
    std::vector<Policy> v;
    return !t.list(v) && v.size() == 4;  // out/in, R->R and ANY->R
  }

  // Over `window`: the daemon keeps retrying (at least `minAttempts` failures in all), never
  // more than `maxAttempts`, with little CPU.
  void expectBoundedRetries(std::chrono::seconds window, int minAttempts, int maxAttempts) {
    ASSERT_TRUE(waitUntil([&] { return restartFailures() >= 1; }, 10s)) << state();
    double cpu0 = daemon_.cpuSeconds();
    auto t0 = std::chrono::steady_clock::now();
    // The window is the measurement itself (how often it retries in this time), not a wait
    // standing in for an event.
    std::this_thread::sleep_for(window);
    double cpu = daemon_.cpuSeconds() - cpu0;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int failures = restartFailures();
    EXPECT_GE(failures, minAttempts) << "it must keep retrying";
    EXPECT_LE(failures, maxAttempts) << "retries must back off";
    EXPECT_LT(cpu, 0.05 * secs + 0.1) << "busy loop: " << cpu << " s CPU in " << secs << " s";
    EXPECT_TRUE(stateHas("\"healthy\": false"));
    EXPECT_TRUE(stateHas("restart failing")) << "the status line must say so";
    EXPECT_GE(logCount("restart failed"), failures - 1);
    EXPECT_TRUE(protects()) << "policies stay in while the IKE daemon can't be restarted";
    std::cout << "  " << failures << " failed restarts, " << cpu << " s CPU in " << secs << " s\n";
  }
};

TEST_F(FaultRestartTest, NoSystemBusRetriesWithBackoffWithoutBusyLoop) {
  // Not racoon.service: its drop-in needs the default daemon.state_dir (a temp one here).
  writeConfig("  control: systemd\n  unit: ike-test.service\n  restart_timeout: 2s\n");
  start({"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/system_bus_socket"});
  ASSERT_TRUE(waitUntil([&] { return stateHas("\"last_restart_result\": \"failed"); })) << state();
  // Backoff 2 s, 4 s, 8 s after the failures: in 9 s, 2 to 4 failed attempts (plus the first).
  expectBoundedRetries(9s, 3, 5);
}

TEST_F(FaultRestartTest, FailingCommandBacksOffThenRecoversAndSaysSo) {
  // Fails twice, then works.
  std::string counter = (dir_ / "count").string();
  writeConfig("  control: command\n  restart_command: [\"" +
              script("n=$(cat " + counter + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " + counter +
                     "; [ $n -ge 3 ] || { echo 'racoon: cannot bind' >&2; exit 1; }") +
              "\"]\n  restart_timeout: 5s\n");
  start();
  ASSERT_TRUE(waitUntil([&] { return restartFailures() == 1; })) << state();
  EXPECT_TRUE(stateHas("exited with status 1")) << state();
  ASSERT_TRUE(waitUntil([&] { return stateHas("\"last_restart_result\": \"done\""); }, 20s)) << state();
  auto t = attempts();
  ASSERT_EQ(t.size(), 3U);
  double gap1 = t[1] - t[0], gap2 = t[2] - t[1];
  EXPECT_GE(gap1, 1.5) << "backoff after the first failure";
  EXPECT_GE(gap2, 1.5 * gap1) << "the backoff grows";
  EXPECT_EQ(restartFailures(), 0);
  EXPECT_TRUE(waitUntil([&] { return stateHas("\"healthy\": true"); })) << state();
  EXPECT_EQ(logCount("restart failed"), 2);
}

TEST_F(FaultRestartTest, HangingCommandTimesOutIsKilledAndRetriedWithBackoff) {
  std::string pids = (dir_ / "pids").string();
  writeConfig("  control: command\n  restart_command: [\"" + script("echo $$ >> " + pids + "; exec sleep 1000") +
              "\"]\n  restart_timeout: 300ms\n");
  start();
  ASSERT_TRUE(waitUntil([&] { return stateHas("\"last_restart_result\": \"failed"); })) << state();
  expectBoundedRetries(7s, 2, 5);
  // Every hung command was killed (its process group got SIGTERM at the timeout).
  std::istringstream in(readFile(pids));
  int n = 0;
  for (pid_t pid; in >> pid; ++n)
    EXPECT_TRUE(waitUntil([&] { return !fs::exists("/proc/" + std::to_string(pid)) ||
                                       readFile("/proc/" + std::to_string(pid) + "/stat").find(") Z") != std::string::npos; },
                          6s))
        << "hung restart command " << pid << " still running";
  EXPECT_GE(n, 2);
}

}  // namespace
