// daemon.state_dir and the IKE units' drop-ins (systemd/*.service.d-ipop-ipsec.conf): the
// drop-ins start racoon.service / strongswan.service only when the ipop-up flag exists at a
// fixed path. A config that would keep the flag elsewhere while the daemon restarts one of
// those units is refused by name; and the drop-in files in the repository name exactly the
// flag the code writes with the default state_dir, for exactly the units the check knows;
// the service unit and the maintainer scripts use the code's state directory and file names.

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/config/parse_config.hpp"

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

// The value of the first line of `file` that starts with `key` ("" when none).
std::string valueOf(const std::filesystem::path& file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return line.substr(key.size());
  return "";
}

// The runtime paths the code builds from its constants (Config::Daemon) are the ones the
// service unit makes (RuntimeDirectory= under /run, StateDirectory= under /var/lib) and the
// package's maintainer scripts read (state.json's owned_priorities on remove and purge).
TEST(StateDirDropIn, TheServiceAndTheMaintainerScriptsUseTheCodesRuntimePaths) {
  const std::filesystem::path src(IPOPSEC_SOURCE_DIR);
  const Config cfg{};
  const auto service = src / "systemd" / "ipop-ipsecd.service";
  EXPECT_EQ("/run/" + valueOf(service, "RuntimeDirectory="), cfg.daemon.stateDir);
  EXPECT_EQ("/var/lib/" + valueOf(service, "StateDirectory="), cfg.daemon.rememberDir);
  for (const char* script : {"prerm", "postrm"}) {
    SCOPED_TRACE(script);
    EXPECT_EQ(valueOf(src / "packaging" / "debian" / script, "STATE="),
              cfg.daemon.stateDir + "/" + Config::Daemon::kStateFile);
  }
}

// The maintainer scripts decide which policies are the daemon's when no daemon runs (remove,
// purge): with no priority in the config they use the backends' defaults. Those must be the
// code's (kBackendDefaults, Config::Xfrm), or a purge would leave the daemon's policies in.
TEST(StateDirDropIn, TheMaintainerScriptsDefaultPrioritiesAreTheCodes) {
  const std::filesystem::path src(IPOPSEC_SOURCE_DIR);
  const std::string swan = std::to_string(backendDefaults(IkeBackend::strongswan).protectPriority);
  const std::string racoon = std::to_string(backendDefaults(IkeBackend::racoon).protectPriority);
  const std::string protect = "then protect=" + swan + "; else protect=" + racoon + "; fi";
  const std::string bypass = "is_number \"$bypass\" || bypass=" + std::to_string(Config{}.xfrm.bypassPriority);
  for (const char* script : {"prerm", "postrm"}) {
    SCOPED_TRACE(script);
    std::ifstream in(src / "packaging" / "debian" / script);
    ASSERT_TRUE(in) << "cannot read the script";
    int protectLines = 0, bypassLines = 0, anyProtect = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.find("protect=") != std::string::npos && line.find("; else protect=") != std::string::npos) {
        ++anyProtect;
        protectLines += line.find(protect) != std::string::npos;
      }
      bypassLines += line.find(bypass) != std::string::npos;
    }
    EXPECT_EQ(anyProtect, 1) << "one line chooses the protect priority by backend";
    EXPECT_EQ(protectLines, 1) << "it says: " << protect;
    EXPECT_EQ(bypassLines, 1) << "it says: " << bypass;
  }
}

}  // namespace
}  // namespace ipopsec
