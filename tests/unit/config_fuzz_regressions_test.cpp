// parseConfig on the inputs the config fuzz target (tests/fuzz/config_fuzz.cpp) found,
// replayed from tests/fuzz/regressions/ with the verdict each must get, and hand-made
// inputs stating each defect.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "core/config/parse_config.hpp"
#include "core/reconcile/desired.hpp"
#include "support/fuzz_regression.hpp"

namespace ipopsec {
namespace {

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
TEST(ConfigFuzzRegression, ConfigStartingWithACommaIsASyntaxErrorNotAHang) {
  ASSERT_FALSE(test::readFuzzRegression("config_loadall_comma_hang.yaml").empty());
  for (std::string text : {test::readFuzzRegression("config_loadall_comma_hang.yaml"), std::string(","), std::string("\n\n,"),
                           std::string("  ,b"), std::string("---\n,b\n")}) {
    auto issues = issuesWithin(text);
    ASSERT_FALSE(issues.empty()) << "must be rejected: " << text;
    EXPECT_FALSE(issues.front().message.empty());
  }
}

TEST(ConfigFuzzRegression, ASecondDocumentStartingWithACommaIsStillCounted) {
  auto issues = issuesWithin("ipop:\n  interface: ipop\n---\n,b\n");
  ASSERT_FALSE(issues.empty());
  bool counted = false;
  for (const auto& i : issues) counted = counted || i.message.find("YAML documents") != std::string::npos;
  EXPECT_TRUE(counted) << issues.front().str();
}

// Defect 6 (fuzz smoke in CI): a config whose racoon.host_key held a control character
// validated, then the racoon renderer threw RenderError from computeDesired. Paths and file
// names that go into quoted strings are now checked by the config validator (quoting.hpp,
// the same check as the renderer's).
TEST(ConfigFuzzRegression, ControlCharacterInACertificateFileNameIsAConfigError) {
  std::string text = test::readFuzzRegression("config_control_char_in_host_key.yaml");
  ASSERT_FALSE(text.empty());
  auto issues = issuesWithin(text);
  ASSERT_FALSE(issues.empty()) << "the fuzzer's file must be rejected";
  bool named = false;
  for (const auto& i : issues) named = named || i.message.find("control character") != std::string::npos;
  EXPECT_TRUE(named) << issues.front().str();
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
