// parseConfig: every validation path, with the exact key path, line and column of each
// issue; every issue collected at once; defaults; derived values; warnings; the example
// file; and hostile input that must give clear errors, never a crash. Most of it is tables,
// one per section (ConfigRejects: a document and exactly the issues it gives; ConfigAccepts:
// a document that validates and what it gives); the rest are tests of their own.

#include "core/config/parse_config.hpp"
#include "support/read_file.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace ipopsec {

// Readable failure output: an issue prints as the operator would see it.
void PrintTo(const ConfigIssue& i, std::ostream* os) { *os << i.str(); }

namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
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

// A file the test needs: read whole, and a failure if it is missing or empty.
std::string readFile(const std::string& path) {
  std::string text = test::readFile(path);
  EXPECT_FALSE(text.empty()) << "cannot read " << path << " (or it is empty)";
  return text;
}

const std::string kExample = IPOPSEC_SOURCE_DIR "/config/ipop-ipsecd.yaml";

// --- the tables ---------------------------------------------------------------------------------
// Most checks are rows: a document, and what parsing it as t.yaml must give. Each row is a
// test of its own, named <Section>/ConfigRejects.WithExactlyTheseIssues/<row> or
// <Section>/ConfigAccepts.AndTheCheckHolds/<row>.

// An issue as the operator sees it: key path, line, column and a part of the message.
struct WantedIssue {
  std::string keyPath;
  int line;
  int column;
  std::string text;
};

// A document that does not validate: it gives exactly these issues, in this order.
struct RejectRow {
  std::string name;
  std::string yaml;
  std::vector<WantedIssue> issues;
};

// A document that validates (no ConfigError) and whose Config passes the check.
struct AcceptRow {
  std::string name;
  std::string yaml;
  std::function<void(const Config&)> check;
};

void PrintTo(const RejectRow& r, std::ostream* os) { *os << r.name << ": " << ::testing::PrintToString(r.yaml); }
void PrintTo(const AcceptRow& r, std::ostream* os) { *os << r.name << ": " << ::testing::PrintToString(r.yaml); }

template <typename Row>
std::string rowName(const ::testing::TestParamInfo<Row>& info) {
  return info.param.name;
}

class ConfigRejects : public ::testing::TestWithParam<RejectRow> {};

TEST_P(ConfigRejects, WithExactlyTheseIssues) {
  ASSERT_THAT(GetParam().issues, Not(IsEmpty()));
  std::vector<::testing::Matcher<const ConfigIssue&>> wanted;
  for (const auto& w : GetParam().issues) wanted.push_back(IsIssue(w.keyPath, w.line, w.column, w.text));
  EXPECT_THAT(issuesOf(GetParam().yaml), ElementsAreArray(wanted));
}

class ConfigAccepts : public ::testing::TestWithParam<AcceptRow> {};

TEST_P(ConfigAccepts, AndTheCheckHolds) { GetParam().check(parse(GetParam().yaml)); }

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

const RejectRow kDocumentRejects[] = {
    // Empty file is an error
    {"empty_file", "",
     {{"", 0, 0, "the file is empty"}}},
    {"only_a_comment", "# only a comment\n\n",
     {{"", 0, 0, "the file is empty"}}},
    {"only_a_document_marker", "---\n",
     {{"", 0, 0, "the file is empty"}}},
    // Top level must be a mapping
    {"top_level_a_list", "- ipop\n- protect\n",
     {{"", 1, 1, "the top level must be a mapping of sections"}}},
    {"top_level_a_scalar", "just text\n",
     {{"", 1, 1, "got 'just text'"}}},
    // Syntax error has its position
    // The unterminated flow list is reported where yaml-cpp notices it: line 3, column 1.
    {"unterminated_flow_list", "protect:\n  ranges: [172.31.0.0/16\n",
     {{"", 3, 1, "YAML syntax error: end of sequence flow not found"}}},
    // A tab used for indentation.
    {"tab_indentation", "ipop:\n\tinterface: ipop\n",
     {{"", 2, 11, "YAML syntax error: illegal map value"}}},
    {"undefined_alias", "ike:\n  unit: *nowhere\n",
     {{"", 2, 9, "the referenced anchor is not defined"}}},
    // More than one document is an error
    {"two_documents", "ipop:\n  interface: ipop\n---\nipop:\n  interface: tapipop\n",
     {{"", 4, 1, "2 YAML documents"}}},
    // Unknown section suggests the nearest
    {"unknown_section_protcet", "protcet:\n  level: use\n",
     {{"protcet", 1, 1, "unknown key; did you mean 'protect'?"}}},
    // Unknown key without a near match lists the known ones
    {"unknown_key_lists_the_known", "ipop:\n  bridge: yes\n",
     {{"ipop.bridge", 2, 3, "unknown key; known keys here: interface"}}},
    // Unknown key at every level
    {"unknown_key_rangs", "protect:\n  rangs: [172.31.0.0/16]\n",
     {{"protect.rangs", 2, 3, "unknown key; did you mean 'ranges'?"}}},
    {"unknown_key_nested_three_deep", "proposals:\n  phase2:\n    authentification: hmac_sha256\n",
     {{"proposals.phase2.authentification", 3, 5, "did you mean 'authentication'?"}}},
    // Case and dashes are typos too.
    {"dash_for_underscore", "ike:\n  quiet-period: 2s\n",
     {{"ike.quiet-period", 2, 3, "did you mean 'quiet_period'?"}}},
    {"capitalised_section", "Ipop:\n  interface: ipop\n",
     {{"Ipop", 1, 1, "did you mean 'ipop'?"}}},
    // Duplicate key is an error
    {"duplicate_key", "ipop:\n  interface: ipop\n  interface: tapipop\n",
     {{"ipop.interface", 3, 3, "duplicate key; first set on line 2"}}},
    // Complex key is an error
    {"complex_key", "protect:\n  ? [a, b]\n  : 1\n",
     {{"protect", 2, 5, "keys must be plain names"}}},
    // Section must be a mapping
    {"section_a_list", "protect: [172.31.0.0/16]\n",
     {{"protect", 1, 10, "expected a mapping with the keys ranges, ipv6, exclude"}}},
    {"section_a_scalar", "ipop: tapipop\n",
     {{"ipop", 1, 7, "write 'ipop: { interface: tapipop }'"}}},
};
INSTANTIATE_TEST_SUITE_P(Document, ConfigRejects, ::testing::ValuesIn(kDocumentRejects), rowName<RejectRow>);

const AcceptRow kDocumentAccepts[] = {
    // Empty sections keep defaults
    {"empty_sections_keep_defaults", "ipop:\nprotect:\nike:\nracoon:\nproposals:\nxfrm:\ndaemon:\n",
     [](const Config& c) {
       EXPECT_EQ(c.ipop.interface, Config{}.ipop.interface);
       EXPECT_TRUE(c.protect.autoRanges);
     }},
    // Anchors and aliases work
    {"anchors_and_aliases_work",
     "protect:\n  ranges: &r [172.31.0.0/16]\n  exclude: [172.31.0.1]\nike:\n  quiet_period: &q 3s\n"
     "  min_interval: *q\n",
     [](const Config& c) { EXPECT_EQ(c.ike.minInterval, std::chrono::seconds(3)); }},
};
INSTANTIATE_TEST_SUITE_P(Document, ConfigAccepts, ::testing::ValuesIn(kDocumentAccepts), rowName<AcceptRow>);

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

