// The schema of the sections ipop, protect and xfrm (config_schema.hpp).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config/config_schema.hpp"

namespace ipopsec::schema {

using namespace yaml;

namespace {

constexpr std::size_t kMaxRanges = 256;
constexpr std::size_t kMaxExcludes = 1024;

// Why `s` is not a usable Linux interface name (net/core/dev.c: dev_valid_name); "" if it is.
std::string interfaceNameProblem(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > 15)
    return show(s) + " is " + std::to_string(s.size()) + " characters long; Linux interface names have at most 15";
  if (s == "." || s == "..") return show(s) + " is not a valid interface name";
  for (char c : s) {
    if (isSpace(c)) return show(s) + " contains whitespace, which Linux does not allow in interface names";
    if (c == '/' || c == ':')
      return show(s) + " contains '" + std::string(1, c) + "', which Linux does not allow in interface names";
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return show(s) + " contains a control character";
  }
  return "";
}

// Cidr::parse on text no CIDR could be (the longest, an IPv6 address with an embedded
// IPv4 tail and a prefix, is under 50 characters); keeps messages short.
std::optional<Cidr> parseCidr(const std::string& s, std::string& why) {
  if (s.size() > 64) {
    why = "too long for an address";
    return std::nullopt;
  }
  return Cidr::parse(s, &why);
}

// protect.ranges: a list of CIDRs or 'auto'. Returns false when some entry could not be
// parsed at all.
bool ranges(Parse& p, const Item& it) {
  const std::string expected = "a list of CIDRs or 'auto'";
  if (it.node.IsScalar()) {
    const std::string& s = it.node.Scalar();
    if (s == "auto") {
      p.cfg.protect.autoRanges = true;
      p.cfg.protect.ranges.clear();
      return true;
    }
    std::string msg = "expected " + expected + ", got " + show(s);
    if (lower(s) == "auto")
      msg += "; did you mean 'auto'?";
    else if (Cidr::parse(s))
      msg += "; write [" + s + "] for a single range";
    p.r.error(it, msg);
    return false;
  }
  auto items = p.r.list(it, expected, kMaxRanges);
  if (!items) return false;
  if (items->empty()) {
    p.r.error(it, "must not be empty: list at least one range, or write 'auto' to protect the tap's own range");
    return false;
  }
  bool parsed = true;
  std::vector<std::pair<Cidr, std::string>> accepted;
  for (const auto& e : *items) {
    auto s = p.r.scalar(e, "a CIDR like 172.31.0.0/16");
    if (!s) {
      parsed = false;
      continue;
    }
    std::string why;
    auto c = parseCidr(*s, why);
    if (!c) {
      p.r.error(e, show(*s) + " is not a valid CIDR: " + why);
      parsed = false;
      continue;
    }
    if (s->find('/') == std::string::npos) {
      p.r.error(e, show(*s) + " is a single address; a protected range needs a prefix length, like 172.31.0.0/16");
      parsed = false;
      continue;
    }
    if (c->hostBitsSet()) {
      p.r.error(e, show(*s) + " has host bits set; did you mean " + c->network().str() + "?");
      c = c->network();
    }
    auto clash =
        std::find_if(accepted.begin(), accepted.end(), [&](const auto& prev) { return prev.first.overlaps(*c); });
    if (clash != accepted.end())
      p.r.error(e, show(*s) + " overlaps " + clash->second + " '" + clash->first.str() + "'");
    accepted.emplace_back(*c, e.path);
  }
  p.cfg.protect.autoRanges = false;
  p.cfg.protect.ranges.clear();
  for (const auto& a : accepted) p.cfg.protect.ranges.push_back(a.first);
  return parsed;
}

void exclude(Parse& p, const Item& it, std::vector<std::pair<Cidr, Item>>& out) {
  const std::string expected = "a list of addresses or CIDRs";
  if (it.node.IsScalar()) {
    std::string msg = "expected " + expected + ", got " + describe(it.node);
    if (Cidr::parse(it.node.Scalar())) msg += "; write [" + it.node.Scalar() + "] for a single entry";
    p.r.error(it, msg);
    return;
  }
  auto items = p.r.list(it, expected, kMaxExcludes);
  if (!items) return;
  p.cfg.protect.exclude.clear();
  for (const auto& e : *items) {
    auto s = p.r.scalar(e, "an address or a CIDR");
    if (!s) continue;
    std::string why;
    auto c = parseCidr(*s, why);
    if (!c) {
      p.r.error(e, show(*s) + " is not a valid address or CIDR: " + why);
      continue;
    }
    if (c->hostBitsSet()) {
      p.r.error(e, show(*s) + " has host bits set; did you mean " + c->network().str() + " (or " + c->address.str() +
                       " alone, to exclude one host)?");
      continue;
    }
    p.cfg.protect.exclude.push_back(*c);
    out.emplace_back(*c, e);
  }
}

}  // namespace

