// Regression tests for the defects the evidence harnesses found (issue 7): the inputs the
// fuzz targets (tests/fuzz/) found, replayed from tests/fuzz/regressions/ with a hand-made
// input stating each defect, and the quadratic cost the scale benchmark (tests/bench/) found.
// (The temp-file leak that the SIGKILL fault test found has its regression test there:
// tests/integration/fault_sigkill_test.cpp.)
#include <linux/netlink.h>
#include <linux/xfrm.h>

#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <iostream>
#include <sstream>
#include <vector>

#include "core/config.hpp"
#include "core/desired.hpp"
#include "daemon/state_file.hpp"
#include "os/rtnetlink.hpp"
#include "os/xfrm.hpp"

namespace ipopsec {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::string readInput(const std::string& name) {
  std::ifstream in(std::string(IPOPSEC_SOURCE_DIR) + "/tests/fuzz/regressions/" + name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// parseConfig with a bound: a hang is reported as a failure, not a stuck test run.
std::vector<ConfigIssue> issuesWithin(const std::string& text, std::chrono::seconds bound = std::chrono::seconds(10)) {
  auto fut = std::async(std::launch::async, [text] {
    try {
      parseConfig(text, "fuzz.yaml");
      return std::vector<ConfigIssue>{};
    } catch (const ConfigError& e) {
      return e.issues();
    }
  });
  if (fut.wait_for(bound) != std::future_status::ready) {
    std::cerr << "parseConfig did not return within " << bound.count() << " s: hang\n";
    std::_Exit(1);  // the parser thread can't be stopped
  }
  return fut.get();
}

// Defect 1: yaml-cpp 0.7's YAML::LoadAll loops forever (allocating without bound) on a
// stream whose first token can't start a node: a config file "," hung the daemon at
// start or on SIGHUP. The config parser no longer uses LoadAll.
TEST(FuzzRegression, ConfigStartingWithACommaIsASyntaxErrorNotAHang) {
  for (std::string text : {readInput("config_loadall_comma_hang.yaml"), std::string(","), std::string("\n\n,"),
                           std::string("  ,b"), std::string("---\n,b\n")}) {
    auto issues = issuesWithin(text);
    ASSERT_FALSE(issues.empty()) << text;
    EXPECT_FALSE(issues.front().message.empty());
  }
}

TEST(FuzzRegression, ASecondDocumentStartingWithACommaIsStillCounted) {
  auto issues = issuesWithin("ipop:\n  interface: ipop\n---\n,b\n");
  ASSERT_FALSE(issues.empty());
  bool counted = false;
  for (const auto& i : issues) counted = counted || i.message.find("YAML documents") != std::string::npos;
  EXPECT_TRUE(counted) << issues.front().str();
}

Bytes message(std::uint16_t type, std::int32_t code) {
  Bytes b(NLMSG_SPACE(sizeof(nlmsgerr)), 0);
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof(nlmsgerr)));
  h.nlmsg_type = type;
  std::memcpy(b.data(), &h, sizeof h);
  std::memcpy(b.data() + NLMSG_HDRLEN, &code, sizeof code);
  return b;
}

// Defect 2: an NLMSG_ERROR or NLMSG_DONE carrying INT_MIN as its error was negated
// (signed overflow, undefined behaviour) by the XFRM dump decoders.
TEST(FuzzRegression, XfrmErrorCodeIntMinIsAProtocolErrorNotOverflow) {
  auto p = xfrm::decodePolicyDump(message(NLMSG_ERROR, INT_MIN), xfrm::Owned{250000, 1000, {}});
  EXPECT_EQ(p.error, EPROTO);
  auto s = xfrm::decodeStateDump(message(NLMSG_DONE, INT_MIN));
  EXPECT_EQ(s.error, EPROTO);
  auto ok = xfrm::decodePolicyDump(message(NLMSG_ERROR, -ENOENT), xfrm::Owned{250000, 1000, {}});
  EXPECT_EQ(ok.error, ENOENT);

  // The inputs the fuzzer found (first byte: the target's selector byte).
  for (const char* name : {"xfrm_policy_error_int_min.bin", "xfrm_state_done_int_min.bin"}) {
    std::string raw = readInput(name);
    ASSERT_GT(raw.size(), 1U) << name;
    Bytes buf(raw.begin() + 1, raw.end());
    auto pr = xfrm::decodePolicyDump(buf, xfrm::Owned{250000, 1000, {}});
    auto sr = xfrm::decodeStateDump(buf);
    EXPECT_TRUE(pr.error == 0 || pr.error == EPROTO || pr.error > 0) << name;
    EXPECT_GE(sr.error, 0) << name;
  }
}

// Defect 3: computeDesired dropped nested ranges with a pairwise check, quadratic in the
// number of ranges (15 ms at 1,000, about 1.5 s at 10,000, on every reconcile). It is now
// one pass over the sorted ranges; this checks the pass against the pairwise definition.
TEST(ScaleRegression, NestedRangesKeepTheOutermostSameAsPairwise) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    Config cfg;  // ranges: auto, IPv4 and IPv6
    cfg.protect.ipv6 = true;
    LinkState tap;
    tap.index = 2;
    tap.name = cfg.ipop.interface;
    tap.up = tap.running = true;
    int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      IpAddress a = IpAddress::v4(10, static_cast<std::uint8_t>(rng() % 3), static_cast<std::uint8_t>(rng() % 3),
                                  static_cast<std::uint8_t>(1 + rng() % 3));
      int prefix = 8 + static_cast<int>(rng() % 4) * 8;
      if (rng() % 5 == 0) {
        a = *IpAddress::parse("fd50::" + std::to_string(1 + rng() % 3));
        prefix = 48 + static_cast<int>(rng() % 3) * 16;
      }
      tap.addresses.push_back(Cidr{a, prefix});
    }
    NetSnapshot net;
    net.links[2] = tap;
    Desired d = computeDesired(cfg, net, CertFiles{}, {});
    std::vector<Cidr> nets;
    for (const auto& a : tap.addresses) nets.push_back(a.network());
    std::vector<Cidr> want;
    for (const auto& c : nets) {
      bool inner = std::any_of(nets.begin(), nets.end(), [&](const Cidr& o) { return o != c && o.contains(c); });
      if (!inner && std::find(want.begin(), want.end(), c) == want.end()) want.push_back(c);
    }
    std::sort(want.begin(), want.end());
    EXPECT_EQ(d.ranges, want) << "round " << round;
  }
}