// --- defaults and derived values ------------------------------------------------------------

const AcceptRow kDefaultsAccepts[] = {
    // Strongswan backend derives its unit
    {"strongswan_backend_strongswan_service", "ike:\n  backend: strongswan\n",
     [](const Config& c) { EXPECT_EQ(c.ike.unit, "strongswan.service"); }},
    {"racoon_backend_racoon_service", "ike:\n  backend: racoon\n",
     [](const Config& c) { EXPECT_EQ(c.ike.unit, "racoon.service"); }},
    // An explicit unit wins, whichever order the keys come in.
    {"unit_before_backend_wins", "ike:\n  unit: charon.service\n  backend: strongswan\n",
     [](const Config& c) { EXPECT_EQ(c.ike.unit, "charon.service"); }},
    {"unit_after_backend_wins", "ike:\n  backend: strongswan\n  unit: strongswan-starter.service\n",
     [](const Config& c) { EXPECT_EQ(c.ike.unit, "strongswan-starter.service"); }},
};
INSTANTIATE_TEST_SUITE_P(Defaults, ConfigAccepts, ::testing::ValuesIn(kDefaultsAccepts), rowName<AcceptRow>);

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

const RejectRow kIpopRejects[] = {
    // Interface names
    {"sixteen_characters", "ipop:\n  interface: abcdefghijklmnop\n",
     {{"ipop.interface", 2, 14, "is 16 characters long; Linux interface names have at most 15"}}},
    {"empty_string", "ipop:\n  interface: ''\n",
     {{"ipop.interface", 2, 14, "must not be empty"}}},
    {"no_value", "ipop:\n  interface:\n",
     {{"ipop.interface", 2, 3, "must not be empty"}}},
    {"slash", "ipop:\n  interface: ipop/0\n",
     {{"ipop.interface", 2, 14, "contains '/'"}}},
    {"colon", "ipop:\n  interface: ipop:1\n",
     {{"ipop.interface", 2, 14, "contains ':'"}}},
    {"space", "ipop:\n  interface: 'ip op'\n",
     {{"ipop.interface", 2, 14, "whitespace"}}},
    {"tab", "ipop:\n  interface: \"ipop\\t\"\n",
     {{"ipop.interface", 2, 14, "whitespace"}}},
    {"dot", "ipop:\n  interface: .\n",
     {{"ipop.interface", 2, 14, "'.' is not a valid"}}},
    {"dot_dot", "ipop:\n  interface: ..\n",
     {{"ipop.interface", 2, 14, "'..' is not a valid"}}},
    {"a_list", "ipop:\n  interface: [ipop]\n",
     {{"ipop.interface", 2, 14, "expected an interface name, got a list"}}},
};
INSTANTIATE_TEST_SUITE_P(Ipop, ConfigRejects, ::testing::ValuesIn(kIpopRejects), rowName<RejectRow>);

const AcceptRow kIpopAccepts[] = {
    // Interface names
    {"ipopbr0", "ipop:\n  interface: ipopbr0\n",
     [](const Config& c) { EXPECT_EQ(c.ipop.interface, "ipopbr0"); }},
    {"fifteen_characters", "ipop:\n  interface: abcdefghijklmno\n",
     [](const Config& c) { EXPECT_EQ(c.ipop.interface, "abcdefghijklmno"); }},  // 15
};
INSTANTIATE_TEST_SUITE_P(Ipop, ConfigAccepts, ::testing::ValuesIn(kIpopAccepts), rowName<AcceptRow>);

// --- protect.ranges -------------------------------------------------------------------------

const RejectRow kRangesRejects[] = {
    // Invalid cidr gives the reason
    {"not_an_address", "protect:\n  ranges: [256.0.0.0/8]\n",
     {{"protect.ranges[0]", 2, 12, "is not a valid CIDR: '256.0.0.0' is not an IPv4 or IPv6"}}},
    // Host bits suggest the network
    {"host_bits_ipv4", "protect:\n  ranges: [172.31.0.16/16]\n",
     {{"protect.ranges[0]", 2, 12, "'172.31.0.16/16' has host bits set; did you mean 172.31.0.0/16?"}}},
    {"host_bits_ipv6", "protect:\n  ranges: ['fd50::1/64']\n",
     {{"protect.ranges[0]", 2, 12, "did you mean fd50::/64?"}}},
    // Overlap names both
    {"overlap_names_both", "protect:\n  ranges:\n    - 172.31.0.0/16\n    - 10.0.0.0/8\n    - 172.31.5.0/24\n",
     {{"protect.ranges[2]", 5, 7, "'172.31.5.0/24' overlaps protect.ranges[0] '172.31.0.0/16'"}}},
    {"same_range_twice", "protect:\n  ranges: [10.0.0.0/8, 10.0.0.0/8]\n",
     {{"protect.ranges[1]", 2, 24, "overlaps protect.ranges[0] '10.0.0.0/8'"}}},
    // Must not be empty
    {"empty_list", "protect:\n  ranges: []\n",
     {{"protect.ranges", 2, 11, "must not be empty: list at least one range, or write 'auto'"}}},
    {"no_value", "protect:\n  ranges:\n",
     {{"protect.ranges", 2, 3, "expected a list of CIDRs or 'auto', got nothing"}}},
    // Wrong types and forms
    {"a_scalar_cidr", "protect:\n  ranges: 172.31.0.0/16\n",
     {{"protect.ranges", 2, 11, "expected a list of CIDRs or 'auto', got '172.31.0.0/16'; write [172.31.0.0/16]"}}},
    {"Auto_capitalised", "protect:\n  ranges: Auto\n",
     {{"protect.ranges", 2, 11, "did you mean 'auto'?"}}},
    {"a_mapping", "protect:\n  ranges: {a: 1}\n",
     {{"protect.ranges", 2, 11, "expected a list of CIDRs or 'auto', got a mapping"}}},
    {"nested_list", "protect:\n  ranges: [[10.0.0.0/8]]\n",
     {{"protect.ranges[0]", 2, 12, "expected a CIDR like 172.31.0.0/16, got a list"}}},
    {"single_address", "protect:\n  ranges: [172.31.0.16]\n",
     {{"protect.ranges[0]", 2, 12, "is a single address; a protected range needs a prefix length"}}},
};
INSTANTIATE_TEST_SUITE_P(Ranges, ConfigRejects, ::testing::ValuesIn(kRangesRejects), rowName<RejectRow>);

