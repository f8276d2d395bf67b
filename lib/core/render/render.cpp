#include "core/render/render.hpp"

#include <algorithm>
#include <tuple>

#include "core/render/quoting.hpp"

#ifndef IPOPSEC_VERSION
#error "IPOPSEC_VERSION must be defined by the build (CMakeLists.txt)"
#endif

namespace ipopsec {
namespace {

// ---------------------------------------------------------------------------------
// Checks: every value inserted into a file must be expressible in its syntax.

// A value as a racoon.conf string; the same check as the config validator's (quoting.hpp).
std::string quoted(const std::string& what, const std::string& s) {
  if (s.empty()) throw RenderError(what + ": an empty string can't be used here");
  if (auto why = unquotableReason(s); !why.empty()) throw RenderError(what + ": the value " + why);
  return "\"" + s + "\"";
}

bool isWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// A racoon algorithm or group name: one lower-case word ("3des", "hmac_sha256",
// "modp2048"), optionally followed by one space and a key length ("aes 256") when
// `keyLength` is allowed.
std::string word(const std::string& what, const std::string& s, bool keyLength) {
  auto fail = [&]() -> std::string {
    throw RenderError(what + ": '" + s + "' is not a racoon algorithm name" +
                      (keyLength ? " (a word, optionally followed by a key length)" : " (a single word)"));
  };
  auto space = s.find(' ');
  std::string name = s.substr(0, space);
  if (name.empty() || !std::all_of(name.begin(), name.end(), isWordChar)) return fail();
  if (space != std::string::npos) {
    if (!keyLength) return fail();
    std::string len = s.substr(space + 1);
    if (len.empty() || len.size() > 4 || !std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return fail();
  }
  return s;
}


// ---------------------------------------------------------------------------------
// setkey (ipsec-tools 0.8) syntax, checked against its sources:
//  - setkey/parse.y: "spdupdate ipaddropts STRING prefix portstr STRING prefix portstr
//    upper_spec upper_misc_spec context_spec policy_spec EOT";
//  - setkey(8), upperspec: "icmp6" (or a protocol name/number, or "any"); an ICMP/ICMPv6
//    type and code go after it separated by one comma, "the code must always be
//    specified", and 0 is a wildcard: `spdadd ::/0 ::/0 icmp6 135,0 -P in none ;`. The
//    kernel (af_key) puts the type in the selector's source port with a full mask, the
//    code in the destination port with mask 0 when it is 0, which is the selector the
//    daemon installs over XFRM (type matched, any code);
//  - libipsec/policy_token.l and policy_parse.y, the priority: "prio N" (also
//    "priority N") stores PRIORITY_DEFAULT - N = 0x80000000 - N (N up to 2^31),
//    "prio -N" stores 0x80000000 + N (N up to INT32_MAX), "prio {low,def,high} {+,-} N"
//    offsets from 0xC0000000/0x80000000/0x40000000. af_key copies the value unchanged
//    into the XFRM policy's priority. So `prio 100` is kernel priority 2147483548, NOT
//    100; to load exactly the priorities the daemon installs over netlink (and owns by),
//    the file says `prio (2^31 - P)`.
//  - setkey.c: on Linux setkey runs in "RFC mode" (-r, the default) and sends a fwd copy
//    of every "-P in" policy; "-k" (kernel mode) does not.

constexpr std::uint64_t kPrioDefault = 0x80000000ULL;

const char* upperSpecName(std::uint8_t proto) {
  switch (proto) {
    case 1: return "icmp";
    case 58: return "icmp6";
    default: return nullptr;
  }
}

std::string upperSpec(const Selector& sel) {
  if (sel.proto == 0) {
    if (sel.hasIcmpType) throw RenderError("a selector with an ICMP type needs protocol icmp or icmp6");
    return "any";
  }
  const char* name = upperSpecName(sel.proto);
  if (sel.hasIcmpType) {
    if (!name) throw RenderError("an ICMP type is set on protocol " + std::to_string(sel.proto));
    return std::string(name) + " " + std::to_string(sel.icmpType) + ",0";
  }
  return name ? std::string(name) : std::to_string(sel.proto);
}

int dirRank(Direction d) {
  switch (d) {
    case Direction::out: return 0;
    case Direction::in: return 1;
    case Direction::fwd: return 2;
  }
  return 3;
}

// Display order: protect policies first (so that while setkey loads the file an excluded
// address is briefly protected, never a protected one briefly in the clear), then by
// selector, then out/in/fwd as in the seed's file.
auto displayKey(const Policy& p) {
  return std::make_tuple(p.action == PolicyAction::protect ? 0 : 1, p.sel, dirRank(p.dir), p.level, p.priority);
}

std::string spdStatement(const Policy& p) {
  if (p.sel.src.family() != p.sel.dst.family())
    throw RenderError("policy '" + p.str() + "' mixes IPv4 and IPv6 addresses");
  std::string s = "spdupdate " + p.sel.src.str() + " " + p.sel.dst.str() + " " + upperSpec(p.sel) + " -P " +
                  toString(p.dir) + " " + setkeyPriority(p.priority) + " ";
  if (p.action == PolicyAction::protect)
    s += p.level == PolicyLevel::require ? "ipsec esp/transport//require" : "ipsec esp/transport//use";
  else
    s += "none";
  s += ";\n";
  return s;
}

}  // namespace

std::string renderedSource(const Config& cfg) {
  if (cfg.sourceFile.empty()) return "built-in defaults";
  if (hasControlChar(cfg.sourceFile)) throw RenderError("the config file name contains a control character");
  return cfg.sourceFile;
}

std::string setkeyPriority(std::uint32_t kernelPriority) {
  const std::uint64_t p = kernelPriority;
  if (p <= kPrioDefault) return "prio " + std::to_string(kPrioDefault - p);
  return "prio -" + std::to_string(p - kPrioDefault);
}

std::string racoonDuration(std::chrono::seconds d) {
  const auto s = d.count();
  if (s % 3600 == 0) return std::to_string(s / 3600) + " hour";
  if (s % 60 == 0) return std::to_string(s / 60) + " min";
  return std::to_string(s) + " sec";
}

std::string renderSpd(const std::vector<Policy>& policies, const Config& cfg) {
  std::vector<Policy> sorted = policies;
  std::sort(sorted.begin(), sorted.end(),
            [](const Policy& a, const Policy& b) { return displayKey(a) < displayKey(b); });
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());

