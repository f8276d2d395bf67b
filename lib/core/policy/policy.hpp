#pragma once
// The kernel security policies the daemon wants, as plain data (strongSwan's
// kernel_ipsec.h style: a policy id is dir + selector). Pure: no OS headers.

#include <compare>
#include <tuple>
#include <cstdint>
#include <string>
#include <vector>

#include "core/policy/cidr.hpp"
#include "core/config/config.hpp"

namespace ipopsec {

enum class Direction : std::uint8_t { in, out, fwd };
enum class PolicyAction : std::uint8_t { protect, bypass };

struct Selector {
  Cidr src;
  Cidr dst;
  std::uint8_t proto = 0;      // 0 = any; 58 = ICMPv6
  // For ICMP/ICMPv6 selectors the kernel keeps the type in the source port and the
  // code in the destination port. Only used when hasIcmpType.
  bool hasIcmpType = false;
  std::uint8_t icmpType = 0;

  auto operator<=>(const Selector&) const = default;
};

struct Policy {
  Direction dir = Direction::out;
  Selector sel;
  PolicyAction action = PolicyAction::protect;
  PolicyLevel level = PolicyLevel::require;  // protect: ESP transport required, or used when available
  std::uint32_t priority = 0;                // kernel priority, lower wins

  // Identity in the kernel: direction + selector (a second add with the same id replaces).
  auto key() const { return std::tie(dir, sel); }
  auto operator<=>(const Policy&) const = default;

  std::string str() const;  // "out 172.31.0.0/16 -> 172.31.0.0/16 esp/transport/require prio 250000"
};

const char* toString(Direction d);

// The policies for these ranges under this config: out/in (and fwd) ESP transport per
// range, bypass policies for exclusions and (IPv6) neighbour discovery. Sorted.
std::vector<Policy> buildPolicies(const std::vector<Cidr>& ranges, const Config& cfg);

struct PolicyDiff {
  std::vector<Policy> add;     // new ids, or ids whose attributes changed (update in place)
  std::vector<Policy> remove;  // ids no longer wanted
  bool empty() const { return add.empty() && remove.empty(); }
};

// What to do to go from `current` (the owned policies in the kernel) to `desired`.
// Apply `add` first, then `remove` (make-before-break).
PolicyDiff diffPolicies(const std::vector<Policy>& current, const std::vector<Policy>& desired);

}  // namespace ipopsec