const AcceptRow kRangesAccepts[] = {
    // Auto and explicit
    {"auto", "protect:\n  ranges: auto\n",
     [](const Config& c) { EXPECT_TRUE(c.protect.autoRanges); }},
    {"explicit_list", "protect:\n  ranges:\n    - 172.31.0.0/16\n    - 10.254.0.0/16\n",
     [](const Config& c) {
       EXPECT_FALSE(c.protect.autoRanges);
       ASSERT_THAT(c.protect.ranges, SizeIs(2));
       EXPECT_EQ(c.protect.ranges[1].str(), "10.254.0.0/16");
     }},
    {"ipv6_quoted", "protect:\n  ranges: ['fd50::/64']\n",
     [](const Config& c) { EXPECT_EQ(c.protect.ranges.at(0).family(), Family::v6); }},
    {"ipv6_unquoted", "protect:\n  ranges: [fd50::/64]\n",
     [](const Config& c) { EXPECT_EQ(c.protect.ranges.at(0).str(), "fd50::/64"); }},
    // Overlap names both
    // Different families never overlap.
    {"families_never_overlap", "protect:\n  ranges: [0.0.0.0/1, '::/1']\n",
     [](const Config& c) { EXPECT_THAT(c.protect.ranges, SizeIs(2)); }},
};
INSTANTIATE_TEST_SUITE_P(Ranges, ConfigAccepts, ::testing::ValuesIn(kRangesAccepts), rowName<AcceptRow>);

TEST(ConfigRanges, InvalidCidrGivesTheReason) {
  auto issues = issuesOf("protect:\n  ranges: [10.0.0.0/8, 172.31.0.0/33]\n");
  ASSERT_THAT(issues, ElementsAre(IsIssue("protect.ranges[1]", 2, 24,
                                          "'172.31.0.0/33' is not a valid CIDR: prefix length 33 is out of range 0..32")));
  EXPECT_EQ(issues[0].str(),
            "t.yaml:2:24: protect.ranges[1]: '172.31.0.0/33' is not a valid CIDR: prefix length 33 is out of range 0..32");
}

TEST(ConfigRanges, TooManyEntriesAreRefused) {
  std::string yaml = "protect:\n  ranges: [";
  for (int i = 0; i < 300; ++i) yaml += (i ? ", " : "") + std::string("10.0.") + std::to_string(i % 256) + ".0/24";
  yaml += "]\n";
  EXPECT_THAT(issuesOf(yaml), ElementsAre(IsIssue("protect.ranges", 2, 11, "has 300 entries; at most 256")));
}

// --- protect.exclude -------------------------------------------------------------------------

const RejectRow kExcludeRejects[] = {
    // Not inside any range
    {"outside_every_range", "protect:\n  ranges: [172.31.0.0/16, 10.1.0.0/16]\n  exclude: [172.31.0.1, 10.2.0.1]\n",
     {{"protect.exclude[1]", 3, 25, "'10.2.0.1' is not inside any protected range (172.31.0.0/16, 10.1.0.0/16)"}}},
    // Partly inside is not inside.
    {"partly_inside", "protect:\n  ranges: [172.31.0.0/16]\n  exclude: [172.0.0.0/8]\n",
     {{"protect.exclude[0]", 3, 13, "not inside any protected range"}}},
    // No cascade from a broken range
    // The range is wrong; the exclusion is not also reported as outside it.
    {"broken_range_no_cascade", "protect:\n  ranges: [172.31.0/16]\n  exclude: [172.31.0.1]\n",
     {{"protect.ranges[0]", 2, 12, "is not a valid CIDR"}}},
    // Bad entries
    {"host_bits", "protect:\n  exclude: [172.31.0.1/24]\n",
     {{"protect.exclude[0]", 2, 13,
       "'172.31.0.1/24' has host bits set; did you mean 172.31.0.0/24 (or 172.31.0.1 alone"}}},
    {"not_an_address", "protect:\n  exclude: [172.31.0.300]\n",
     {{"protect.exclude[0]", 2, 13, "is not a valid address or CIDR"}}},
    {"a_scalar", "protect:\n  exclude: 172.31.0.1\n",
     {{"protect.exclude", 2, 12, "write [172.31.0.1] for a single entry"}}},
    {"a_mapping_entry", "protect:\n  exclude: [{a: b}]\n",
     {{"protect.exclude[0]", 2, 13, "expected an address or a CIDR, got a mapping"}}},
    // The whole range is refused
    {"the_whole_range", "protect:\n  ranges: [172.31.0.0/16, 10.1.0.0/16]\n  exclude: [172.31.0.1, 10.1.0.0/16]\n",
     {{"protect.exclude[1]", 3, 25, "'10.1.0.0/16' is the whole protected range 10.1.0.0/16: its bypass policy would "
       "collide with the range's protect policy"}}},
    {"the_whole_ipv6_range", "protect:\n  ranges: ['fd50::/64']\n  exclude: ['fd50::/64']\n",
     {{"protect.exclude[0]", 3, 13, "is the whole protected range"}}},
};
INSTANTIATE_TEST_SUITE_P(Exclude, ConfigRejects, ::testing::ValuesIn(kExcludeRejects), rowName<RejectRow>);

const AcceptRow kExcludeAccepts[] = {
    // Addresses and cidrs inside the ranges
    {"address_and_cidr_inside", "protect:\n  ranges: [172.31.0.0/16]\n  exclude: [172.31.0.1, 172.31.128.0/17]\n",
     [](const Config& c) {
       ASSERT_THAT(c.protect.exclude, SizeIs(2));
       EXPECT_EQ(c.protect.exclude[0], Cidr::host(IpAddress::v4(172, 31, 0, 1)));
       EXPECT_EQ(c.protect.exclude[1].str(), "172.31.128.0/17");
     }},
    // Order doesn't matter: exclude may come before ranges.
    {"before_ranges", "protect:\n  exclude: [172.31.0.1]\n  ranges: [172.31.0.0/16]\n",
     [](const Config& c) { EXPECT_THAT(c.protect.exclude, SizeIs(1)); }},
    // Anything goes with auto ranges
    {"anything_with_auto_ranges", "protect:\n  ranges: auto\n  exclude: [10.9.9.9, 'fd00::1']\n",
     [](const Config& c) { EXPECT_THAT(c.protect.exclude, SizeIs(2)); }},
    // The whole range is refused
    // A part of a range is fine.
    {"part_of_a_range", "protect:\n  ranges: [10.1.0.0/16]\n  exclude: [10.1.0.0/17]\n",
     [](const Config& c) { EXPECT_THAT(c.protect.exclude, SizeIs(1)); }},
};
INSTANTIATE_TEST_SUITE_P(Exclude, ConfigAccepts, ::testing::ValuesIn(kExcludeAccepts), rowName<AcceptRow>);

// --- protect: booleans and level ------------------------------------------------------------

const RejectRow kProtectRejects[] = {
    // Booleans are checked
    {"forward_maybe", "protect:\n  forward: maybe\n",
     {{"protect.forward", 2, 12, "expected true/false, got 'maybe'"}}},
    {"ipv6_a_list", "protect:\n  ipv6: [true]\n",
     {{"protect.ipv6", 2, 9, "expected true/false, got a list"}}},
    {"nat_traversal_1", "racoon:\n  nat_traversal: 1\n",
     {{"racoon.nat_traversal", 2, 18, "expected true/false"}}},
    // Level
    {"level_typo", "protect:\n  level: requre\n",
     {{"protect.level", 2, 10, "'requre' is not one of 'require', 'use'; did you mean 'require'?"}}},
};
INSTANTIATE_TEST_SUITE_P(Protect, ConfigRejects, ::testing::ValuesIn(kProtectRejects), rowName<RejectRow>);