TEST(ScaleRegression, TenThousandHeldRangesAreComputed) {
  // The held ranges (the tap lost its address) are where many ranges reach this code.
  std::vector<Cidr> held;
  for (int i = 0; i < 10000; ++i)
    held.push_back(*Cidr::parse("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24"));
  held.push_back(*Cidr::parse("10.3.0.0/16"));  // contains 256 of them
  Config cfg;
  Desired d = computeDesired(cfg, NetSnapshot{}, CertFiles{}, held);
  EXPECT_TRUE(d.heldRanges);
  EXPECT_EQ(d.ranges.size(), 10000U - 256U + 1U);
  EXPECT_EQ(d.policies.size(), 4 * d.ranges.size());  // R->R and ANY->R, in and out
}

}  // namespace
}  // namespace ipopsec

namespace ipopsec {
namespace {

// Defect 6 (fuzz smoke in CI): a config whose racoon.host_key held a control character
// validated, then the racoon renderer threw RenderError from computeDesired. Paths and file
// names that go into quoted strings are now checked by the config validator.
TEST(EvidenceRegression, ControlCharacterInACertificateFileNameIsAConfigError) {
  std::string text = readInput("config_control_char_in_host_key.yaml");
  ASSERT_FALSE(text.empty());
  auto issues = issuesWithin(text);
  if (issues.empty()) {
    // If the fuzzed file happens to validate, rendering it must not throw either.
    Config cfg = parseConfig(text, "fuzz.yaml");
    EXPECT_NO_THROW(computeDesired(cfg, NetSnapshot{}, CertFiles{}, {}));
  }
  auto bad = issuesWithin("racoon:\n  host_key: \"key\\x01.pem\"\n");
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].keyPath, "racoon.host_key");
  EXPECT_NE(bad[0].message.find("control character"), std::string::npos) << bad[0].message;
  auto quote = issuesWithin("racoon:\n  config: '/etc/rac\"oon.conf'\n");
  ASSERT_EQ(quote.size(), 1u);
  EXPECT_EQ(quote[0].keyPath, "racoon.config");
}

}  // namespace
}  // namespace ipopsec
