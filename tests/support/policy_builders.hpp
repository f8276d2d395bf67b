#pragma once
// Test support: a Cidr from text (cidr, or C), and the XFRM tests' policies made by hand
// (xfrm_parse_test.cpp's codec, xfrm_policy_test.cpp's kernel table): protect and bypass
// policies at the default racoon priorities unless given, and the IPv6 neighbour discovery
// bypass of fd50::/64.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/policy/cidr.hpp"
#include "core/policy/policy.hpp"

namespace ipopsec::test {

// A Cidr from text (every test's one helper for it; a bad text throws, failing the test).
inline Cidr cidr(std::string_view s) {
  auto c = Cidr::parse(s);
  if (!c) throw std::runtime_error("bad cidr in test: " + std::string(s));
  return *c;
}
inline Cidr C(std::string_view s) { return cidr(s); }

inline Policy policy(Direction d, const char* src, const char* dst, PolicyAction action, std::uint32_t priority) {
  Policy p;
  p.dir = d;
  p.sel.src = cidr(src);
  p.sel.dst = cidr(dst);
  p.action = action;
  p.priority = priority;
  return p;
}

inline Policy protect(Direction d, const char* src, const char* dst, PolicyLevel level = PolicyLevel::require,
                      std::uint32_t priority = 250000) {
  Policy p = policy(d, src, dst, PolicyAction::protect, priority);
  p.level = level;
  return p;
}

inline Policy bypass(Direction d, const char* src, const char* dst, std::uint32_t priority = 1000) {
  return policy(d, src, dst, PolicyAction::bypass, priority);
}

// fd50::/64's bypass of ICMPv6 `type` (neighbour discovery: 133..136).
inline Policy ndBypass(Direction d, std::uint8_t type, std::uint32_t priority = 1000) {
  Policy p = bypass(d, "fd50::/64", "fd50::/64", priority);
  p.sel.proto = 58;
  p.sel.hasIcmpType = true;
  p.sel.icmpType = type;
  return p;
}

}  // namespace ipopsec::test
