// The IKE health check and the strongSwan renderer agree on charon's traps: for every
// connection the rendered swanctl.conf makes charon trap (start_action = trap), the daemon
// expects exactly the trap charon installs from it, `out <local_ts> -> <remote_ts>`
// (expectedTraps, from Desired::ikeInitiating), and no other; for IPv6-only and dual-stack
// nodes alike. tests/integration/strongswan_traps.sh checks the same against a real charon.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <sstream>

#include "core/reconcile/ike_health.hpp"
#include "core/render/render_swanctl.hpp"
#include "reconciler_fixture.hpp"
#include "strongswan_fixtures.hpp"

using namespace ipopsec;
using namespace ipopsec::test;

namespace {

// strongSwan with IPv6 ranges too (ranges: auto).
Config dualStackConfig() {
  Config c = swanConfig();
  c.protect.ipv6 = true;
  return c;
}

struct Child {
  std::string remoteAddrs, localTs, remoteTs, startAction;
};

// The children of a rendered swanctl.conf with their connection's remote_addrs (the
// renderer's fixed layout: connection keys at 8 spaces, child keys at 16).
std::vector<Child> childrenOf(const std::string& conf) {
  std::vector<Child> out;
  std::istringstream in(conf);
  std::string remoteAddrs;
  for (std::string line; std::getline(in, line);) {
    auto value = [&](const std::string& key) -> std::optional<std::string> {
      auto b = line.find_first_not_of(' ');
      if (b == std::string::npos || line.compare(b, key.size() + 3, key + " = ") != 0) return std::nullopt;
      return line.substr(b + key.size() + 3);
    };
    if (auto v = value("remote_addrs")) remoteAddrs = *v;
    if (value("mode")) out.push_back(Child{remoteAddrs, "", "", ""});
    if (auto v = value("local_ts")) out.back().localTs = *v;
    if (auto v = value("remote_ts")) out.back().remoteTs = *v;
    if (auto v = value("start_action")) out.back().startAction = *v;
  }
  return out;
}

std::string confOf(const Desired& d, const Config& cfg) {
  for (const auto& f : d.files)
    if (f.path == cfg.strongswan.config) return f.content;
  ADD_FAILURE() << "no " << cfg.strongswan.config << " rendered";
  return "";
}

// What charon installs for each trapping child, in the health check's words.
std::set<std::string> trapsOfConf(const std::string& conf) {
  std::set<std::string> out;
  for (const auto& c : childrenOf(conf))
    if (c.startAction == "trap") out.insert("out " + c.localTs + " -> " + c.remoteTs);
  return out;
}

std::set<std::string> expected(const Config& cfg, const Desired& d) {
  std::set<std::string> out;
  for (const auto& t : expectedTraps(cfg, d)) out.insert(t.str());
  return out;
}

TEST(SwanctlTraps, DualStackNodeOneTrapPerFamilyAsTheHealthCheckExpects) {
  Config cfg = dualStackConfig();
  NetSnapshot net;
  net.links[2] = link(2, "eth0", true, {"192.168.1.5/24"});
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16", "fd50:1234::16/64", "fe80::16/64"});
  Desired d = computeDesired(cfg, net, goodCerts(), {});
  const std::string conf = confOf(d, cfg);
  EXPECT_EQ(expected(cfg, d), (std::set<std::string>{"out 172.31.0.16/32 -> 172.31.0.0/16",
                                                      "out fd50:1234::16/128 -> fd50:1234::/64"}));
  EXPECT_EQ(trapsOfConf(conf), expected(cfg, d)) << conf;
  // Each trapping child's connection gives charon a template of the selectors' family.
  for (const auto& c : childrenOf(conf)) {
    bool v6 = c.remoteTs.find(':') != std::string::npos;
    EXPECT_EQ(c.remoteAddrs, c.remoteTs + (v6 ? ", ::" : "")) << c.remoteTs;
  }
}

TEST(SwanctlTraps, Ipv6OnlyNodeAndARangeWithoutAddressAgreeToo) {
  Config cfg = dualStackConfig();
  cfg.protect.autoRanges = false;
  cfg.protect.ranges = {C("fd50:1234::/64"), C("fd50:99::/64")};
  NetSnapshot net;
  net.links[7] = link(7, "ipop", true, {"fd50:1234::16/64", "fe80::16/64"});
  Desired d = computeDesired(cfg, net, goodCerts(), {});
  const std::string conf = confOf(d, cfg);
  EXPECT_EQ(expected(cfg, d), (std::set<std::string>{"out fd50:1234::16/128 -> fd50:1234::/64"}));
  EXPECT_EQ(trapsOfConf(conf), expected(cfg, d)) << conf;
  auto children = childrenOf(conf);
  ASSERT_EQ(children.size(), 2u);
  const Child& elsewhere = children[0].remoteTs == "fd50:99::/64" ? children[0] : children[1];
  EXPECT_EQ(elsewhere.remoteTs, "fd50:99::/64");
  EXPECT_EQ(elsewhere.startAction, "none") << "no address in fd50:99::/64: responder only, no trap expected";
  EXPECT_EQ(elsewhere.remoteAddrs, "fd50:99::/64");
}

}  // namespace
