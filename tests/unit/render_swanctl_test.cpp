// The strongSwan backend's renderer: the swanctl.conf fragment and the certificate copies.
//
// Golden files: tests/unit/golden/NAME.swanctl.conf hold the exact bytes expected for each
// case below (the version in the header line is written as @VERSION@). After an intended
// change of the output, regenerate them and review the difference:
//   IPOPSEC_UPDATE_GOLDEN=1 ./render_swanctl_test
//   git diff tests/unit/golden
// Besides the byte comparison, a structural check parses every rendered file with the
// swanctl.conf grammar (sections, key = value) and checks each key against the keys
// swanctl.conf(5) of strongSwan 5.9 documents for its section, so a typo fails even
// when it went into a golden file too. tests/system/uml_mesh.sh loads the real thing
// into charon.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/render/render_swanctl.hpp"
#include "support/policy_builders.hpp"

namespace ipopsec {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using test::C;
IpAddress A(const char* text) { return *IpAddress::parse(text); }

Config baseConfig() {
  Config cfg;
  cfg.sourceFile = "/etc/ipop-ipsec/ipop-ipsecd.yaml";
  cfg.ike.backend = IkeBackend::strongswan;
  cfg.ike.unit = "strongswan.service";
  cfg.xfrm.protectPriority = Config::Xfrm::kStrongswanProtectPriority;
  return cfg;
}

std::string normalize(std::string s) {
  const std::string v = IPOPSEC_VERSION;
  for (std::size_t pos = 0; (pos = s.find(v, pos)) != std::string::npos;) s.replace(pos, v.size(), "@VERSION@");
  return s;
}

// --- a small swanctl.conf parser (settings syntax: name { ... }, key = value) --------
struct Section {
  std::map<std::string, std::string> values;
  std::map<std::string, Section> sections;
};

// Parses `text`; on a syntax error returns false and says where.
bool parseSwanctl(const std::string& text, Section& root, std::string& error) {
  std::vector<Section*> stack{&root};
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto hash = line.find('#');
    if (hash != std::string::npos) line = line.substr(0, hash);
    auto b = line.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    line = line.substr(b, line.find_last_not_of(" \t") - b + 1);
    if (line == "}") {
      if (stack.size() == 1) return error = "line " + std::to_string(n) + ": unbalanced }", false;
      stack.pop_back();
      continue;
    }
    if (line.size() > 2 && line.substr(line.size() - 2) == " {") {
      std::string name = line.substr(0, line.size() - 2);
      if (name.find_first_of(" \t={}") != std::string::npos)
        return error = "line " + std::to_string(n) + ": bad section name '" + name + "'", false;
      if (stack.back()->sections.count(name))
        return error = "line " + std::to_string(n) + ": duplicate section '" + name + "'", false;
      stack.push_back(&stack.back()->sections[name]);
      continue;
    }
    auto eq = line.find(" = ");
    if (eq == std::string::npos || eq == 0) return error = "line " + std::to_string(n) + ": not key = value: " + line, false;
    std::string key = line.substr(0, eq), value = line.substr(eq + 3);
    if (key.find_first_of(" \t{}") != std::string::npos || value.empty() || value.find_first_of("{}\"") != std::string::npos)
      return error = "line " + std::to_string(n) + ": bad setting: " + line, false;
    if (stack.back()->values.count(key)) return error = "line " + std::to_string(n) + ": duplicate key " + key, false;
    stack.back()->values[key] = value;
  }
  if (stack.size() != 1) return error = "unclosed section at end of file", false;
  return true;
}

// Keys swanctl.conf(5) (5.9) documents per section; the renderer may use only these.
const std::set<std::string> kConnKeys{"version", "local_addrs", "remote_addrs", "proposals", "rekey_time",
                                      "dpd_delay", "mobike", "encap", "reauth_time", "unique", "send_cert"};