const AcceptRow kProtectAccepts[] = {
    // Booleans are checked
    {"forward_yes", "protect:\n  forward: yes\n",
     [](const Config& c) { EXPECT_TRUE(c.protect.forward); }},
    {"forward_false", "protect:\n  forward: false\n",
     [](const Config& c) { EXPECT_FALSE(c.protect.forward); }},
    // Level
    {"level_use", "protect:\n  level: use\n",
     [](const Config& c) { EXPECT_EQ(c.protect.level, PolicyLevel::use); }},
    // Ipv6 with explicit ranges warns
    {"ipv6_with_explicit_ranges_warned", "protect:\n  ranges: [172.31.0.0/16]\n  ipv6: true\n",
     [](const Config& c) {
       EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("protect.ipv6: has an effect only with ranges: auto")));
     }},
    {"ipv6_with_auto_ranges", "protect:\n  ranges: auto\n  ipv6: true\n",
     [](const Config& c) { EXPECT_THAT(c.warnings, IsEmpty()); }},
};
INSTANTIATE_TEST_SUITE_P(Protect, ConfigAccepts, ::testing::ValuesIn(kProtectAccepts), rowName<AcceptRow>);

// --- ike -------------------------------------------------------------------------------------

const RejectRow kIkeRejects[] = {
    // Backend and control names
    {"backend_case", "ike:\n  backend: strongSwan\n",
     {{"ike.backend", 2, 12, "did you mean 'strongswan'?"}}},
    {"control_unknown", "ike:\n  control: sysvinit\n",
     {{"ike.control", 2, 12, "is not one of 'systemd', 'command'"}}},
    // Command control needs a restart command
    {"command_control_without_restart_command", "ike:\n  control: command\n",
     {{"ike.restart_command", 2, 12, "is required when ike.control is command"}}},
    {"restart_command_empty", "ike:\n  control: command\n  restart_command: []\n",
     {{"ike.restart_command", 3, 20, "must not be empty"}}},
    // Restart command argv0 must be absolute
    {"restart_command_relative", "ike:\n  control: command\n  restart_command: [service, racoon, restart]\n",
     {{"ike.restart_command[0]", 3, 21, "'service' must be an absolute path: the command runs without a shell"}}},
    {"restart_command_empty_argument", "ike:\n  control: command\n  restart_command: [/sbin/x, '']\n",
     {{"ike.restart_command[1]", 3, 30, "must not be empty"}}},
    // Restart command must be a list
    {"restart_command_a_string", "ike:\n  control: command\n  restart_command: /usr/sbin/service racoon restart\n",
     {{"ike.restart_command", 3, 20, "expected a list of strings (the command's argv), got '/usr/sbin/service racoon "
       "restart'; write it as [/usr/sbin/service, racoon, restart]"}}},
    // Restart command with systemd would be ignored
    {"restart_command_with_default_systemd", "ike:\n  restart_command: [/usr/sbin/service, racoon, restart]\n",
     {{"ike.restart_command", 2, 20, "is set but ike.control is systemd, so it would be ignored"}}},
    {"restart_command_with_systemd", "ike:\n  control: systemd\n  restart_command: [/bin/true]\n",
     {{"ike.restart_command", 3, 20, "would be ignored"}}},
    // No cascade from a bad control value
    {"no_cascade_from_a_bad_control", "ike:\n  control: comand\n  restart_command: [/bin/true]\n",
     {{"ike.control", 2, 12, "did you mean 'command'?"}}},
    // Unit names
    {"unit_without_suffix", "ike:\n  unit: racoon\n",
     {{"ike.unit", 2, 9, "'racoon' must name a service unit, ending in .service"}}},
    {"unit_a_socket", "ike:\n  unit: racoon.socket\n",
     {{"ike.unit", 2, 9, "ending in .service"}}},
    {"unit_only_suffix", "ike:\n  unit: .service\n",
     {{"ike.unit", 2, 9, "has no name before .service"}}},
    {"unit_with_space", "ike:\n  unit: 'my racoon.service'\n",
     {{"ike.unit", 2, 9, "contains ' ', which systemd does not allow"}}},
    {"unit_a_template", "ike:\n  unit: racoon@.service\n",
     {{"ike.unit", 2, 9, "is a template"}}},
    {"unit_two_at_signs", "ike:\n  unit: a@b@c.service\n",
     {{"ike.unit", 2, 9, "more than one '@'"}}},
    {"unit_empty", "ike:\n  unit: ''\n",
     {{"ike.unit", 2, 9, "must not be empty"}}},
    {"unit_too_long", "ike:\n  unit: " + std::string(300, 'a') + ".service\n",
     {{"ike.unit", 2, 9, "longer than 255"}}},
    // Durations
    {"acquire_retry_a_word", "ike:\n  acquire_retry: soon\n",
     {{"ike.acquire_retry", 2, 18, "expected a duration"}}},
};
INSTANTIATE_TEST_SUITE_P(Ike, ConfigRejects, ::testing::ValuesIn(kIkeRejects), rowName<RejectRow>);

