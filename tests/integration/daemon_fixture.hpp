#pragma once
// The whole daemon (the real binary) on the real kernel, in a private network namespace
// per test: a real tap, real rtnetlink events, real XFRM policies. IKE control is
// `command`: a script that records each restart and the tap's addresses at that moment.
// Shared by the daemon's integration tests; the process and file helpers are
// fault_support.hpp's.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "integration/fault_support.hpp"
#include "integration/netns.hpp"
#include "integration/pki_fixtures.hpp"
#include "integration/protection.hpp"
#include "integration/tap_carrier.hpp"
#include "os/netlink/xfrm.hpp"

namespace ipopsec::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class DaemonFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();
    enterFreshNetns();
    dir_ = fs::temp_directory_path() / ("ipopsec-daemon-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "certs");
    fs::create_directories(dir_ / "run");
    writeHostSet(dir_ / "certs", makeTestCa());  // a valid set: the daemon checks them before every restart
    std::ofstream(dir_ / "restart.sh") << "#!/bin/sh\n"
                                          "echo \"$(ip -o addr show dev ipop 2>/dev/null | awk '{print $4}' | tr '\\n' ' ')\" >> "
                                       << (dir_ / "restarts.log").string() << "\n";
    fs::permissions(dir_ / "restart.sh", fs::perms::owner_all);
    sh("ip link add eth0 type veth peer name lan0 && ip addr add 192.168.1.5/24 dev eth0 && ip link set eth0 up");
  }
  void TearDown() override {
    if (acquireMonitor_ > 0) {
      ::kill(acquireMonitor_, SIGKILL);
      ::waitpid(acquireMonitor_, nullptr, 0);
      acquireMonitor_ = -1;
    }
    stopDaemon(SIGTERM);
    if (HasFailure() && fs::exists(dir_ / "daemon.log")) std::cerr << "--- daemon log:\n" << readFile(dir_ / "daemon.log");
    fs::remove_all(dir_);
  }

  // `extra`: more sections after daemon:; `daemonExtra`: more keys under daemon: (indented).
  void writeConfig(const std::string& protect, const std::string& extra = "", const std::string& daemonExtra = "",
                   const std::string& ikeExtra = "") {
    std::ofstream(dir_ / "ipop-ipsecd.yaml")
        << "ipop:\n  interface: ipop\n"
        << "protect:\n" << protect
        << "ike:\n  control: command\n  restart_command: [\"" << (dir_ / "restart.sh").string() << "\"]\n"
        << "  quiet_period: 300ms\n  min_interval: 1s\n" << ikeExtra
        << "racoon:\n  config: " << (dir_ / "racoon.conf").string() << "\n  spd_file: "
        << (dir_ / "ipsec-tools.conf").string() << "\n  certificate_dir: " << (dir_ / "certs").string() << "\n"
        << "daemon:\n  state_dir: " << (dir_ / "run").string() << "\n  remember_dir: " << (dir_ / "lib").string() << "\n  log_level: debug\n"
        << daemonExtra << extra;
  }

  // The tap IPOP makes, up at `addr`, held open as IPOP's controller holds it (carrier_).
  void tapUp(const std::string& addr = "10.254.0.16/16") {
    sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add " + addr + " dev ipop");
    carrier_ = TapCarrier("ipop");
  }

  void startDaemon() { daemon_.start(IPOPSEC_BINARY, dir_ / "ipop-ipsecd.yaml", dir_ / "daemon.log"); }
  // Sends `sig` and reaps the daemon; its wait status (-1 when none ran).
  int stopDaemon(int sig) { return daemon_.stop(sig); }

  // Waits (bounded) for a condition that a real event makes true.
  template <class F>
  bool waitFor(F pred, std::chrono::milliseconds timeout = 10s) {
    return waitUntil(pred, timeout, 5ms);
  }

  std::vector<Policy> owned(std::uint32_t protect = 250000, std::uint32_t bypass = 1000) {
    XfrmPolicyTable t(protect, bypass);
    std::vector<Policy> v;
    EXPECT_FALSE(t.list(v));
    return v;
  }
  // The ranges whose every policy (protection.hpp: out and in, R->R and ANY->R, `require`;
  // IPv6 also the neighbour discovery bypasses) the kernel holds at the daemon's priorities.
  std::vector<Cidr> protectedRanges() { return fullyProtectedRanges(owned()); }
  // The daemon protects exactly `range`: all of its policies are in, and no other range
  // has a protect policy of the daemon's.
  bool protects(const char* range) {
    auto all = owned();
    const std::vector<Cidr> want{*Cidr::parse(range)};
    return fullyProtectedRanges(all) == want && outRanges(all) == want;
  }
  int restarts() { return countLinesIn(dir_ / "restarts.log"); }
  std::string state() { return readFile(dir_ / "run" / "state.json"); }
  bool stateHas(const std::string& s) { return state().find(s) != std::string::npos; }

  // The larval (ACQUIRE-made, not yet keyed) states in the kernel's SAD.
  std::size_t larvalStates() {
    XfrmPolicyTable t(250000, 1000);
    std::vector<xfrm::StateInfo> states;
    EXPECT_FALSE(t.listStates(states));
    return static_cast<std::size_t>(std::count_if(states.begin(), states.end(), [](const auto& s) { return s.larval(); }));
  }
  // One UDP datagram to a range address, returning at once (ping would wait for a reply):
  // with no SA, the kernel asks its key managers (and makes a larval state).
  void sendOne() { sh("bash -c 'echo probe > /dev/udp/10.254.0.17/9' 2>/dev/null || true"); }

  // A key manager listening for ACQUIREs (`ip xfrm monitor acquire`), so that the kernel
  // keeps the larval state a packet into a protected range makes; stopped by its pid in
  // TearDown.
  void startAcquireMonitor() {
    acquireMonitor_ = ::fork();
    ASSERT_GE(acquireMonitor_, 0);
    if (acquireMonitor_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::execlp("ip", "ip", "xfrm", "monitor", "acquire", nullptr);
      ::_exit(127);
    }
  }

  fs::path dir_;
  DaemonProcess daemon_;
  TapCarrier carrier_;  // tapUp's: IPOP's controller holding the tap open
  pid_t acquireMonitor_ = -1;
};

}  // namespace ipopsec::test