const std::set<std::string> kAuthKeys{"auth", "certs", "id", "cacerts"};
const std::set<std::string> kChildKeys{"mode", "reqid", "local_ts", "remote_ts", "esp_proposals", "rekey_time",
                                       "start_action", "dpd_action", "close_action"};

// Checks the structure of a rendered file and returns the connections section.
Section checkStructure(const std::string& text) {
  Section root;
  std::string error;
  EXPECT_TRUE(parseSwanctl(text, root, error)) << error << "\n" << text;
  EXPECT_TRUE(root.values.empty());
  EXPECT_EQ(root.sections.size(), 1u);
  EXPECT_TRUE(root.sections.count("connections"));
  Section conns = root.sections["connections"];
  EXPECT_TRUE(conns.values.empty());
  for (const auto& [name, conn] : conns.sections) {
    for (const auto& [k, v] : conn.values) EXPECT_TRUE(kConnKeys.count(k)) << name << ": unknown key " << k;
    EXPECT_EQ(conn.sections.size(), 3u) << name;
    for (const char* side : {"local", "remote"}) {
      EXPECT_TRUE(conn.sections.count(side)) << name;
      if (!conn.sections.count(side)) continue;
      for (const auto& [k, v] : conn.sections.at(side).values) EXPECT_TRUE(kAuthKeys.count(k)) << side << "." << k;
    }
    EXPECT_TRUE(conn.sections.count("children")) << name;
    if (!conn.sections.count("children")) continue;
    for (const auto& [cname, child] : conn.sections.at("children").sections)
      for (const auto& [k, v] : child.values) EXPECT_TRUE(kChildKeys.count(k)) << cname << ": unknown key " << k;
  }
  return conns;
}

// Both ends of a pair triggering at once make two CHILD_SAs; the inbound policy names one
// reqid, so the child's reqid is fixed (shared by both SAs): stable per range, distinct
// between ranges, above charon's own allocations (from 1).
TEST(RenderSwanctl, EachRangeChildHasAFixedReqidStableAndDistinct) {
  Config cfg;
  cfg.ike.backend = IkeBackend::strongswan;
  auto reqidOf = [](const std::string& text, const std::string& name) {
    auto at = text.find("        " + name + " {");
    auto r = text.find("reqid = ", at);
    return std::stoul(text.substr(r + 8));
  };
  SwanctlMesh a{*Cidr::parse("10.1.0.0/16"), *IpAddress::parse("10.1.0.5")};
  SwanctlMesh b{*Cidr::parse("10.2.0.0/24"), *IpAddress::parse("10.2.0.5")};
  const std::string both = renderSwanctlConf({a, b}, cfg), one = renderSwanctlConf({a}, cfg);
  auto ra = reqidOf(both, swanctlConnectionName(a.range)), rb = reqidOf(both, swanctlConnectionName(b.range));
  EXPECT_NE(ra, rb);
  EXPECT_GE(ra, 16384u);
  EXPECT_LT(ra, 32768u);
  EXPECT_EQ(reqidOf(one, swanctlConnectionName(a.range)), ra) << "the same range keeps its reqid";
  SwanctlMesh moved{a.range, *IpAddress::parse("10.1.0.99")};
  EXPECT_EQ(reqidOf(renderSwanctlConf({moved}, cfg), swanctlConnectionName(a.range)), ra)
      << "a new address in the range does not change it";
}

// --- golden cases -------------------------------------------------------------------
struct GoldenCase {
  std::string name;
  Config cfg;
  std::vector<SwanctlMesh> meshes;
};

