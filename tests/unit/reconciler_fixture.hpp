#pragma once
// The Reconciler over fakes and a fake clock: the fixture shared by the core's reconcile
// tests (reconciler_test, fail_closed_test).

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/reconcile/reconciler.hpp"
#include "fakes.hpp"
#include "support/policy_builders.hpp"

namespace ipopsec::test {

using namespace std::chrono_literals;


inline LinkState link(int idx, const std::string& name, bool up, std::vector<const char*> addrs) {
  LinkState l;
  l.index = idx;
  l.name = name;
  l.up = up;
  l.running = up;
  for (auto a : addrs) l.addresses.push_back(C(a));
  return l;
}

struct ReconcilerFixture : ::testing::Test {
  Config cfg() {
    Config c;
    c.sourceFile = "/etc/ipop-ipsec/ipop-ipsecd.yaml";
    c.racoon.certificateDir = "/certs";
    return c;
  }
  void SetUp() override {
    files.files["/certs/cacert.pem"] = "CA";
    files.files["/certs/host-cert.pem"] = "CERT";
    files.files["/certs/host-key.pem"] = "KEY";
    net.links[1] = link(1, "lo", true, {"127.0.0.1/8"});
    net.links[2] = link(2, "eth0", true, {"192.168.1.5/24"});
  }
  void make(Config c) {
    r = std::make_unique<Reconciler>(std::move(c), policies, files, certs, unit, clock,
                                     [this](const Event& e) { events.push_back(e); });
  }
  // Runs the daemon's timer loop in fake time for `span`.
  void runFor(std::chrono::steady_clock::duration span) {
    auto end = clock.now() + span;
    while (true) {
      auto d = r->deadline();
      if (!d || *d > end) break;
      if (*d > clock.now()) clock.now_ = *d;
      r->onTimer(net);
    }
    clock.now_ = end;
  }
  bool hasEvent(const std::string& action, const std::string& needle) {
    for (const auto& e : events)
      if (e.action() == action && e.message.find(needle) != std::string::npos) return true;
    return false;
  }
  std::vector<Cidr> protectedRanges() { return rangesOf(policies.all()); }
  // Ranges whose in and out protect policies are both installed (what the kernel protects).
  std::vector<Cidr> inKernel() { return ipopsec::protectedRanges(policies.all()); }
  bool hasEvent(Severity s, const std::string& needle) {
    for (const auto& e : events)
      if (e.severity == s && e.message.find(needle) != std::string::npos) return true;
    return false;
  }
  bool anyEvent(const std::string& needle) {
    for (const auto& e : events)
      if (e.message.find(needle) != std::string::npos) return true;
    return false;
  }

  FakePolicyTable policies;
  FakeFileStore files;
  FakeCertificateInspector certs{files};
  FakeIkeController unit;
  FakeClock clock;
  NetSnapshot net;
  std::vector<Event> events;
  std::unique_ptr<Reconciler> r;
};

}  // namespace ipopsec::test
