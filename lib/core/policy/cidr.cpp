#include "core/policy/cidr.hpp"

#include <charconv>
#include <cstdio>
#include <vector>

namespace ipopsec {
namespace {

std::optional<IpAddress> parseV4(std::string_view s) {
  IpAddress a;
  a.family = Family::v4;
  int part = 0;
  std::size_t i = 0;
  while (true) {
    if (part > 3 || i >= s.size()) return std::nullopt;
    std::size_t start = i;
    unsigned value = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      value = value * 10 + static_cast<unsigned>(s[i] - '0');
      if (value > 255 || i - start >= 3) return std::nullopt;
      ++i;
    }
    if (i == start) return std::nullopt;
    if (i - start > 1 && s[start] == '0') return std::nullopt;  // no octal-looking parts
    a.bytes[static_cast<std::size_t>(part)] = static_cast<std::uint8_t>(value);
    ++part;
    if (i == s.size()) break;
    if (s[i] != '.') return std::nullopt;
    ++i;
  }
  if (part != 4) return std::nullopt;
  return a;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<IpAddress> parseV6(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::vector<std::uint16_t> head, tail;
  bool seenGap = false;
  std::size_t i = 0;
  if (s.substr(0, 2) == "::") {
    seenGap = true;
    i = 2;
    if (i == s.size()) {
      IpAddress a;
      a.family = Family::v6;
      return a;
    }
  } else if (s[0] == ':') {
    return std::nullopt;
  }
  std::optional<IpAddress> embeddedV4;
  while (i < s.size()) {
    auto& groups = seenGap ? tail : head;
    // An embedded IPv4 tail (::ffff:1.2.3.4)?
    std::size_t nextColon = s.find(':', i);
    std::string_view piece = s.substr(i, nextColon == std::string_view::npos ? s.npos : nextColon - i);
    if (piece.find('.') != std::string_view::npos) {
      if (nextColon != std::string_view::npos) return std::nullopt;
      embeddedV4 = parseV4(piece);
      if (!embeddedV4) return std::nullopt;
      groups.push_back(static_cast<std::uint16_t>(embeddedV4->bytes[0] << 8 | embeddedV4->bytes[1]));
      groups.push_back(static_cast<std::uint16_t>(embeddedV4->bytes[2] << 8 | embeddedV4->bytes[3]));
      i = s.size();
      break;
    }
    if (piece.empty() || piece.size() > 4) return std::nullopt;
    unsigned value = 0;
    for (char c : piece) {
      int h = hexValue(c);
      if (h < 0) return std::nullopt;
      value = value * 16 + static_cast<unsigned>(h);
    }
    groups.push_back(static_cast<std::uint16_t>(value));
    i += piece.size();
    if (i == s.size()) break;
    // s[i] == ':'
    if (i + 1 < s.size() && s[i + 1] == ':') {
      if (seenGap) return std::nullopt;
      seenGap = true;
      i += 2;
      if (i == s.size()) break;
    } else {
      ++i;
      if (i == s.size()) return std::nullopt;  // trailing single ':'
    }
  }
  std::size_t total = head.size() + tail.size();
  if (seenGap ? total > 7 : total != 8) return std::nullopt;
  IpAddress a;
  a.family = Family::v6;
  std::size_t g = 0;
  for (auto v : head) {
    a.bytes[2 * g] = static_cast<std::uint8_t>(v >> 8);
    a.bytes[2 * g + 1] = static_cast<std::uint8_t>(v & 0xff);
    ++g;
  }
  g = 8 - tail.size();
  for (auto v : tail) {
    a.bytes[2 * g] = static_cast<std::uint8_t>(v >> 8);
    a.bytes[2 * g + 1] = static_cast<std::uint8_t>(v & 0xff);
    ++g;
  }
  return a;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.find(':') != std::string_view::npos) return parseV6(text);
  return parseV4(text);
}

IpAddress IpAddress::v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  IpAddress r;
  r.family = Family::v4;
  r.bytes[0] = a;
  r.bytes[1] = b;
  r.bytes[2] = c;
  r.bytes[3] = d;
  return r;
}

std::string IpAddress::str() const {
  char buf[64];
  if (family == Family::v4) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes[0], bytes[1], bytes[2], bytes[3]);
    return buf;
  }
  // RFC 5952: lower case, longest run (>= 2) of zero groups compressed, first one on ties.
  std::array<unsigned, 8> g{};
  for (std::size_t i = 0; i < 8; ++i) g[i] = static_cast<unsigned>(bytes[2 * i] << 8 | bytes[2 * i + 1]);
  int bestStart = -1, bestLen = 0;
  for (int i = 0; i < 8;) {
    if (g[static_cast<std::size_t>(i)] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[static_cast<std::size_t>(j)] == 0) ++j;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == bestStart) {
      out += "::";
      i += bestLen - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buf, sizeof buf, "%x", g[static_cast<std::size_t>(i)]);
    out += buf;
  }
  return out;
}

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<Cidr> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty address");
  auto slash = text.find('/');
  auto addrText = text.substr(0, slash);
  auto addr = IpAddress::parse(addrText);
  if (!addr) return fail("'" + std::string(addrText) + "' is not an IPv4 or IPv6 address");
  Cidr c{*addr, addr->bitLength()};
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    int prefix = -1;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || (p.size() > 1 && p[0] == '0'))
      return fail("prefix length '" + std::string(p) + "' is not a number");
    if (prefix < 0 || prefix > addr->bitLength())
      return fail("prefix length " + std::to_string(prefix) + " is out of range 0.." +
                  std::to_string(addr->bitLength()));
    c.prefix = prefix;
  }
  return c;
}

std::string Cidr::str() const { return address.str() + "/" + std::to_string(prefix); }

Cidr Cidr::network() const {
  Cidr n = *this;
  for (int i = prefix; i < address.bitLength(); ++i)
    n.address.bytes[static_cast<std::size_t>(i / 8)] &= static_cast<std::uint8_t>(~(0x80U >> (i % 8)));
  return n;
}

bool Cidr::hostBitsSet() const { return network().address != address; }

IpAddress Cidr::broadcast() const {
  IpAddress b = address;
  for (int i = prefix; i < address.bitLength(); ++i)
    b.bytes[static_cast<std::size_t>(i / 8)] |= static_cast<std::uint8_t>(0x80U >> (i % 8));
  return b;
}

bool Cidr::contains(const IpAddress& a) const {
  if (a.family != address.family) return false;
  for (int i = 0; i < prefix; ++i)
    if (a.bit(i) != address.bit(i)) return false;
  return true;
}

bool Cidr::contains(const Cidr& c) const {
  return c.family() == family() && c.prefix >= prefix && contains(c.address);
}

bool Cidr::overlaps(const Cidr& c) const { return contains(c) || c.contains(*this); }

}  // namespace ipopsec