std::vector<GoldenCase> goldenCases() {
  std::vector<GoldenCase> cases;
  cases.push_back({"default", baseConfig(), {{C("172.31.0.0/16"), A("172.31.0.16")}}});
  {
    Config c = baseConfig();
    cases.push_back({"dual_stack", c,
                     {{C("fd50:1234::/64"), A("fd50:1234::16")}, {C("172.31.0.0/16"), A("172.31.0.16")}}});
  }
  {
    Config c = baseConfig();
    c.proposals.legacy = true;
    c.proposals.phase1 = {"3des", "sha1", "modp1024", std::chrono::hours(8)};
    c.proposals.phase2.encryption = {"3des"};
    c.proposals.phase2.authentication = {"hmac_sha1"};
    c.proposals.phase2.pfsGroup = "modp1024";
    cases.push_back({"legacy", c, {{C("10.254.0.0/16"), A("10.254.3.7")}}});
  }
  {
    Config c = baseConfig();
    c.strongswan.dpdDelay = 0;
    c.proposals.phase1.lifetime = std::chrono::seconds(0);
    c.proposals.phase2.lifetime = std::chrono::seconds(0);
    c.proposals.phase2.pfsGroup = "none";
    c.proposals.phase2.encryption = {"aes 128", "aes 256"};
    c.proposals.phase2.authentication = {"hmac_sha512", "hmac_sha256"};
    cases.push_back({"no_dpd_no_pfs", c, {{C("10.254.0.0/16"), A("10.254.3.7")}}});
  }
  // IPv6 only: a trapping connection (remote_addrs with "::") and a responder-only one (without).
  cases.push_back({"ipv6_only", baseConfig(),
                   {{C("fd50:1234::/64"), A("fd50:1234::16")}, {C("fd50:99::/64"), std::nullopt}}});
  cases.push_back({"waiting", baseConfig(), {}});
  cases.push_back({"responder_only", baseConfig(),
                   {{C("172.31.0.0/16"), A("172.31.0.16")}, {C("10.254.0.0/16"), std::nullopt}}});
  return cases;
}