const AcceptRow kIkeAccepts[] = {
    // Command control needs a restart command
    {"command_control_with_restart_command",
     "ike:\n  control: command\n  restart_command: [/etc/init.d/racoon, restart]\n",
     [](const Config& c) {
       EXPECT_EQ(c.ike.restartCommand, (std::vector<std::string>{"/etc/init.d/racoon", "restart"}));
     }},
    // Unit names
    {"unit_an_instance", "ike:\n  unit: racoon@ipop.service\n",
     [](const Config& c) { EXPECT_EQ(c.ike.unit, "racoon@ipop.service"); }},
    // Durations
    {"durations_with_units", "ike:\n  quiet_period: 500ms\n  min_interval: 2s\n  restart_timeout: 5m\n",
     [](const Config& c) {
       EXPECT_EQ(c.ike.quietPeriod, std::chrono::milliseconds(500));
       EXPECT_EQ(c.ike.minInterval, std::chrono::seconds(2));
       EXPECT_EQ(c.ike.restartTimeout, std::chrono::minutes(5));
     }},
    {"hours", "ike:\n  restart_timeout: 8h\n",
     [](const Config& c) { EXPECT_EQ(c.ike.restartTimeout, std::chrono::hours(8)); }},
    {"bare_number_is_seconds", "ike:\n  quiet_period: 3\n",
     [](const Config& c) { EXPECT_EQ(c.ike.quietPeriod, std::chrono::seconds(3)); }},  // bare = seconds
    {"acquire_retry_ms", "ike:\n  acquire_retry: 250ms\n",
     [](const Config& c) { EXPECT_EQ(c.ike.acquireRetry, std::chrono::milliseconds(250)); }},
    {"acquire_retry_off", "ike:\n  acquire_retry: off\n",
     [](const Config& c) { EXPECT_EQ(c.ike.acquireRetry.count(), 0); }},
    {"acquire_retry_0", "ike:\n  acquire_retry: 0\n",
     [](const Config& c) { EXPECT_EQ(c.ike.acquireRetry.count(), 0); }},
    // quiet_period above min_interval is allowed.
    {"quiet_period_above_min_interval", "ike:\n  quiet_period: 20s\n  min_interval: 1s\n",
     [](const Config& c) { EXPECT_EQ(c.ike.quietPeriod, std::chrono::seconds(20)); }},
    // A unit of the other backend is warned
    {"racoon_unit_with_strongswan_warned", "ike:\n  backend: strongswan\n  unit: racoon.service\n",
     [](const Config& c) {
       EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("ike.unit: 'racoon.service' looks like racoon's unit, but "
                                                       "ike.backend is strongswan")));
     }},
    {"strongswan_unit_with_racoon_warned",
     "ike:\n  backend: racoon\n  unit: strongswan.service\n",
     [](const Config& c) {
       EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("looks like strongSwan's unit, but ike.backend is racoon")));
     }},
    {"strongswan_starter_with_racoon_warned", "ike:\n  unit: strongswan-starter.service\n",
     [](const Config& c) { EXPECT_THAT(c.warnings, SizeIs(1)); }},
    // The matching units, units of other names, and command control: no warning.
    {"strongswan_unit_not_warned", "ike:\n  backend: strongswan\n  unit: strongswan.service\n",
     [](const Config& c) { EXPECT_THAT(c.warnings, IsEmpty()); }},
    {"charon_unit_not_warned", "ike:\n  backend: strongswan\n  unit: charon.service\n",
     [](const Config& c) { EXPECT_THAT(c.warnings, IsEmpty()); }},
    {"racoon_instance_not_warned", "ike:\n  backend: racoon\n  unit: racoon@ipop.service\n",
     [](const Config& c) { EXPECT_THAT(c.warnings, IsEmpty()); }},
    {"other_unit_name_not_warned", "ike:\n  backend: racoon\n  unit: ike.service\n",
     [](const Config& c) { EXPECT_THAT(c.warnings, IsEmpty()); }},
    {"command_control_not_warned",
     "ike:\n  backend: strongswan\n  control: command\n  unit: racoon.service\n  restart_command: [/bin/true]\n",
     [](const Config& c) { EXPECT_THAT(c.warnings, IsEmpty()); }},
};
INSTANTIATE_TEST_SUITE_P(Ike, ConfigAccepts, ::testing::ValuesIn(kIkeAccepts), rowName<AcceptRow>);

TEST(ConfigIke, AcquireRetryDefaultsToOneSecond) { EXPECT_EQ(Config{}.ike.acquireRetry, std::chrono::seconds(1)); }

// daemon.metrics_interval: the metrics file's heartbeat, 30s unless set, 1s to 60s (the
// alert rule calls a timestamp older than 180s stale).
TEST(ConfigDaemon, MetricsIntervalDefaultsToThirtySeconds) {
  EXPECT_EQ(Config{}.daemon.metricsInterval, std::chrono::seconds(30));
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

const RejectRow kRacoonRejects[] = {
    // Paths must be absolute
    {"config_relative", "racoon:\n  config: racoon.conf\n",
     {{"racoon.config", 2, 11, "must be an absolute path, got 'racoon.conf'"}}},
    {"spd_file_relative", "racoon:\n  spd_file: ./ipsec-tools.conf\n",
     {{"racoon.spd_file", 2, 13, "must be an absolute path"}}},
    {"certificate_dir_empty", "racoon:\n  certificate_dir: ''\n",
     {{"racoon.certificate_dir", 2, 20, "must not be empty"}}},
    {"state_dir_relative", "daemon:\n  state_dir: run/ipop\n",
     {{"daemon.state_dir", 2, 14, "must be an absolute path"}}},
    {"state_dir_a_list", "daemon:\n  state_dir: [/run]\n",
     {{"daemon.state_dir", 2, 14, "expected an absolute path, got a list"}}},
    // Certificate files
    {"host_key_a_relative_path", "racoon:\n  host_key: keys/host-key.pem\n",
     {{"racoon.host_key", 2, 13, "must be a file name inside racoon.certificate_dir (no '/')"}}},
    {"ca_cert_dot_dot", "racoon:\n  ca_cert: ..\n",
     {{"racoon.ca_cert", 2, 12, "must be a file name"}}},
    {"ca_cert_a_directory", "racoon:\n  ca_cert: /etc/ssl/\n",
     {{"racoon.ca_cert", 2, 12, "absolute path to a file"}}},
    {"host_cert_empty", "racoon:\n  host_cert: ''\n",
     {{"racoon.host_cert", 2, 14, "must not be empty"}}},
    // Dpd delay
    {"dpd_delay_3601", "racoon:\n  dpd_delay: 3601\n",
     {{"racoon.dpd_delay", 2, 14, "3601 is out of range 0..3600"}}},
    {"dpd_delay_negative", "racoon:\n  dpd_delay: -5\n",
     {{"racoon.dpd_delay", 2, 14, "expected a whole number from 0 to 3600, got '-5'"}}},
    {"dpd_delay_a_duration", "racoon:\n  dpd_delay: 20s\n",
     {{"racoon.dpd_delay", 2, 14, "expected a whole number"}}},
};
INSTANTIATE_TEST_SUITE_P(Racoon, ConfigRejects, ::testing::ValuesIn(kRacoonRejects), rowName<RejectRow>);

const AcceptRow kRacoonAccepts[] = {
    // Certificate files
    {"certificate_files", "racoon:\n  ca_cert: /etc/ssl/certs/ca.pem\n  host_cert: node1.pem\n",
     [](const Config& c) {
       EXPECT_EQ(c.racoon.caCert, "/etc/ssl/certs/ca.pem");
       EXPECT_EQ(c.racoon.hostCert, "node1.pem");
     }},
    // Dpd delay
    {"dpd_delay_3600", "racoon:\n  dpd_delay: 3600\n",
     [](const Config& c) { EXPECT_EQ(c.racoon.dpdDelay, 3600); }},
};
INSTANTIATE_TEST_SUITE_P(Racoon, ConfigAccepts, ::testing::ValuesIn(kRacoonAccepts), rowName<AcceptRow>);

// --- proposals -------------------------------------------------------------------------------

const RejectRow kProposalsRejects[] = {
    // Legacy with an explicit block is ambiguous
    {"legacy_with_phase1", "proposals:\n  legacy: true\n  phase1:\n    hash: sha256\n",
     {{"proposals.phase1", 3, 3, "cannot be combined with proposals.legacy: true"}}},
    {"legacy_after_both_blocks", "proposals:\n  phase2: {compression: none}\n  phase1: {}\n  legacy: yes\n",
     {{"proposals.phase1", 3, 3, "cannot be combined"}, {"proposals.phase2", 2, 3, "cannot be combined"}}},
    // Phase2 accepts a list or a single name
    {"phase2_encryption_empty", "proposals:\n  phase2:\n    encryption: []\n",
     {{"proposals.phase2.encryption", 3, 17, "must list at least one algorithm"}}},
    {"phase2_encryption_twice", "proposals:\n  phase2:\n    encryption: [aes 256, aes 256]\n",
     {{"proposals.phase2.encryption[1]", 3, 27, "'aes 256' is listed twice"}}},
    {"phase2_encryption_a_mapping", "proposals:\n  phase2:\n    encryption: {aes: 256}\n",
     {{"proposals.phase2.encryption", 3, 17, "expected an algorithm name or a list of them"}}},
    // Compression and lifetimes
    {"compression_lzs", "proposals:\n  phase2:\n    compression: lzs\n",
     {{"proposals.phase2.compression", 3, 18, "'lzs' is not one of 'deflate', 'none'"}}},
    {"lifetime_fraction_of_a_second", "proposals:\n  phase1:\n    lifetime: 1500ms\n",
     {{"proposals.phase1.lifetime", 3, 15, "is not a whole number of seconds"}}},
    {"lifetime_zero", "proposals:\n  phase2:\n    lifetime: 0\n",
     {{"proposals.phase2.lifetime", 3, 15, "must be greater than zero"}}},
};
INSTANTIATE_TEST_SUITE_P(Proposals, ConfigRejects, ::testing::ValuesIn(kProposalsRejects), rowName<RejectRow>);

const AcceptRow kProposalsAccepts[] = {
    // Legacy false changes nothing
    {"legacy_false_changes_nothing", "proposals:\n  legacy: false\n",
     [](const Config& c) {
       EXPECT_FALSE(c.proposals.legacy);
       EXPECT_EQ(c.proposals.phase1.encryption, Phase1Proposal{}.encryption);
       EXPECT_THAT(c.warnings, IsEmpty());
     }},
    // Weak choices without legacy are warned
    {"weak_choices_warned",
     "proposals:\n  phase1: {encryption: 3des, hash: sha1}\n  phase2: {authentication: [hmac_sha256, hmac_sha1]}\n",
     [](const Config& c) {
       EXPECT_EQ(c.proposals.phase1.encryption, "3des");
       EXPECT_EQ(c.proposals.phase1.hash, "sha1");
       EXPECT_FALSE(c.proposals.legacy);
       EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("proposals.phase1.encryption: '3des' is weak"),
                                             HasSubstr("proposals.phase1.hash: 'sha1' is weak"),
                                             HasSubstr("proposals.phase2.authentication[1]: 'hmac_sha1' is weak")));
     }},
    // Phase2 accepts a list or a single name
    {"phase2_single_names", "proposals:\n  phase2:\n    encryption: aes 128\n    authentication: hmac_sha384\n",
     [](const Config& c) {
       EXPECT_EQ(c.proposals.phase2.encryption, (std::vector<std::string>{"aes 128"}));
       EXPECT_EQ(c.proposals.phase2.authentication, (std::vector<std::string>{"hmac_sha384"}));
     }},
    // Compression and lifetimes
    {"lifetime_whole_seconds_in_ms", "proposals:\n  phase1:\n    lifetime: 2000ms\n",
     [](const Config& c) { EXPECT_EQ(c.proposals.phase1.lifetime, std::chrono::seconds(2)); }},
    {"lifetime_bare_seconds", "proposals:\n  phase1:\n    lifetime: 28800\n",
     [](const Config& c) { EXPECT_EQ(c.proposals.phase1.lifetime, std::chrono::hours(8)); }},
};
INSTANTIATE_TEST_SUITE_P(Proposals, ConfigAccepts, ::testing::ValuesIn(kProposalsAccepts), rowName<AcceptRow>);

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

