#pragma once
// The whole daemon (the real binary) on the real kernel, in a private network namespace
// per test: a real tap, real rtnetlink events, real XFRM policies. IKE control is
// `command`: a script that records each restart and the tap's addresses at that moment.
// Shared by the daemon's integration tests.

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

#include "integration/netns.hpp"
#include "integration/pki_fixtures.hpp"
#include "os/xfrm.hpp"

namespace ipopsec::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline int countLines(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (!line.empty()) ++n;
  return n;
}

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
    stopDaemon(SIGTERM);
    if (HasFailure() && fs::exists(dir_ / "daemon.log")) std::cerr << "--- daemon log:\n" << readFile(dir_ / "daemon.log");
    fs::remove_all(dir_);
  }

  // `extra`: more sections after daemon:; `daemonExtra`: more keys under daemon: (indented).
  void writeConfig(const std::string& protect, const std::string& extra = "", const std::string& daemonExtra = "") {
    std::ofstream(dir_ / "ipop-ipsecd.yaml")
        << "ipop:\n  interface: ipop\n"
        << "protect:\n" << protect
        << "ike:\n  control: command\n  restart_command: [\"" << (dir_ / "restart.sh").string() << "\"]\n"
        << "  quiet_period: 300ms\n  min_interval: 1s\n"
        << "racoon:\n  config: " << (dir_ / "racoon.conf").string() << "\n  spd_file: "
        << (dir_ / "ipsec-tools.conf").string() << "\n  certificate_dir: " << (dir_ / "certs").string() << "\n"
        << "daemon:\n  state_dir: " << (dir_ / "run").string() << "\n  remember_dir: " << (dir_ / "lib").string() << "\n  log_level: debug\n"
        << daemonExtra << extra;
  }

  void startDaemon() {
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      int fd = ::open((dir_ / "daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(IPOPSEC_BINARY, "ipop-ipsecd", "--config", (dir_ / "ipop-ipsecd.yaml").c_str(), nullptr);
      ::_exit(127);
    }
  }
  int stopDaemon(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  // Waits (bounded) for a condition that a real event makes true.
  template <class F>
  bool waitFor(F pred, std::chrono::milliseconds timeout = 10s) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return pred();
  }

  std::vector<Policy> owned(std::uint32_t protect = 250000, std::uint32_t bypass = 1000) {
    XfrmPolicyTable t(protect, bypass);
    std::vector<Policy> v;
    EXPECT_FALSE(t.list(v));
    return v;
  }
  std::vector<Cidr> protectedRanges() {
    std::vector<Cidr> r;
    for (const auto& p : owned())
      if (p.action == PolicyAction::protect && p.dir == Direction::out && p.sel.src == p.sel.dst) r.push_back(p.sel.dst);
    std::sort(r.begin(), r.end());
    return r;
  }
  bool protects(const char* range) {
    auto r = protectedRanges();
    return r == std::vector<Cidr>{*Cidr::parse(range)};
  }
  int restarts() { return countLines(dir_ / "restarts.log"); }
  std::string state() { return readFile(dir_ / "run" / "state.json"); }
  bool stateHas(const std::string& s) { return state().find(s) != std::string::npos; }

  fs::path dir_;
  pid_t pid_ = -1;
};

}  // namespace ipopsec::test
