// CIDR and address math: parsing (valid and hostile text), formatting (RFC 5952),
// network/broadcast, containment and overlap within and across families.

#include "core/policy/cidr.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace ipopsec {
namespace {

using ::testing::HasSubstr;

Cidr cidr(const char* text) {
  auto c = Cidr::parse(text);
  EXPECT_TRUE(c.has_value()) << text;
  return c.value_or(Cidr{});
}

IpAddress addr(const char* text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

// --- parsing -------------------------------------------------------------------------

TEST(CidrParse, Ipv4WithPrefix) {
  auto c = cidr("172.31.0.0/16");
  EXPECT_EQ(c.family(), Family::v4);
  EXPECT_EQ(c.prefix, 16);
  EXPECT_EQ(c.address, IpAddress::v4(172, 31, 0, 0));
  EXPECT_EQ(c.str(), "172.31.0.0/16");
}

TEST(CidrParse, BareAddressIsAHostPrefix) {
  EXPECT_EQ(cidr("10.1.2.3").prefix, 32);
  EXPECT_EQ(cidr("fd00::1").prefix, 128);
  EXPECT_EQ(cidr("10.1.2.3"), Cidr::host(IpAddress::v4(10, 1, 2, 3)));
}

TEST(CidrParse, PrefixBounds) {
  EXPECT_EQ(cidr("0.0.0.0/0").prefix, 0);
  EXPECT_EQ(cidr("1.2.3.4/32").prefix, 32);
  EXPECT_EQ(cidr("::/0").prefix, 0);
  EXPECT_EQ(cidr("::1/128").prefix, 128);
}

struct Bad {
  const char* text;
  const char* why;  // a stable part of the reason
};

class CidrParseRejects : public ::testing::TestWithParam<Bad> {};

TEST_P(CidrParseRejects, WithAReason) {
  std::string why;
  auto c = Cidr::parse(GetParam().text, &why);
  EXPECT_FALSE(c.has_value()) << GetParam().text << " parsed as " << (c ? c->str() : "");
  EXPECT_THAT(why, HasSubstr(GetParam().why)) << GetParam().text;
  // Without an error pointer it must fail the same way, not crash.
  EXPECT_FALSE(Cidr::parse(GetParam().text).has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Invalid, CidrParseRejects,
    ::testing::Values(Bad{"", "empty"}, Bad{"1.2.3", "not an IPv4 or IPv6 address"},
                      Bad{"1.2.3.4/", "prefix length '' is not a number"},
                      Bad{"1.2.3.4/33", "prefix length 33 is out of range 0..32"},
                      Bad{"256.1.1.1", "'256.1.1.1' is not an IPv4 or IPv6 address"},
                      Bad{"01.2.3.4", "not an IPv4 or IPv6 address"},
                      Bad{"::1/129", "prefix length 129 is out of range 0..128"},
                      Bad{":::", "not an IPv4 or IPv6 address"}, Bad{"1::2::3", "not an IPv4 or IPv6 address"},
                      Bad{"fe80::1%eth0", "not an IPv4 or IPv6 address"},
                      Bad{"1.2.3.4/-1", "out of range"}, Bad{"1.2.3.4/ 8", "is not a number"},
                      Bad{"1.2.3.4/08", "is not a number"}, Bad{"1.2.3.4/8/9", "is not a number"},
                      Bad{"1.2.3.4/99999999999999999999", "is not a number"},
                      Bad{"1.2.3.4.5", "not an IPv4 or IPv6 address"},
                      Bad{"1.2.3.", "not an IPv4 or IPv6 address"},
                      Bad{".1.2.3", "not an IPv4 or IPv6 address"},
                      Bad{"1..2.3", "not an IPv4 or IPv6 address"},
                      Bad{" 1.2.3.4", "not an IPv4 or IPv6 address"},
                      Bad{"1.2.3.4 ", "not an IPv4 or IPv6 address"},
                      Bad{"1.2.3.1000", "not an IPv4 or IPv6 address"},
                      Bad{"0x1.2.3.4", "not an IPv4 or IPv6 address"},
                      Bad{"/8", "not an IPv4 or IPv6 address"},
                      Bad{"1:2:3:4:5:6:7", "not an IPv4 or IPv6 address"},
                      Bad{"1:2:3:4:5:6:7:8:9", "not an IPv4 or IPv6 address"},
                      Bad{"1:2:3:4:5:6:7:8::", "not an IPv4 or IPv6 address"},
                      Bad{"12345::", "not an IPv4 or IPv6 address"}, Bad{"g::1", "not an IPv4 or IPv6 address"},
                      Bad{":1::", "not an IPv4 or IPv6 address"}, Bad{"1::2:", "not an IPv4 or IPv6 address"},
                      Bad{"1.2.3.4::", "not an IPv4 or IPv6 address"},
                      Bad{"::ffff:1.2.3", "not an IPv4 or IPv6 address"},
                      Bad{"::ffff:1.2.3.4:5", "not an IPv4 or IPv6 address"}));

TEST(CidrParse, NulInsideTextIsRejected) {
  std::string text("10.0.0.0/8\0junk", 15);
  EXPECT_FALSE(Cidr::parse(text).has_value());
  std::string a("10.0.0.1\0", 9);
  EXPECT_FALSE(IpAddress::parse(a).has_value());
}

TEST(IpAddressParse, Ipv6Forms) {
  EXPECT_EQ(addr("::").str(), "::");
  EXPECT_EQ(addr("::1").bytes[15], 1);
  auto full = addr("2001:0db8:0000:0000:0000:ff00:0042:8329");
  EXPECT_EQ(full.family, Family::v6);
  EXPECT_EQ(full.bytes[0], 0x20);
  EXPECT_EQ(full.bytes[1], 0x01);
  EXPECT_EQ(full.bytes[15], 0x29);
  EXPECT_EQ(addr("2001:DB8::1"), addr("2001:db8::1"));  // case-insensitive
  auto mapped = addr("::ffff:192.0.2.1");
  EXPECT_EQ(mapped.bytes[10], 0xff);
  EXPECT_EQ(mapped.bytes[11], 0xff);
  EXPECT_EQ(mapped.bytes[12], 192);
  EXPECT_EQ(mapped.bytes[15], 1);
}

// --- RFC 5952 text --------------------------------------------------------------------

struct RoundTrip {
  const char* in;
  const char* out;
};

class Ipv6Text : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(Ipv6Text, CanonicalForm) {
  auto a = addr(GetParam().in);
  EXPECT_EQ(a.str(), GetParam().out);
  // The canonical text parses back to the same address.
  EXPECT_EQ(addr(GetParam().out), a);
}

INSTANTIATE_TEST_SUITE_P(
    Rfc5952, Ipv6Text,
    ::testing::Values(RoundTrip{"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},  // leading zeros, longest run
                      RoundTrip{"2001:DB8::1", "2001:db8::1"},                            // lower case
                      RoundTrip{"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},             // first of equal runs
                      RoundTrip{"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},          // a single 0 is not compressed
                      RoundTrip{"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},                   // the longest run wins
                      RoundTrip{"0:0:0:0:0:0:0:0", "::"}, RoundTrip{"0:0:0:0:0:0:0:1", "::1"},
                      RoundTrip{"1:0:0:0:0:0:0:0", "1::"}, RoundTrip{"fe80:0:0:0:0:0:0:1", "fe80::1"},
                      RoundTrip{"fd50:1234:0:0:0:0:0:0", "fd50:1234::"},
                      RoundTrip{"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"}));

TEST(IpAddressText, Ipv4) {
  EXPECT_EQ(IpAddress::v4(0, 0, 0, 0).str(), "0.0.0.0");
  EXPECT_EQ(IpAddress::v4(255, 255, 255, 255).str(), "255.255.255.255");
  EXPECT_EQ(cidr("10.0.0.0/8").str(), "10.0.0.0/8");
  EXPECT_EQ(cidr("fd50:1234::/64").str(), "fd50:1234::/64");
}

// --- network / broadcast / host bits -----------------------------------------------------

TEST(CidrMath, HostBits) {
  EXPECT_TRUE(cidr("172.31.0.16/16").hostBitsSet());
  EXPECT_FALSE(cidr("172.31.0.0/16").hostBitsSet());
  EXPECT_FALSE(cidr("1.2.3.4/32").hostBitsSet());
  EXPECT_TRUE(cidr("1.2.3.4/0").hostBitsSet());
  EXPECT_FALSE(cidr("0.0.0.0/0").hostBitsSet());
  EXPECT_TRUE(cidr("fd50::1/64").hostBitsSet());
  EXPECT_FALSE(cidr("fd50::1/128").hostBitsSet());
  EXPECT_TRUE(cidr("10.0.0.128/25").hostBitsSet() == false);
  EXPECT_TRUE(cidr("10.0.0.129/25").hostBitsSet());
}

TEST(CidrMath, Network) {
  EXPECT_EQ(cidr("172.31.0.16/16").network().str(), "172.31.0.0/16");
  EXPECT_EQ(cidr("1.2.3.4/0").network().str(), "0.0.0.0/0");
  EXPECT_EQ(cidr("1.2.3.4/32").network().str(), "1.2.3.4/32");
  EXPECT_EQ(cidr("10.1.2.255/23").network().str(), "10.1.2.0/23");
  EXPECT_EQ(cidr("10.1.3.255/23").network().str(), "10.1.2.0/23");
  EXPECT_EQ(cidr("fd50:1234:5678:9abc::1/48").network().str(), "fd50:1234:5678::/48");
  EXPECT_EQ(cidr("ffff::1/0").network().str(), "::/0");
  EXPECT_EQ(cidr("fd50::7/127").network().str(), "fd50::6/127");
}

TEST(CidrMath, Broadcast) {
  EXPECT_EQ(cidr("172.31.0.0/16").broadcast().str(), "172.31.255.255");
  EXPECT_EQ(cidr("0.0.0.0/0").broadcast().str(), "255.255.255.255");
  EXPECT_EQ(cidr("1.2.3.4/32").broadcast().str(), "1.2.3.4");
  EXPECT_EQ(cidr("10.0.0.0/31").broadcast().str(), "10.0.0.1");
  EXPECT_EQ(cidr("10.0.0.0/9").broadcast().str(), "10.127.255.255");
  EXPECT_EQ(cidr("fd50::/64").broadcast().str(), "fd50::ffff:ffff:ffff:ffff");
  EXPECT_EQ(cidr("::/0").broadcast().str(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(cidr("::1/128").broadcast().str(), "::1");
}

// --- contains / overlaps ------------------------------------------------------------------

TEST(CidrMath, ContainsAddress) {
  auto r = cidr("172.31.0.0/16");
  EXPECT_TRUE(r.contains(addr("172.31.0.0")));
  EXPECT_TRUE(r.contains(addr("172.31.255.255")));
  EXPECT_FALSE(r.contains(addr("172.32.0.0")));
  EXPECT_FALSE(r.contains(addr("172.30.255.255")));
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(addr("8.8.8.8")));
  EXPECT_TRUE(cidr("1.2.3.4/32").contains(addr("1.2.3.4")));
  EXPECT_FALSE(cidr("1.2.3.4/32").contains(addr("1.2.3.5")));
  EXPECT_TRUE(cidr("fd50::/64").contains(addr("fd50::abcd")));
  EXPECT_FALSE(cidr("fd50::/64").contains(addr("fd50:0:0:1::")));
}

TEST(CidrMath, ContainsNeverCrossesFamilies) {
  // ::/0 holds every IPv6 address but no IPv4 one, and the other way round; an IPv4
  // address's unused bytes being zero must not make it look like "::a.b.c.d".
  EXPECT_FALSE(cidr("::/0").contains(addr("1.2.3.4")));
  EXPECT_FALSE(cidr("0.0.0.0/0").contains(addr("::1")));
  EXPECT_FALSE(cidr("::/96").contains(cidr("0.0.0.0/0")));
  EXPECT_FALSE(cidr("0.0.0.0/0").contains(cidr("::/0")));
  EXPECT_FALSE(cidr("::/0").overlaps(cidr("0.0.0.0/0")));
  EXPECT_FALSE(cidr("0.0.0.0/0").overlaps(cidr("::/0")));
}

TEST(CidrMath, ContainsCidr) {
  EXPECT_TRUE(cidr("172.31.0.0/16").contains(cidr("172.31.5.0/24")));
  EXPECT_TRUE(cidr("172.31.0.0/16").contains(cidr("172.31.0.0/16")));
  EXPECT_FALSE(cidr("172.31.5.0/24").contains(cidr("172.31.0.0/16")));
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(cidr("10.0.0.0/8")));
  EXPECT_TRUE(cidr("172.31.0.0/16").contains(cidr("172.31.0.1")));
  EXPECT_FALSE(cidr("172.31.0.0/16").contains(cidr("172.0.0.0/8")));
}

TEST(CidrMath, Overlaps) {
  EXPECT_TRUE(cidr("172.31.0.0/16").overlaps(cidr("172.31.5.0/24")));
  EXPECT_TRUE(cidr("172.31.5.0/24").overlaps(cidr("172.31.0.0/16")));  // symmetric
  EXPECT_TRUE(cidr("10.0.0.0/8").overlaps(cidr("10.0.0.0/8")));
  EXPECT_FALSE(cidr("10.0.0.0/9").overlaps(cidr("10.128.0.0/9")));    // adjacent halves
  EXPECT_FALSE(cidr("172.31.0.0/16").overlaps(cidr("172.32.0.0/16")));
  EXPECT_TRUE(cidr("0.0.0.0/0").overlaps(cidr("255.255.255.255/32")));
  EXPECT_TRUE(cidr("fd50::/16").overlaps(cidr("fd50:1::/32")));
  EXPECT_FALSE(cidr("fd50::/64").overlaps(cidr("fd51::/64")));
}

TEST(CidrOrdering, EqualityIncludesPrefix) {
  EXPECT_NE(cidr("10.0.0.0/8"), cidr("10.0.0.0/16"));
  EXPECT_EQ(cidr("10.0.0.0/8"), cidr("10.0.0.0/8"));
  EXPECT_LT(cidr("10.0.0.0/8"), cidr("10.0.0.0/16"));
}

}  // namespace
}  // namespace ipopsec