// --- xfrm ------------------------------------------------------------------------------------

const RejectRow kXfrmRejects[] = {
    // Priorities
    {"equal", "xfrm:\n  protect_priority: 200\n  bypass_priority: 200\n",
     {{"xfrm.bypass_priority", 3, 20, "are both 200; they must differ"}}},
    {"bypass_above_default_protect", "xfrm:\n  bypass_priority: 300000\n",
     {{"xfrm.bypass_priority", 2, 20, "bypass_priority (300000) must be lower than protect_priority (250000)"}}},
    {"protect_below_default_bypass", "xfrm:\n  protect_priority: 10\n",
     {{"xfrm.protect_priority", 2, 21, "must be lower than protect_priority (10)"}}},
    {"protect_2_to_the_31", "xfrm:\n  protect_priority: 2147483648\n",
     {{"xfrm.protect_priority", 2, 21,
       "2147483648 is out of range 0..2147483647 (XFRM priorities must be below 2^31)"}}},
    {"bypass_negative", "xfrm:\n  bypass_priority: -1\n",
     {{"xfrm.bypass_priority", 2, 20, "expected a whole number from 0 to 2147483647, got '-1'"}}},
    {"bypass_too_big", "xfrm:\n  bypass_priority: 99999999999999999999999\n",
     {{"xfrm.bypass_priority", 2, 20, "expected a whole number"}}},
    {"bypass_a_word", "xfrm:\n  bypass_priority: high\n",
     {{"xfrm.bypass_priority", 2, 20, "expected a whole number"}}},
};
INSTANTIATE_TEST_SUITE_P(Xfrm, ConfigRejects, ::testing::ValuesIn(kXfrmRejects), rowName<RejectRow>);

const AcceptRow kXfrmAccepts[] = {
    // Priorities
    {"both_set", "xfrm:\n  protect_priority: 300\n  bypass_priority: 200\n",
     [](const Config& c) {
       EXPECT_EQ(c.xfrm.protectPriority, 300U);
       EXPECT_EQ(c.xfrm.bypassPriority, 200U);
     }},
};
INSTANTIATE_TEST_SUITE_P(Xfrm, ConfigAccepts, ::testing::ValuesIn(kXfrmAccepts), rowName<AcceptRow>);

// --- daemon ----------------------------------------------------------------------------------

const RejectRow kDaemonRejects[] = {
    // Metrics interval
    {"metrics_interval_61s", "daemon:\n  metrics_interval: 61s\n",
     {{"daemon.metrics_interval", 2, 21, "must be between 1s and 60s"}}},
    {"metrics_interval_500ms", "daemon:\n  metrics_interval: 500ms\n",
     {{"daemon.metrics_interval", 2, 21, "got 500ms"}}},
    {"metrics_interval_a_word", "daemon:\n  metrics_interval: often\n",
     {{"daemon.metrics_interval", 2, 21, "expected a duration"}}},
    // Log level
    {"log_level_warning", "daemon:\n  log_level: warning\n",
     {{"daemon.log_level", 2, 14, "did you mean 'warn'?"}}},
    // Metrics file is an absolute path or empty for off
    {"metrics_file_relative", "daemon:\n  metrics_file: ipop-ipsec.prom\n",
     {{"daemon.metrics_file", 2, 17, "must be an absolute path"}}},
    {"metrics_file_a_list", "daemon:\n  metrics_file: [a]\n",
     {{"daemon.metrics_file", 2, 17, ""}}},
    // Another file the daemon writes or reads is refused, as for every output.
    {"metrics_file_the_state_file", "daemon:\n  metrics_file: /run/ipop-ipsec/state.json\n",
     {{"daemon.metrics_file", 2, 17, "(daemon.metrics_file) is also daemon.state_dir's state.json"}}},
    {"metrics_file_the_host_key", "daemon:\n  metrics_file: /etc/racoon/certs/host-key.pem\n",
     {{"daemon.metrics_file", 2, 17, "a file the daemon reads"}}},
};
INSTANTIATE_TEST_SUITE_P(Daemon, ConfigRejects, ::testing::ValuesIn(kDaemonRejects), rowName<RejectRow>);

