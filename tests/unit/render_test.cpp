// The racoon backend's renderers: /etc/ipsec-tools.conf (setkey) and racoon.conf.
//
// Golden files: tests/unit/golden/NAME.ipsec-tools.conf and NAME.racoon.conf hold the exact
// bytes expected for each case below (the version in the header line is written as
// @VERSION@, so a version bump doesn't touch them). After an intended change of the
// output, regenerate them and review the difference before committing:
//   IPOPSEC_UPDATE_GOLDEN=1 ./render_test      # rewrites the golden files, then passes
//   git diff tests/unit/golden
// Besides the byte-for-byte comparison, a "grammar" check validates every line of every
// rendered file against the statements racoon and setkey accept (an allow-list), so a
// typo fails a test even when it went into a golden file too. ProposalTable (below) runs
// that check over every proposal value the config parser accepts, not only the goldens.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "core/config/parse_config.hpp"
#include "core/policy/policy.hpp"
#include "core/render/render.hpp"
#include "support/policy_builders.hpp"

namespace ipopsec {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using test::C;

IpAddress A(const char* text) {
  auto a = IpAddress::parse(text);
  if (!a) throw std::invalid_argument(std::string("bad address in test: ") + text);
  return *a;
}

Config baseConfig() {
  Config cfg;
  cfg.sourceFile = "/etc/ipop-ipsec/ipop-ipsecd.yaml";
  return cfg;
}

// The seed's proposals, set directly (legacyProposals() belongs to the config parser).
void setLegacy(Config& cfg) {
  cfg.proposals.legacy = true;
  cfg.proposals.phase1.encryption = "3des";
  cfg.proposals.phase1.hash = "sha1";
  cfg.proposals.phase1.dhGroup = "modp1024";
  cfg.proposals.phase2.encryption = {"3des"};
  cfg.proposals.phase2.authentication = {"hmac_sha1"};
  cfg.proposals.phase2.pfsGroup = "modp1024";
  cfg.proposals.phase2.compression = "deflate";
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

// The header line carries the build's version; golden files say @VERSION@ instead.
std::string normaliseVersion(const std::string& rendered) {
  return replaceAll(rendered, std::string("ipop-ipsecd ") + IPOPSEC_VERSION + " ", "ipop-ipsecd @VERSION@ ");
}

// ---------------------------------------------------------------------------------
// Grammar checks (allow-lists); each returns "" when the file is fine, else the problem.

std::string checkSpdGrammar(const std::string& text) {
  static const std::regex stmt(
      R"(^spdupdate ([0-9a-f:.]+)/([0-9]{1,3}) ([0-9a-f:.]+)/([0-9]{1,3}) )"
      R"((any|icmp6 [0-9]{1,3},0|icmp6|icmp [0-9]{1,3},0|icmp|[0-9]{1,3}) )"
      R"(-P (in|out|fwd) prio (-?)([0-9]{1,10}) (none|ipsec esp/transport//(require|use));$)");
  if (text.empty() || text.back() != '\n') return "the file doesn't end with a newline";
  auto ls = lines(text);
  if (ls.empty() || ls[0] != "#!/usr/sbin/setkey -f") return "the first line is not the setkey shebang";
  for (std::size_t i = 1; i < ls.size(); ++i) {
    const std::string& l = ls[i];
    const std::string where = "line " + std::to_string(i + 1) + " '" + l + "': ";
    if (l.empty() || l[0] == '#') continue;
    std::smatch m;
    if (!std::regex_match(l, m, stmt)) return where + "not a valid spdupdate statement";
    auto src = Cidr::parse(m[1].str() + "/" + m[2].str());
    auto dst = Cidr::parse(m[3].str() + "/" + m[4].str());
    if (!src || !dst) return where + "bad address or prefix";
    if (src->family() != dst->family()) return where + "address families differ";
    if (src->hostBitsSet() || dst->hostBitsSet()) return where + "host bits set in a selector";
    const std::string upper = m[5].str();
    if (upper.rfind("icmp6", 0) == 0 && src->family() != Family::v6) return where + "icmp6 on IPv4";
    const unsigned long long n = std::stoull(m[8].str());
    if (m[7].str().empty() ? n > 2147483648ULL : n > 2147483647ULL) return where + "prio offset out of range";
  }
  return "";
}

struct RacoonRule {
  std::string context;  // block the statement is allowed in
  std::regex args;      // what may follow the keyword, up to the ';'
};

// Tokens racoon (ipsec-tools 0.8/0.9 cftoken.l, cfparse.y, algorithm.c) is known to
// refuse, anywhere outside a comment: it has no AEAD ciphers (aes_gcm is a syntax error),
// no elliptic-curve groups (neither by name nor as dh_group 19..), AES keys are 128, 192
// or 256 bits. The allow-list below refuses these too; this names the reason.
std::string forbiddenRacoonToken(const std::string& text) {
  static const std::vector<std::pair<std::regex, std::string>> forbidden = {
      {std::regex(R"(\b\w*(gcm|ccm|chacha|poly1305)\w*\b)"), "an AEAD cipher (racoon has none)"},
      {std::regex(R"(\b(ecp\d*|curve\w*|brainpool\w*|x25519|x448)\b)"), "an elliptic-curve group (racoon has none)"},
      {std::regex(R"(\b(dh_group|pfs_group) (19|2[0-9]|3[0-2])\b)"),
       "an elliptic-curve group number (racoon has none)"},
      {std::regex(R"(\b(aes|camellia) (?!(128|192|256)\b)\d+)"), "a key length racoon refuses (128, 192 or 256)"},
  };
  auto ls = lines(text);
  for (std::size_t i = 0; i < ls.size(); ++i) {
    const std::string& l = ls[i];
    auto first = l.find_first_not_of('\t');
    if (first == std::string::npos || l[first] == '#') continue;
    static const std::regex quotedString("\"[^\"]*\"");  // file names: not tokens
    const std::string tokens = std::regex_replace(l, quotedString, "\"\"");
    for (const auto& [re, what] : forbidden)
      if (std::regex_search(tokens, re)) return "line " + std::to_string(i + 1) + " '" + l + "': " + what;
  }
  return "";
}

std::string checkRacoonGrammar(const std::string& text) {
  const std::string group = "(modp(768|1024|1536|2048|3072|4096|6144|8192)|1|2|5|14|15|16|17|18)";
  const std::string cipher = "(aes( (128|192|256))?|3des|camellia( (128|192|256))?)";
  const std::string hmac = "hmac_(sha1|sha256|sha384|sha512)";
  const std::string str = "\"[^\"]+\"";
  // Static: ProposalTable checks thousands of files.
  static const std::multimap<std::string, RacoonRule> rules = {
      {"path", {"", std::regex("certificate " + str)}},
      {"isakmp", {"listen", std::regex(R"([0-9a-f:.]+ \[500\])")}},
      {"exchange_mode", {"remote", std::regex("main")}},
      {"certificate_type", {"remote", std::regex("x509 " + str + " " + str)}},
      {"ca_type", {"remote", std::regex("x509 " + str)}},
      {"my_identifier", {"remote", std::regex("asn1dn")}},
      {"verify_identifier", {"remote", std::regex("on|off")}},
      {"verify_cert", {"remote", std::regex("on|off")}},
      {"lifetime", {"remote", std::regex("time [1-9][0-9]* (hour|min|sec)")}},
      {"nat_traversal", {"remote", std::regex("on|off|force")}},
      {"dpd_delay", {"remote", std::regex("[1-9][0-9]*")}},
      {"encryption_algorithm", {"proposal", std::regex(cipher)}},
      {"hash_algorithm", {"proposal", std::regex("sha1|sha256|sha384|sha512")}},
      {"authentication_method", {"proposal", std::regex("rsasig")}},
      {"dh_group", {"proposal", std::regex(group)}},
      {"pfs_group", {"sainfo", std::regex(group)}},
      {"lifetime", {"sainfo", std::regex("time [1-9][0-9]* (hour|min|sec)")}},
      {"encryption_algorithm", {"sainfo", std::regex(cipher + "(, " + cipher + ")*")}},
      {"authentication_algorithm", {"sainfo", std::regex(hmac + "(, " + hmac + ")*")}},
      {"compression_algorithm", {"sainfo", std::regex("deflate")}},
  };
  const std::map<std::string, std::pair<std::string, std::string>> openers = {
      // line -> (block name, enclosing block)
      {"listen {", {"listen", ""}},
      {"remote anonymous {", {"remote", ""}},
      {"sainfo anonymous {", {"sainfo", ""}},
      {"proposal {", {"proposal", "remote"}},
  };
  // racoon refuses a sainfo without compression_algorithm ("no compression algorithm at
  // loc='ANONYMOUS'"), and with it the whole file. Together with "statement repeated"
  // below: exactly one per sainfo.
  const std::map<std::string, std::set<std::string>> required = {
      {"remote", {"exchange_mode", "certificate_type", "ca_type", "my_identifier", "verify_cert", "proposal"}},
      {"proposal", {"encryption_algorithm", "hash_algorithm", "authentication_method", "dh_group"}},
      {"sainfo", {"encryption_algorithm", "authentication_algorithm", "compression_algorithm"}},
  };

  if (text.empty() || text.back() != '\n') return "the file doesn't end with a newline";
  if (auto bad = forbiddenRacoonToken(text); !bad.empty()) return bad;
  std::vector<std::pair<std::string, std::set<std::string>>> stack;  // block, statements seen
  std::set<std::string> topBlocks;
  auto ls = lines(text);
  for (std::size_t i = 0; i < ls.size(); ++i) {
    const std::string where = "line " + std::to_string(i + 1) + " '" + ls[i] + "': ";
    std::string l = ls[i];
    if (l.empty() || l[0] == '#') continue;
    std::size_t tabs = 0;
    while (tabs < l.size() && l[tabs] == '\t') ++tabs;
    l = l.substr(tabs);
    if (!l.empty() && l[0] == '#') continue;  // racoon's lexer skips "#..." anywhere
    const std::string context = stack.empty() ? "" : stack.back().first;
    if (l == "}") {
      if (stack.empty()) return where + "unbalanced '}'";
      if (tabs != stack.size() - 1) return where + "wrong indentation";
      auto it = required.find(stack.back().first);
      if (it != required.end())
        for (const auto& k : it->second)
          if (!stack.back().second.count(k)) return where + "block '" + stack.back().first + "' lacks " + k;
      stack.pop_back();
      continue;
    }
    if (tabs != stack.size()) return where + "wrong indentation";
    if (auto o = openers.find(l); o != openers.end()) {
      if (o->second.second != context) return where + "block not allowed here";
      if (!stack.empty()) stack.back().second.insert(o->second.first);
      if (stack.empty() && !topBlocks.insert(o->second.first).second) return where + "block repeated";
      stack.push_back({o->second.first, {}});
      continue;
    }
    if (l.size() < 2 || l.back() != ';') return where + "neither a statement nor a block";
    auto space = l.find(' ');
    if (space == std::string::npos) return where + "a statement without an argument";
    std::string keyword = l.substr(0, space);
    std::string args = l.substr(space + 1, l.size() - space - 2);
    bool ok = false, known = false;
    auto [lo, hi] = rules.equal_range(keyword);
    for (auto it = lo; it != hi; ++it) {
      known = true;
      if (it->second.context == context && std::regex_match(args, it->second.args)) ok = true;
    }
    if (!known) return where + "unknown keyword '" + keyword + "'";
    if (!ok) return where + "'" + keyword + "' not allowed here or with these arguments";
    if (!stack.empty() && !stack.back().second.insert(keyword).second) return where + "statement repeated";
    if (keyword == "isakmp" && !IpAddress::parse(args.substr(0, args.find(' ')))) return where + "bad address";
  }
  if (!stack.empty()) return "unbalanced '{': block '" + stack.back().first + "' is never closed";
  if (!topBlocks.count("remote") || !topBlocks.count("sainfo")) return "no remote or no sainfo block";
  return "";
}

// ---------------------------------------------------------------------------------
// Golden cases.

struct GoldenCase {
  std::string name;
  std::vector<Cidr> ranges;
  std::function<void(Config&)> tweak;
  std::optional<IpAddress> localAddress;
};

std::vector<GoldenCase> goldenCases() {
  return {
      {"seed", {C("192.168.0.0/16")}, [](Config& c) { setLegacy(c); }, A("192.168.0.16")},
      {"default", {C("172.31.0.0/16")}, [](Config&) {}, A("172.31.0.16")},
      {"exclusions",
       {C("172.31.0.0/16")},
       [](Config& c) { c.protect.exclude = {C("172.31.0.1/32"), C("172.31.255.255/32")}; },
       A("172.31.0.16")},
      {"multi_range", {C("172.31.0.0/16"), C("10.254.0.0/16")}, [](Config&) {}, A("10.254.3.7")},
      {"ipv6", {C("fd50::/64")}, [](Config&) {}, A("fd50::10")},
      {"listen",
       {C("172.31.0.0/16")},
       [](Config& c) {
         c.racoon.listenOnTap = true;
         c.racoon.dpdDelay = 0;
         c.racoon.natTraversal = true;
         c.proposals.phase1.lifetime = std::chrono::minutes(90);
         c.proposals.phase2.lifetime = std::chrono::seconds(1800);
       },
       A("172.31.0.16")},
      {"level_use", {C("172.31.0.0/16")}, [](Config& c) { c.protect.level = PolicyLevel::use; }, std::nullopt},
      {"forward",
       {C("172.31.0.0/16")},
       [](Config& c) {
         c.protect.forward = true;
         c.protect.exclude = {C("172.31.0.1/32")};
       },
       A("172.31.0.16")},
      // compression: none still renders compression_algorithm deflate (racoon requires it).
      {"compression_none",
       {C("172.31.0.0/16")},
       [](Config& c) { c.proposals.phase2.compression = "none"; },
       A("172.31.0.16")},
  };
}

std::string goldenPath(const std::string& file) { return std::string(IPOPSEC_SOURCE_DIR "/tests/unit/golden/") + file; }

bool updateGolden() {
  const char* v = std::getenv("IPOPSEC_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

void compareWithGolden(const std::string& file, const std::string& rendered) {
  const std::string path = goldenPath(file);
  const std::string normal = normaliseVersion(rendered);
  if (updateGolden()) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << normal;
    ASSERT_TRUE(out.good()) << "cannot write " << path;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << "missing golden file " << path << " (run with IPOPSEC_UPDATE_GOLDEN=1 to create it)";
  std::string want((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(normal, want) << "rendered output differs from " << path
                          << " (if intended: IPOPSEC_UPDATE_GOLDEN=1, then review git diff)";
}

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, MatchesFilesAndGrammar) {
  const GoldenCase& gc = GetParam();
  Config cfg = baseConfig();
  gc.tweak(cfg);
  auto policies = buildPolicies(gc.ranges, cfg);
  auto files = renderRacoonBackend(policies, cfg, gc.localAddress);
  ASSERT_EQ(files.size(), 2u);
  compareWithGolden(gc.name + ".ipsec-tools.conf", files[0].content);
  compareWithGolden(gc.name + ".racoon.conf", files[1].content);
  EXPECT_EQ(checkSpdGrammar(files[0].content), "");
  EXPECT_EQ(checkRacoonGrammar(files[1].content), "");
}

INSTANTIATE_TEST_SUITE_P(Render, Golden, ::testing::ValuesIn(goldenCases()),
                         [](const ::testing::TestParamInfo<GoldenCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------
// ipsec-tools.conf

TEST(RenderSpd, ShebangFirstThenHeader) {
  Config cfg = baseConfig();
  auto text = renderSpd(buildPolicies({C("172.31.0.0/16")}, cfg), cfg);
  auto ls = lines(text);
  ASSERT_GE(ls.size(), 3u);
  EXPECT_EQ(ls[0], "#!/usr/sbin/setkey -f");
  EXPECT_EQ(ls[1], std::string("# Generated by ipop-ipsecd ") + IPOPSEC_VERSION +
                       " from /etc/ipop-ipsec/ipop-ipsecd.yaml.");
  EXPECT_THAT(text, HasSubstr("Do not edit"));
}

TEST(RenderSpd, ProtectStatementsMatchTheSeedShapeWithExactKernelPriority) {
  Config cfg = baseConfig();
  auto text = renderSpd(buildPolicies({C("172.31.0.0/16")}, cfg), cfg);
  EXPECT_THAT(text, HasSubstr("spdupdate 172.31.0.0/16 172.31.0.0/16 any -P out prio 2147233648 "
                              "ipsec esp/transport//require;\n"));
  EXPECT_THAT(text, HasSubstr("spdupdate 172.31.0.0/16 172.31.0.0/16 any -P in prio 2147233648 "
                              "ipsec esp/transport//require;\n"));
}

TEST(RenderSpd, NeverFlushesNeverSpdadd) {
  Config cfg = baseConfig();
  cfg.protect.exclude = {C("172.31.0.1/32")};
  cfg.protect.forward = true;
  auto text = renderSpd(buildPolicies({C("172.31.0.0/16"), C("fd50::/64")}, cfg), cfg);
  for (const auto& l : lines(text)) {
    if (l.empty() || l[0] == '#') continue;
    EXPECT_EQ(l.rfind("spdupdate ", 0), 0u) << l;
  }
  EXPECT_THAT(text, Not(HasSubstr("\nflush")));
  EXPECT_THAT(text, Not(HasSubstr("\nspdflush")));
  EXPECT_THAT(text, Not(HasSubstr("\nspdadd")));
}

TEST(RenderSpd, LevelUseAndBypass) {
  Config cfg = baseConfig();
  cfg.protect.level = PolicyLevel::use;
  cfg.protect.exclude = {C("172.31.0.1/32")};
  auto text = renderSpd(buildPolicies({C("172.31.0.0/16")}, cfg), cfg);
  EXPECT_THAT(text, HasSubstr("-P out prio 2147233648 ipsec esp/transport//use;\n"));
  EXPECT_THAT(text, Not(HasSubstr("//require")));
  EXPECT_THAT(text, HasSubstr("spdupdate 172.31.0.0/16 172.31.0.1/32 any -P out prio 2147482648 none;\n"));
  EXPECT_THAT(text, HasSubstr("spdupdate 172.31.0.1/32 172.31.0.0/16 any -P in prio 2147482648 none;\n"));
}

TEST(RenderSpd, NeighbourDiscoveryUsesIcmp6TypeCode) {
  Config cfg = baseConfig();
  auto text = renderSpd(buildPolicies({C("fd50::/64")}, cfg), cfg);
  for (int type : {133, 134, 135, 136})
    for (const char* dir : {"in", "out"})
      EXPECT_THAT(text, HasSubstr("spdupdate ::/0 fd50::/64 icmp6 " + std::to_string(type) + ",0 -P " + dir +
                                  " prio 2147482648 none;\n"));
}

TEST(RenderSpd, ProtectPoliciesComeBeforeBypass) {
  Config cfg = baseConfig();
  cfg.protect.exclude = {C("172.31.0.1/32")};
  auto text = renderSpd(buildPolicies({C("172.31.0.0/16"), C("fd50::/64")}, cfg), cfg);
  auto lastProtect = text.rfind("ipsec esp/transport");
  auto firstBypass = text.find(" none;");
  ASSERT_NE(lastProtect, std::string::npos);
  ASSERT_NE(firstBypass, std::string::npos);
  EXPECT_LT(lastProtect, firstBypass);
}

TEST(RenderSpd, NoPoliciesIsOnlyTheHeader) {
  Config cfg = baseConfig();
  auto text = renderSpd({}, cfg);
  EXPECT_EQ(checkSpdGrammar(text), "");
  for (const auto& l : lines(text)) EXPECT_TRUE(l.empty() || l[0] == '#') << l;
}

TEST(RenderSpd, EmptySourceFileSaysDefaults) {
  Config cfg;
  auto text = renderSpd({}, cfg);
  EXPECT_THAT(text, HasSubstr(" from built-in defaults.\n"));
}

TEST(RenderSpd, TwiceGivesIdenticalBytes) {
  Config cfg = baseConfig();
  cfg.protect.exclude = {C("172.31.0.1/32")};
  auto p = buildPolicies({C("172.31.0.0/16"), C("fd50::/64")}, cfg);
  EXPECT_EQ(renderSpd(p, cfg), renderSpd(p, cfg));
}

TEST(RenderSpd, PolicyOrderDoesNotMatter) {
  Config cfg = baseConfig();
  cfg.protect.exclude = {C("172.31.0.1/32"), C("10.254.0.1/32")};
  cfg.protect.forward = true;
  auto a = buildPolicies({C("172.31.0.0/16"), C("10.254.0.0/16"), C("fd50::/64")}, cfg);
  auto b = buildPolicies({C("fd50::/64"), C("10.254.0.0/16"), C("172.31.0.0/16")}, cfg);
  const std::string ref = renderSpd(a, cfg);
  EXPECT_EQ(ref, renderSpd(b, cfg));
  std::mt19937 rng(99);
  for (int i = 0; i < 10; ++i) {
    auto c = a;
    std::shuffle(c.begin(), c.end(), rng);
    c.push_back(c.front());  // and a duplicate
    EXPECT_EQ(renderSpd(c, cfg), ref);
  }
}

TEST(RenderSpd, RejectsWhatSetkeyCannotSay) {
  Config cfg = baseConfig();
  Policy mixed;
  mixed.sel.src = C("172.31.0.0/16");
  mixed.sel.dst = C("fd50::/64");
  EXPECT_THROW(renderSpd({mixed}, cfg), RenderError);

  Policy tcpType;
  tcpType.sel.src = tcpType.sel.dst = C("172.31.0.0/16");
  tcpType.sel.proto = 6;
  tcpType.sel.hasIcmpType = true;
  EXPECT_THROW(renderSpd({tcpType}, cfg), RenderError);

  Policy anyType = tcpType;
  anyType.sel.proto = 0;
  EXPECT_THROW(renderSpd({anyType}, cfg), RenderError);

  Config badSource = baseConfig();
  badSource.sourceFile = "/etc/x.yaml\nspdflush;";
  try {
    renderSpd({}, badSource);
    ADD_FAILURE() << "a newline in the config file name went into a comment";
  } catch (const RenderError& e) {
    EXPECT_THAT(e.what(), HasSubstr("control character"));
  }
}

TEST(RenderSpd, OtherProtocolsByNumberOrName) {
  Config cfg = baseConfig();
  Policy p;
  p.sel.src = p.sel.dst = C("172.31.0.0/16");
  p.sel.proto = 6;
  EXPECT_THAT(renderSpd({p}, cfg), HasSubstr(" 172.31.0.0/16 6 -P "));
  p.sel.proto = 1;
  p.sel.hasIcmpType = true;
  p.sel.icmpType = 8;
  EXPECT_THAT(renderSpd({p}, cfg), HasSubstr(" 172.31.0.0/16 icmp 8,0 -P "));
  EXPECT_EQ(checkSpdGrammar(renderSpd({p}, cfg)), "");
}

// setkey's priority: libipsec's policy_parse.y turns "prio N" into 0x80000000 - N and
// "prio -N" into 0x80000000 + N. This models that conversion and checks that what we
// write converts back to exactly the kernel priority the daemon installs.
std::uint32_t libipsecPriority(const std::string& spec) {
  const std::uint64_t def = 0x80000000ULL;
  std::smatch m;
  static const std::regex re(R"(^prio (-?)([0-9]+)$)");
  if (!std::regex_match(spec, m, re)) throw std::invalid_argument("unexpected priority spec: " + spec);
  const std::uint64_t n = std::stoull(m[2].str());
  if (m[1].str().empty()) {
    if (n > 2147483648ULL) throw std::out_of_range("libipsec rejects offset below INT32_MIN");
    return static_cast<std::uint32_t>(def - n);
  }
  if (n > 2147483647ULL) throw std::out_of_range("libipsec rejects offset above INT32_MAX");
  return static_cast<std::uint32_t>(def + n);
}

TEST(SetkeyPriority, RoundTripsThroughLibipsecSemantics) {
  EXPECT_EQ(setkeyPriority(250000), "prio 2147233648");
  EXPECT_EQ(setkeyPriority(1000), "prio 2147482648");
  EXPECT_EQ(setkeyPriority(0), "prio 2147483648");
  EXPECT_EQ(setkeyPriority(0x80000000U), "prio 0");
  EXPECT_EQ(setkeyPriority(0x80000001U), "prio -1");
  EXPECT_EQ(setkeyPriority(0xFFFFFFFFU), "prio -2147483647");
  for (std::uint32_t p : {0U, 1U, 1000U, 250000U, 0x40000000U, 0x7FFFFFFFU, 0x80000000U, 0x80000001U,
                          0xC0000000U, 0xFFFFFFFEU, 0xFFFFFFFFU})
    EXPECT_EQ(libipsecPriority(setkeyPriority(p)), p) << p;
}

TEST(RacoonDuration, LargestExactUnit) {
  using namespace std::chrono;
  EXPECT_EQ(racoonDuration(hours(8)), "8 hour");
  EXPECT_EQ(racoonDuration(seconds(3600)), "1 hour");
  EXPECT_EQ(racoonDuration(minutes(90)), "90 min");
  EXPECT_EQ(racoonDuration(seconds(45)), "45 sec");
  EXPECT_EQ(racoonDuration(seconds(3601)), "3601 sec");
}

// ---------------------------------------------------------------------------------
// racoon.conf

TEST(RenderRacoon, ModernDefaults) {
  Config cfg = baseConfig();
  auto text = renderRacoonConf(cfg, std::nullopt);
  EXPECT_THAT(text, HasSubstr("path certificate \"/etc/racoon/certs\";\n"));
  EXPECT_THAT(text, HasSubstr("\tcertificate_type x509 \"host-cert.pem\" \"host-key.pem\";\n"));
  EXPECT_THAT(text, HasSubstr("\tca_type x509 \"cacert.pem\";\n"));
  EXPECT_THAT(text, HasSubstr("\tlifetime time 8 hour;\n"));
  EXPECT_THAT(text, HasSubstr("\tdpd_delay 20;\n"));
  EXPECT_THAT(text, HasSubstr("\tnat_traversal off;\n"));
  EXPECT_THAT(text, HasSubstr("\t\tencryption_algorithm aes 256;\n"));
  EXPECT_THAT(text, HasSubstr("\t\thash_algorithm sha256;\n"));
  EXPECT_THAT(text, HasSubstr("\t\tdh_group modp2048;\n"));
  EXPECT_THAT(text, HasSubstr("\tencryption_algorithm aes 256, aes 128;\n"));
  EXPECT_THAT(text, HasSubstr("\tauthentication_algorithm hmac_sha256;\n"));
  EXPECT_THAT(text, HasSubstr("\tlifetime time 1 hour;\n"));
  EXPECT_THAT(text, Not(HasSubstr("listen")));
  EXPECT_EQ(checkRacoonGrammar(text), "");
}

TEST(RenderRacoon, ListenOnlyWithFlagAndAddress) {
  Config cfg = baseConfig();
  EXPECT_THAT(renderRacoonConf(cfg, A("172.31.0.16")), Not(HasSubstr("listen")));
  cfg.racoon.listenOnTap = true;
  EXPECT_THAT(renderRacoonConf(cfg, std::nullopt), Not(HasSubstr("listen")));
  auto v4 = renderRacoonConf(cfg, A("172.31.0.16"));
  EXPECT_THAT(v4, HasSubstr("listen {\n\tisakmp 172.31.0.16 [500];\n}\n"));
  EXPECT_EQ(checkRacoonGrammar(v4), "");
  auto v6 = renderRacoonConf(cfg, A("fd50::10"));
  EXPECT_THAT(v6, HasSubstr("\tisakmp fd50::10 [500];\n"));
  EXPECT_EQ(checkRacoonGrammar(v6), "");
}

TEST(RenderRacoon, DpdZeroOmittedNatTraversalOn) {
  Config cfg = baseConfig();
  cfg.racoon.dpdDelay = 0;
  cfg.racoon.natTraversal = true;
  auto text = renderRacoonConf(cfg, std::nullopt);
  EXPECT_THAT(text, Not(HasSubstr("dpd_delay")));
  EXPECT_THAT(text, HasSubstr("\tnat_traversal on;\n"));
  EXPECT_EQ(checkRacoonGrammar(text), "");
}

// No PFS group, no lifetimes (the renderer's "propose none"; the config parser offers
// neither), compression none: racoon still gets the compression_algorithm it requires.
TEST(RenderRacoon, NoPfsNoLifetimeCompressionNone) {
  for (const char* compression : {"none", ""}) {
    Config cfg = baseConfig();
    cfg.proposals.phase2.pfsGroup = "none";
    cfg.proposals.phase2.compression = compression;
    cfg.proposals.phase1.lifetime = std::chrono::seconds(0);
    cfg.proposals.phase2.lifetime = std::chrono::seconds(0);
    auto text = renderRacoonConf(cfg, std::nullopt);
    EXPECT_THAT(text, Not(HasSubstr("pfs_group")));
    EXPECT_THAT(text, Not(HasSubstr("lifetime")));
    EXPECT_THAT(text, HasSubstr("\tauthentication_algorithm hmac_sha256;\n"
                                "\t# proposals.phase2.compression is none, but racoon requires this line; IPComp is\n"
                                "\t# only used when a policy asks for it, and ipop-ipsecd's policies never do.\n"
                                "\tcompression_algorithm deflate;\n}\n"));
    EXPECT_EQ(checkRacoonGrammar(text), "") << "compression '" << compression << "'";
  }
}

// compression: deflate and none give racoon the same statements; only the comment differs.
TEST(RenderRacoon, CompressionNoneDiffersFromDeflateOnlyByTheComment) {
  Config deflate = baseConfig();
  Config none = baseConfig();
  none.proposals.phase2.compression = "none";
  auto withoutComments = [](const std::string& text) {
    std::string out;
    for (const auto& l : lines(text))
      if (l.find_first_not_of('\t') == std::string::npos || l[l.find_first_not_of('\t')] != '#') out += l + "\n";
    return out;
  };
  const std::string a = renderRacoonConf(deflate, std::nullopt), b = renderRacoonConf(none, std::nullopt);
  EXPECT_NE(a, b);
  EXPECT_THAT(a, Not(HasSubstr("racoon requires this line")));
  EXPECT_EQ(withoutComments(a), withoutComments(b));
}

TEST(RenderRacoon, CustomPathsAreQuoted) {
  Config cfg = baseConfig();
  cfg.racoon.certificateDir = "/srv/pki dir";
  cfg.racoon.caCert = "ca.pem";
  cfg.racoon.hostCert = "node 1.pem";
  cfg.racoon.hostKey = "node-1.key";
  auto text = renderRacoonConf(cfg, std::nullopt);
  EXPECT_THAT(text, HasSubstr("path certificate \"/srv/pki dir\";\n"));
  EXPECT_THAT(text, HasSubstr("\tcertificate_type x509 \"node 1.pem\" \"node-1.key\";\n"));
  EXPECT_THAT(text, HasSubstr("\tca_type x509 \"ca.pem\";\n"));
  EXPECT_EQ(checkRacoonGrammar(text), "");
}

TEST(RenderRacoon, RejectsValuesRacoonCannotSay) {
  struct Bad {
    const char* what;
    std::function<void(Config&)> tweak;
    const char* message;
  };
  const std::vector<Bad> bad = {
      {"quote in cert", [](Config& c) { c.racoon.hostCert = "a\"b.pem"; }, "racoon.host_cert"},
      {"newline in dir", [](Config& c) { c.racoon.certificateDir = "/etc/racoon\n}"; }, "control character"},
      {"empty key", [](Config& c) { c.racoon.hostKey = ""; }, "racoon.host_key"},
      {"empty ca", [](Config& c) { c.racoon.caCert = ""; }, "racoon.ca_cert"},
      {"semicolon in cipher", [](Config& c) { c.proposals.phase1.encryption = "aes;256"; }, "phase1.encryption"},
      {"two key lengths", [](Config& c) { c.proposals.phase1.encryption = "aes 256 128"; }, "phase1.encryption"},
      {"key length on hash", [](Config& c) { c.proposals.phase1.hash = "sha 256"; }, "phase1.hash"},
      {"brace in group", [](Config& c) { c.proposals.phase1.dhGroup = "modp2048}"; }, "phase1.dh_group"},
      {"empty cipher", [](Config& c) { c.proposals.phase1.encryption = ""; }, "phase1.encryption"},
      {"upper case", [](Config& c) { c.proposals.phase2.authentication = {"HMAC_SHA256"}; }, "phase2.authentication"},
      {"no phase2 ciphers", [](Config& c) { c.proposals.phase2.encryption.clear(); }, "phase2.encryption"},
      {"no phase2 auth", [](Config& c) { c.proposals.phase2.authentication.clear(); }, "phase2.authentication"},
      {"bad pfs", [](Config& c) { c.proposals.phase2.pfsGroup = "modp 2048"; }, "phase2.pfs_group"},
      {"bad compression", [](Config& c) { c.proposals.phase2.compression = "lz4;"; }, "phase2.compression"},
      {"negative dpd", [](Config& c) { c.racoon.dpdDelay = -1; }, "dpd_delay"},
      {"tab in source", [](Config& c) { c.sourceFile = "a\tb.yaml"; }, "control character"},
  };
  for (const auto& b : bad) {
    Config cfg = baseConfig();
    b.tweak(cfg);
    try {
      renderRacoonConf(cfg, std::nullopt);
      ADD_FAILURE() << b.what << ": no RenderError";
    } catch (const RenderError& e) {
      EXPECT_THAT(e.what(), HasSubstr(b.message)) << b.what;
    }
  }
}

TEST(RenderRacoon, TwiceGivesIdenticalBytes) {
  Config cfg = baseConfig();
  cfg.racoon.listenOnTap = true;
  EXPECT_EQ(renderRacoonConf(cfg, A("172.31.0.16")), renderRacoonConf(cfg, A("172.31.0.16")));
}

// ---------------------------------------------------------------------------------
// Every proposal value the config accepts renders a racoon.conf racoon accepts.
//
// The accepted values are not copied here: they are read from the config parser itself,
// from the "accepted: ..." list it gives when refusing a value, and each one is then
// round-tripped through parseConfig. A value added to config.cpp is thus rendered and
// grammar-checked here without touching this file. Each value of each proposals.* key is
// rendered on top of the defaults, then the lists (phase 2 encryption and authentication)
// in every subset and order tried, then the cross product of the single-valued keys, then
// legacy: true. Every file must pass checkRacoonGrammar (context allow-list, required
// statements, no repeats, no forbidden token), hold exactly one compression_algorithm
// deflate per sainfo, and carry the configured values verbatim.

// The values the config parser lists as accepted for `key` (e.g. "phase1.encryption"),
// read from its refusal of a value nothing resembles.
std::vector<std::string> acceptedByConfig(const std::string& key) {
  const auto dot = key.find('.');
  const std::string yaml = "proposals:\n  " + key.substr(0, dot) + ":\n    " + key.substr(dot + 1) + ": qqqqqqqqqqqq\n";
  std::vector<ConfigIssue> issues;
  try {
    parseConfig(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    issues = e.issues();
  }
  if (issues.size() != 1 || issues[0].keyPath != "proposals." + key) {
    ADD_FAILURE() << "expected one issue at proposals." << key << " for:\n" << yaml;
    return {};
  }
  const std::string& msg = issues[0].message;
  std::string list;
  if (auto at = msg.rfind("; accepted: "); at != std::string::npos)
    list = msg.substr(at + 12);
  else if (auto at1 = msg.find(" is not one of "); at1 != std::string::npos)
    list = msg.substr(at1 + 15, msg.find(';', at1) - (at1 + 15));
  std::vector<std::string> out;
  static const std::regex name("'([^']+)'");
  for (std::sregex_iterator it(list.begin(), list.end(), name), end; it != end; ++it) out.push_back((*it)[1].str());
  if (out.empty()) ADD_FAILURE() << "can't read the accepted values of proposals." << key << " from: " << msg;
  return out;
}

// YAML for a proposals section: `phase1` and `phase2` map a key to its YAML value.
struct ProposalsYaml {
  std::vector<std::pair<std::string, std::string>> phase1, phase2;
  std::optional<bool> legacy;

  std::string str() const {
    std::string y = "proposals:\n";
    if (legacy) y += std::string("  legacy: ") + (*legacy ? "true" : "false") + "\n";
    for (const auto& [block, kvs] : {std::pair{"phase1", &phase1}, std::pair{"phase2", &phase2}}) {
      if (kvs->empty()) continue;
      y += std::string("  ") + block + ":\n";
      for (const auto& [k, v] : *kvs) y += "    " + k + ": " + v + "\n";
    }
    return y;
  }
};

std::string yamlScalar(const std::string& v) { return "\"" + v + "\""; }

std::string yamlList(const std::vector<std::string>& vs) {
  std::string y = "[";
  for (const auto& v : vs) y += (y.size() > 1 ? ", " : "") + yamlScalar(v);
  return y + "]";
}

std::string joined(const std::vector<std::string>& vs) {
  std::string out;
  for (const auto& v : vs) out += (out.empty() ? "" : ", ") + v;
  return out;
}

// The lines of the block opened by `opener` (e.g. "\tproposal {"), without comments.
std::vector<std::string> blockLines(const std::string& text, const std::string& opener, std::size_t& blocks) {
  std::vector<std::string> out;
  blocks = 0;
  bool in = false;
  const std::string indent = opener.substr(0, opener.find_first_not_of('\t'));
  for (const auto& l : lines(text)) {
    if (l == opener) {
      in = true;
      ++blocks;
      continue;
    }
    if (in && l == indent + "}") in = false;
    if (!in) continue;
    auto first = l.find_first_not_of('\t');
    if (first != std::string::npos && l[first] != '#') out.push_back(l);
  }
  return out;
}

std::size_t countLines(const std::vector<std::string>& ls, const std::string& prefix) {
  return static_cast<std::size_t>(
      std::count_if(ls.begin(), ls.end(), [&](const std::string& l) { return l.rfind(prefix, 0) == 0; }));
}

// Parses `y`, renders racoon.conf and checks it; "" when all is well. `expect` checks
// that parseConfig stored the values the YAML gave (the round trip).
std::string renderAndCheck(const ProposalsYaml& y, const std::function<std::string(const Config&)>& expect = {}) {
  Config cfg;
  try {
    cfg = parseConfig(y.str(), "t.yaml");
  } catch (const ConfigError& e) {
    return "the config parser refused it: " + e.issues().front().str();
  }
  if (expect)
    if (auto why = expect(cfg); !why.empty()) return "parsed differently: " + why;
  std::string text;
  try {
    text = renderRacoonConf(cfg, A("172.31.0.16"));
  } catch (const RenderError& e) {
    return std::string("RenderError: ") + e.what();
  }
  if (auto bad = checkRacoonGrammar(text); !bad.empty()) return "grammar: " + bad;

  const auto& p1 = cfg.proposals.phase1;
  const auto& p2 = cfg.proposals.phase2;
  std::size_t proposals = 0, sainfos = 0;
  const auto proposal = blockLines(text, "\tproposal {", proposals);
  const auto sainfo = blockLines(text, "sainfo anonymous {", sainfos);
  if (proposals != 1 || sainfos != 1) return "expected one proposal and one sainfo block";
  if (countLines(sainfo, "\tcompression_algorithm ") != 1) return "not exactly one compression_algorithm in sainfo";
  auto has = [](const std::vector<std::string>& ls, const std::string& l) {
    return std::find(ls.begin(), ls.end(), l) != ls.end();
  };
  const std::vector<std::string> want1 = {"\t\tencryption_algorithm " + p1.encryption + ";",
                                          "\t\thash_algorithm " + p1.hash + ";", "\t\tdh_group " + p1.dhGroup + ";"};
  const std::vector<std::string> want2 = {
      "\tpfs_group " + p2.pfsGroup + ";", "\tencryption_algorithm " + joined(p2.encryption) + ";",
      "\tauthentication_algorithm " + joined(p2.authentication) + ";", "\tcompression_algorithm deflate;",
      "\tlifetime time " + racoonDuration(p2.lifetime) + ";"};
  for (const auto& w : want1)
    if (!has(proposal, w)) return "proposal lacks '" + w + "'";
  for (const auto& w : want2)
    if (!has(sainfo, w)) return "sainfo lacks '" + w + "'";
  if (text.find("\n\tlifetime time " + racoonDuration(p1.lifetime) + ";\n\tnat_traversal") == std::string::npos)
    return "remote lacks the phase 1 lifetime";
  const bool comment = text.find("racoon requires this line") != std::string::npos;
  if (comment != (p2.compression == "none"))
    return "the compression comment should appear exactly when compression is none";
  return "";
}

struct AcceptedValues {
  std::vector<std::string> p1Encryption = acceptedByConfig("phase1.encryption");
  std::vector<std::string> p1Hash = acceptedByConfig("phase1.hash");
  std::vector<std::string> p1DhGroup = acceptedByConfig("phase1.dh_group");
  std::vector<std::string> p2Encryption = acceptedByConfig("phase2.encryption");
  std::vector<std::string> p2Authentication = acceptedByConfig("phase2.authentication");
  std::vector<std::string> p2PfsGroup = acceptedByConfig("phase2.pfs_group");
  std::vector<std::string> p2Compression = acceptedByConfig("phase2.compression");
};

const AcceptedValues& accepted() {
  static const AcceptedValues v;
  return v;
}

bool contains(const std::vector<std::string>& vs, const std::string& v) {
  return std::find(vs.begin(), vs.end(), v) != vs.end();
}

// The lists were read, and read right: they hold the defaults and what config.hpp documents.
TEST(ProposalTable, ReadsTheConfigsAcceptedValues) {
  const auto& a = accepted();
  const Config d;
  EXPECT_TRUE(contains(a.p1Encryption, d.proposals.phase1.encryption));
  EXPECT_TRUE(contains(a.p1Hash, d.proposals.phase1.hash));
  EXPECT_TRUE(contains(a.p1DhGroup, d.proposals.phase1.dhGroup));
  for (const auto& e : d.proposals.phase2.encryption) EXPECT_TRUE(contains(a.p2Encryption, e)) << e;
  for (const auto& e : d.proposals.phase2.authentication) EXPECT_TRUE(contains(a.p2Authentication, e)) << e;
  EXPECT_TRUE(contains(a.p2PfsGroup, d.proposals.phase2.pfsGroup));
  EXPECT_TRUE(contains(a.p2Compression, "deflate"));
  EXPECT_TRUE(contains(a.p2Compression, "none"));
  EXPECT_TRUE(contains(a.p1Encryption, "3des"));
  EXPECT_TRUE(contains(a.p1Hash, "sha512"));
  EXPECT_TRUE(contains(a.p1DhGroup, "modp8192"));
  EXPECT_TRUE(contains(a.p2Authentication, "hmac_sha512"));
}

// Each accepted value of each key, alone on top of the defaults.
TEST(ProposalTable, EveryAcceptedValueOfEveryKey) {
  const auto& a = accepted();
  struct Key {
    const char* block;
    const char* key;
    const std::vector<std::string>* values;
    std::function<std::string(const Config&)> stored;  // the parsed value, as the YAML spells it
  };
  const std::vector<Key> keys = {
      {"phase1", "encryption", &a.p1Encryption, [](const Config& c) { return c.proposals.phase1.encryption; }},
      {"phase1", "hash", &a.p1Hash, [](const Config& c) { return c.proposals.phase1.hash; }},
      {"phase1", "dh_group", &a.p1DhGroup, [](const Config& c) { return c.proposals.phase1.dhGroup; }},
      {"phase2", "encryption", &a.p2Encryption, [](const Config& c) { return joined(c.proposals.phase2.encryption); }},
      {"phase2", "authentication", &a.p2Authentication,
       [](const Config& c) { return joined(c.proposals.phase2.authentication); }},
      {"phase2", "pfs_group", &a.p2PfsGroup, [](const Config& c) { return c.proposals.phase2.pfsGroup; }},
      {"phase2", "compression", &a.p2Compression, [](const Config& c) { return c.proposals.phase2.compression; }},
  };
  std::size_t rendered = 0;
  for (const auto& k : keys) {
    for (const auto& v : *k.values) {
      ProposalsYaml y;
      (std::string(k.block) == "phase1" ? y.phase1 : y.phase2).push_back({k.key, yamlScalar(v)});
      auto expect = [&](const Config& c) { return k.stored(c) == v ? "" : "'" + k.stored(c) + "' for '" + v + "'"; };
      EXPECT_EQ(renderAndCheck(y, expect), "") << k.block << "." << k.key << ": " << v << "\n" << y.str();
      ++rendered;
    }
  }
  // Lifetimes (any whole number of seconds from 1 s to a year): each racoon unit, its
  // boundaries, and the largest accepted.
  for (const char* block : {"phase1", "phase2"})
    for (const char* v : {"1", "59s", "60s", "61s", "90m", "3599s", "1h", "3601", "8h", "8784h"}) {
      ProposalsYaml y;
      (std::string(block) == "phase1" ? y.phase1 : y.phase2).push_back({"lifetime", v});
      EXPECT_EQ(renderAndCheck(y), "") << block << ".lifetime: " << v;
      ++rendered;
    }
  RecordProperty("rendered", static_cast<int>(rendered));
  EXPECT_GE(rendered, 40u);
}

// The phase 2 lists: every non-empty subset of the accepted values, in the config's order
// and reversed, for encryption and authentication, with compression deflate and none.
TEST(ProposalTable, Phase2ListsAnySubsetAnyOrder) {
  const auto& a = accepted();
  std::size_t rendered = 0;
  for (const auto* values : {&a.p2Encryption, &a.p2Authentication}) {
    ASSERT_LT(values->size(), 12u);
    const std::string key = values == &a.p2Encryption ? "encryption" : "authentication";
    for (unsigned mask = 1; mask < (1u << values->size()); ++mask) {
      std::vector<std::string> subset;
      for (std::size_t i = 0; i < values->size(); ++i)
        if (mask & (1u << i)) subset.push_back((*values)[i]);
      for (bool reversed : {false, true}) {
        if (reversed) std::reverse(subset.begin(), subset.end());
        for (const auto& compression : a.p2Compression) {
          ProposalsYaml y;
          y.phase2 = {{key, yamlList(subset)}, {"compression", compression}};
          auto expect = [&](const Config& c) {
            const auto& got = key == "encryption" ? c.proposals.phase2.encryption : c.proposals.phase2.authentication;
            return got == subset ? "" : "'" + joined(got) + "' for '" + joined(subset) + "'";
          };
          EXPECT_EQ(renderAndCheck(y, expect), "") << y.str();
          ++rendered;
        }
      }
    }
  }
  RecordProperty("rendered", static_cast<int>(rendered));
}

// The cross product of the single-valued keys (phase 1 encryption, hash, DH group; PFS
// group; compression), with the phase 2 lists at all their accepted values.
TEST(ProposalTable, CrossProductOfSingleValuedKeys) {
  const auto& a = accepted();
  std::size_t rendered = 0, failures = 0;
  for (const auto& enc : a.p1Encryption)
    for (const auto& hash : a.p1Hash)
      for (const auto& dh : a.p1DhGroup)
        for (const auto& pfs : a.p2PfsGroup)
          for (const auto& compression : a.p2Compression) {
            ProposalsYaml y;
            y.phase1 = {{"encryption", yamlScalar(enc)}, {"hash", hash}, {"dh_group", dh}, {"lifetime", "90m"}};
            y.phase2 = {{"encryption", yamlList(a.p2Encryption)},
                        {"authentication", yamlList(a.p2Authentication)},
                        {"pfs_group", pfs},
                        {"compression", compression},
                        {"lifetime", "45s"}};
            auto r = renderAndCheck(y);
            EXPECT_EQ(r, "") << y.str();
            ++rendered;
            if (!r.empty() && ++failures == 10) return;  // enough to see the pattern
          }
  RecordProperty("rendered", static_cast<int>(rendered));
  EXPECT_EQ(rendered, a.p1Encryption.size() * a.p1Hash.size() * a.p1DhGroup.size() * a.p2PfsGroup.size() *
                          a.p2Compression.size());
}

// proposals.legacy, both values: true selects the seed's whole proposal (3des, sha1,
// modp1024, hmac_sha1, pfs modp1024, deflate), which racoon accepts.
TEST(ProposalTable, LegacyProfile) {
  for (bool legacy : {false, true}) {
    ProposalsYaml y;
    y.legacy = legacy;
    EXPECT_EQ(renderAndCheck(y, [&](const Config& c) {
                return c.proposals.legacy == legacy ? "" : std::string("legacy flag lost");
              }),
              "")
        << y.str();
  }
  ProposalsYaml y;
  y.legacy = true;
  const Config c = parseConfig(y.str(), "t.yaml");
  const std::string text = renderRacoonConf(c, std::nullopt);
  EXPECT_THAT(text, HasSubstr("\t\tencryption_algorithm 3des;\n\t\thash_algorithm sha1;\n"));
  EXPECT_THAT(text, HasSubstr("\t\tdh_group modp1024;\n"));
  EXPECT_THAT(text, HasSubstr("\tpfs_group modp1024;\n"));
  EXPECT_THAT(text, HasSubstr("\tencryption_algorithm 3des;\n\tauthentication_algorithm hmac_sha1;\n"));
  EXPECT_THAT(text, HasSubstr("\tcompression_algorithm deflate;\n"));
}

// The forbidden-token scan names racoon's known refusals, and ignores comments and file names.
TEST(RacoonGrammarCheck, ForbiddenTokens) {
  for (const char* bad : {"\t\tencryption_algorithm aes_gcm 128;", "\tencryption_algorithm aes 256, aes_gcm_16;",
                          "\t\tdh_group ecp256;", "\tpfs_group 19;", "\t\tdh_group 31;", "\t\tdh_group curve25519;",
                          "\t\tencryption_algorithm aes 512;", "\tencryption_algorithm chacha20_poly1305;"})
    EXPECT_NE(forbiddenRacoonToken(std::string(bad) + "\n"), "") << bad;
  for (const char* fine : {"\t\tencryption_algorithm aes 256;", "\tencryption_algorithm aes 192, 3des;",
                           "\t\tdh_group modp8192;", "\tpfs_group 14;", "# no ecp256, no aes_gcm here",
                           "\t# aes 512 is not offered", "path certificate \"/srv/ecp256-gcm\";"})
    EXPECT_EQ(forbiddenRacoonToken(std::string(fine) + "\n"), "") << fine;
}

// The grammar checker itself must catch typos, or the grammar tests prove nothing.
TEST(RacoonGrammarCheck, CatchesTypos) {
  Config cfg = baseConfig();
  cfg.racoon.listenOnTap = true;
  const std::string good = renderRacoonConf(cfg, A("172.31.0.16"));
  ASSERT_EQ(checkRacoonGrammar(good), "");
  const std::vector<std::pair<std::string, std::string>> typos = {
      {"verify_cert on;", "verify_certs on;"},
      {"hash_algorithm sha256;", "hash_algorithm hmac_sha256;"},
      {"authentication_algorithm hmac_sha256;", "authentication_algorithm sha256;"},
      {"dh_group modp2048;", "dh_group ecp256;"},
      {"encryption_algorithm aes 256;", "encryption_algorithm aes_gcm;"},
      {"lifetime time 8 hour;", "lifetime time 8 hours"},
      {"\t}\n}\n", "\t}\n"},
      {"isakmp 172.31.0.16 [500];", "isakmp 172.31.0.16 500;"},
      {"\tca_type", "ca_type"},
      {"sainfo anonymous {", "sainfo {"},
      {"\tcompression_algorithm deflate;\n", ""},
      {"\tcompression_algorithm deflate;\n", "\tcompression_algorithm deflate;\n\tcompression_algorithm deflate;\n"},
      {"compression_algorithm deflate;", "compression_algorithm none;"},
      {"compression_algorithm deflate;", "# compression_algorithm deflate;"},
      {"dh_group modp2048;", "dh_group 19;"},
      {"pfs_group modp2048;", "pfs_group ecp256;"},
      {"\t\tencryption_algorithm aes 256;", "\t\tencryption_algorithm aes 512;"},
      {"encryption_algorithm aes 256, aes 128;", "encryption_algorithm aes 256, aes_gcm 128;"},
      {"encryption_algorithm aes 256, aes 128;", "encryption_algorithm aes 256, aes 512;"},
      {"authentication_algorithm hmac_sha256;", "authentication_algorithm hmac_sha256, sha256;"},
      {"\tdpd_delay 20;", "\t\tdpd_delay 20;"},
  };
  for (const auto& [from, to] : typos) {
    ASSERT_NE(good.find(from), std::string::npos) << from;
    std::string bad = good;
    bad.replace(bad.find(from), from.size(), to);
    EXPECT_NE(checkRacoonGrammar(bad), "") << "typo not caught: " << to;
  }
}

TEST(SpdGrammarCheck, CatchesTypos) {
  Config cfg = baseConfig();
  const std::string good = renderSpd(buildPolicies({C("172.31.0.0/16"), C("fd50::/64")}, cfg), cfg);
  ASSERT_EQ(checkSpdGrammar(good), "");
  const std::vector<std::pair<std::string, std::string>> typos = {
      {"#!/usr/sbin/setkey -f\n", "# hello\n#!/usr/sbin/setkey -f\n"},
      {"esp/transport//require;", "esp/transport/require;"},
      {"any -P out", "any -P outbound"},
      {"any -P out prio 2147233648", "any -P out prio 3147233648"},
      {"icmp6 135,0", "icmp6 135"},
      {"172.31.0.0/16 172.31.0.0/16", "172.31.0.0/16 fd50::/64"},
      {"spdupdate 172.31.0.0/16", "spdadd 172.31.0.0/16"},
      {"none;\n", "none\n"},
  };
  for (const auto& [from, to] : typos) {
    ASSERT_NE(good.find(from), std::string::npos) << from;
    std::string bad = good;
    bad.replace(bad.find(from), from.size(), to);
    EXPECT_NE(checkSpdGrammar(bad), "") << "typo not caught: " << to;
  }
}

// ---------------------------------------------------------------------------------
// Both files together.

TEST(RenderRacoonBackend, PathsModesAndContents) {
  Config cfg = baseConfig();
  cfg.racoon.config = "/tmp/x/racoon.conf";
  cfg.racoon.spdFile = "/tmp/x/ipsec-tools.conf";
  auto policies = buildPolicies({C("172.31.0.0/16")}, cfg);
  auto files = renderRacoonBackend(policies, cfg, A("172.31.0.16"));
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, "/tmp/x/ipsec-tools.conf");
  EXPECT_EQ(files[0].mode, 0644u);
  EXPECT_EQ(files[0].content, renderSpd(policies, cfg));
  EXPECT_EQ(files[1].path, "/tmp/x/racoon.conf");
  EXPECT_EQ(files[1].mode, 0644u);
  EXPECT_EQ(files[1].content, renderRacoonConf(cfg, A("172.31.0.16")));
}

TEST(RenderRacoonBackend, DefaultPathsAreTheSeeds) {
  Config cfg = baseConfig();
  auto files = renderRacoonBackend({}, cfg, std::nullopt);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, "/etc/ipsec-tools.conf");
  EXPECT_EQ(files[1].path, "/etc/racoon/racoon.conf");
}

}  // namespace
}  // namespace ipopsec