  std::string out;
  // The shebang must be the first line: the file is executable, as the seed's was.
  out += "#!/usr/sbin/setkey -f\n";
  out += "# Generated by ipop-ipsecd " IPOPSEC_VERSION " from " + renderedSource(cfg) + ".\n";
  out += R"(# Do not edit: ipop-ipsecd rewrites this file whenever the protected ranges or
# its configuration change.
#
# Only spdupdate: it installs a policy or replaces the one with the same direction
# and selector, so the file loads twice without error. No flush; or spdflush;:
# they would also wipe SAs and policies that other software (strongSwan, the
# operator) installed.
#
# setkey's "prio N" is not the kernel priority: libipsec stores 2147483648 - N.
# Kernel priorities (lower wins) used by ipop-ipsecd, which owns the policies
# carrying them:
)";
  out += "#   protect " + std::to_string(cfg.xfrm.protectPriority) + " = " + setkeyPriority(cfg.xfrm.protectPriority) + "\n";
  out += "#   bypass  " + std::to_string(cfg.xfrm.bypassPriority) + " = " + setkeyPriority(cfg.xfrm.bypassPriority) + "\n";
  out += "#\n";
  out += "# In its default RFC mode setkey also installs a fwd copy of every \"-P in\" policy;\n";
  out += "# \"setkey -k -f FILE\" installs exactly the policies below.\n";

  bool protectHeader = false, bypassHeader = false;
  for (const Policy& p : sorted) {
    if (p.action == PolicyAction::protect && !protectHeader) {
      out += "\n# ESP transport between the addresses of each protected range.\n";
      protectHeader = true;
    } else if (p.action == PolicyAction::bypass && !bypassHeader) {
      out += "\n# In the clear: excluded addresses, IPv6 neighbour discovery.\n";
      bypassHeader = true;
    }
    out += spdStatement(p);
  }
  return out;
}