const AcceptRow kDaemonAccepts[] = {
    // Metrics interval
    {"metrics_interval_1s", "daemon:\n  metrics_interval: 1s\n",
     [](const Config& c) { EXPECT_EQ(c.daemon.metricsInterval, std::chrono::seconds(1)); }},
    {"metrics_interval_1m", "daemon:\n  metrics_interval: 1m\n",
     [](const Config& c) { EXPECT_EQ(c.daemon.metricsInterval, std::chrono::seconds(60)); }},
    // Log level
    {"log_level_trace", "daemon:\n  log_level: trace\n",
     [](const Config& c) { EXPECT_EQ(c.daemon.logLevel, "trace"); }},
    // Metrics file is an absolute path or empty for off
    {"metrics_file_absolute", "daemon:\n  metrics_file: /var/lib/prometheus/node-exporter/ipop-ipsec.prom\n",
     [](const Config& c) {
       EXPECT_EQ(c.daemon.metricsFile, "/var/lib/prometheus/node-exporter/ipop-ipsec.prom");
     }},
    {"metrics_file_empty_is_off", "daemon:\n  metrics_file: \"\"\n",
     [](const Config& c) { EXPECT_EQ(c.daemon.metricsFile, ""); }},
};
INSTANTIATE_TEST_SUITE_P(Daemon, ConfigAccepts, ::testing::ValuesIn(kDaemonAccepts), rowName<AcceptRow>);

// --- hostile input -----------------------------------------------------------------------------

const RejectRow kHostileRejects[] = {
    // Control characters are escaped in messages
    {"control_characters_escaped", "protect:\n  level: \"re\\x1b[31mquire\"\n",
     {{"protect.level", 2, 10, "'re\\x1b[31mquire' is not one of"}}},
};
INSTANTIATE_TEST_SUITE_P(Hostile, ConfigRejects, ::testing::ValuesIn(kHostileRejects), rowName<RejectRow>);

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

const RejectRow kCertificatesRejects[] = {
    // Bad values name the key path
    {"expiry_warning_days_5000", "certificates:\n  expiry_warning_days: 5000\n",
     {{"certificates.expiry_warning_days", 2, 24, "out of range 0..3650"}}},
    {"expiry_warning_days_negative", "certificates:\n  expiry_warning_days: -1\n",
     {{"certificates.expiry_warning_days", 2, 24, "expected a whole number"}}},
    {"expiry_warning_days_a_list", "certificates:\n  expiry_warning_days: [1]\n",
     {{"certificates.expiry_warning_days", 2, 24, "got a list"}}},
    {"weak_typo", "certificates:\n  weak: refuze\n",
     {{"certificates.weak", 2, 9, "did you mean 'refuse'?"}}},
    {"check_key_owner_maybe", "certificates:\n  check_key_owner: maybe\n",
     {{"certificates.check_key_owner", 2, 20, "expected true/false"}}},
    {"unknown_key", "certificates:\n  expiry_days: 3\n",
     {{"certificates.expiry_days", 2, 3, "unknown key"}}},
    {"section_a_scalar", "certificates: 7\n",
     {{"certificates", 1, 15, "expected a mapping"}}},
};
INSTANTIATE_TEST_SUITE_P(Certificates, ConfigRejects, ::testing::ValuesIn(kCertificatesRejects), rowName<RejectRow>);

const AcceptRow kCertificatesAccepts[] = {
    // All keys parse
    {"all_keys_parse", "certificates:\n  expiry_warning_days: 14\n  weak: refuse\n  check_key_owner: false\n",
     [](const Config& c) {
       EXPECT_EQ(c.certificates.expiryWarningDays, 14);
       EXPECT_EQ(c.certificates.weak, WeakCertPolicy::refuse);
       EXPECT_FALSE(c.certificates.checkKeyOwner);
     }},
    {"an_empty_section_keeps_the_defaults", "certificates:\n",
     [](const Config& c) { EXPECT_EQ(c.certificates.expiryWarningDays, 30); }},
};
INSTANTIATE_TEST_SUITE_P(Certificates, ConfigAccepts, ::testing::ValuesIn(kCertificatesAccepts), rowName<AcceptRow>);

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

// --- strongswan ------------------------------------------------------------------------------

const RejectRow kStrongswanRejects[] = {
    // A protect priority that shadows charon is refused
    {"protect_priority_shadows_charon", "ike:\n  backend: strongswan\nxfrm:\n  protect_priority: 250000\n",
     {{"xfrm.protect_priority", 4, 21, "would shadow charon's trap policies"}}},
    // Cut command defaults to cut revoked and empty turns it off
    {"cut_command_a_string", "strongswan:\n  cut_command: ipop-ipsecd cut-revoked\n",
     {{"strongswan.cut_command", 2, 16, "expected a list of strings"}}},
    {"cut_command_relative", "strongswan:\n  cut_command: [ipop-ipsecd, cut-revoked]\n",
     {{"strongswan.cut_command[0]", 2, 17, "must be an absolute path"}}},
    // Bad values name the key path
    {"load_command_a_string", "strongswan:\n  load_command: /usr/sbin/swanctl --load-all\n",
     {{"strongswan.load_command", 2, 17, "expected a list of strings"}}},
    {"load_command_empty", "strongswan:\n  load_command: []\n",
     {{"strongswan.load_command", 2, 17, "must not be empty"}}},
    {"load_command_relative", "strongswan:\n  load_command: [swanctl, --load-all]\n",
     {{"strongswan.load_command[0]", 2, 18, "must be an absolute path"}}},
    {"swanctl_dir_relative", "strongswan:\n  swanctl_dir: etc/swanctl\n",
     {{"strongswan.swanctl_dir", 2, 16, "must be an absolute path"}}},
    {"dpd_delay_9999", "strongswan:\n  dpd_delay: 9999\n",
     {{"strongswan.dpd_delay", 2, 14, "out of range 0..3600"}}},
    {"unknown_key_swanctl_dri", "strongswan:\n  swanctl_dri: /etc/swanctl\n",
     {{"strongswan.swanctl_dri", 2, 3, "did you mean 'swanctl_dir'?"}}},
    {"section_a_list", "strongswan: [1, 2]\n",
     {{"strongswan", 1, 13, "expected a mapping"}}},
};
INSTANTIATE_TEST_SUITE_P(Strongswan, ConfigRejects, ::testing::ValuesIn(kStrongswanRejects), rowName<RejectRow>);