std::string goldenPath(const std::string& file) { return std::string(IPOPSEC_SOURCE_DIR "/tests/unit/golden/") + file; }

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, MatchesGoldenFileAndGrammar) {
  const auto& c = GetParam();
  std::string text = renderSwanctlConf(c.meshes, c.cfg);
  checkStructure(text);
  std::string path = goldenPath(c.name + ".swanctl.conf");
  if (const char* v = std::getenv("IPOPSEC_UPDATE_GOLDEN"); v && std::string(v) == "1") {
    std::ofstream(path) << normalize(text);
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "missing golden file " << path << " (run with IPOPSEC_UPDATE_GOLDEN=1 to create it)";
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(normalize(text), want.str()) << "rendered " << c.name << " differs from " << path
                                         << " (if intended: IPOPSEC_UPDATE_GOLDEN=1, then review git diff)";
}

INSTANTIATE_TEST_SUITE_P(RenderSwanctl, Golden, ::testing::ValuesIn(goldenCases()),
                         [](const auto& info) { return info.param.name; });

// --- semantics ----------------------------------------------------------------------
TEST(RenderSwanctl, MeshConnectionHasTheDesignedSettings) {
  Section conns = checkStructure(renderSwanctlConf({{C("172.31.0.0/16"), A("172.31.0.16")}}, baseConfig()));
  ASSERT_EQ(conns.sections.size(), 1u);
  const Section& conn = conns.sections.at("ipop-ipsec-172-31-0-0-16");
  EXPECT_EQ(conn.values.at("version"), "2");
  EXPECT_EQ(conn.values.at("local_addrs"), "172.31.0.16");
  EXPECT_EQ(conn.values.at("remote_addrs"), "172.31.0.0/16");
  EXPECT_EQ(conn.values.at("proposals"), "aes256-sha256-modp2048");
  EXPECT_EQ(conn.values.at("rekey_time"), "28800s");
  EXPECT_EQ(conn.values.at("dpd_delay"), "30s");
  EXPECT_EQ(conn.sections.at("local").values.at("auth"), "pubkey");
  EXPECT_EQ(conn.sections.at("local").values.at("certs"), "ipop-ipsec-host.pem");
  EXPECT_FALSE(conn.sections.at("local").values.count("id")) << "the subject DN, charon's default; never the address";
  EXPECT_EQ(conn.sections.at("remote").values.at("id"), "%any");
  EXPECT_EQ(conn.sections.at("remote").values.at("cacerts"), "ipop-ipsec-ca.pem");
  const Section& child = conn.sections.at("children").sections.at("ipop-ipsec-172-31-0-0-16");
  EXPECT_EQ(child.values.at("mode"), "transport");
  EXPECT_EQ(child.values.at("local_ts"), "172.31.0.16/32") << "explicit: `dynamic` would trap 0.0.0.0/0";
  EXPECT_EQ(child.values.at("remote_ts"), "172.31.0.0/16");
  EXPECT_EQ(child.values.at("start_action"), "trap");
  EXPECT_EQ(child.values.at("dpd_action"), "clear");
  EXPECT_EQ(child.values.at("esp_proposals"), "aes256-sha256-modp2048,aes128-sha256-modp2048");
  EXPECT_EQ(child.values.at("rekey_time"), "3600s");
}

TEST(RenderSwanctl, IsDeterministicWhateverTheOrderOfTheMeshes) {
  std::vector<SwanctlMesh> a{{C("10.1.0.0/16"), A("10.1.0.5")}, {C("fd00::/64"), A("fd00::5")},
                             {C("10.2.0.0/24"), A("10.2.0.5")}};
  std::vector<SwanctlMesh> b{a[2], a[0], a[1], a[0]};
  EXPECT_EQ(renderSwanctlConf(a, baseConfig()), renderSwanctlConf(b, baseConfig()));
  Section conns = checkStructure(renderSwanctlConf(a, baseConfig()));
  EXPECT_EQ(conns.sections.size(), 3u);
  EXPECT_EQ(conns.sections.at("ipop-ipsec-fd00-64").sections.at("children").sections.at("ipop-ipsec-fd00-64")
                .values.at("local_ts"),
            "fd00::5/128");
}

TEST(RenderSwanctl, WithoutRangesTheFileHasNoConnections) {
  std::string text = renderSwanctlConf({}, baseConfig());
  Section conns = checkStructure(text);
  EXPECT_TRUE(conns.sections.empty());
  EXPECT_THAT(text, HasSubstr("No protected range is known yet"));
}

// A range without a tap address answers peers (who may have moved into it first) but traps
// nothing: no local_ts (dynamic: the address a peer reached), start_action none, and the
// same reqid as when it traps, so SAs made by either shape share the inbound policy's reqid.
TEST(RenderSwanctl, ARangeWithoutTapAddressIsResponderOnly) {
  const SwanctlMesh here{C("10.254.0.0/16"), A("10.254.0.11")}, elsewhere{C("10.253.0.0/16"), std::nullopt};
  Section conns = checkStructure(renderSwanctlConf({here, elsewhere}, baseConfig()));
  ASSERT_EQ(conns.sections.size(), 2u);
  const Section& r = conns.sections.at("ipop-ipsec-10-253-0-0-16");
  EXPECT_EQ(r.values.at("local_addrs"), "10.253.0.0/16") << "only an address of the range is answered on";
  EXPECT_EQ(r.values.at("remote_addrs"), "10.253.0.0/16");
  const Section& rc = r.sections.at("children").sections.at("ipop-ipsec-10-253-0-0-16");
  EXPECT_FALSE(rc.values.count("local_ts")) << "dynamic: the responder's own IKE address, host to host";
  EXPECT_EQ(rc.values.at("remote_ts"), "10.253.0.0/16");
  EXPECT_EQ(rc.values.at("start_action"), "none") << "no trap: it would be 0.0.0.0/0 <-> R with dynamic";
  EXPECT_EQ(rc.values.at("mode"), "transport");
  const Section& t = conns.sections.at("ipop-ipsec-10-254-0-0-16").sections.at("children").sections.at(
      "ipop-ipsec-10-254-0-0-16");
  EXPECT_EQ(t.values.at("start_action"), "trap");
  EXPECT_EQ(t.values.at("local_ts"), "10.254.0.11/32");
  // Moving into 10.253/16 keeps each range's reqid.
  Section moved = checkStructure(
      renderSwanctlConf({{C("10.254.0.0/16"), std::nullopt}, {C("10.253.0.0/16"), A("10.253.0.11")}}, baseConfig()));
  for (const char* name : {"ipop-ipsec-10-253-0-0-16", "ipop-ipsec-10-254-0-0-16"})
    EXPECT_EQ(moved.sections.at(name).sections.at("children").sections.at(name).values.at("reqid"),
              conns.sections.at(name).sections.at("children").sections.at(name).values.at("reqid"))
        << name;
}

// charon takes a trap's SA template addresses from remote_addrs' single hosts, and with
// none from IPv4's %any: under IPv6 selectors the kernel refuses that template ("Mode in
// template doesn't support a family change") and no IPv6 trap is installed. An IPv6
// trapping connection therefore names "::" (IPv6 %any: the wildcard trap); IPv4 needs no
// host (its default is right) and gets none, nor does a responder-only connection (no trap).
TEST(RenderSwanctl, AnIpv6TrappingConnectionNamesIpv6AnySoTheTrapTemplateIsIpv6) {
  Section conns = checkStructure(renderSwanctlConf({{C("172.31.0.0/16"), A("172.31.0.16")},
                                                    {C("fd50:1234::/64"), A("fd50:1234::16")},
                                                    {C("fd50:99::/64"), std::nullopt},
                                                    {C("10.253.0.0/16"), std::nullopt}},
                                                   baseConfig()));
  ASSERT_EQ(conns.sections.size(), 4u);
  const Section& v6 = conns.sections.at("ipop-ipsec-fd50-1234-64");
  EXPECT_EQ(v6.values.at("local_addrs"), "fd50:1234::16");
  EXPECT_EQ(v6.values.at("remote_addrs"), "fd50:1234::/64, ::") << "without '::' charon's IPv6 trap is refused";
  const Section& v6c = v6.sections.at("children").sections.at("ipop-ipsec-fd50-1234-64");
  EXPECT_EQ(v6c.values.at("local_ts"), "fd50:1234::16/128") << "the trap's selectors stay A/128 <-> R";
  EXPECT_EQ(v6c.values.at("remote_ts"), "fd50:1234::/64") << "'::' widens remote_addrs, never remote_ts";
  EXPECT_EQ(v6c.values.at("start_action"), "trap");
  EXPECT_EQ(v6c.values.at("mode"), "transport");
  EXPECT_EQ(conns.sections.at("ipop-ipsec-172-31-0-0-16").values.at("remote_addrs"), "172.31.0.0/16")
      << "IPv4: charon's default template is IPv4 already";
  EXPECT_EQ(conns.sections.at("ipop-ipsec-fd50-99-64").values.at("remote_addrs"), "fd50:99::/64")
      << "responder only: no trap, so nothing widened";
  EXPECT_EQ(conns.sections.at("ipop-ipsec-10-253-0-0-16").values.at("remote_addrs"), "10.253.0.0/16");
}

TEST(RenderSwanctl, ConnectionNames) {
  EXPECT_EQ(swanctlConnectionName(C("172.31.0.0/16")), "ipop-ipsec-172-31-0-0-16");
  EXPECT_EQ(swanctlConnectionName(C("fd50:1234::/64")), "ipop-ipsec-fd50-1234-64");
}

TEST(RenderSwanctl, ProposalsAreDerivedFromTheRacoonNames) {
  Config c = baseConfig();
  EXPECT_EQ(swanctlIkeProposal(c), "aes256-sha256-modp2048");
  c.proposals.phase1 = {"camellia 256", "sha512", "modp4096", std::chrono::hours(1)};
  EXPECT_EQ(swanctlIkeProposal(c), "camellia256-sha512-modp4096");
  c.proposals.phase2.encryption = {"aes 192"};
  c.proposals.phase2.authentication = {"hmac_sha384", "hmac_sha1"};
  c.proposals.phase2.pfsGroup = "modp3072";
  EXPECT_EQ(swanctlEspProposals(c), "aes192-sha384-modp3072,aes192-sha1-modp3072");
}

TEST(RenderSwanctl, ValuesSwanctlCannotTakeAreRenderErrors) {
  const std::vector<SwanctlMesh> one{{C("10.1.0.0/16"), A("10.1.0.5")}};
  auto fails = [&](Config c, const std::string& needle) {
    try {
      renderSwanctlConf(one, c);
      ADD_FAILURE() << "no RenderError for " << needle;
    } catch (const RenderError& e) {
      EXPECT_THAT(e.what(), HasSubstr(needle));
    }
  };
  Config c = baseConfig();
  c.proposals.phase1.encryption = "aes_gcm";
  fails(c, "proposals.phase1.encryption");
  c = baseConfig();
  c.proposals.phase1.dhGroup = "ecp256; }";
  fails(c, "proposals.phase1.dh_group");
  c = baseConfig();
  c.proposals.phase2.authentication = {"md5"};
  fails(c, "proposals.phase2.authentication");
  c = baseConfig();
  c.proposals.phase2.encryption.clear();
  fails(c, "proposals.phase2.encryption");
  c = baseConfig();
  c.strongswan.dpdDelay = -1;
  fails(c, "strongswan.dpd_delay");
  c = baseConfig();
  c.sourceFile = "evil\nconnections {";
  fails(c, "control character");
  EXPECT_THROW(renderSwanctlConf({{C("10.1.0.0/16"), A("10.2.0.5")}}, baseConfig()), RenderError);
  EXPECT_THROW(renderSwanctlConf({{C("10.1.0.0/16"), A("fd00::1")}}, baseConfig()), RenderError);
  EXPECT_THROW(renderSwanctlConf({{C("10.1.0.0/16"), A("10.1.0.5")}, {C("10.1.0.0/16"), A("10.1.0.6")}}, baseConfig()),
               RenderError);
}

TEST(RenderSwanctl, BackendFilesGoWhereSwanctlLoadsThemWithTheRightModes) {
  Config c = baseConfig();
  c.strongswan.swanctlDir = "/etc/swanctl";
  c.strongswan.config = "/etc/swanctl/conf.d/ipop-ipsec.conf";
  auto files = renderStrongswanBackend({{C("10.1.0.0/16"), A("10.1.0.5")}}, c, std::string("CA PEM"),
                                       std::string("CERT PEM"), std::string("KEY PEM"));
  std::map<std::string, std::pair<std::string, unsigned>> byPath;
  for (const auto& f : files) byPath[f.path] = {f.content, f.mode};
  ASSERT_EQ(byPath.size(), 4u);
  EXPECT_EQ(byPath["/etc/swanctl/conf.d/ipop-ipsec.conf"].second, 0644u);
  EXPECT_EQ(byPath["/etc/swanctl/x509ca/ipop-ipsec-ca.pem"], std::make_pair(std::string("CA PEM"), 0644u));
  EXPECT_EQ(byPath["/etc/swanctl/x509/ipop-ipsec-host.pem"], std::make_pair(std::string("CERT PEM"), 0644u));
  EXPECT_EQ(byPath["/etc/swanctl/private/ipop-ipsec-host.pem"], std::make_pair(std::string("KEY PEM"), 0600u));
  // Without certificates only the configuration is written.
  files = renderStrongswanBackend({}, c, std::nullopt, std::nullopt, std::nullopt);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].path, "/etc/swanctl/conf.d/ipop-ipsec.conf");
  EXPECT_THAT(files[0].content, Not(HasSubstr("children")));
}

}  // namespace
}  // namespace ipopsec