std::string renderRacoonConf(const Config& cfg, const std::optional<IpAddress>& localAddress) {
  const auto& rc = cfg.racoon;
  const auto& p1 = cfg.proposals.phase1;
  const auto& p2 = cfg.proposals.phase2;
  const std::string t1 = "\t", t2 = "\t\t";

  if (rc.dpdDelay < 0) throw RenderError("racoon.dpd_delay: " + std::to_string(rc.dpdDelay) + " is negative");
  if (p2.encryption.empty()) throw RenderError("proposals.phase2.encryption: the list is empty");
  if (p2.authentication.empty()) throw RenderError("proposals.phase2.authentication: the list is empty");

  std::string out;
  out += "# Generated by ipop-ipsecd " IPOPSEC_VERSION " from " + renderedSource(cfg) + ".\n";
  out += "# Do not edit: ipop-ipsecd rewrites this file whenever its configuration or the\n";
  out += "# tap's address change.\n";
  out += "\n";
  out += "path certificate " + quoted("racoon.certificate_dir", rc.certificateDir) + ";\n";

  if (rc.listenOnTap && localAddress) {
    out += "\n";
    out += "listen {\n";
    out += t1 + "isakmp " + localAddress->str() + " [500];\n";
    out += "}\n";
  }

  out += "\n";
  out += "remote anonymous {\n";
  out += t1 + "exchange_mode main;\n";
  out += t1 + "certificate_type x509 " + quoted("racoon.host_cert", rc.hostCert) + " " +
         quoted("racoon.host_key", rc.hostKey) + ";\n";
  out += t1 + "ca_type x509 " + quoted("racoon.ca_cert", rc.caCert) + ";\n";
  out += t1 + "my_identifier asn1dn;\n";
  out += t1 + "verify_identifier on;\n";
  out += t1 + "verify_cert on;\n";
  // A lifetime of 0 (or less) means "propose none": racoon then accepts the peer's.
  if (p1.lifetime.count() > 0) out += t1 + "lifetime time " + racoonDuration(p1.lifetime) + ";\n";
  out += t1 + "nat_traversal " + (rc.natTraversal ? "on" : "off") + ";\n";
  if (rc.dpdDelay > 0) out += t1 + "dpd_delay " + std::to_string(rc.dpdDelay) + ";\n";
  out += t1 + "proposal {\n";
  out += t2 + "encryption_algorithm " + word("proposals.phase1.encryption", p1.encryption, true) + ";\n";
  out += t2 + "hash_algorithm " + word("proposals.phase1.hash", p1.hash, false) + ";\n";
  out += t2 + "authentication_method rsasig;\n";
  out += t2 + "dh_group " + word("proposals.phase1.dh_group", p1.dhGroup, false) + ";\n";
  out += t1 + "}\n";
  out += "}\n";

  out += "\n";
  out += "sainfo anonymous {\n";
  // No PFS group (empty or "none"): racoon then doesn't require PFS.
  if (!p2.pfsGroup.empty() && p2.pfsGroup != "none")
    out += t1 + "pfs_group " + word("proposals.phase2.pfs_group", p2.pfsGroup, false) + ";\n";
  if (p2.lifetime.count() > 0) out += t1 + "lifetime time " + racoonDuration(p2.lifetime) + ";\n";
  std::string enc, auth;
  for (const auto& e : p2.encryption)
    enc += (enc.empty() ? "" : ", ") + word("proposals.phase2.encryption", e, true);
  for (const auto& a : p2.authentication)
    auth += (auth.empty() ? "" : ", ") + word("proposals.phase2.authentication", a, false);
  out += t1 + "encryption_algorithm " + enc + ";\n";
  out += t1 + "authentication_algorithm " + auth + ";\n";
  // racoon refuses a sainfo without compression_algorithm ("no compression algorithm at
  // loc='ANONYMOUS'") and with it the whole file. The line is harmless: racoon proposes
  // IPComp only for an SPD policy that asks for ipcomp, and ipop-ipsecd's policies are
  // ESP only. So "none" (or nothing) renders deflate too, with a comment saying why.
  if (p2.compression.empty() || p2.compression == "none") {
    out += t1 + "# proposals.phase2.compression is none, but racoon requires this line; IPComp is\n";
    out += t1 + "# only used when a policy asks for it, and ipop-ipsecd's policies never do.\n";
    out += t1 + "compression_algorithm deflate;\n";
  } else {
    out += t1 + "compression_algorithm " + word("proposals.phase2.compression", p2.compression, false) + ";\n";
  }
  out += "}\n";
  return out;
}

std::vector<RenderedFile> renderRacoonBackend(const std::vector<Policy>& policies, const Config& cfg,
                                              const std::optional<IpAddress>& localAddress) {
  std::vector<RenderedFile> files;
  files.push_back(RenderedFile{cfg.racoon.spdFile, renderSpd(policies, cfg), 0644});
  files.push_back(RenderedFile{cfg.racoon.config, renderRacoonConf(cfg, localAddress), 0644});
  return files;
}

}  // namespace ipopsec
