// Replays every input the fuzz targets (tests/fuzz/) found a defect with, so each fix
// stays fixed in the ordinary (and the ASan+UBSan) test run. The inputs live in
// tests/fuzz/regressions/; each test also states the defect with a hand-made input.
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
#include <iostream>
#include <sstream>
#include <vector>

#include "core/config.hpp"
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
  auto p = xfrm::decodePolicyDump(message(NLMSG_ERROR, INT_MIN), xfrm::Owned{250000, 1000});
  EXPECT_EQ(p.error, EPROTO);
  auto s = xfrm::decodeStateDump(message(NLMSG_DONE, INT_MIN));
  EXPECT_EQ(s.error, EPROTO);
  auto ok = xfrm::decodePolicyDump(message(NLMSG_ERROR, -ENOENT), xfrm::Owned{250000, 1000});
  EXPECT_EQ(ok.error, ENOENT);

  // The inputs the fuzzer found (first byte: the target's selector byte).
  for (const char* name : {"xfrm_policy_error_int_min.bin", "xfrm_state_done_int_min.bin"}) {
    std::string raw = readInput(name);
    ASSERT_GT(raw.size(), 1U) << name;
    Bytes buf(raw.begin() + 1, raw.end());
    auto pr = xfrm::decodePolicyDump(buf, xfrm::Owned{250000, 1000});
    auto sr = xfrm::decodeStateDump(buf);
    EXPECT_TRUE(pr.error == 0 || pr.error == EPROTO || pr.error > 0) << name;
    EXPECT_GE(sr.error, 0) << name;
  }
}

}  // namespace
}  // namespace ipopsec