const AcceptRow kStrongswanAccepts[] = {
    // All keys parse
    {"all_keys_parse",
     "ike:\n  backend: strongswan\n"
     "strongswan:\n  swanctl_dir: /srv/swanctl\n  config: /srv/swanctl/conf.d/x.conf\n"
     "  load_command: [/usr/sbin/swanctl, --load-all, --noprompt, --uri, 'unix:///run/n1/charon.vici']\n"
     "  dpd_delay: 0\n",
     [](const Config& c) {
       EXPECT_EQ(c.strongswan.swanctlDir, "/srv/swanctl");
       EXPECT_EQ(c.strongswan.config, "/srv/swanctl/conf.d/x.conf");
       EXPECT_EQ(c.strongswan.loadCommand.back(), "unix:///run/n1/charon.vici");
       EXPECT_EQ(c.strongswan.dpdDelay, 0);
     }},
    // Backend derives unit and protect priority
    {"backend_derives_unit_and_protect_priority", "ike:\n  backend: strongswan\n",
     [](const Config& c) {
       EXPECT_EQ(c.ike.unit, "strongswan.service");
       EXPECT_EQ(c.xfrm.protectPriority, Config::Xfrm::kStrongswanProtectPriority);
       EXPECT_GT(c.xfrm.protectPriority, Config::Xfrm::kCharonLowestPriority) << "charon's trap policies must win";
     }},
    {"racoon_keeps_the_default_protect_priority", "ike:\n  backend: racoon\n",
     [](const Config& c) { EXPECT_EQ(c.xfrm.protectPriority, Config{}.xfrm.protectPriority); }},
    {"protect_priority_set", "ike:\n  backend: strongswan\nxfrm:\n  protect_priority: 700000\n",
     [](const Config& c) { EXPECT_EQ(c.xfrm.protectPriority, 700000u); }},
    // Cut command defaults to cut revoked and empty turns it off
    {"cut_command_with_its_own_arguments",
     "strongswan:\n  cut_command: [/usr/local/sbin/ipop-ipsecd, cut-revoked, --uri, 'unix:///run/n1/charon.vici']\n",
     [](const Config& c) { EXPECT_EQ(c.strongswan.cutCommand.back(), "unix:///run/n1/charon.vici"); }},
    {"cut_command_empty_turns_the_cut_off", "strongswan:\n  cut_command: []\n",
     [](const Config& c) { EXPECT_TRUE(c.strongswan.cutCommand.empty()); }},
};
INSTANTIATE_TEST_SUITE_P(Strongswan, ConfigAccepts, ::testing::ValuesIn(kStrongswanAccepts), rowName<AcceptRow>);

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

TEST(ConfigStrongswan, CutCommandDefaultsToCutRevoked) {
  EXPECT_EQ(Config{}.strongswan.cutCommand, (std::vector<std::string>{"/usr/sbin/ipop-ipsecd", "cut-revoked"}));
}

// --- fail closed: outputs that would destroy inputs, exclusions that open a whole range ---------

const RejectRow kOutputsRejects[] = {
    // Racoon config and spd file must differ
    {"config_and_spd_file_the_same", "racoon:\n  config: /etc/a.conf\n  spd_file: /etc/a.conf\n",
     {{"racoon.spd_file", 3, 13, "'/etc/a.conf' (racoon.spd_file) is also racoon.config: the daemon would write "
       "both files at the same path"}}},
    // The same file spelled differently.
    {"config_and_spd_file_spelled_differently",
     "racoon:\n  config: /etc/racoon/racoon.conf\n  spd_file: /etc/racoon//./racoon.conf\n",
     {{"racoon.spd_file", 3, 13, "is also racoon.config"}}},
    // One of them set, equal to the other's default.
    {"spd_file_the_default_config", "racoon:\n  spd_file: /etc/racoon/racoon.conf\n",
     {{"racoon.spd_file", 2, 13, "is also racoon.config"}}},
    // Must not be a certificate or the key
    {"config_the_host_key", "racoon:\n  config: /etc/racoon/certs/host-key.pem\n",
     {{"racoon.config", 2, 11, "(racoon.config) is also racoon.host_key (in racoon.certificate_dir): a file the "
       "daemon reads; writing there would destroy it"}}},
    // Reported at the input when only the input is set.
    {"host_cert_the_default_spd_file", "racoon:\n  host_cert: /etc/ipsec-tools.conf\n",
     {{"racoon.host_cert", 2, 14, "is also racoon.host_cert"}}},
    // A file name resolved against certificate_dir.
    {"ca_cert_the_default_config", "racoon:\n  certificate_dir: /etc/racoon\n  ca_cert: racoon.conf\n",
     {{"racoon.ca_cert", 3, 12, "is also racoon.ca_cert (in racoon.certificate_dir)"}}},
    {"spd_file_the_ca_cert", "racoon:\n  spd_file: /etc/racoon/certs/cacert.pem\n",
     {{"racoon.spd_file", 2, 13, "is also racoon.ca_cert"}}},
    // Must not be the state files
    {"config_the_state_file", "racoon:\n  config: /run/ipop-ipsec/state.json\n",
     {{"racoon.config", 2, 11, "(daemon.state_dir's state.json) is also racoon.config"}}},
    {"spd_file_the_ipop_up_flag", "racoon:\n  spd_file: /run/ipop-ipsec/ipop-up\n",
     {{"racoon.spd_file", 2, 13, "(daemon.state_dir's ipop-up) is also racoon.spd_file"}}},
    {"state_file_the_host_key", "daemon:\n  state_dir: /etc/racoon/certs\nracoon:\n  host_key: state.json\n",
     {{"daemon.state_dir", 2, 14, "'/etc/racoon/certs/state.json' (daemon.state_dir's state.json) is also "
       "racoon.host_key (in racoon.certificate_dir)"}}},
    // Only the active backends files count
    // ... but strongSwan's are, and the certificates are copied into swanctl_dir.
    {"strongswan_config_its_host_cert",
     "ike:\n  backend: strongswan\nstrongswan:\n  config: /etc/swanctl/x509/ipop-ipsec-host.pem\n",
     {{"strongswan.config", 4, 11, "is also strongswan.config"}}},
    {"host_key_the_strongswan_copy", "ike:\n  backend: strongswan\nracoon:\n  certificate_dir: /etc/swanctl/private\n"
                       "  host_key: ipop-ipsec-host.pem\n",
     {{"racoon.host_key", 5, 13, "(strongswan.swanctl_dir's private/ipop-ipsec-host.pem) is also racoon.host_key"}}},
};
INSTANTIATE_TEST_SUITE_P(Outputs, ConfigRejects, ::testing::ValuesIn(kOutputsRejects), rowName<RejectRow>);

// Accepted: nothing more to check than that the document validates.
const AcceptRow kOutputsAccepts[] = {
    // Only the active backend's files count: racoon's files are not written with the
    // strongswan backend ...
    {"racoon_files_alike_with_strongswan",
     "ike:\n  backend: strongswan\nracoon:\n  config: /etc/x.conf\n  spd_file: /etc/x.conf\n",
     [](const Config&) {}},
    // Distinct paths are fine.
    {"distinct_paths", "racoon:\n  config: /etc/racoon/racoon.conf\n  spd_file: /etc/racoon/spd.conf\n",
     [](const Config&) {}},
};
INSTANTIATE_TEST_SUITE_P(Outputs, ConfigAccepts, ::testing::ValuesIn(kOutputsAccepts), rowName<AcceptRow>);

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
