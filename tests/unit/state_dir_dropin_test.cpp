// daemon.state_dir and the IKE units' drop-ins (systemd/*.service.d-ipop-ipsec.conf): the
// drop-ins start racoon.service / strongswan.service only when the ipop-up flag exists at a
// fixed path. A config that would keep the flag elsewhere while the daemon restarts one of
// those units is refused by name; and the drop-in files in the repository name exactly the
// flag the code writes with the default state_dir, for exactly the units the check knows.

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/config/config.hpp"

namespace ipopsec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<ConfigIssue> issuesOf(const std::string& yaml) {
  try {
    parseConfig(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.issues();
  }
  return {};
}

std::vector<std::string> stateDirIssues(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& i : issuesOf(yaml))
    if (i.keyPath == "daemon.state_dir") out.push_back(i.str());
  return out;
}

TEST(StateDirDropIn, AnotherStateDirWithADropInUnitIsRefusedNamingKeyAndWhy) {
  auto issues = issuesOf("ike:\n  backend: strongswan\ndaemon:\n  state_dir: /srv/ipop\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].keyPath, "daemon.state_dir");
  EXPECT_EQ(issues[0].line, 4);
  EXPECT_EQ(issues[0].column, 14);
  EXPECT_THAT(issues[0].message, HasSubstr("ike.unit strongswan.service"));
  EXPECT_THAT(issues[0].message, HasSubstr("/run/ipop-ipsec/ipop-up"));
  EXPECT_THAT(issues[0].message, HasSubstr("would never start"));
  // racoon's unit (the default backend) carries the same drop-in.
  EXPECT_THAT(stateDirIssues("daemon:\n  state_dir: /tmp/x\n"), ElementsAre(HasSubstr("ike.unit racoon.service")));
  EXPECT_THAT(stateDirIssues("ike:\n  control: systemd\n  unit: racoon.service\ndaemon:\n  state_dir: /run/ipop\n"),
              ElementsAre(HasSubstr("t.yaml:5:14: daemon.state_dir:")));
}

TEST(StateDirDropIn, TheDefaultOrAUnitWithoutTheDropInOrCommandControlIsAccepted) {
  EXPECT_THAT(issuesOf("daemon:\n  state_dir: /run/ipop-ipsec\n"), IsEmpty());
  EXPECT_THAT(issuesOf("daemon:\n  state_dir: /run/ipop-ipsec/\n"), IsEmpty());
  EXPECT_THAT(issuesOf("daemon:\n  state_dir: /run/./ipop-ipsec\n"), IsEmpty());
  EXPECT_THAT(issuesOf("ike:\n  unit: my-ike.service\ndaemon:\n  state_dir: /tmp/x\n"), IsEmpty());
  EXPECT_THAT(issuesOf("ike:\n  control: command\n  restart_command: [/bin/true]\ndaemon:\n  state_dir: /tmp/x\n"),
              IsEmpty());
  // An invalid ike.control is reported as such, not as a drop-in contradiction.
  EXPECT_THAT(stateDirIssues("ike:\n  control: sysvinit\ndaemon:\n  state_dir: /tmp/x\n"), IsEmpty());
}

// The ConditionPathExists= lines of a unit file (drop-in).
std::vector<std::string> conditionPaths(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  const std::string key = "ConditionPathExists=";
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) out.push_back(line.substr(key.size()));
  return out;
}

TEST(StateDirDropIn, TheRepositorysDropInsTestTheFlagAtTheDefaultStateDirForTheBackendsUnits) {
  const std::filesystem::path dir = std::filesystem::path(IPOPSEC_SOURCE_DIR) / "systemd";
  const std::string suffix = ".d-ipop-ipsec.conf";
  std::set<std::string> units;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    units.insert(name.substr(0, name.size() - suffix.size()));
    SCOPED_TRACE(name);
    EXPECT_THAT(conditionPaths(e.path()),
                ElementsAre(Config{}.daemon.stateDir + "/" + Config::Daemon::kIpopUpFile));
  }
  // The units the config check treats as carrying the drop-in (the backends' default units)
  // are the ones that have one.
  std::set<std::string> backendUnits;
  for (const auto& row : kBackendDefaults) backendUnits.insert(row.unit);
  EXPECT_EQ(units, backendUnits);
}

}  // namespace
}  // namespace ipopsec
