// The schema of the section proposals (config_schema.hpp): the algorithm names racoon
// really accepts (LAB.md, racoon.conf(5)), hints for the names it does not, and the
// seed's legacy proposal.

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config_schema.hpp"
#include "core/config/parse_config.hpp"

namespace ipopsec {

Config::Proposals legacyProposals() {
  Config::Proposals p;  // lifetimes keep the defaults of config.hpp
  p.legacy = true;
  p.phase1.encryption = "3des";
  p.phase1.hash = "sha1";
  p.phase1.dhGroup = "modp1024";
  p.phase2.encryption = {"3des"};
  p.phase2.authentication = {"hmac_sha1"};
  p.phase2.pfsGroup = "modp1024";
  p.phase2.compression = "deflate";
  return p;
}

namespace schema {

using namespace yaml;

namespace {

constexpr std::size_t kMaxAlgorithms = 16;

std::string squash(std::string_view s) {
  std::string out;
  for (char c : lower(s))
    if (c != ' ' && c != '-' && c != '_') out += c;
  return out;
}

enum class Algo { p1Encryption, p1Hash, dhGroup, p2Encryption, p2Authentication };

struct AlgoSpec {
  std::string_view what;
  Names names;
};

const AlgoSpec& spec(Algo a) {
  static const AlgoSpec p1Enc{"a phase 1 encryption algorithm racoon accepts",
                              {"aes 128", "aes 192", "aes 256", "3des", "camellia 256"}};
  static const AlgoSpec p1Hash{"a phase 1 hash algorithm racoon accepts", {"sha1", "sha256", "sha384", "sha512"}};
  static const AlgoSpec dh{"a Diffie-Hellman group racoon accepts",
                           {"modp1536", "modp2048", "modp3072", "modp4096", "modp6144", "modp8192"}};
  static const AlgoSpec p2Enc{"a phase 2 encryption algorithm racoon accepts",
                              {"aes 128", "aes 192", "aes 256", "3des"}};
  static const AlgoSpec p2Auth{"a phase 2 authentication algorithm racoon accepts",
                               {"hmac_sha1", "hmac_sha256", "hmac_sha384", "hmac_sha512"}};
  switch (a) {
    case Algo::p1Encryption:
      return p1Enc;
    case Algo::p1Hash:
      return p1Hash;
    case Algo::dhGroup:
      return dh;
    case Algo::p2Encryption:
      return p2Enc;
    case Algo::p2Authentication:
      return p2Auth;
  }
  return p1Enc;
}

// Why a name racoon would reject is wrong, when we can tell; "" otherwise.
std::string algorithmHint(std::string_view value, Algo a) {
  const auto& names = spec(a).names;
  std::string v = lower(value);
  if (a == Algo::dhGroup) {
    if (v == "modp1024" || v == "2")
      return "modp1024 (group 2) is too weak; it is available only through proposals.legacy: true";
    if (v.rfind("ecp", 0) == 0 || v.rfind("curve", 0) == 0 || v.rfind("x25519", 0) == 0 || v.rfind("x448", 0) == 0 ||
        v.rfind("brainpool", 0) == 0 || v == "19" || v == "20" || v == "21" || v == "25" || v == "26" || v == "27" ||
        v == "28" || v == "29" || v == "30" || v == "31" || v == "32")
      return "racoon supports no elliptic-curve groups";
    static const std::map<std::string, std::string_view> byNumber{{"5", "modp1536"},  {"14", "modp2048"},
                                                                  {"15", "modp3072"}, {"16", "modp4096"},
                                                                  {"17", "modp6144"}, {"18", "modp8192"}};
    if (auto it = byNumber.find(v); it != byNumber.end())
      return "write the group's name: group " + v + " is '" + std::string(it->second) + "'";
  }
  if (v.find("gcm") != std::string::npos || v.find("ccm") != std::string::npos ||
      v.find("chacha") != std::string::npos || v.find("poly1305") != std::string::npos)
    return "racoon has no AEAD ciphers (AES-GCM, AES-CCM, ChaCha20-Poly1305)";
  if (a == Algo::p2Authentication && (v == "sha1" || v == "sha256" || v == "sha384" || v == "sha512"))
    return "phase 2 uses racoon's HMAC names: use 'hmac_" + v + "'";
  if (a == Algo::p1Hash && v.rfind("hmac_", 0) == 0 && contains(names, std::string_view(v).substr(5)))
    return "phase 1 hash names have no hmac_ prefix: use '" + v.substr(5) + "'";
  auto sq = squash(v);
  for (auto n : names)
    if (squash(n) == sq) return "did you mean '" + std::string(n) + "'?";
  if (a == Algo::p1Encryption || a == Algo::p2Encryption) {
    if (v == "aes") return "name the key length: 'aes 128', 'aes 192' or 'aes 256'";
    if (v.rfind("aes", 0) == 0) return "AES key lengths are 128, 192 and 256";
    if (v == "des") return "single DES is broken and racoon's DES is not offered";
  }
  if (auto n = nearest(v, names)) return "did you mean '" + std::string(*n) + "'?";
  return "";
}

// A lifetime: a duration in whole seconds (racoon's unit).
void lifetime(Parse& p, const Item& it, std::chrono::seconds& out) {
  auto d = p.r.duration(it);
  if (!d) return;
  if (d->count() % 1000 != 0) {
    p.r.error(it, show(it.node.Scalar()) + " is not a whole number of seconds; racoon counts lifetimes in seconds");
    return;
  }
  out = std::chrono::duration_cast<std::chrono::seconds>(*d);
}

std::optional<std::string> algorithm(Parse& p, const Item& it, Algo a) {
  const auto& sp = spec(a);
  if (!it.node.IsScalar()) {
    p.r.error(it, "expected an algorithm name, got " + describe(it.node) + "; accepted: " + quoted(sp.names));
    return std::nullopt;
  }
  auto s = std::optional<std::string>(it.node.Scalar());
  if (contains(sp.names, *s)) {
    if (*s == "3des" || *s == "sha1" || *s == "hmac_sha1")
      p.r.warn(it.path, "'" + *s + "' is weak; accepted for older peers, but prefer " +
                            (*s == "3des"   ? "'aes 256'"
                             : *s == "sha1" ? "'sha256'"
                                            : "'hmac_sha256'"));
    return s;
  }
  auto hint = algorithmHint(*s, a);
  p.r.error(it, show(*s) + " is not " + std::string(sp.what) + (hint.empty() ? "" : ": " + hint) +
                    "; accepted: " + quoted(sp.names));
  return std::nullopt;
}

void algorithmList(Parse& p, const Item& it, Algo a, std::vector<std::string>& out) {
  std::vector<Item> items;
  if (it.node.IsScalar()) {
    items.push_back(it);
  } else {
    auto l = p.r.list(it, "an algorithm name or a list of them", kMaxAlgorithms);
    if (!l) return;
    items = std::move(*l);
  }
  if (items.empty()) {
    p.r.error(it, "must list at least one algorithm; accepted: " + quoted(spec(a).names));
    return;
  }
  std::vector<std::string> result;
  bool ok = true;
  for (const auto& e : items) {
    auto name = algorithm(p, e, a);
    if (!name) {
      ok = false;
      continue;
    }
    if (std::find(result.begin(), result.end(), *name) != result.end()) {
      p.r.error(e, show(*name) + " is listed twice");
      ok = false;
      continue;
    }
    result.push_back(*name);
  }
  if (ok) out = std::move(result);
}

void phase1(Parse& p, const Item& section) {
  auto& ph = p.cfg.proposals.phase1;
  p.r.mapping(section, {
                           {"encryption",
                            [&](const Item& it) {
                              if (auto a = algorithm(p, it, Algo::p1Encryption)) ph.encryption = *a;
                            }},
                           {"hash",
                            [&](const Item& it) {
                              if (auto a = algorithm(p, it, Algo::p1Hash)) ph.hash = *a;
                            }},
                           {"dh_group",
                            [&](const Item& it) {
                              if (auto a = algorithm(p, it, Algo::dhGroup)) ph.dhGroup = *a;
                            }},
                           {"lifetime", [&](const Item& it) { lifetime(p, it, ph.lifetime); }},
                       });
}

void phase2(Parse& p, const Item& section) {
  auto& ph = p.cfg.proposals.phase2;
  p.r.mapping(
      section,
      {
          {"encryption", [&](const Item& it) { algorithmList(p, it, Algo::p2Encryption, ph.encryption); }},
          {"authentication", [&](const Item& it) { algorithmList(p, it, Algo::p2Authentication, ph.authentication); }},
          {"pfs_group",
           [&](const Item& it) {
             if (auto a = algorithm(p, it, Algo::dhGroup)) ph.pfsGroup = *a;
           }},
          {"compression",
           [&](const Item& it) {
             if (auto v = p.r.oneOf(it, {"deflate", "none"})) ph.compression = *v;
           }},
          {"lifetime", [&](const Item& it) { lifetime(p, it, ph.lifetime); }},
      });
}

}  // namespace

void proposals(Parse& p, const Item& section) {
  p.r.mapping(section, {
                           {"legacy", [&p](const Item& it) { p.r.boolean(it, p.cfg.proposals.legacy); }},
                           {"phase1", [&p](const Item& it) { phase1(p, it); }},
                           {"phase2", [&p](const Item& it) { phase2(p, it); }},
                       });
  if (!p.cfg.proposals.legacy) return;
  bool clash = false;
  for (const char* path : {"proposals.phase1", "proposals.phase2"}) {
    if (const Item* block = p.r.seen(path)) {
      p.r.error(block->keyMark, path,
                "cannot be combined with proposals.legacy: true, which selects the seed's whole proposal; "
                "remove this block or legacy: true");
      clash = true;
    }
  }
  if (clash) return;
  p.cfg.proposals = legacyProposals();
  p.r.warn("proposals.legacy",
           "the seed's 3des/sha1/modp1024 proposal is weak (3DES, SHA-1 and a 1024-bit group); use it only "
           "while older peers need it, then remove legacy: true on every node to get aes 256/sha256/modp2048");
}

}  // namespace schema
}  // namespace ipopsec
