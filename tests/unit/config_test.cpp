// parseConfig: every validation path, with the exact key path, line and column of each
// issue; every issue collected at once; defaults; derived values; warnings; the example
// file; and hostile input that must give clear errors, never a crash.

#include "core/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace ipopsec {

// Readable failure output: an issue prints as the operator would see it.
void PrintTo(const ConfigIssue& i, std::ostream* os) { *os << i.str(); }

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

MATCHER_P4(IsIssue, path, line, column, text, "") {
  return arg.keyPath == path && arg.line == line && arg.column == column &&
         arg.message.find(text) != std::string::npos && arg.file == "t.yaml";
}

std::vector<ConfigIssue> issuesOf(const std::string& yaml) {
  try {
    parseConfig(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    EXPECT_FALSE(e.issues().empty());
    return e.issues();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << yaml;
  return {};
}

Config parse(const std::string& yaml) {
  try {
    return parseConfig(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    ADD_FAILURE() << "unexpected ConfigError:\n" << e.what() << "\nfor:\n" << yaml;
  }
  return Config{};
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string kExample = IPOPSEC_SOURCE_DIR "/config/ipop-ipsecd.yaml";

// --- ConfigIssue / ConfigError ---------------------------------------------------------

TEST(ConfigIssueStr, FileLineColumnKeyPathMessage) {
  ConfigIssue i{"ipop-ipsecd.yaml", 12, 5, "protect.ranges[1]", "'172.31.0.0/33' is not a valid CIDR"};
  EXPECT_EQ(i.str(), "ipop-ipsecd.yaml:12:5: protect.ranges[1]: '172.31.0.0/33' is not a valid CIDR");
}

TEST(ConfigIssueStr, OmitsWhatIsUnknown) {
  EXPECT_EQ((ConfigIssue{"/etc/x.yaml", 0, 0, "", "cannot read: No such file"}).str(),
            "/etc/x.yaml: cannot read: No such file");
  EXPECT_EQ((ConfigIssue{"x.yaml", 3, 0, "ike", "m"}).str(), "x.yaml:3: ike: m");
  EXPECT_EQ((ConfigIssue{"x.yaml", 0, 0, "ike.unit", "m"}).str(), "x.yaml: ike.unit: m");
  EXPECT_EQ((ConfigIssue{"", 0, 0, "", "m"}).str(), "m");
}

TEST(ConfigErrorWhat, ListsEveryIssue) {
  ConfigError e({ConfigIssue{"a.yaml", 1, 2, "x", "first"}, ConfigIssue{"a.yaml", 3, 4, "y", "second"}});
  EXPECT_EQ(std::string(e.what()), "a.yaml:1:2: x: first\na.yaml:3:4: y: second");
  EXPECT_THAT(e.issues(), SizeIs(2));
}

// --- the document as a whole -----------------------------------------------------------

TEST(ConfigDocument, EmptyFileIsAnError) {
  EXPECT_THAT(issuesOf(""), ElementsAre(IsIssue("", 0, 0, "the file is empty")));
  EXPECT_THAT(issuesOf("# only a comment\n\n"), ElementsAre(IsIssue("", 0, 0, "the file is empty")));
  EXPECT_THAT(issuesOf("---\n"), ElementsAre(IsIssue("", 0, 0, "the file is empty")));
}

TEST(ConfigDocument, TopLevelMustBeAMapping) {
  EXPECT_THAT(issuesOf("- ipop\n- protect\n"),
              ElementsAre(IsIssue("", 1, 1, "the top level must be a mapping of sections")));
  EXPECT_THAT(issuesOf("just text\n"), ElementsAre(IsIssue("", 1, 1, "got 'just text'")));
}

TEST(ConfigDocument, SyntaxErrorHasItsPosition) {
  // The unterminated flow list is reported where yaml-cpp notices it: line 3, column 1.
  EXPECT_THAT(issuesOf("protect:\n  ranges: [172.31.0.0/16\n"),
              ElementsAre(IsIssue("", 3, 1, "YAML syntax error: end of sequence flow not found")));
  // A tab used for indentation.
  EXPECT_THAT(issuesOf("ipop:\n\tinterface: ipop\n"), ElementsAre(IsIssue("", 2, 11, "YAML syntax error: illegal map value")));
  EXPECT_THAT(issuesOf("ike:\n  unit: *nowhere\n"),
              ElementsAre(IsIssue("", 2, 9, "the referenced anchor is not defined")));
}

TEST(ConfigDocument, MoreThanOneDocumentIsAnError) {
  EXPECT_THAT(issuesOf("ipop:\n  interface: ipop\n---\nipop:\n  interface: tapipop\n"),
              ElementsAre(IsIssue("", 4, 1, "2 YAML documents")));
}

TEST(ConfigDocument, UnknownSectionSuggestsTheNearest) {
  EXPECT_THAT(issuesOf("protcet:\n  level: use\n"),
              ElementsAre(IsIssue("protcet", 1, 1, "unknown key; did you mean 'protect'?")));
}

TEST(ConfigDocument, UnknownKeyWithoutANearMatchListsTheKnownOnes) {
  EXPECT_THAT(issuesOf("ipop:\n  bridge: yes\n"),
              ElementsAre(IsIssue("ipop.bridge", 2, 3, "unknown key; known keys here: interface")));
}

TEST(ConfigDocument, UnknownKeyAtEveryLevel) {
  EXPECT_THAT(issuesOf("protect:\n  rangs: [172.31.0.0/16]\n"),
              ElementsAre(IsIssue("protect.rangs", 2, 3, "unknown key; did you mean 'ranges'?")));
  EXPECT_THAT(issuesOf("proposals:\n  phase2:\n    authentification: hmac_sha256\n"),
              ElementsAre(IsIssue("proposals.phase2.authentification", 3, 5, "did you mean 'authentication'?")));
  // Case and dashes are typos too.
  EXPECT_THAT(issuesOf("ike:\n  quiet-period: 2s\n"),
              ElementsAre(IsIssue("ike.quiet-period", 2, 3, "did you mean 'quiet_period'?")));
  EXPECT_THAT(issuesOf("Ipop:\n  interface: ipop\n"), ElementsAre(IsIssue("Ipop", 1, 1, "did you mean 'ipop'?")));
}

TEST(ConfigDocument, DuplicateKeyIsAnError) {
  EXPECT_THAT(issuesOf("ipop:\n  interface: ipop\n  interface: tapipop\n"),
              ElementsAre(IsIssue("ipop.interface", 3, 3, "duplicate key; first set on line 2")));
}

TEST(ConfigDocument, ComplexKeyIsAnError) {
  EXPECT_THAT(issuesOf("protect:\n  ? [a, b]\n  : 1\n"), ElementsAre(IsIssue("protect", 2, 5, "keys must be plain names")));
}

TEST(ConfigDocument, SectionMustBeAMapping) {
  EXPECT_THAT(issuesOf("protect: [172.31.0.0/16]\n"),
              ElementsAre(IsIssue("protect", 1, 10, "expected a mapping with the keys ranges, ipv6, exclude")));
  EXPECT_THAT(issuesOf("ipop: tapipop\n"),
              ElementsAre(IsIssue("ipop", 1, 7, "write 'ipop: { interface: tapipop }'")));
}

TEST(ConfigDocument, EmptySectionsKeepDefaults) {
  auto c = parse("ipop:\nprotect:\nike:\nracoon:\nproposals:\nxfrm:\ndaemon:\n");
  EXPECT_EQ(c.ipop.interface, Config{}.ipop.interface);
  EXPECT_TRUE(c.protect.autoRanges);
}

TEST(ConfigDocument, ReportsEveryProblemAtOnce) {
  const std::string yaml =
      "ipop:\n"
      "  interface: this-name-is-far-too-long\n"  // 1
      "protect:\n"
      "  ranges: [172.31.0.0/33]\n"               // 2
      "  levle: use\n"                            // 3
      "ike:\n"
      "  quiet_period: 0\n";                       // 4
  auto issues = issuesOf(yaml);
  EXPECT_THAT(issues, ElementsAre(IsIssue("ipop.interface", 2, 14, "at most 15"),
                                  IsIssue("protect.ranges[0]", 4, 12, "prefix length 33 is out of range 0..32"),
                                  IsIssue("protect.levle", 5, 3, "did you mean 'level'?"),
                                  IsIssue("ike.quiet_period", 7, 17, "must be greater than zero")));
}

TEST(ConfigDocument, ThreeErrorsGiveThreeIssues) {
  auto issues = issuesOf("protect:\n  level: maybe\nike:\n  backend: openswan\ndaemon:\n  log_level: loud\n");
  EXPECT_THAT(issues, SizeIs(3));
  EXPECT_THAT(issues, ElementsAre(IsIssue("protect.level", 2, 10, "'maybe' is not one of 'require', 'use'"),
                                  IsIssue("ike.backend", 4, 12, "'openswan' is not one of 'racoon', 'strongswan'"),
                                  IsIssue("daemon.log_level", 6, 14, "is not one of 'trace'")));
}

TEST(ConfigDocument, SourceFileIsRecorded) {
  auto c = parseConfig("ipop:\n  interface: ipop\n", "/etc/ipop-ipsec/ipop-ipsecd.yaml");
  EXPECT_EQ(c.sourceFile, "/etc/ipop-ipsec/ipop-ipsecd.yaml");
  try {
    parseConfig("ipop:\n  interface: ''\n", "/etc/ipop-ipsec/ipop-ipsecd.yaml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_THAT(e.issues(), SizeIs(1));
    EXPECT_EQ(e.issues()[0].str(), "/etc/ipop-ipsec/ipop-ipsecd.yaml:2:14: ipop.interface: must not be empty");
  }
}

TEST(ConfigDocument, AnchorsAndAliasesWork) {
  auto c = parse("protect:\n  ranges: &r [172.31.0.0/16]\n  exclude: [172.31.0.1]\nike:\n  quiet_period: &q 3s\n"
                 "  min_interval: *q\n");
  EXPECT_EQ(c.ike.minInterval, std::chrono::seconds(3));
}

// --- defaults and derived values ------------------------------------------------------------

TEST(ConfigDefaults, AMinimalFileGivesTheHeaderDefaults) {
  auto c = parse("ipop:\n  interface: ipop\n");
  const Config d{};
  EXPECT_EQ(c.ipop.interface, "ipop");
  EXPECT_TRUE(c.protect.autoRanges);
  EXPECT_THAT(c.protect.ranges, IsEmpty());
  EXPECT_FALSE(c.protect.ipv6);
  EXPECT_THAT(c.protect.exclude, IsEmpty());
  EXPECT_EQ(c.protect.level, PolicyLevel::require);
  EXPECT_FALSE(c.protect.forward);
  EXPECT_FALSE(c.protect.allowUnderlayOverlap);
  EXPECT_EQ(c.ike.backend, IkeBackend::racoon);
  EXPECT_EQ(c.ike.control, IkeControl::systemd);
  EXPECT_EQ(c.ike.unit, "racoon.service");
  EXPECT_THAT(c.ike.restartCommand, IsEmpty());
  EXPECT_EQ(c.ike.quietPeriod, d.ike.quietPeriod);
  EXPECT_EQ(c.ike.minInterval, d.ike.minInterval);
  EXPECT_EQ(c.ike.restartTimeout, d.ike.restartTimeout);
  EXPECT_EQ(c.racoon.config, "/etc/racoon/racoon.conf");
  EXPECT_EQ(c.racoon.spdFile, "/etc/ipsec-tools.conf");
  EXPECT_EQ(c.racoon.certificateDir, "/etc/racoon/certs");
  EXPECT_EQ(c.racoon.caCert, "cacert.pem");
  EXPECT_EQ(c.racoon.hostCert, "host-cert.pem");
  EXPECT_EQ(c.racoon.hostKey, "host-key.pem");
  EXPECT_EQ(c.racoon.dpdDelay, d.racoon.dpdDelay);
  EXPECT_FALSE(c.proposals.legacy);
  EXPECT_EQ(c.proposals.phase1.encryption, "aes 256");
  EXPECT_EQ(c.proposals.phase1.hash, "sha256");
  EXPECT_EQ(c.proposals.phase1.dhGroup, "modp2048");
  EXPECT_EQ(c.proposals.phase2.encryption, d.proposals.phase2.encryption);
  EXPECT_EQ(c.proposals.phase2.authentication, d.proposals.phase2.authentication);
  EXPECT_EQ(c.xfrm.protectPriority, d.xfrm.protectPriority);
  EXPECT_EQ(c.xfrm.bypassPriority, d.xfrm.bypassPriority);
  EXPECT_EQ(c.daemon.stateDir, "/run/ipop-ipsec");
  EXPECT_EQ(c.daemon.logLevel, "info");
  EXPECT_EQ(c.daemon.metricsFile, "");  // off
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(ConfigDefaults, StrongswanBackendDerivesItsUnit) {
  EXPECT_EQ(parse("ike:\n  backend: strongswan\n").ike.unit, "strongswan.service");
  EXPECT_EQ(parse("ike:\n  backend: racoon\n").ike.unit, "racoon.service");
  // An explicit unit wins, whichever order the keys come in.
  EXPECT_EQ(parse("ike:\n  unit: charon.service\n  backend: strongswan\n").ike.unit, "charon.service");
  EXPECT_EQ(parse("ike:\n  backend: strongswan\n  unit: strongswan-starter.service\n").ike.unit,
            "strongswan-starter.service");
}

TEST(ConfigDefaults, EveryKeyCanBeSet) {
  auto c = parse(
      "ipop: {interface: tapipop}\n"
      "protect:\n"
      "  ranges: [172.31.0.0/16, 'fd50:1234::/64']\n"
      "  ipv6: false\n"
      "  exclude: [172.31.0.1, 172.31.255.255/32, 'fd50:1234::1']\n"
      "  level: use\n"
      "  forward: true\n"
      "  allow_underlay_overlap: true\n"
      "ike:\n"
      "  backend: racoon\n"
      "  control: command\n"
      "  unit: racoon.service\n"
      "  restart_command: [/usr/sbin/service, racoon, restart]\n"
      "  quiet_period: 500ms\n"
      "  min_interval: 5m\n"
      "  restart_timeout: 2\n"
      "racoon:\n"
      "  config: /tmp/r/racoon.conf\n"
      "  spd_file: /tmp/r/ipsec-tools.conf\n"
      "  certificate_dir: /tmp/r/certs\n"
      "  ca_cert: /etc/ssl/ca.pem\n"
      "  host_cert: me.pem\n"
      "  host_key: me.key\n"
      "  listen_on_tap: true\n"
      "  dpd_delay: 0\n"
      "  nat_traversal: true\n"
      "proposals:\n"
      "  legacy: false\n"
      "  phase1: {encryption: camellia 256, hash: sha512, dh_group: modp4096, lifetime: 1h}\n"
      "  phase2: {encryption: aes 192, authentication: [hmac_sha512, hmac_sha384], pfs_group: modp8192,\n"
      "           compression: none, lifetime: 30m}\n"
      "xfrm: {protect_priority: 2147483647, bypass_priority: 0}\n"
      "daemon: {state_dir: /var/lib/ipop-ipsec, log_level: debug}\n");
  EXPECT_EQ(c.ipop.interface, "tapipop");
  EXPECT_FALSE(c.protect.autoRanges);
  ASSERT_THAT(c.protect.ranges, SizeIs(2));
  EXPECT_EQ(c.protect.ranges[0].str(), "172.31.0.0/16");
  EXPECT_EQ(c.protect.ranges[1].str(), "fd50:1234::/64");
  ASSERT_THAT(c.protect.exclude, SizeIs(3));
  EXPECT_EQ(c.protect.exclude[0].str(), "172.31.0.1/32");
  EXPECT_EQ(c.protect.exclude[1].str(), "172.31.255.255/32");
  EXPECT_EQ(c.protect.exclude[2].str(), "fd50:1234::1/128");
  EXPECT_EQ(c.protect.level, PolicyLevel::use);
  EXPECT_TRUE(c.protect.forward);
  EXPECT_TRUE(c.protect.allowUnderlayOverlap);
  EXPECT_EQ(c.ike.control, IkeControl::command);
  EXPECT_EQ(c.ike.restartCommand, (std::vector<std::string>{"/usr/sbin/service", "racoon", "restart"}));
  EXPECT_EQ(c.ike.quietPeriod, std::chrono::milliseconds(500));
  EXPECT_EQ(c.ike.minInterval, std::chrono::minutes(5));
  EXPECT_EQ(c.ike.restartTimeout, std::chrono::seconds(2));
  EXPECT_EQ(c.racoon.config, "/tmp/r/racoon.conf");
  EXPECT_EQ(c.racoon.spdFile, "/tmp/r/ipsec-tools.conf");
  EXPECT_EQ(c.racoon.certificateDir, "/tmp/r/certs");
  EXPECT_EQ(c.racoon.caCert, "/etc/ssl/ca.pem");
  EXPECT_EQ(c.racoon.hostCert, "me.pem");
  EXPECT_EQ(c.racoon.hostKey, "me.key");
  EXPECT_TRUE(c.racoon.listenOnTap);
  EXPECT_EQ(c.racoon.dpdDelay, 0);
  EXPECT_TRUE(c.racoon.natTraversal);
  EXPECT_EQ(c.proposals.phase1.encryption, "camellia 256");
  EXPECT_EQ(c.proposals.phase1.hash, "sha512");
  EXPECT_EQ(c.proposals.phase1.dhGroup, "modp4096");
  EXPECT_EQ(c.proposals.phase1.lifetime, std::chrono::hours(1));
  EXPECT_EQ(c.proposals.phase2.encryption, (std::vector<std::string>{"aes 192"}));
  EXPECT_EQ(c.proposals.phase2.authentication, (std::vector<std::string>{"hmac_sha512", "hmac_sha384"}));
  EXPECT_EQ(c.proposals.phase2.pfsGroup, "modp8192");
  EXPECT_EQ(c.proposals.phase2.compression, "none");
  EXPECT_EQ(c.proposals.phase2.lifetime, std::chrono::minutes(30));
  EXPECT_EQ(c.xfrm.protectPriority, 2147483647U);
  EXPECT_EQ(c.xfrm.bypassPriority, 0U);
  EXPECT_EQ(c.daemon.stateDir, "/var/lib/ipop-ipsec");
  EXPECT_EQ(c.daemon.logLevel, "debug");
  EXPECT_THAT(c.warnings, IsEmpty());
}

// --- the example file ------------------------------------------------------------------------

TEST(ConfigExample, ParsesAndGivesTheDocumentedDefaults) {
  auto text = readFile(kExample);
  ASSERT_FALSE(text.empty());
  Config c;
  try {
    c = parseConfig(text, "ipop-ipsecd.yaml");
  } catch (const ConfigError& e) {
    FAIL() << e.what();
  }
  const Config d{};
  EXPECT_EQ(c.ipop.interface, d.ipop.interface);
  EXPECT_EQ(c.protect.autoRanges, d.protect.autoRanges);
  EXPECT_EQ(c.protect.ipv6, d.protect.ipv6);
  EXPECT_EQ(c.protect.exclude, d.protect.exclude);
  EXPECT_EQ(c.protect.level, d.protect.level);
  EXPECT_EQ(c.protect.forward, d.protect.forward);
  EXPECT_EQ(c.protect.allowUnderlayOverlap, d.protect.allowUnderlayOverlap);
  EXPECT_EQ(c.ike.backend, d.ike.backend);
  EXPECT_EQ(c.ike.control, d.ike.control);
  EXPECT_EQ(c.ike.unit, d.ike.unit);
  EXPECT_EQ(c.ike.quietPeriod, d.ike.quietPeriod);
  EXPECT_EQ(c.ike.minInterval, d.ike.minInterval);
  EXPECT_EQ(c.ike.restartTimeout, d.ike.restartTimeout);
  EXPECT_EQ(c.racoon.config, d.racoon.config);
  EXPECT_EQ(c.racoon.spdFile, d.racoon.spdFile);
  EXPECT_EQ(c.racoon.certificateDir, d.racoon.certificateDir);
  EXPECT_EQ(c.racoon.caCert, d.racoon.caCert);
  EXPECT_EQ(c.racoon.hostCert, d.racoon.hostCert);
  EXPECT_EQ(c.racoon.hostKey, d.racoon.hostKey);
  EXPECT_EQ(c.racoon.listenOnTap, d.racoon.listenOnTap);
  EXPECT_EQ(c.racoon.dpdDelay, d.racoon.dpdDelay);
  EXPECT_EQ(c.racoon.natTraversal, d.racoon.natTraversal);
  EXPECT_EQ(c.proposals.legacy, d.proposals.legacy);
  EXPECT_EQ(c.proposals.phase1.encryption, d.proposals.phase1.encryption);
  EXPECT_EQ(c.proposals.phase1.hash, d.proposals.phase1.hash);
  EXPECT_EQ(c.proposals.phase1.dhGroup, d.proposals.phase1.dhGroup);
  EXPECT_EQ(c.proposals.phase1.lifetime, d.proposals.phase1.lifetime);
  EXPECT_EQ(c.proposals.phase2.encryption, d.proposals.phase2.encryption);
  EXPECT_EQ(c.proposals.phase2.authentication, d.proposals.phase2.authentication);
  EXPECT_EQ(c.proposals.phase2.pfsGroup, d.proposals.phase2.pfsGroup);
  EXPECT_EQ(c.proposals.phase2.compression, d.proposals.phase2.compression);
  EXPECT_EQ(c.proposals.phase2.lifetime, d.proposals.phase2.lifetime);
  EXPECT_EQ(c.xfrm.protectPriority, d.xfrm.protectPriority);
  EXPECT_EQ(c.xfrm.bypassPriority, d.xfrm.bypassPriority);
  EXPECT_EQ(c.daemon.stateDir, d.daemon.stateDir);
  EXPECT_EQ(c.daemon.logLevel, d.daemon.logLevel);
  EXPECT_EQ(c.daemon.metricsFile, d.daemon.metricsFile);
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(ConfigExample, DocumentsEveryKey) {
  auto text = readFile(kExample);
  for (const char* key :
       {"ipop:", "interface:", "protect:", "ranges:", "ipv6:", "exclude:", "level:", "forward:",
        "allow_underlay_overlap:", "ike:", "backend:", "control:", "unit:", "restart_command:", "quiet_period:",
        "min_interval:", "restart_timeout:", "racoon:", "config:", "spd_file:", "certificate_dir:", "ca_cert:",
        "host_cert:", "host_key:", "listen_on_tap:", "dpd_delay:", "nat_traversal:", "proposals:", "legacy:",
        "phase1:", "encryption:", "hash:", "dh_group:", "lifetime:", "phase2:", "authentication:", "pfs_group:",
        "compression:", "xfrm:", "protect_priority:", "bypass_priority:", "daemon:", "state_dir:", "log_level:"})
    EXPECT_THAT(text, HasSubstr(key));
  // The operator notes the brief asks for.
  for (const char* topic : {"tapipop", "ipopbr0", "DHCP", "broadcast", "require", "use", "legacy", "control: command"})
    EXPECT_THAT(text, HasSubstr(topic));
}

TEST(ConfigExample, CommentedAlternativesParseToo) {
  // The alternatives shown in comments are valid when uncommented.
  auto text = readFile(kExample);
  auto swap = [&](const std::string& from, const std::string& to) {
    auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    text.replace(pos, from.size(), to);
  };
  swap("  ranges: auto\n", "  ranges: [172.31.0.0/16, \"fd50:1234::/64\"]\n");
  swap("  exclude: []\n", "  exclude: [172.31.0.1, 172.31.255.255]\n");
  swap("  control: systemd\n", "  control: command\n  restart_command: [/usr/sbin/service, racoon, restart]\n");
  auto c = parse(text);
  EXPECT_FALSE(c.protect.autoRanges);
  EXPECT_THAT(c.protect.exclude, SizeIs(2));
  EXPECT_EQ(c.ike.control, IkeControl::command);
}

// --- fixture files (tests/unit/configs/) ---------------------------------------------------

TEST(ConfigFixtures, ThreeErrorsFileGivesThreeIssues) {
  const std::string path = IPOPSEC_SOURCE_DIR "/tests/unit/configs/three_errors.yaml";
  try {
    parseConfig(readFile(path), path);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_THAT(e.issues(), SizeIs(3));
    EXPECT_EQ(e.issues()[0].str(), path + ":6:3: protect.rangs: unknown key; did you mean 'ranges'?");
    EXPECT_EQ(e.issues()[1].str(),
              path + ":8:10: protect.level: 'required' is not one of 'require', 'use'; did you mean 'require'?");
    EXPECT_EQ(e.issues()[2].keyPath, "proposals.phase2.authentication[0]");
    EXPECT_EQ(e.issues()[2].line, 11);
    EXPECT_EQ(e.issues()[2].column, 22);
    EXPECT_THAT(e.issues()[2].message, HasSubstr("use 'hmac_sha256'"));
  }
}

TEST(ConfigFixtures, LegacyFileLoadsWithItsWarning) {
  const std::string path = IPOPSEC_SOURCE_DIR "/tests/unit/configs/legacy.yaml";
  auto c = parse(readFile(path));
  EXPECT_EQ(c.ipop.interface, "tapipop");
  EXPECT_TRUE(c.proposals.legacy);
  EXPECT_EQ(c.proposals.phase1.dhGroup, "modp1024");
  EXPECT_THAT(c.protect.exclude, SizeIs(2));
  EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("proposals.legacy:")));
}

// --- ipop ---------------------------------------------------------------------------------

TEST(ConfigIpop, InterfaceNames) {
  EXPECT_EQ(parse("ipop:\n  interface: ipopbr0\n").ipop.interface, "ipopbr0");
  EXPECT_EQ(parse("ipop:\n  interface: abcdefghijklmno\n").ipop.interface, "abcdefghijklmno");  // 15
  EXPECT_THAT(issuesOf("ipop:\n  interface: abcdefghijklmnop\n"),
              ElementsAre(IsIssue("ipop.interface", 2, 14, "is 16 characters long; Linux interface names have at most 15")));
  EXPECT_THAT(issuesOf("ipop:\n  interface: ''\n"), ElementsAre(IsIssue("ipop.interface", 2, 14, "must not be empty")));
  EXPECT_THAT(issuesOf("ipop:\n  interface:\n"), ElementsAre(IsIssue("ipop.interface", 2, 3, "must not be empty")));
  EXPECT_THAT(issuesOf("ipop:\n  interface: ipop/0\n"), ElementsAre(IsIssue("ipop.interface", 2, 14, "contains '/'")));
  EXPECT_THAT(issuesOf("ipop:\n  interface: ipop:1\n"), ElementsAre(IsIssue("ipop.interface", 2, 14, "contains ':'")));
  EXPECT_THAT(issuesOf("ipop:\n  interface: 'ip op'\n"), ElementsAre(IsIssue("ipop.interface", 2, 14, "whitespace")));
  EXPECT_THAT(issuesOf("ipop:\n  interface: \"ipop\\t\"\n"),
              ElementsAre(IsIssue("ipop.interface", 2, 14, "whitespace")));
  EXPECT_THAT(issuesOf("ipop:\n  interface: .\n"), ElementsAre(IsIssue("ipop.interface", 2, 14, "'.' is not a valid")));
  EXPECT_THAT(issuesOf("ipop:\n  interface: ..\n"), ElementsAre(IsIssue("ipop.interface", 2, 14, "'..' is not a valid")));
  EXPECT_THAT(issuesOf("ipop:\n  interface: [ipop]\n"),
              ElementsAre(IsIssue("ipop.interface", 2, 14, "expected an interface name, got a list")));
}

// --- protect.ranges -------------------------------------------------------------------------

TEST(ConfigRanges, AutoAndExplicit) {
  EXPECT_TRUE(parse("protect:\n  ranges: auto\n").protect.autoRanges);
  auto c = parse("protect:\n  ranges:\n    - 172.31.0.0/16\n    - 10.254.0.0/16\n");
  EXPECT_FALSE(c.protect.autoRanges);
  ASSERT_THAT(c.protect.ranges, SizeIs(2));
  EXPECT_EQ(c.protect.ranges[1].str(), "10.254.0.0/16");
  EXPECT_EQ(parse("protect:\n  ranges: ['fd50::/64']\n").protect.ranges.at(0).family(), Family::v6);
  EXPECT_EQ(parse("protect:\n  ranges: [fd50::/64]\n").protect.ranges.at(0).str(), "fd50::/64");
}

TEST(ConfigRanges, InvalidCidrGivesTheReason) {
  auto issues = issuesOf("protect:\n  ranges: [10.0.0.0/8, 172.31.0.0/33]\n");
  ASSERT_THAT(issues, ElementsAre(IsIssue("protect.ranges[1]", 2, 24,
                                          "'172.31.0.0/33' is not a valid CIDR: prefix length 33 is out of range 0..32")));
  EXPECT_EQ(issues[0].str(),
            "t.yaml:2:24: protect.ranges[1]: '172.31.0.0/33' is not a valid CIDR: prefix length 33 is out of range 0..32");
  EXPECT_THAT(issuesOf("protect:\n  ranges: [256.0.0.0/8]\n"),
              ElementsAre(IsIssue("protect.ranges[0]", 2, 12, "is not a valid CIDR: '256.0.0.0' is not an IPv4 or IPv6")));
}

TEST(ConfigRanges, HostBitsSuggestTheNetwork) {
  EXPECT_THAT(issuesOf("protect:\n  ranges: [172.31.0.16/16]\n"),
              ElementsAre(IsIssue("protect.ranges[0]", 2, 12,
                                  "'172.31.0.16/16' has host bits set; did you mean 172.31.0.0/16?")));
  EXPECT_THAT(issuesOf("protect:\n  ranges: ['fd50::1/64']\n"),
              ElementsAre(IsIssue("protect.ranges[0]", 2, 12, "did you mean fd50::/64?")));
}

TEST(ConfigRanges, OverlapNamesBoth) {
  EXPECT_THAT(issuesOf("protect:\n  ranges:\n    - 172.31.0.0/16\n    - 10.0.0.0/8\n    - 172.31.5.0/24\n"),
              ElementsAre(IsIssue("protect.ranges[2]", 5, 7,
                                  "'172.31.5.0/24' overlaps protect.ranges[0] '172.31.0.0/16'")));
  EXPECT_THAT(issuesOf("protect:\n  ranges: [10.0.0.0/8, 10.0.0.0/8]\n"),
              ElementsAre(IsIssue("protect.ranges[1]", 2, 24, "overlaps protect.ranges[0] '10.0.0.0/8'")));
  // Different families never overlap.
  EXPECT_THAT(parse("protect:\n  ranges: [0.0.0.0/1, '::/1']\n").protect.ranges, SizeIs(2));
}

TEST(ConfigRanges, MustNotBeEmpty) {
  EXPECT_THAT(issuesOf("protect:\n  ranges: []\n"),
              ElementsAre(IsIssue("protect.ranges", 2, 11, "must not be empty: list at least one range, or write 'auto'")));
  EXPECT_THAT(issuesOf("protect:\n  ranges:\n"), ElementsAre(IsIssue("protect.ranges", 2, 3, "expected a list of CIDRs or 'auto', got nothing")));
}

TEST(ConfigRanges, WrongTypesAndForms) {
  EXPECT_THAT(issuesOf("protect:\n  ranges: 172.31.0.0/16\n"),
              ElementsAre(IsIssue("protect.ranges", 2, 11, "expected a list of CIDRs or 'auto', got '172.31.0.0/16'; write [172.31.0.0/16]")));
  EXPECT_THAT(issuesOf("protect:\n  ranges: Auto\n"), ElementsAre(IsIssue("protect.ranges", 2, 11, "did you mean 'auto'?")));
  EXPECT_THAT(issuesOf("protect:\n  ranges: {a: 1}\n"),
              ElementsAre(IsIssue("protect.ranges", 2, 11, "expected a list of CIDRs or 'auto', got a mapping")));
  EXPECT_THAT(issuesOf("protect:\n  ranges: [[10.0.0.0/8]]\n"),
              ElementsAre(IsIssue("protect.ranges[0]", 2, 12, "expected a CIDR like 172.31.0.0/16, got a list")));
  EXPECT_THAT(issuesOf("protect:\n  ranges: [172.31.0.16]\n"),
              ElementsAre(IsIssue("protect.ranges[0]", 2, 12, "is a single address; a protected range needs a prefix length")));
}

TEST(ConfigRanges, TooManyEntriesAreRefused) {
  std::string yaml = "protect:\n  ranges: [";
  for (int i = 0; i < 300; ++i) yaml += (i ? ", " : "") + std::string("10.0.") + std::to_string(i % 256) + ".0/24";
  yaml += "]\n";
  EXPECT_THAT(issuesOf(yaml), ElementsAre(IsIssue("protect.ranges", 2, 11, "has 300 entries; at most 256")));
}

// --- protect.exclude -------------------------------------------------------------------------

TEST(ConfigExclude, AddressesAndCidrsInsideTheRanges) {
  auto c = parse("protect:\n  ranges: [172.31.0.0/16]\n  exclude: [172.31.0.1, 172.31.128.0/17]\n");
  ASSERT_THAT(c.protect.exclude, SizeIs(2));
  EXPECT_EQ(c.protect.exclude[0], Cidr::host(IpAddress::v4(172, 31, 0, 1)));
  EXPECT_EQ(c.protect.exclude[1].str(), "172.31.128.0/17");
  // Order doesn't matter: exclude may come before ranges.
  EXPECT_THAT(parse("protect:\n  exclude: [172.31.0.1]\n  ranges: [172.31.0.0/16]\n").protect.exclude, SizeIs(1));
}

TEST(ConfigExclude, NotInsideAnyRange) {
  EXPECT_THAT(issuesOf("protect:\n  ranges: [172.31.0.0/16, 10.1.0.0/16]\n  exclude: [172.31.0.1, 10.2.0.1]\n"),
              ElementsAre(IsIssue("protect.exclude[1]", 3, 25,
                                  "'10.2.0.1' is not inside any protected range (172.31.0.0/16, 10.1.0.0/16)")));
  // Partly inside is not inside.
  EXPECT_THAT(issuesOf("protect:\n  ranges: [172.31.0.0/16]\n  exclude: [172.0.0.0/8]\n"),
              ElementsAre(IsIssue("protect.exclude[0]", 3, 13, "not inside any protected range")));
}

TEST(ConfigExclude, AnythingGoesWithAutoRanges) {
  auto c = parse("protect:\n  ranges: auto\n  exclude: [10.9.9.9, 'fd00::1']\n");
  EXPECT_THAT(c.protect.exclude, SizeIs(2));
}

TEST(ConfigExclude, NoCascadeFromABrokenRange) {
  // The range is wrong; the exclusion is not also reported as outside it.
  EXPECT_THAT(issuesOf("protect:\n  ranges: [172.31.0/16]\n  exclude: [172.31.0.1]\n"),
              ElementsAre(IsIssue("protect.ranges[0]", 2, 12, "is not a valid CIDR")));
}

TEST(ConfigExclude, BadEntries) {
  EXPECT_THAT(issuesOf("protect:\n  exclude: [172.31.0.1/24]\n"),
              ElementsAre(IsIssue("protect.exclude[0]", 2, 13,
                                  "'172.31.0.1/24' has host bits set; did you mean 172.31.0.0/24 (or 172.31.0.1 alone")));
  EXPECT_THAT(issuesOf("protect:\n  exclude: [172.31.0.300]\n"),
              ElementsAre(IsIssue("protect.exclude[0]", 2, 13, "is not a valid address or CIDR")));
  EXPECT_THAT(issuesOf("protect:\n  exclude: 172.31.0.1\n"),
              ElementsAre(IsIssue("protect.exclude", 2, 12, "write [172.31.0.1] for a single entry")));
  EXPECT_THAT(issuesOf("protect:\n  exclude: [{a: b}]\n"),
              ElementsAre(IsIssue("protect.exclude[0]", 2, 13, "expected an address or a CIDR, got a mapping")));
}

// --- protect: booleans and level ------------------------------------------------------------

TEST(ConfigProtect, BooleansAreChecked) {
  EXPECT_TRUE(parse("protect:\n  forward: yes\n").protect.forward);
  EXPECT_FALSE(parse("protect:\n  forward: false\n").protect.forward);
  EXPECT_THAT(issuesOf("protect:\n  forward: maybe\n"),
              ElementsAre(IsIssue("protect.forward", 2, 12, "expected true/false, got 'maybe'")));
  EXPECT_THAT(issuesOf("protect:\n  ipv6: [true]\n"), ElementsAre(IsIssue("protect.ipv6", 2, 9, "expected true/false, got a list")));
  EXPECT_THAT(issuesOf("racoon:\n  nat_traversal: 1\n"),
              ElementsAre(IsIssue("racoon.nat_traversal", 2, 18, "expected true/false")));
}

TEST(ConfigProtect, Level) {
  EXPECT_EQ(parse("protect:\n  level: use\n").protect.level, PolicyLevel::use);
  EXPECT_THAT(issuesOf("protect:\n  level: requre\n"),
              ElementsAre(IsIssue("protect.level", 2, 10, "'requre' is not one of 'require', 'use'; did you mean 'require'?")));
}

TEST(ConfigProtect, Ipv6WithExplicitRangesWarns) {
  auto c = parse("protect:\n  ranges: [172.31.0.0/16]\n  ipv6: true\n");
  EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("protect.ipv6: has an effect only with ranges: auto")));
  EXPECT_THAT(parse("protect:\n  ranges: auto\n  ipv6: true\n").warnings, IsEmpty());
}

// --- ike -------------------------------------------------------------------------------------

TEST(ConfigIke, BackendAndControlNames) {
  EXPECT_THAT(issuesOf("ike:\n  backend: strongSwan\n"),
              ElementsAre(IsIssue("ike.backend", 2, 12, "did you mean 'strongswan'?")));
  EXPECT_THAT(issuesOf("ike:\n  control: sysvinit\n"),
              ElementsAre(IsIssue("ike.control", 2, 12, "is not one of 'systemd', 'command'")));
}

TEST(ConfigIke, CommandControlNeedsARestartCommand) {
  EXPECT_THAT(issuesOf("ike:\n  control: command\n"),
              ElementsAre(IsIssue("ike.restart_command", 2, 12, "is required when ike.control is command")));
  EXPECT_THAT(issuesOf("ike:\n  control: command\n  restart_command: []\n"),
              ElementsAre(IsIssue("ike.restart_command", 3, 20, "must not be empty")));
  auto c = parse("ike:\n  control: command\n  restart_command: [/etc/init.d/racoon, restart]\n");
  EXPECT_EQ(c.ike.restartCommand, (std::vector<std::string>{"/etc/init.d/racoon", "restart"}));
}

TEST(ConfigIke, RestartCommandArgv0MustBeAbsolute) {
  EXPECT_THAT(issuesOf("ike:\n  control: command\n  restart_command: [service, racoon, restart]\n"),
              ElementsAre(IsIssue("ike.restart_command[0]", 3, 21,
                                  "'service' must be an absolute path: the command runs without a shell")));
  EXPECT_THAT(issuesOf("ike:\n  control: command\n  restart_command: [/sbin/x, '']\n"),
              ElementsAre(IsIssue("ike.restart_command[1]", 3, 30, "must not be empty")));
}

TEST(ConfigIke, RestartCommandMustBeAList) {
  EXPECT_THAT(issuesOf("ike:\n  control: command\n  restart_command: /usr/sbin/service racoon restart\n"),
              ElementsAre(IsIssue("ike.restart_command", 3, 20,
                                  "expected a list of strings (the command's argv), got '/usr/sbin/service racoon "
                                  "restart'; write it as [/usr/sbin/service, racoon, restart]")));
}

TEST(ConfigIke, RestartCommandWithSystemdWouldBeIgnored) {
  EXPECT_THAT(issuesOf("ike:\n  restart_command: [/usr/sbin/service, racoon, restart]\n"),
              ElementsAre(IsIssue("ike.restart_command", 2, 20, "is set but ike.control is systemd, so it would be ignored")));
  EXPECT_THAT(issuesOf("ike:\n  control: systemd\n  restart_command: [/bin/true]\n"),
              ElementsAre(IsIssue("ike.restart_command", 3, 20, "would be ignored")));
}

TEST(ConfigIke, NoCascadeFromABadControlValue) {
  EXPECT_THAT(issuesOf("ike:\n  control: comand\n  restart_command: [/bin/true]\n"),
              ElementsAre(IsIssue("ike.control", 2, 12, "did you mean 'command'?")));
}

TEST(ConfigIke, UnitNames) {
  EXPECT_EQ(parse("ike:\n  unit: racoon@ipop.service\n").ike.unit, "racoon@ipop.service");
  EXPECT_THAT(issuesOf("ike:\n  unit: racoon\n"),
              ElementsAre(IsIssue("ike.unit", 2, 9, "'racoon' must name a service unit, ending in .service")));
  EXPECT_THAT(issuesOf("ike:\n  unit: racoon.socket\n"), ElementsAre(IsIssue("ike.unit", 2, 9, "ending in .service")));
  EXPECT_THAT(issuesOf("ike:\n  unit: .service\n"), ElementsAre(IsIssue("ike.unit", 2, 9, "has no name before .service")));
  EXPECT_THAT(issuesOf("ike:\n  unit: 'my racoon.service'\n"),
              ElementsAre(IsIssue("ike.unit", 2, 9, "contains ' ', which systemd does not allow")));
  EXPECT_THAT(issuesOf("ike:\n  unit: racoon@.service\n"), ElementsAre(IsIssue("ike.unit", 2, 9, "is a template")));
  EXPECT_THAT(issuesOf("ike:\n  unit: a@b@c.service\n"), ElementsAre(IsIssue("ike.unit", 2, 9, "more than one '@'")));
  EXPECT_THAT(issuesOf("ike:\n  unit: ''\n"), ElementsAre(IsIssue("ike.unit", 2, 9, "must not be empty")));
  EXPECT_THAT(issuesOf("ike:\n  unit: " + std::string(300, 'a') + ".service\n"),
              ElementsAre(IsIssue("ike.unit", 2, 9, "longer than 255")));
}

TEST(ConfigIke, Durations) {
  auto c = parse("ike:\n  quiet_period: 500ms\n  min_interval: 2s\n  restart_timeout: 5m\n");
  EXPECT_EQ(c.ike.quietPeriod, std::chrono::milliseconds(500));
  EXPECT_EQ(c.ike.minInterval, std::chrono::seconds(2));
  EXPECT_EQ(c.ike.restartTimeout, std::chrono::minutes(5));
  EXPECT_EQ(parse("ike:\n  restart_timeout: 8h\n").ike.restartTimeout, std::chrono::hours(8));
  EXPECT_EQ(parse("ike:\n  quiet_period: 3\n").ike.quietPeriod, std::chrono::seconds(3));  // bare = seconds
  EXPECT_EQ(Config{}.ike.acquireRetry, std::chrono::seconds(1));
  EXPECT_EQ(parse("ike:\n  acquire_retry: 250ms\n").ike.acquireRetry, std::chrono::milliseconds(250));
  EXPECT_EQ(parse("ike:\n  acquire_retry: off\n").ike.acquireRetry.count(), 0);
  EXPECT_EQ(parse("ike:\n  acquire_retry: 0\n").ike.acquireRetry.count(), 0);
  EXPECT_THAT(issuesOf("ike:\n  acquire_retry: soon\n"), ElementsAre(IsIssue("ike.acquire_retry", 2, 18, "expected a duration")));
  // quiet_period above min_interval is allowed.
  EXPECT_EQ(parse("ike:\n  quiet_period: 20s\n  min_interval: 1s\n").ike.quietPeriod, std::chrono::seconds(20));
}

// daemon.metrics_interval: the metrics file's heartbeat, 30s unless set, 1s to 60s (the
// alert rule calls a timestamp older than 180s stale).
TEST(ConfigDaemon, MetricsInterval) {
  EXPECT_EQ(Config{}.daemon.metricsInterval, std::chrono::seconds(30));
  EXPECT_EQ(parse("daemon:\n  metrics_interval: 1s\n").daemon.metricsInterval, std::chrono::seconds(1));
  EXPECT_EQ(parse("daemon:\n  metrics_interval: 1m\n").daemon.metricsInterval, std::chrono::seconds(60));
  EXPECT_THAT(issuesOf("daemon:\n  metrics_interval: 61s\n"),
              ElementsAre(IsIssue("daemon.metrics_interval", 2, 21, "must be between 1s and 60s")));
  EXPECT_THAT(issuesOf("daemon:\n  metrics_interval: 500ms\n"),
              ElementsAre(IsIssue("daemon.metrics_interval", 2, 21, "got 500ms")));
  EXPECT_THAT(issuesOf("daemon:\n  metrics_interval: often\n"),
              ElementsAre(IsIssue("daemon.metrics_interval", 2, 21, "expected a duration")));
}

struct BadDuration {
  const char* text;
  const char* why;
};

class ConfigBadDuration : public ::testing::TestWithParam<BadDuration> {};

TEST_P(ConfigBadDuration, IsRejected) {
  EXPECT_THAT(issuesOf(std::string("ike:\n  min_interval: ") + GetParam().text + "\n"),
              ElementsAre(IsIssue("ike.min_interval", 2, 17, GetParam().why)));
}

INSTANTIATE_TEST_SUITE_P(
    Texts, ConfigBadDuration,
    ::testing::Values(BadDuration{"0", "must be greater than zero"}, BadDuration{"0ms", "must be greater than zero"},
                      BadDuration{"-1", "must be greater than zero"},
                      BadDuration{"1.5s", "expected a duration like 2s or 500ms"},
                      BadDuration{"2d", "expected a duration like 2s or 500ms"},
                      BadDuration{"2 s", "expected a duration like 2s or 500ms"},
                      BadDuration{"s", "expected a duration like 2s or 500ms"},
                      BadDuration{"''", "a bare number is seconds), got ''"},
                      BadDuration{"[2s]", "expected a duration like 2s or 500ms (units ms, s, m, h; a bare number is "
                                          "seconds), got a list"},
                      BadDuration{"99999999999999999999h", "expected a duration"},
                      BadDuration{"9999999h", "is too long; at most 8784h"}));

// --- racoon ----------------------------------------------------------------------------------

TEST(ConfigRacoon, PathsMustBeAbsolute) {
  EXPECT_THAT(issuesOf("racoon:\n  config: racoon.conf\n"),
              ElementsAre(IsIssue("racoon.config", 2, 11, "must be an absolute path, got 'racoon.conf'")));
  EXPECT_THAT(issuesOf("racoon:\n  spd_file: ./ipsec-tools.conf\n"),
              ElementsAre(IsIssue("racoon.spd_file", 2, 13, "must be an absolute path")));
  EXPECT_THAT(issuesOf("racoon:\n  certificate_dir: ''\n"),
              ElementsAre(IsIssue("racoon.certificate_dir", 2, 20, "must not be empty")));
  EXPECT_THAT(issuesOf("daemon:\n  state_dir: run/ipop\n"),
              ElementsAre(IsIssue("daemon.state_dir", 2, 14, "must be an absolute path")));
  EXPECT_THAT(issuesOf("daemon:\n  state_dir: [/run]\n"),
              ElementsAre(IsIssue("daemon.state_dir", 2, 14, "expected an absolute path, got a list")));
}

TEST(ConfigRacoon, CertificateFiles) {
  auto c = parse("racoon:\n  ca_cert: /etc/ssl/certs/ca.pem\n  host_cert: node1.pem\n");
  EXPECT_EQ(c.racoon.caCert, "/etc/ssl/certs/ca.pem");
  EXPECT_EQ(c.racoon.hostCert, "node1.pem");
  EXPECT_THAT(issuesOf("racoon:\n  host_key: keys/host-key.pem\n"),
              ElementsAre(IsIssue("racoon.host_key", 2, 13, "must be a file name inside racoon.certificate_dir (no '/')")));
  EXPECT_THAT(issuesOf("racoon:\n  ca_cert: ..\n"), ElementsAre(IsIssue("racoon.ca_cert", 2, 12, "must be a file name")));
  EXPECT_THAT(issuesOf("racoon:\n  ca_cert: /etc/ssl/\n"), ElementsAre(IsIssue("racoon.ca_cert", 2, 12, "absolute path to a file")));
  EXPECT_THAT(issuesOf("racoon:\n  host_cert: ''\n"), ElementsAre(IsIssue("racoon.host_cert", 2, 14, "must not be empty")));
}

TEST(ConfigRacoon, DpdDelay) {
  EXPECT_EQ(parse("racoon:\n  dpd_delay: 3600\n").racoon.dpdDelay, 3600);
  EXPECT_THAT(issuesOf("racoon:\n  dpd_delay: 3601\n"),
              ElementsAre(IsIssue("racoon.dpd_delay", 2, 14, "3601 is out of range 0..3600")));
  EXPECT_THAT(issuesOf("racoon:\n  dpd_delay: -5\n"),
              ElementsAre(IsIssue("racoon.dpd_delay", 2, 14, "expected a whole number from 0 to 3600, got '-5'")));
  EXPECT_THAT(issuesOf("racoon:\n  dpd_delay: 20s\n"), ElementsAre(IsIssue("racoon.dpd_delay", 2, 14, "expected a whole number")));
}

// --- proposals -------------------------------------------------------------------------------

TEST(ConfigProposals, LegacySetsTheSeedProposalAndWarns) {
  auto c = parse("proposals:\n  legacy: true\n");
  const auto seed = legacyProposals();
  EXPECT_TRUE(c.proposals.legacy);
  EXPECT_EQ(c.proposals.phase1.encryption, "3des");
  EXPECT_EQ(c.proposals.phase1.hash, "sha1");
  EXPECT_EQ(c.proposals.phase1.dhGroup, "modp1024");
  EXPECT_EQ(c.proposals.phase1.lifetime, Phase1Proposal{}.lifetime);
  EXPECT_EQ(c.proposals.phase2.encryption, (std::vector<std::string>{"3des"}));
  EXPECT_EQ(c.proposals.phase2.authentication, (std::vector<std::string>{"hmac_sha1"}));
  EXPECT_EQ(c.proposals.phase2.pfsGroup, "modp1024");
  EXPECT_EQ(c.proposals.phase2.compression, "deflate");
  EXPECT_EQ(c.proposals.phase2.lifetime, Phase2Proposal{}.lifetime);
  EXPECT_EQ(c.proposals.phase2.encryption, seed.phase2.encryption);
  EXPECT_TRUE(seed.legacy);
  ASSERT_THAT(c.warnings, SizeIs(1));
  EXPECT_THAT(c.warnings[0], HasSubstr("proposals.legacy: the seed's 3des/sha1/modp1024 proposal is weak"));
}

TEST(ConfigProposals, LegacyFalseChangesNothing) {
  auto c = parse("proposals:\n  legacy: false\n");
  EXPECT_FALSE(c.proposals.legacy);
  EXPECT_EQ(c.proposals.phase1.encryption, Phase1Proposal{}.encryption);
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(ConfigProposals, LegacyWithAnExplicitBlockIsAmbiguous) {
  EXPECT_THAT(issuesOf("proposals:\n  legacy: true\n  phase1:\n    hash: sha256\n"),
              ElementsAre(IsIssue("proposals.phase1", 3, 3, "cannot be combined with proposals.legacy: true")));
  EXPECT_THAT(issuesOf("proposals:\n  phase2: {compression: none}\n  phase1: {}\n  legacy: yes\n"),
              ElementsAre(IsIssue("proposals.phase1", 3, 3, "cannot be combined"),
                          IsIssue("proposals.phase2", 2, 3, "cannot be combined")));
}

TEST(ConfigProposals, WeakChoicesWithoutLegacyAreWarned) {
  auto c = parse("proposals:\n  phase1: {encryption: 3des, hash: sha1}\n  phase2: {authentication: [hmac_sha256, hmac_sha1]}\n");
  EXPECT_EQ(c.proposals.phase1.encryption, "3des");
  EXPECT_EQ(c.proposals.phase1.hash, "sha1");
  EXPECT_FALSE(c.proposals.legacy);
  EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("proposals.phase1.encryption: '3des' is weak"),
                                      HasSubstr("proposals.phase1.hash: 'sha1' is weak"),
                                      HasSubstr("proposals.phase2.authentication[1]: 'hmac_sha1' is weak")));
}

TEST(ConfigProposals, Phase2AcceptsAListOrASingleName) {
  auto c = parse("proposals:\n  phase2:\n    encryption: aes 128\n    authentication: hmac_sha384\n");
  EXPECT_EQ(c.proposals.phase2.encryption, (std::vector<std::string>{"aes 128"}));
  EXPECT_EQ(c.proposals.phase2.authentication, (std::vector<std::string>{"hmac_sha384"}));
  EXPECT_THAT(issuesOf("proposals:\n  phase2:\n    encryption: []\n"),
              ElementsAre(IsIssue("proposals.phase2.encryption", 3, 17, "must list at least one algorithm")));
  EXPECT_THAT(issuesOf("proposals:\n  phase2:\n    encryption: [aes 256, aes 256]\n"),
              ElementsAre(IsIssue("proposals.phase2.encryption[1]", 3, 27, "'aes 256' is listed twice")));
  EXPECT_THAT(issuesOf("proposals:\n  phase2:\n    encryption: {aes: 256}\n"),
              ElementsAre(IsIssue("proposals.phase2.encryption", 3, 17, "expected an algorithm name or a list of them")));
}

struct BadAlgo {
  const char* yaml;  // under proposals:
  const char* path;
  int column;
  const char* why;
};

class ConfigBadAlgorithm : public ::testing::TestWithParam<BadAlgo> {};

TEST_P(ConfigBadAlgorithm, IsRejectedWithTheAcceptedNames) {
  EXPECT_THAT(issuesOf(std::string("proposals:\n") + GetParam().yaml + "\n"),
              ElementsAre(IsIssue(GetParam().path, 2, GetParam().column, GetParam().why)));
  // Every such message lists what racoon accepts.
  auto issues = issuesOf(std::string("proposals:\n") + GetParam().yaml + "\n");
  ASSERT_THAT(issues, SizeIs(1));
  EXPECT_THAT(issues[0].message, HasSubstr("; accepted: '"));
}

INSTANTIATE_TEST_SUITE_P(
    Racoon, ConfigBadAlgorithm,
    ::testing::Values(
        BadAlgo{"  phase1: {encryption: aes_gcm}", "proposals.phase1.encryption", 24,
                "'aes_gcm' is not a phase 1 encryption algorithm racoon accepts: racoon has no AEAD ciphers"},
        BadAlgo{"  phase1: {encryption: aes}", "proposals.phase1.encryption", 24,
                "name the key length: 'aes 128', 'aes 192' or 'aes 256'"},
        BadAlgo{"  phase1: {encryption: aes 512}", "proposals.phase1.encryption", 24,
                "AES key lengths are 128, 192 and 256"},
        BadAlgo{"  phase1: {encryption: aes256}", "proposals.phase1.encryption", 24, "did you mean 'aes 256'?"},
        BadAlgo{"  phase1: {hash: hmac_sha256}", "proposals.phase1.hash", 18,
                "phase 1 hash names have no hmac_ prefix: use 'sha256'"},
        BadAlgo{"  phase1: {hash: md5}", "proposals.phase1.hash", 18,
                "accepted: 'sha1', 'sha256', 'sha384', 'sha512'"},
        BadAlgo{"  phase1: {dh_group: ecp256}", "proposals.phase1.dh_group", 22,
                "racoon supports no elliptic-curve groups"},
        BadAlgo{"  phase1: {dh_group: 19}", "proposals.phase1.dh_group", 22, "no elliptic-curve groups"},
        BadAlgo{"  phase1: {dh_group: 14}", "proposals.phase1.dh_group", 22, "group 14 is 'modp2048'"},
        BadAlgo{"  phase1: {dh_group: modp1024}", "proposals.phase1.dh_group", 22,
                "available only through proposals.legacy: true"},
        BadAlgo{"  phase2: {authentication: sha256}", "proposals.phase2.authentication", 28,
                "phase 2 uses racoon's HMAC names: use 'hmac_sha256'"},
        BadAlgo{"  phase2: {authentication: [hmac_md5]}", "proposals.phase2.authentication[0]", 29,
                "accepted: 'hmac_sha1', 'hmac_sha256', 'hmac_sha384', 'hmac_sha512'"},
        BadAlgo{"  phase2: {encryption: [aes-gcm-16]}", "proposals.phase2.encryption[0]", 25, "no AEAD ciphers"},
        BadAlgo{"  phase2: {encryption: camellia 256}", "proposals.phase2.encryption", 24,
                "accepted: 'aes 128', 'aes 192', 'aes 256', '3des'"},
        BadAlgo{"  phase2: {pfs_group: ecp384}", "proposals.phase2.pfs_group", 23, "no elliptic-curve groups"},
        BadAlgo{"  phase2: {pfs_group: modp1024}", "proposals.phase2.pfs_group", 23, "legacy: true"},
        BadAlgo{"  phase2: {encryption: [aes 256, {x: 1}]}", "proposals.phase2.encryption[1]", 34,
                "expected an algorithm name, got a mapping; accepted: '"}));

TEST(ConfigProposals, CompressionAndLifetimes) {
  EXPECT_THAT(issuesOf("proposals:\n  phase2:\n    compression: lzs\n"),
              ElementsAre(IsIssue("proposals.phase2.compression", 3, 18, "'lzs' is not one of 'deflate', 'none'")));
  EXPECT_THAT(issuesOf("proposals:\n  phase1:\n    lifetime: 1500ms\n"),
              ElementsAre(IsIssue("proposals.phase1.lifetime", 3, 15, "is not a whole number of seconds")));
  EXPECT_THAT(issuesOf("proposals:\n  phase2:\n    lifetime: 0\n"),
              ElementsAre(IsIssue("proposals.phase2.lifetime", 3, 15, "must be greater than zero")));
  EXPECT_EQ(parse("proposals:\n  phase1:\n    lifetime: 2000ms\n").proposals.phase1.lifetime, std::chrono::seconds(2));
  EXPECT_EQ(parse("proposals:\n  phase1:\n    lifetime: 28800\n").proposals.phase1.lifetime, std::chrono::hours(8));
}

// --- xfrm ------------------------------------------------------------------------------------

TEST(ConfigXfrm, Priorities) {
  auto c = parse("xfrm:\n  protect_priority: 300\n  bypass_priority: 200\n");
  EXPECT_EQ(c.xfrm.protectPriority, 300U);
  EXPECT_EQ(c.xfrm.bypassPriority, 200U);
  EXPECT_THAT(issuesOf("xfrm:\n  protect_priority: 200\n  bypass_priority: 200\n"),
              ElementsAre(IsIssue("xfrm.bypass_priority", 3, 20, "are both 200; they must differ")));
  EXPECT_THAT(issuesOf("xfrm:\n  bypass_priority: 300000\n"),
              ElementsAre(IsIssue("xfrm.bypass_priority", 2, 20,
                                  "bypass_priority (300000) must be lower than protect_priority (250000)")));
  EXPECT_THAT(issuesOf("xfrm:\n  protect_priority: 10\n"),
              ElementsAre(IsIssue("xfrm.protect_priority", 2, 21, "must be lower than protect_priority (10)")));
  EXPECT_THAT(issuesOf("xfrm:\n  protect_priority: 2147483648\n"),
              ElementsAre(IsIssue("xfrm.protect_priority", 2, 21, "2147483648 is out of range 0..2147483647 (XFRM priorities must be below 2^31)")));
  EXPECT_THAT(issuesOf("xfrm:\n  bypass_priority: -1\n"),
              ElementsAre(IsIssue("xfrm.bypass_priority", 2, 20, "expected a whole number from 0 to 2147483647, got '-1'")));
  EXPECT_THAT(issuesOf("xfrm:\n  bypass_priority: 99999999999999999999999\n"),
              ElementsAre(IsIssue("xfrm.bypass_priority", 2, 20, "expected a whole number")));
  EXPECT_THAT(issuesOf("xfrm:\n  bypass_priority: high\n"),
              ElementsAre(IsIssue("xfrm.bypass_priority", 2, 20, "expected a whole number")));
}

// --- daemon ----------------------------------------------------------------------------------

TEST(ConfigDaemon, LogLevel) {
  EXPECT_EQ(parse("daemon:\n  log_level: trace\n").daemon.logLevel, "trace");
  EXPECT_THAT(issuesOf("daemon:\n  log_level: warning\n"),
              ElementsAre(IsIssue("daemon.log_level", 2, 14, "did you mean 'warn'?")));
}

TEST(ConfigDaemon, MetricsFileIsAnAbsolutePathOrEmptyForOff) {
  EXPECT_EQ(parse("daemon:\n  metrics_file: /var/lib/prometheus/node-exporter/ipop-ipsec.prom\n").daemon.metricsFile,
            "/var/lib/prometheus/node-exporter/ipop-ipsec.prom");
  EXPECT_EQ(parse("daemon:\n  metrics_file: \"\"\n").daemon.metricsFile, "");
  EXPECT_THAT(issuesOf("daemon:\n  metrics_file: ipop-ipsec.prom\n"),
              ElementsAre(IsIssue("daemon.metrics_file", 2, 17, "must be an absolute path")));
  EXPECT_THAT(issuesOf("daemon:\n  metrics_file: [a]\n"), ElementsAre(IsIssue("daemon.metrics_file", 2, 17, "")));
  // Another file the daemon writes or reads is refused, as for every output.
  EXPECT_THAT(issuesOf("daemon:\n  metrics_file: /run/ipop-ipsec/state.json\n"),
              ElementsAre(IsIssue("daemon.metrics_file", 2, 17, "(daemon.metrics_file) is also daemon.state_dir's state.json")));
  EXPECT_THAT(issuesOf("daemon:\n  metrics_file: /etc/racoon/certs/host-key.pem\n"),
              ElementsAre(IsIssue("daemon.metrics_file", 2, 17, "a file the daemon reads")));
}

// --- hostile input -----------------------------------------------------------------------------

TEST(ConfigHostile, GarbageGivesErrorsNotCrashes) {
  const std::vector<std::string> inputs{
      std::string("\0\0\0\0", 4),
      "\xff\xfe\xfd",
      "{{{{",
      "]]]",
      "ipop: {interface: [[[[[[[[[[[[[[]]]]]]]]]]]]]]}",
      std::string(100000, '['),
      "a: " + std::string(100000, '{'),
      "protect:\n  ranges: [" + std::string(5000, ',') + "]\n",
      "ipop:\n  interface: \"\\x00\\x01\"\n",
      "? \n",
      "&a [*a]\n",
      "ike: !!binary aGVsbG8=\n",
      "%YAML 9.9\n---\na: 1\n",
      "protect:\n  ranges: [\"" + std::string(100000, '1') + "\"]\n",
  };
  for (const auto& in : inputs) {
    SCOPED_TRACE(in.substr(0, 40));
    try {
      parseConfig(in, "t.yaml");
      ADD_FAILURE() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_FALSE(e.issues().empty());
      for (const auto& i : e.issues()) {
        EXPECT_FALSE(i.message.empty());
        EXPECT_LT(i.message.size(), 1000U);  // user text is cut, not echoed whole
      }
    }
  }
}

TEST(ConfigHostile, IssueCountIsBounded) {
  std::string yaml = "protect:\n  exclude: [";
  for (int i = 0; i < 500; ++i) yaml += (i ? ", " : "") + std::string("x") + std::to_string(i);
  yaml += "]\n";
  auto issues = issuesOf(yaml);
  ASSERT_THAT(issues, SizeIs(101));
  EXPECT_EQ(issues.back().message, "too many problems; stopped after 100");
}

// --- certificates ----------------------------------------------------------------------------

TEST(ConfigCertificates, DefaultsAndExampleAgree) {
  const Config d{};
  EXPECT_EQ(d.certificates.expiryWarningDays, 30);
  EXPECT_EQ(d.certificates.weak, WeakCertPolicy::warn);
  EXPECT_TRUE(d.certificates.checkKeyOwner);
  auto c = parseConfig(readFile(kExample), "ipop-ipsecd.yaml");
  EXPECT_EQ(c.certificates.expiryWarningDays, d.certificates.expiryWarningDays);
  EXPECT_EQ(c.certificates.weak, d.certificates.weak);
  EXPECT_EQ(c.certificates.checkKeyOwner, d.certificates.checkKeyOwner);
}

TEST(ConfigCertificates, AllKeysParse) {
  auto c = parse("certificates:\n  expiry_warning_days: 14\n  weak: refuse\n  check_key_owner: false\n");
  EXPECT_EQ(c.certificates.expiryWarningDays, 14);
  EXPECT_EQ(c.certificates.weak, WeakCertPolicy::refuse);
  EXPECT_FALSE(c.certificates.checkKeyOwner);
  EXPECT_EQ(parse("certificates:\n").certificates.expiryWarningDays, 30) << "an empty section keeps the defaults";
}

TEST(ConfigCertificates, BadValuesNameTheKeyPath) {
  EXPECT_THAT(issuesOf("certificates:\n  expiry_warning_days: 5000\n"),
              ElementsAre(IsIssue("certificates.expiry_warning_days", 2, 24, "out of range 0..3650")));
  EXPECT_THAT(issuesOf("certificates:\n  expiry_warning_days: -1\n"),
              ElementsAre(IsIssue("certificates.expiry_warning_days", 2, 24, "expected a whole number")));
  EXPECT_THAT(issuesOf("certificates:\n  expiry_warning_days: [1]\n"),
              ElementsAre(IsIssue("certificates.expiry_warning_days", 2, 24, "got a list")));
  EXPECT_THAT(issuesOf("certificates:\n  weak: refuze\n"),
              ElementsAre(IsIssue("certificates.weak", 2, 9, "did you mean 'refuse'?")));
  EXPECT_THAT(issuesOf("certificates:\n  check_key_owner: maybe\n"),
              ElementsAre(IsIssue("certificates.check_key_owner", 2, 20, "expected true/false")));
  EXPECT_THAT(issuesOf("certificates:\n  expiry_days: 3\n"),
              ElementsAre(IsIssue("certificates.expiry_days", 2, 3, "unknown key")));
  EXPECT_THAT(issuesOf("certificates: 7\n"), ElementsAre(IsIssue("certificates", 1, 15, "expected a mapping")));
}

TEST(ConfigHostile, ControlCharactersAreEscapedInMessages) {
  EXPECT_THAT(issuesOf("protect:\n  level: \"re\\x1b[31mquire\"\n"),
              ElementsAre(IsIssue("protect.level", 2, 10, "'re\\x1b[31mquire' is not one of")));
}

// --- strongswan ------------------------------------------------------------------------------

TEST(ConfigStrongswan, DefaultsAndExampleAgree) {
  const Config d{};
  EXPECT_EQ(d.strongswan.swanctlDir, "/etc/swanctl");
  EXPECT_EQ(d.strongswan.config, "/etc/swanctl/conf.d/ipop-ipsec.conf");
  EXPECT_EQ(d.strongswan.loadCommand, (std::vector<std::string>{"/usr/sbin/swanctl", "--load-all", "--noprompt"}));
  EXPECT_EQ(d.strongswan.dpdDelay, 30);
  auto c = parseConfig(readFile(kExample), "ipop-ipsecd.yaml");
  EXPECT_EQ(c.strongswan.swanctlDir, d.strongswan.swanctlDir);
  EXPECT_EQ(c.strongswan.config, d.strongswan.config);
  EXPECT_EQ(c.strongswan.loadCommand, d.strongswan.loadCommand);
  EXPECT_EQ(c.strongswan.dpdDelay, d.strongswan.dpdDelay);
}

TEST(ConfigStrongswan, AllKeysParse) {
  auto c = parse(
      "ike:\n  backend: strongswan\n"
      "strongswan:\n  swanctl_dir: /srv/swanctl\n  config: /srv/swanctl/conf.d/x.conf\n"
      "  load_command: [/usr/sbin/swanctl, --load-all, --noprompt, --uri, 'unix:///run/n1/charon.vici']\n"
      "  dpd_delay: 0\n");
  EXPECT_EQ(c.strongswan.swanctlDir, "/srv/swanctl");
  EXPECT_EQ(c.strongswan.config, "/srv/swanctl/conf.d/x.conf");
  EXPECT_EQ(c.strongswan.loadCommand.back(), "unix:///run/n1/charon.vici");
  EXPECT_EQ(c.strongswan.dpdDelay, 0);
}

TEST(ConfigStrongswan, BackendDerivesUnitAndProtectPriority) {
  auto c = parse("ike:\n  backend: strongswan\n");
  EXPECT_EQ(c.ike.unit, "strongswan.service");
  EXPECT_EQ(c.xfrm.protectPriority, Config::Xfrm::kStrongswanProtectPriority);
  EXPECT_GT(c.xfrm.protectPriority, Config::Xfrm::kCharonLowestPriority) << "charon's trap policies must win";
  EXPECT_EQ(parse("ike:\n  backend: racoon\n").xfrm.protectPriority, Config{}.xfrm.protectPriority);
  EXPECT_EQ(parse("ike:\n  backend: strongswan\nxfrm:\n  protect_priority: 700000\n").xfrm.protectPriority, 700000u);
}

TEST(ConfigStrongswan, AProtectPriorityThatShadowsCharonIsRefused) {
  EXPECT_THAT(issuesOf("ike:\n  backend: strongswan\nxfrm:\n  protect_priority: 250000\n"),
              ElementsAre(IsIssue("xfrm.protect_priority", 4, 21, "would shadow charon's trap policies")));
}

TEST(ConfigStrongswan, CutCommandDefaultsToCutRevokedAndEmptyTurnsItOff) {
  EXPECT_EQ(Config{}.strongswan.cutCommand, (std::vector<std::string>{"/usr/sbin/ipop-ipsecd", "cut-revoked"}));
  EXPECT_EQ(parse("strongswan:\n  cut_command: [/usr/local/sbin/ipop-ipsecd, cut-revoked, --uri, 'unix:///run/n1/charon.vici']\n")
                .strongswan.cutCommand.back(),
            "unix:///run/n1/charon.vici");
  EXPECT_TRUE(parse("strongswan:\n  cut_command: []\n").strongswan.cutCommand.empty());
  EXPECT_THAT(issuesOf("strongswan:\n  cut_command: ipop-ipsecd cut-revoked\n"),
              ElementsAre(IsIssue("strongswan.cut_command", 2, 16, "expected a list of strings")));
  EXPECT_THAT(issuesOf("strongswan:\n  cut_command: [ipop-ipsecd, cut-revoked]\n"),
              ElementsAre(IsIssue("strongswan.cut_command[0]", 2, 17, "must be an absolute path")));
}

TEST(ConfigStrongswan, BadValuesNameTheKeyPath) {
  EXPECT_THAT(issuesOf("strongswan:\n  load_command: /usr/sbin/swanctl --load-all\n"),
              ElementsAre(IsIssue("strongswan.load_command", 2, 17, "expected a list of strings")));
  EXPECT_THAT(issuesOf("strongswan:\n  load_command: []\n"),
              ElementsAre(IsIssue("strongswan.load_command", 2, 17, "must not be empty")));
  EXPECT_THAT(issuesOf("strongswan:\n  load_command: [swanctl, --load-all]\n"),
              ElementsAre(IsIssue("strongswan.load_command[0]", 2, 18, "must be an absolute path")));
  EXPECT_THAT(issuesOf("strongswan:\n  swanctl_dir: etc/swanctl\n"),
              ElementsAre(IsIssue("strongswan.swanctl_dir", 2, 16, "must be an absolute path")));
  EXPECT_THAT(issuesOf("strongswan:\n  dpd_delay: 9999\n"),
              ElementsAre(IsIssue("strongswan.dpd_delay", 2, 14, "out of range 0..3600")));
  EXPECT_THAT(issuesOf("strongswan:\n  swanctl_dri: /etc/swanctl\n"),
              ElementsAre(IsIssue("strongswan.swanctl_dri", 2, 3, "did you mean 'swanctl_dir'?")));
  EXPECT_THAT(issuesOf("strongswan: [1, 2]\n"), ElementsAre(IsIssue("strongswan", 1, 13, "expected a mapping")));
}

// --- fail closed: outputs that would destroy inputs, exclusions that open a whole range ---------

TEST(ConfigOutputs, RacoonConfigAndSpdFileMustDiffer) {
  EXPECT_THAT(issuesOf("racoon:\n  config: /etc/a.conf\n  spd_file: /etc/a.conf\n"),
              ElementsAre(IsIssue("racoon.spd_file", 3, 13,
                                  "'/etc/a.conf' (racoon.spd_file) is also racoon.config: the daemon would write "
                                  "both files at the same path")));
  // The same file spelled differently.
  EXPECT_THAT(issuesOf("racoon:\n  config: /etc/racoon/racoon.conf\n  spd_file: /etc/racoon//./racoon.conf\n"),
              ElementsAre(IsIssue("racoon.spd_file", 3, 13, "is also racoon.config")));
  // One of them set, equal to the other's default.
  EXPECT_THAT(issuesOf("racoon:\n  spd_file: /etc/racoon/racoon.conf\n"),
              ElementsAre(IsIssue("racoon.spd_file", 2, 13, "is also racoon.config")));
}

TEST(ConfigOutputs, MustNotBeACertificateOrTheKey) {
  EXPECT_THAT(issuesOf("racoon:\n  config: /etc/racoon/certs/host-key.pem\n"),
              ElementsAre(IsIssue("racoon.config", 2, 11,
                                  "(racoon.config) is also racoon.host_key (in racoon.certificate_dir): a file the "
                                  "daemon reads; writing there would destroy it")));
  // Reported at the input when only the input is set.
  EXPECT_THAT(issuesOf("racoon:\n  host_cert: /etc/ipsec-tools.conf\n"),
              ElementsAre(IsIssue("racoon.host_cert", 2, 14, "is also racoon.host_cert")));
  // A file name resolved against certificate_dir.
  EXPECT_THAT(issuesOf("racoon:\n  certificate_dir: /etc/racoon\n  ca_cert: racoon.conf\n"),
              ElementsAre(IsIssue("racoon.ca_cert", 3, 12, "is also racoon.ca_cert (in racoon.certificate_dir)")));
  EXPECT_THAT(issuesOf("racoon:\n  spd_file: /etc/racoon/certs/cacert.pem\n"),
              ElementsAre(IsIssue("racoon.spd_file", 2, 13, "is also racoon.ca_cert")));
}

TEST(ConfigOutputs, MustNotBeTheStateFiles) {
  EXPECT_THAT(issuesOf("racoon:\n  config: /run/ipop-ipsec/state.json\n"),
              ElementsAre(IsIssue("racoon.config", 2, 11, "(daemon.state_dir's state.json) is also racoon.config")));
  EXPECT_THAT(issuesOf("racoon:\n  spd_file: /run/ipop-ipsec/ipop-up\n"),
              ElementsAre(IsIssue("racoon.spd_file", 2, 13, "(daemon.state_dir's ipop-up) is also racoon.spd_file")));
  EXPECT_THAT(issuesOf("daemon:\n  state_dir: /etc/racoon/certs\nracoon:\n  host_key: state.json\n"),
              ElementsAre(IsIssue("daemon.state_dir", 2, 14,
                                  "'/etc/racoon/certs/state.json' (daemon.state_dir's state.json) is also "
                                  "racoon.host_key (in racoon.certificate_dir)")));
}

TEST(ConfigOutputs, MustNotBeTheConfigFileItself) {
  try {
    parseConfig("ipop:\n  interface: ipop\n", "/etc/racoon/racoon.conf");
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_THAT(e.issues(), SizeIs(1));
    EXPECT_EQ(e.issues()[0].keyPath, "racoon.config");
    EXPECT_THAT(e.issues()[0].message, HasSubstr("is also the config file itself"));
  }
  EXPECT_THAT(issuesOf("racoon:\n  config: t.yaml\n"), ElementsAre(IsIssue("racoon.config", 2, 11, "absolute path")));
}

TEST(ConfigOutputs, OnlyTheActiveBackendsFilesCount) {
  // racoon's files are not written with the strongswan backend ...
  parse("ike:\n  backend: strongswan\nracoon:\n  config: /etc/x.conf\n  spd_file: /etc/x.conf\n");
  // ... but strongSwan's are, and the certificates are copied into swanctl_dir.
  EXPECT_THAT(issuesOf("ike:\n  backend: strongswan\nstrongswan:\n  config: /etc/swanctl/x509/ipop-ipsec-host.pem\n"),
              ElementsAre(IsIssue("strongswan.config", 4, 11, "is also strongswan.config")));
  EXPECT_THAT(issuesOf("ike:\n  backend: strongswan\nracoon:\n  certificate_dir: /etc/swanctl/private\n"
                       "  host_key: ipop-ipsec-host.pem\n"),
              ElementsAre(IsIssue("racoon.host_key", 5, 13,
                                  "(strongswan.swanctl_dir's private/ipop-ipsec-host.pem) is also racoon.host_key")));
  // Distinct paths are fine.
  parse("racoon:\n  config: /etc/racoon/racoon.conf\n  spd_file: /etc/racoon/spd.conf\n");
}

TEST(ConfigExclude, TheWholeRangeIsRefused) {
  EXPECT_THAT(issuesOf("protect:\n  ranges: [172.31.0.0/16, 10.1.0.0/16]\n  exclude: [172.31.0.1, 10.1.0.0/16]\n"),
              ElementsAre(IsIssue("protect.exclude[1]", 3, 25,
                                  "'10.1.0.0/16' is the whole protected range 10.1.0.0/16: its bypass policy would "
                                  "collide with the range's protect policy")));
  EXPECT_THAT(issuesOf("protect:\n  ranges: ['fd50::/64']\n  exclude: ['fd50::/64']\n"),
              ElementsAre(IsIssue("protect.exclude[0]", 3, 13, "is the whole protected range")));
  // A part of a range is fine.
  EXPECT_THAT(parse("protect:\n  ranges: [10.1.0.0/16]\n  exclude: [10.1.0.0/17]\n").protect.exclude, SizeIs(1));
}

TEST(ConfigIke, AUnitOfTheOtherBackendIsWarned) {
  auto c = parse("ike:\n  backend: strongswan\n  unit: racoon.service\n");
  EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("ike.unit: 'racoon.service' looks like racoon's unit, but "
                                                "ike.backend is strongswan")));
  c = parse("ike:\n  backend: racoon\n  unit: strongswan.service\n");
  EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("looks like strongSwan's unit, but ike.backend is racoon")));
  EXPECT_THAT(parse("ike:\n  unit: strongswan-starter.service\n").warnings, SizeIs(1));
  // The matching units, units of other names, and command control: no warning.
  for (const char* ok : {"ike:\n  backend: strongswan\n  unit: strongswan.service\n",
                         "ike:\n  backend: strongswan\n  unit: charon.service\n",
                         "ike:\n  backend: racoon\n  unit: racoon@ipop.service\n",
                         "ike:\n  backend: racoon\n  unit: ike.service\n",
                         "ike:\n  backend: strongswan\n  control: command\n  unit: racoon.service\n"
                         "  restart_command: [/bin/true]\n"})
    EXPECT_THAT(parse(ok).warnings, IsEmpty()) << ok;
}

TEST(ConfigExample, TheUnitFollowsTheBackend) {
  // The example must not pin a unit: switching its backend alone gives the right one.
  auto text = readFile(kExample);
  auto pos = text.find("  backend: racoon\n");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 17, "  backend: strongswan");
  auto c = parse(text);
  EXPECT_EQ(c.ike.backend, IkeBackend::strongswan);
  EXPECT_EQ(c.ike.unit, "strongswan.service");
  EXPECT_THAT(c.warnings, IsEmpty());
}

}  // namespace
}  // namespace ipopsec
