#pragma once
// IP addresses and CIDR prefixes, IPv4 and IPv6. Pure value types: no OS headers.

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ipopsec {

enum class Family : std::uint8_t { v4, v6 };

struct IpAddress {
  Family family = Family::v4;
  // Network byte order. IPv4 uses bytes[0..3]; the rest stay zero.
  std::array<std::uint8_t, 16> bytes{};

  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d);
  std::string str() const;
  int bitLength() const { return family == Family::v4 ? 32 : 128; }
  int byteLength() const { return family == Family::v4 ? 4 : 16; }
  bool bit(int i) const { return (bytes[static_cast<std::size_t>(i / 8)] >> (7 - i % 8)) & 1U; }

  auto operator<=>(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress address;
  int prefix = 0;

  // Parses "a.b.c.d/n", "x::y/n" or a bare address (then /32 or /128).
  // On failure returns nullopt and, if `error` is given, says why ("prefix 33 is out of range 0..32").
  static std::optional<Cidr> parse(std::string_view text, std::string* error = nullptr);
  static Cidr host(const IpAddress& a) { return Cidr{a, a.bitLength()}; }
  // 0.0.0.0/0 or ::/0.
  static Cidr any(Family f) { return Cidr{IpAddress{f, {}}, 0}; }

  std::string str() const;            // "172.31.0.0/16"
  Family family() const { return address.family; }
  bool hostBitsSet() const;           // 172.31.0.16/16 -> true
  Cidr network() const;               // 172.31.0.16/16 -> 172.31.0.0/16
  IpAddress broadcast() const;        // highest address in the prefix
  bool contains(const IpAddress& a) const;
  bool contains(const Cidr& c) const; // c is inside *this (same family, c.prefix >= prefix)
  bool overlaps(const Cidr& c) const; // one contains the other

  auto operator<=>(const Cidr&) const = default;
};

}  // namespace ipopsec