void ipop(Parse& p, const Item& section) {
  if (section.node.IsScalar()) {
    p.r.error(section, "expected a mapping with the key interface, got " + describe(section.node) +
                           "; write 'ipop: { interface: " + keyName(section.node.Scalar()) + " }'");
    return;
  }
  p.r.mapping(section, {{"interface", [&p](const Item& it) {
                           if (!it.node.IsScalar() && !it.node.IsNull()) {
                             p.r.error(it, "expected an interface name, got " + describe(it.node));
                             return;
                           }
                           std::string name = it.node.IsScalar() ? it.node.Scalar() : "";
                           if (auto why = interfaceNameProblem(name); !why.empty())
                             p.r.error(it, why);
                           else
                             p.cfg.ipop.interface = name;
                         }}});
}

void protect(Parse& p, const Item& section) {
  bool rangesParsed = true;
  std::vector<std::pair<Cidr, Item>> excludes;
  p.r.mapping(section, {
                           {"ranges", [&](const Item& it) { rangesParsed = ranges(p, it); }},
                           {"ipv6", [&](const Item& it) { p.r.boolean(it, p.cfg.protect.ipv6); }},
                           {"exclude", [&](const Item& it) { exclude(p, it, excludes); }},
                           {"level",
                            [&](const Item& it) {
                              if (auto v = p.r.oneOf(it, {"require", "use"}))
                                p.cfg.protect.level = *v == "require" ? PolicyLevel::require : PolicyLevel::use;
                            }},
                           {"forward", [&](const Item& it) { p.r.boolean(it, p.cfg.protect.forward); }},
                           {"allow_underlay_overlap",
                            [&](const Item& it) { p.r.boolean(it, p.cfg.protect.allowUnderlayOverlap); }},
                       });
  // With explicit ranges every exclusion must lie inside one of them (with auto the
  // tap's range is known only at run time). Skipped when a range didn't parse, so one
  // typo doesn't cascade into a wrong complaint about every exclusion.
  if (!p.cfg.protect.autoRanges && rangesParsed && !p.cfg.protect.ranges.empty()) {
    for (const auto& entry : excludes) {
      // Not a structured binding: clang 14 (the fuzz build) can't capture those in a lambda.
      const Cidr& c = entry.first;
      const Item& it = entry.second;
      bool inside = std::any_of(p.cfg.protect.ranges.begin(), p.cfg.protect.ranges.end(),
                                [&](const Cidr& r) { return r.contains(c); });
      if (!inside) {
        std::string rs;
        for (const auto& r : p.cfg.protect.ranges) rs += (rs.empty() ? "" : ", ") + r.str();
        p.r.error(it, show(it.node.Scalar()) + " is not inside any protected range (" + rs + ")");
      } else if (std::find(p.cfg.protect.ranges.begin(), p.cfg.protect.ranges.end(), c) != p.cfg.protect.ranges.end()) {
        // Its bypass policy would have exactly the selector of the range's protect policy:
        // either the kernel refuses one of the two, or the bypass wins and nothing of the
        // range is protected.
        p.r.error(it, show(it.node.Scalar()) + " is the whole protected range " + c.str() +
                          ": its bypass policy would collide with the range's protect policy and leave nothing of "
                          "it protected; remove the range instead, or exclude only hosts or parts of it");
      }
    }
  }
  if (!p.cfg.protect.autoRanges && p.cfg.protect.ipv6 && p.r.seen("protect.ipv6"))
    p.r.warn("protect.ipv6", "has an effect only with ranges: auto; explicit IPv6 ranges are protected as listed");
}

void xfrm(Parse& p, const Item& section) {
  // Both priorities: below 2^31; a bad one skips the checks that compare them.
  auto priority = [&p](std::uint32_t& out) {
    return [&p, &out](const Item& it) {
      if (auto v = p.r.integer(it, 0, (1ULL << 31) - 1, " (XFRM priorities must be below 2^31)"))
        out = static_cast<std::uint32_t>(*v);
      else
        p.priorityValid = false;
    };
  };
  p.r.mapping(section, {
                           {"protect_priority", priority(p.cfg.xfrm.protectPriority)},
                           {"bypass_priority", priority(p.cfg.xfrm.bypassPriority)},
                       });
}

}  // namespace ipopsec::schema
