#pragma once
// The fixture the fault-injection tests (fault_*_test.cpp) share: the real daemon in a fresh
// private network namespace, with a temp directory dir_ (/tmp/ipopsec-<name>-<pid>) holding
// its certificates (a valid host set), its state directory and, when asked, an IKE restart
// script that records each restart. At the end the daemon is stopped by its pid, its log
// printed when the test failed, and the directory removed. Each test writes its own config
// (ipop-ipsecd.yaml in dir_) and makes its own tap.

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "integration/fault_support.hpp"
#include "integration/netns.hpp"
#include "integration/pki_fixtures.hpp"
#include "integration/tap_carrier.hpp"
#include "os/netlink/xfrm.hpp"

namespace ipopsec::test {

class FaultFixture : public ::testing::Test {
 protected:
  // A fresh namespace, and dir_ with certs/ (a host set valid at `ips`), run/ and `dirs`.
  // SetUp calls IPOPSEC_REQUIRE_ROOT() first (a skip in a helper would not end SetUp).
  void prepare(const std::string& name, const std::vector<std::string>& dirs = {},
               const std::vector<std::string>& ips = {"10.254.0.16"}) {
    enterFreshNetns();
    dir_ = std::filesystem::temp_directory_path() / ("ipopsec-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "certs");
    std::filesystem::create_directories(dir_ / "run");
    for (const auto& d : dirs) std::filesystem::create_directories(dir_ / d);
    auto spec = hostSpec(ips.front());
    spec.ips = ips;
    writeHostSet(dir_ / "certs", makeTestCa(), spec);
  }
  // restart.sh: each run appends "restart" to restarts.log (restarts() counts them).
  void writeRestartScript() {
    std::ofstream(dir_ / "restart.sh") << "#!/bin/sh\necho restart >> " << (dir_ / "restarts.log").string() << "\n";
    std::filesystem::permissions(dir_ / "restart.sh", std::filesystem::perms::owner_all);
  }
  void TearDown() override {
    daemon_.stop(SIGTERM);
    if (HasFailure()) {
      std::string log = readFile(dir_ / "daemon.log");
      if (logTail_ > 0 && log.size() > logTail_) log = log.substr(log.size() - logTail_);
      std::cerr << (logTail_ > 0 ? "--- daemon log (tail):\n" : "--- daemon log:\n") << log;
    }
    std::filesystem::remove_all(dir_);
  }

  void start(const std::vector<std::string>& env = {}) {
    daemon_.start(IPOPSEC_BINARY, dir_ / "ipop-ipsecd.yaml", dir_ / "daemon.log", env);
  }
  std::string state() { return readFile(dir_ / "run" / "state.json"); }
  bool stateHas(const std::string& s) { return state().find(s) != std::string::npos; }
  int restarts() { return countLinesIn(dir_ / "restarts.log"); }
  // How often `needle` stands in the daemon's log.
  int logCount(const std::string& needle) {
    std::string log = readFile(dir_ / "daemon.log");
    int n = 0;
    for (auto pos = log.find(needle); pos != std::string::npos; pos = log.find(needle, pos + 1)) ++n;
    return n;
  }
  // The daemon's policies in the kernel (Policy::str()), sorted; "(list failed)" when the
  // kernel could not be read.
  std::vector<std::string> owned() {
    XfrmPolicyTable t(250000, 1000);
    std::vector<Policy> v;
    if (t.list(v)) return {"(list failed)"};
    std::vector<std::string> s;
    for (const auto& p : v) s.push_back(p.str());
    std::sort(s.begin(), s.end());
    return s;
  }

  std::filesystem::path dir_;
  DaemonProcess daemon_;
  TapCarrier carrier_;        // IPOP's controller holding the tap open: carrier
  std::size_t logTail_ = 0;  // > 0: a failed test prints only the log's last bytes
};

}  // namespace ipopsec::test
