// rtnl::applyMessages against hand-built rtnetlink buffers: the happy paths, then truncation
// at every offset, garbage, and hostile lengths. Written to pass under ASan/UBSan: every
// buffer handed to the parser is its own exact-size heap allocation.

#include "os/netlink/line_rate_limit.hpp"
#include "os/netlink/rtnetlink_parse.hpp"
#include "support/policy_builders.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace ipopsec {
namespace {

using rtnl::applyMessages;
using Buf = std::vector<std::uint8_t>;

// Builds netlink messages byte by byte, as the kernel lays them out.
class Builder {
 public:
  Builder& begin(std::uint16_t type, std::uint16_t flags = 0, std::uint32_t seq = 0) {
    start_ = buf_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    raw(&h, sizeof h);
    return *this;
  }
  template <class T>
  Builder& body(const T& v) {
    raw(&v, sizeof v);
    pad();
    return *this;
  }
  Builder& attr(std::uint16_t type, const void* data, std::size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    raw(&a, sizeof a);
    raw(data, len);
    pad();
    return *this;
  }
  Builder& attrStr(std::uint16_t type, const std::string& s) { return attr(type, s.c_str(), s.size() + 1); }
  Builder& end() {
    auto len = static_cast<std::uint32_t>(buf_.size() - start_);
    std::memcpy(buf_.data() + start_, &len, sizeof len);  // nlmsg_len is the first field
    return *this;
  }
  Buf bytes() const { return buf_; }

 private:
  void raw(const void* p, std::size_t n) {
    auto b = static_cast<const std::uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  void pad() { buf_.resize(NLMSG_ALIGN(buf_.size()), 0); }
  Buf buf_;
  std::size_t start_ = 0;
};

Builder& newLink(Builder& b, int index, const std::string& name, unsigned flags,
                 std::uint16_t type = RTM_NEWLINK, std::uint16_t nlflags = 0) {
  ifinfomsg i{};
  i.ifi_family = AF_UNSPEC;
  i.ifi_index = index;
  i.ifi_flags = flags;
  b.begin(type, nlflags).body(i);
  if (!name.empty()) b.attrStr(IFLA_IFNAME, name);
  std::uint32_t mtu = 1500;
  b.attr(IFLA_MTU, &mtu, sizeof mtu);
  return b.end();
}

Builder& delLink(Builder& b, int index) { return newLink(b, index, "", 0, RTM_DELLINK); }

// An address message; `local` (IPv4 only) adds IFA_LOCAL next to IFA_ADDRESS as the kernel does.
Builder& addr(Builder& b, std::uint16_t type, int index, const std::string& text, int prefix,
              const std::string& peer = "") {
  auto ip = IpAddress::parse(text);
  EXPECT_TRUE(ip) << text;
  const bool v4 = ip->family == Family::v4;
  ifaddrmsg m{};
  m.ifa_family = v4 ? AF_INET : AF_INET6;
  m.ifa_prefixlen = static_cast<unsigned char>(prefix);
  m.ifa_index = static_cast<unsigned>(index);
  b.begin(type).body(m);
  const std::size_t len = v4 ? 4 : 16;
  if (!peer.empty()) {
    auto p = IpAddress::parse(peer);
    b.attr(IFA_ADDRESS, p->bytes.data(), len);
  } else {
    b.attr(IFA_ADDRESS, ip->bytes.data(), len);
  }
  if (v4 || !peer.empty()) b.attr(IFA_LOCAL, ip->bytes.data(), len);
  b.attrStr(IFA_LABEL, "x");
  return b.end();
}

Builder& done(Builder& b, int status = 0, std::uint16_t flags = NLM_F_MULTI) {
  return b.begin(NLMSG_DONE, flags).body(status).end();
}

Builder& error(Builder& b, int err) {
  nlmsgerr e{};
  e.error = err;
  return b.begin(NLMSG_ERROR).body(e).end();
}

constexpr unsigned kUp = IFF_UP;
constexpr unsigned kUpRunning = IFF_UP | IFF_RUNNING | static_cast<unsigned>(IFF_LOWER_UP);

using test::cidr;

rtnl::ParseResult applyBuf(const Buf& b, NetSnapshot& snap) {
  Buf exact(b.begin(), b.end());  // own exact-size allocation: ASan sees any over-read
  return applyMessages(std::span<const std::uint8_t>(exact.data(), exact.size()), snap);
}

// Invariants that must hold whatever the input was.
void expectSane(const NetSnapshot& snap) {
  EXPECT_LE(snap.links.size(), rtnl::kMaxLinks);
  for (const auto& [index, l] : snap.links) {
    EXPECT_GT(index, 0);
    EXPECT_EQ(index, l.index);
    EXPECT_LT(l.name.size(), static_cast<std::size_t>(IFNAMSIZ));
    EXPECT_EQ(l.name.find('\0'), std::string::npos);
    EXPECT_LE(l.addresses.size(), rtnl::kMaxAddressesPerLink);
    EXPECT_TRUE(std::is_sorted(l.addresses.begin(), l.addresses.end()));
    EXPECT_EQ(std::adjacent_find(l.addresses.begin(), l.addresses.end()), l.addresses.end());
    for (const auto& c : l.addresses) {
      EXPECT_GE(c.prefix, 0);
      EXPECT_LE(c.prefix, c.address.bitLength());
    }
  }
}

TEST(RtnetlinkParse, NewLinkAndIpv4Address) {
  Builder b;
  newLink(b, 7, "ipop", kUpRunning);
  addr(b, RTM_NEWADDR, 7, "10.254.3.7", 16);
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_TRUE(r.skipped.empty()) << r.skipped.front();
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.messages, 2U);
  const LinkState* l = snap.byName("ipop");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->index, 7);
  EXPECT_TRUE(l->up);
  EXPECT_TRUE(l->running);
  EXPECT_THAT(l->addresses, testing::ElementsAre(cidr("10.254.3.7/16")));
}

// The link going down and up again: counted, also when both messages come in one batch
// (the daemon sees one snapshot, with the tap up as before).
TEST(RtnetlinkParse, DownAndUpInOneBatchIsCountedAsComingUp) {
  Builder first;
  newLink(first, 7, "ipop", kUpRunning);
  NetSnapshot snap;
  applyBuf(first.bytes(), snap);
  ASSERT_TRUE(snap.byName("ipop"));
  EXPECT_EQ(snap.byName("ipop")->upCount, 1U);
  Builder flap;
  newLink(flap, 7, "ipop", 0);
  newLink(flap, 7, "ipop", kUpRunning);
  auto r = applyBuf(flap.bytes(), snap);
  EXPECT_TRUE(r.changed) << "same flags at the end, but the link came up again";
  EXPECT_TRUE(snap.byName("ipop")->up);
  EXPECT_EQ(snap.byName("ipop")->upCount, 2U);
  Builder same;
  newLink(same, 7, "ipop", kUpRunning);
  EXPECT_FALSE(applyBuf(same.bytes(), snap).changed);
  EXPECT_EQ(snap.byName("ipop")->upCount, 2U);
}

// "Coming up" is up WITH carrier: IFF_UP on a tap nobody holds open is not counted; the
// carrier arriving is, and so is a carrier lost and back within one batch.
TEST(RtnetlinkParse, CarrierComingBackIsCountedAsComingUp) {
  Builder first;
  newLink(first, 7, "ipop", kUp);
  NetSnapshot snap;
  applyBuf(first.bytes(), snap);
  ASSERT_TRUE(snap.byName("ipop"));
  EXPECT_EQ(snap.byName("ipop")->upCount, 0U) << "up without carrier";
  Builder carrier;
  newLink(carrier, 7, "ipop", kUpRunning);
  EXPECT_TRUE(applyBuf(carrier.bytes(), snap).changed);
  EXPECT_EQ(snap.byName("ipop")->upCount, 1U);
  Builder flap;
  newLink(flap, 7, "ipop", kUp);
  newLink(flap, 7, "ipop", kUpRunning);
  EXPECT_TRUE(applyBuf(flap.bytes(), snap).changed);
  EXPECT_EQ(snap.byName("ipop")->upCount, 2U);
}

TEST(RtnetlinkParse, UpWithoutCarrierIsNotRunning) {
  Builder b;
  newLink(b, 3, "ipop", kUp);
  NetSnapshot snap;
  applyBuf(b.bytes(), snap);
  ASSERT_TRUE(snap.byName("ipop"));
  EXPECT_TRUE(snap.byName("ipop")->up);
  EXPECT_FALSE(snap.byName("ipop")->running);

  Builder lower;  // IFF_LOWER_UP alone also counts as carrier
  newLink(lower, 3, "ipop", IFF_UP | static_cast<unsigned>(IFF_LOWER_UP));
  applyBuf(lower.bytes(), snap);
  EXPECT_TRUE(snap.byName("ipop")->running);
}

TEST(RtnetlinkParse, Ipv6Address) {
  Builder b;
  newLink(b, 4, "ipop", kUp);
  addr(b, RTM_NEWADDR, 4, "fd50::7", 64);
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_TRUE(r.skipped.empty());
  EXPECT_THAT(snap.links.at(4).addresses, testing::ElementsAre(cidr("fd50::7/64")));
}

TEST(RtnetlinkParse, LocalPreferredOverPeerAddress) {
  Builder b;
  newLink(b, 5, "ipop", kUp);
  addr(b, RTM_NEWADDR, 5, "10.254.0.1", 32, "10.254.0.2");  // point-to-point: IFA_ADDRESS = peer
  addr(b, RTM_NEWADDR, 5, "fd50::1", 128, "fd50::2");
  NetSnapshot snap;
  applyBuf(b.bytes(), snap);
  EXPECT_THAT(snap.links.at(5).addresses,
              testing::ElementsAre(cidr("10.254.0.1/32"), cidr("fd50::1/128")));
}

TEST(RtnetlinkParse, DelLinkRemovesLinkAndAddresses) {
  Builder b;
  newLink(b, 7, "ipop", kUp);
  addr(b, RTM_NEWADDR, 7, "10.254.3.7", 16);
  newLink(b, 1, "lo", kUpRunning);
  NetSnapshot snap;
  applyBuf(b.bytes(), snap);
  ASSERT_EQ(snap.links.size(), 2U);

  Builder d;
  delLink(d, 7);
  auto r = applyBuf(d.bytes(), snap);
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(snap.links.count(7), 0U);
  EXPECT_EQ(snap.byName("ipop"), nullptr);
  EXPECT_EQ(snap.links.size(), 1U);

  // Deleting again changes nothing; an address delete for the gone link creates nothing.
  Builder again;
  delLink(again, 7);
  addr(again, RTM_DELADDR, 7, "10.254.3.7", 16);
  r = applyBuf(again.bytes(), snap);
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(snap.links.size(), 1U);
}

TEST(RtnetlinkParse, RenameKeepsIndexAndAddresses) {
  Builder b;
  newLink(b, 9, "ipop", 0);
  addr(b, RTM_NEWADDR, 9, "10.254.3.7", 16);
  newLink(b, 9, "ipop2", 0);
  NetSnapshot snap;
  applyBuf(b.bytes(), snap);
  EXPECT_EQ(snap.byName("ipop"), nullptr);
  ASSERT_NE(snap.byName("ipop2"), nullptr);
  EXPECT_EQ(snap.byName("ipop2")->index, 9);
  EXPECT_THAT(snap.byName("ipop2")->addresses, testing::ElementsAre(cidr("10.254.3.7/16")));
  EXPECT_EQ(snap.links.size(), 1U);
}

TEST(RtnetlinkParse, SeveralAddressesSortedAndUnique) {
  Builder b;
  newLink(b, 2, "ipop", kUp);
  addr(b, RTM_NEWADDR, 2, "10.254.9.1", 24);
  addr(b, RTM_NEWADDR, 2, "fd50::7", 64);
  addr(b, RTM_NEWADDR, 2, "10.254.3.7", 16);
  addr(b, RTM_NEWADDR, 2, "10.254.3.7", 16);  // duplicate (e.g. dump + event)
  addr(b, RTM_NEWADDR, 2, "10.254.3.7", 24);  // same address, other prefix: a distinct entry
  NetSnapshot snap;
  applyBuf(b.bytes(), snap);
  EXPECT_THAT(snap.links.at(2).addresses,
              testing::ElementsAre(cidr("10.254.3.7/16"), cidr("10.254.3.7/24"), cidr("10.254.9.1/24"),
                                   cidr("fd50::7/64")));
}

TEST(RtnetlinkParse, DelAddrRemovesExactlyThatAddress) {
  Builder b;
  newLink(b, 2, "ipop", kUp);
  addr(b, RTM_NEWADDR, 2, "10.254.3.7", 16);
  addr(b, RTM_NEWADDR, 2, "10.254.3.8", 16);
  addr(b, RTM_NEWADDR, 2, "fd50::7", 64);
  NetSnapshot snap;
  applyBuf(b.bytes(), snap);

  Builder d;
  addr(d, RTM_DELADDR, 2, "10.254.3.7", 16);
  addr(d, RTM_DELADDR, 2, "fd50::7", 64);
  addr(d, RTM_DELADDR, 2, "10.254.3.8", 24);  // wrong prefix: not that address
  auto r = applyBuf(d.bytes(), snap);
  EXPECT_TRUE(r.changed);
  EXPECT_THAT(snap.links.at(2).addresses, testing::ElementsAre(cidr("10.254.3.8/16")));
}

TEST(RtnetlinkParse, AddressBeforeLinkMakesPlaceholder) {
  Builder a;
  addr(a, RTM_NEWADDR, 12, "10.254.3.7", 16);
  NetSnapshot snap;
  auto r = applyBuf(a.bytes(), snap);
  EXPECT_TRUE(r.skipped.empty());
  ASSERT_EQ(snap.links.count(12), 1U);
  EXPECT_EQ(snap.links.at(12).name, "");
  EXPECT_EQ(snap.links.at(12).index, 12);
  EXPECT_FALSE(snap.links.at(12).up);

  Builder l;
  newLink(l, 12, "ipop", kUp);
  applyBuf(l.bytes(), snap);
  ASSERT_NE(snap.byName("ipop"), nullptr);
  EXPECT_TRUE(snap.byName("ipop")->up);
  EXPECT_THAT(snap.byName("ipop")->addresses, testing::ElementsAre(cidr("10.254.3.7/16")));
}

TEST(RtnetlinkParse, UnchangedLinkIsNotAChange) {
  Builder b;
  newLink(b, 2, "ipop", kUp);
  NetSnapshot snap;
  EXPECT_TRUE(applyBuf(b.bytes(), snap).changed);
  EXPECT_FALSE(applyBuf(b.bytes(), snap).changed);  // e.g. an MTU or statistics update
}

TEST(RtnetlinkParse, MultiMessageDumpWithDone) {
  Builder b;
  newLink(b, 1, "lo", kUpRunning, RTM_NEWLINK, NLM_F_MULTI);
  newLink(b, 2, "ipop", kUp, RTM_NEWLINK, NLM_F_MULTI);
  newLink(b, 3, "eth0", kUpRunning, RTM_NEWLINK, NLM_F_MULTI);
  done(b);
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_TRUE(r.sawDone);
  EXPECT_FALSE(r.sawError);
  EXPECT_FALSE(r.dumpInterrupted);
  EXPECT_EQ(r.messages, 4U);
  EXPECT_EQ(snap.links.size(), 3U);
  EXPECT_TRUE(r.skipped.empty());
}

TEST(RtnetlinkParse, DumpInterruptedFlagIsReported) {
  Builder b;
  newLink(b, 1, "lo", kUpRunning, RTM_NEWLINK, NLM_F_MULTI | NLM_F_DUMP_INTR);
  done(b, 0, NLM_F_MULTI | NLM_F_DUMP_INTR);
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_TRUE(r.dumpInterrupted);
  EXPECT_TRUE(r.sawDone);
}

TEST(RtnetlinkParse, DoneCarryingAnErrorIsAnError) {
  Builder b;
  done(b, -EBUSY);
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_TRUE(r.sawDone);
  EXPECT_TRUE(r.sawError);
  EXPECT_EQ(r.errorCode, EBUSY);
}

TEST(RtnetlinkParse, NlmsgError) {
  Builder b;
  error(b, -EINVAL);
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_TRUE(r.sawError);
  EXPECT_EQ(r.errorCode, EINVAL);
  EXPECT_FALSE(r.sawDone);

  Builder ack;  // error 0 is an acknowledgement, not an error
  error(ack, 0);
  r = applyBuf(ack.bytes(), snap);
  EXPECT_FALSE(r.sawError);

  // NLMSG_ERROR without room for the code: an error whose code is unknown (EPROTO, the
  // netlink layer's one mapping), and a line saying why.
  Builder shortErr;
  shortErr.begin(NLMSG_ERROR).end();
  r = applyBuf(shortErr.bytes(), snap);
  EXPECT_TRUE(r.sawError);
  EXPECT_EQ(r.errorCode, EPROTO);
  EXPECT_EQ(r.skipped.size(), 1U);
}

// Codes the kernel never sends (INT_MIN, positive, beyond MAX_ERRNO) are EPROTO, in an
// NLMSG_ERROR and in a DONE's status alike.
TEST(RtnetlinkParse, ImpossibleErrorCodesAreProtocolErrors) {
  for (int code : {INT_MIN, 5, -5000}) {
    SCOPED_TRACE(code);
    Builder e;
    error(e, code);
    NetSnapshot snap;
    auto r = applyBuf(e.bytes(), snap);
    EXPECT_TRUE(r.sawError);
    EXPECT_EQ(r.errorCode, EPROTO);
    Builder d;
    done(d, code);
    r = applyBuf(d.bytes(), snap);
    EXPECT_TRUE(r.sawDone);
    EXPECT_TRUE(r.sawError);
    EXPECT_EQ(r.errorCode, EPROTO);
  }
}

TEST(RtnetlinkParse, OverrunIsReported) {
  Builder b;
  b.begin(NLMSG_OVERRUN).end();
  NetSnapshot snap;
  EXPECT_TRUE(applyBuf(b.bytes(), snap).overrun);
}

TEST(RtnetlinkParse, IgnoresBridgePortsOtherFamiliesAndTypes) {
  Builder b;
  newLink(b, 2, "ipop", kUp);
  // AF_BRIDGE DELLINK: the port left a bridge; the link itself still exists.
  ifinfomsg br{};
  br.ifi_family = AF_BRIDGE;
  br.ifi_index = 2;
  b.begin(RTM_DELLINK).body(br).attrStr(IFLA_IFNAME, "ipop").end();
  // An AF_PACKET "address" and a route message: not ours.
  ifaddrmsg other{};
  other.ifa_family = AF_PACKET;
  other.ifa_index = 2;
  b.begin(RTM_NEWADDR).body(other).end();
  rtmsg rt{};
  b.begin(RTM_NEWROUTE).body(rt).end();
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_TRUE(r.skipped.empty());
  ASSERT_NE(snap.byName("ipop"), nullptr);
  EXPECT_TRUE(snap.byName("ipop")->addresses.empty());
}

// --- malformed input: each skipped with a line, the rest of the buffer still applied -------

TEST(RtnetlinkParse, NameWithoutNulIsSkipped) {
  Builder b;
  ifinfomsg i{};
  i.ifi_index = 5;
  const char name[4] = {'i', 'p', 'o', 'p'};
  b.begin(RTM_NEWLINK).body(i).attr(IFLA_IFNAME, name, sizeof name).end();
  newLink(b, 6, "ok", kUp);
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  ASSERT_EQ(r.skipped.size(), 1U);
  EXPECT_THAT(r.skipped[0], testing::HasSubstr("IFLA_IFNAME"));
  EXPECT_EQ(snap.links.count(5), 0U);
  EXPECT_NE(snap.byName("ok"), nullptr);  // the next message is still applied
}

TEST(RtnetlinkParse, OverlongAndEmptyNamesAreSkipped) {
  Builder b;
  ifinfomsg i{};
  i.ifi_index = 5;
  b.begin(RTM_NEWLINK).body(i).attrStr(IFLA_IFNAME, std::string(IFNAMSIZ, 'x')).end();  // 17 bytes
  i.ifi_index = 6;
  b.begin(RTM_NEWLINK).body(i).attrStr(IFLA_IFNAME, "").end();
  i.ifi_index = 7;
  b.begin(RTM_NEWLINK).body(i).attrStr(IFLA_IFNAME, std::string(IFNAMSIZ - 1, 'y')).end();  // the max
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_EQ(r.skipped.size(), 2U);
  EXPECT_EQ(snap.links.size(), 1U);
  EXPECT_EQ(snap.links.at(7).name, std::string(IFNAMSIZ - 1, 'y'));
}

TEST(RtnetlinkParse, BadIndexIsSkipped) {
  Builder b;
  newLink(b, 0, "zero", kUp);
  newLink(b, -4, "neg", kUp);
  ifaddrmsg m{};
  m.ifa_family = AF_INET;
  m.ifa_prefixlen = 16;
  m.ifa_index = 0x80000000U;
  std::uint8_t a4[4] = {10, 254, 0, 1};
  b.begin(RTM_NEWADDR).body(m).attr(IFA_LOCAL, a4, 4).end();
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_EQ(r.skipped.size(), 3U);
  EXPECT_TRUE(snap.links.empty());
}

TEST(RtnetlinkParse, WrongAddressLengthIsSkipped) {
  Builder b;
  ifaddrmsg m{};
  m.ifa_family = AF_INET;
  m.ifa_prefixlen = 16;
  m.ifa_index = 3;
  std::uint8_t a16[16] = {0xfd, 0x50};
  b.begin(RTM_NEWADDR).body(m).attr(IFA_LOCAL, a16, 16).end();  // IPv6-sized in an IPv4 message
  m.ifa_family = AF_INET6;
  m.ifa_prefixlen = 64;
  std::uint8_t a4[4] = {10, 254, 0, 1};
  b.begin(RTM_NEWADDR).body(m).attr(IFA_ADDRESS, a4, 4).end();
  b.begin(RTM_NEWADDR).body(m).attr(IFA_ADDRESS, a16, 3).end();
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  ASSERT_EQ(r.skipped.size(), 3U);
  EXPECT_THAT(r.skipped[0], testing::HasSubstr("want 4"));
  EXPECT_THAT(r.skipped[1], testing::HasSubstr("want 16"));
  EXPECT_TRUE(snap.links.empty());
}

TEST(RtnetlinkParse, PrefixOutOfRangeIsSkipped) {
  Builder b;
  ifaddrmsg m{};
  m.ifa_family = AF_INET;
  m.ifa_prefixlen = 33;
  m.ifa_index = 3;
  std::uint8_t a4[4] = {10, 254, 0, 1};
  b.begin(RTM_NEWADDR).body(m).attr(IFA_LOCAL, a4, 4).end();
  m.ifa_family = AF_INET6;
  m.ifa_prefixlen = 129;
  std::uint8_t a16[16] = {0xfd, 0x50};
  b.begin(RTM_NEWADDR).body(m).attr(IFA_ADDRESS, a16, 16).end();
  m.ifa_prefixlen = 128;  // the edge is fine
  b.begin(RTM_NEWADDR).body(m).attr(IFA_ADDRESS, a16, 16).end();
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  ASSERT_EQ(r.skipped.size(), 2U);
  EXPECT_THAT(r.skipped[0], testing::HasSubstr("prefix length 33"));
  EXPECT_THAT(snap.links.at(3).addresses, testing::ElementsAre(cidr("fd50::/128")));
}

TEST(RtnetlinkParse, AddressWithoutAddressAttributeIsSkipped) {
  Builder b;
  ifaddrmsg m{};
  m.ifa_family = AF_INET;
  m.ifa_index = 3;
  b.begin(RTM_NEWADDR).body(m).attrStr(IFA_LABEL, "ipop").end();
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_EQ(r.skipped.size(), 1U);
  EXPECT_TRUE(snap.links.empty());
}

TEST(RtnetlinkParse, ShortFamilyHeaderIsSkipped) {
  Builder b;
  std::uint32_t four = 0;
  b.begin(RTM_NEWLINK).body(four).end();  // ifinfomsg needs 16
  std::uint16_t two = AF_INET;
  b.begin(RTM_NEWADDR).body(two).end();  // ifaddrmsg needs 8
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_EQ(r.skipped.size(), 2U);
  EXPECT_TRUE(snap.links.empty());
}

TEST(RtnetlinkParse, ZeroLengthAttributeIsSkippedWithoutLooping) {
  Builder b;
  ifinfomsg i{};
  i.ifi_index = 5;
  b.begin(RTM_NEWLINK).body(i);
  rtattr zero{};  // rta_len 0: an attribute walk that trusts it never advances
  b.body(zero).attrStr(IFLA_IFNAME, "ipop").end();
  newLink(b, 6, "next", kUp);
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  ASSERT_EQ(r.skipped.size(), 1U);
  EXPECT_THAT(r.skipped[0], testing::HasSubstr("length 0"));
  EXPECT_EQ(snap.links.count(5), 0U);
  EXPECT_NE(snap.byName("next"), nullptr);
}

TEST(RtnetlinkParse, AttributeRunningPastTheMessageIsSkipped) {
  Builder b;
  newLink(b, 5, "ipop", kUp);
  Buf buf = b.bytes();
  // The IFLA_IFNAME attribute starts right after the 16-byte header and 16-byte ifinfomsg.
  std::uint16_t huge = 200;
  std::memcpy(buf.data() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifinfomsg)), &huge, sizeof huge);
  NetSnapshot snap;
  auto r = applyBuf(buf, snap);
  ASSERT_EQ(r.skipped.size(), 1U);
  EXPECT_THAT(r.skipped[0], testing::HasSubstr("bytes remain"));
  EXPECT_TRUE(snap.links.empty());
}

TEST(RtnetlinkParse, HugeNlmsgLenStopsTheWalk) {
  Builder b;
  newLink(b, 1, "lo", kUpRunning);
  newLink(b, 2, "ipop", kUp);
  Buf buf = b.bytes();
  std::uint32_t firstLen;
  std::memcpy(&firstLen, buf.data(), sizeof firstLen);
  const std::size_t second = NLMSG_ALIGN(firstLen);
  std::uint32_t huge = 0xffffffffU;
  std::memcpy(buf.data() + second, &huge, sizeof huge);
  NetSnapshot snap;
  auto r = applyBuf(buf, snap);
  ASSERT_EQ(r.skipped.size(), 1U);
  EXPECT_THAT(r.skipped[0], testing::HasSubstr("exceeds"));
  EXPECT_EQ(snap.links.size(), 1U);  // the first message was applied

  std::uint32_t tiny = 4;  // shorter than a header
  std::memcpy(buf.data() + second, &tiny, sizeof tiny);
  NetSnapshot snap2;
  r = applyBuf(buf, snap2);
  ASSERT_EQ(r.skipped.size(), 1U);
  EXPECT_THAT(r.skipped[0], testing::HasSubstr("shorter than the header"));
  EXPECT_EQ(snap2.links.size(), 1U);
}

TEST(RtnetlinkParse, EmptyBufferIsNothing) {
  NetSnapshot snap;
  auto r = applyMessages({}, snap);
  EXPECT_TRUE(r.skipped.empty());
  EXPECT_EQ(r.messages, 0U);
  EXPECT_FALSE(r.changed);
}

TEST(RtnetlinkParse, AddressesPerLinkAreBounded) {
  Builder b;
  newLink(b, 2, "ipop", kUp);
  for (int i = 0; i < 70; ++i) addr(b, RTM_NEWADDR, 2, "10.254.1." + std::to_string(i), 16);
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_EQ(snap.links.at(2).addresses.size(), rtnl::kMaxAddressesPerLink);
  EXPECT_EQ(r.skipped.size(), 70 - rtnl::kMaxAddressesPerLink);
  // An address already present is still a no-op, not a "too many".
  Builder again;
  addr(again, RTM_NEWADDR, 2, "10.254.1.0", 16);
  EXPECT_TRUE(applyBuf(again.bytes(), snap).skipped.empty());
}

TEST(RtnetlinkParse, LinksAreBounded) {
  Builder b;
  for (int i = 1; i <= static_cast<int>(rtnl::kMaxLinks) + 10; ++i) newLink(b, i, "l" + std::to_string(i), 0);
  addr(b, RTM_NEWADDR, 999999, "10.254.0.1", 16);  // would need a new placeholder
  NetSnapshot snap;
  auto r = applyBuf(b.bytes(), snap);
  EXPECT_EQ(snap.links.size(), rtnl::kMaxLinks);
  EXPECT_EQ(r.skipped.size(), 11U);
  expectSane(snap);
}

// A realistic buffer used by the robustness loops below.
Buf sampleBuffer() {
  Builder b;
  newLink(b, 1, "lo", kUpRunning, RTM_NEWLINK, NLM_F_MULTI);
  newLink(b, 7, "ipop", kUp, RTM_NEWLINK, NLM_F_MULTI);
  addr(b, RTM_NEWADDR, 7, "10.254.3.7", 16);
  addr(b, RTM_NEWADDR, 7, "fd50::7", 64);
  addr(b, RTM_NEWADDR, 1, "10.254.0.1", 32, "10.254.0.2");
  addr(b, RTM_DELADDR, 7, "10.254.3.7", 16);
  newLink(b, 7, "ipop2", 0);
  done(b);
  return b.bytes();
}

TEST(RtnetlinkParse, TruncatedAtEveryOffset) {
  const Buf full = sampleBuffer();
  // Message boundaries: a cut exactly there is a shorter but valid buffer.
  std::vector<std::size_t> boundaries;
  for (std::size_t off = 0; off < full.size();) {
    boundaries.push_back(off);
    std::uint32_t len;
    std::memcpy(&len, full.data() + off, sizeof len);
    off += NLMSG_ALIGN(len);
  }
  NetSnapshot reference;
  ASSERT_TRUE(applyBuf(full, reference).skipped.empty());

  for (std::size_t cut = 0; cut < full.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    Buf part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
    NetSnapshot snap;
    auto r = applyBuf(part, snap);
    expectSane(snap);
    const bool atBoundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    if (atBoundary) {
      EXPECT_TRUE(r.skipped.empty());
    } else {
      EXPECT_FALSE(r.skipped.empty());
    }
    EXPECT_LE(snap.links.size(), reference.links.size());
  }
}

TEST(RtnetlinkParse, RandomGarbageNeverCrashes) {
  std::mt19937 rng(20240607);  // fixed seed: reproducible
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> length(0, 600);
  NetSnapshot accumulated;  // also feed everything into one long-lived snapshot
  for (int i = 0; i < 5000; ++i) {
    Buf buf(length(rng));
    for (auto& b : buf) b = static_cast<std::uint8_t>(byte(rng));
    NetSnapshot snap;
    applyBuf(buf, snap);
    applyBuf(buf, accumulated);
    expectSane(snap);
  }
  expectSane(accumulated);
}

TEST(RtnetlinkParse, MutatedValidMessagesNeverCrash) {
  // Garbage that gets past the header checks: a valid buffer with a few bytes flipped.
  std::mt19937 rng(7);
  const Buf full = sampleBuffer();
  std::uniform_int_distribution<std::size_t> pos(0, full.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> flips(1, 8);
  std::size_t withSkips = 0;
  NetSnapshot accumulated;
  for (int i = 0; i < 20000; ++i) {
    Buf buf = full;
    for (int f = flips(rng); f > 0; --f) buf[pos(rng)] = static_cast<std::uint8_t>(byte(rng));
    NetSnapshot snap;
    auto r = applyBuf(buf, snap);
    if (!r.skipped.empty()) ++withSkips;
    for (const auto& line : r.skipped) EXPECT_FALSE(line.empty());
    applyBuf(buf, accumulated);
    expectSane(snap);
  }
  expectSane(accumulated);
  EXPECT_GT(withSkips, 0U);  // the mutations did reach the malformed-message paths
}

// --- the rate limit on lines about skipped messages ---------------------------------------------

TEST(RtnetlinkLineRateLimit, AFloodGivesABoundedNumberOfLinesAndCountsTheRest) {
  using namespace std::chrono_literals;
  rtnl::LineRateLimit limit(10);
  const auto t0 = rtnl::LineRateLimit::Clock::time_point{} + 1h;
  // 100000 malformed messages within one second: 10 lines, the rest counted.
  int logged = 0, firstSuppressed = 0;
  for (int i = 0; i < 100000; ++i) {
    auto a = limit.admit(t0 + std::chrono::microseconds(i * 5));
    logged += a.log;
    firstSuppressed += a.firstSuppressed;
    EXPECT_EQ(a.suppressedBefore, 0U);
  }
  EXPECT_EQ(logged, 10);
  EXPECT_EQ(firstSuppressed, 1) << "one summary timer per window";
  EXPECT_EQ(limit.suppressedTotal(), 99990U);
  EXPECT_EQ(limit.windowEnd(), t0 + 1s);
  // The next window: the previous window's count comes first, then lines again.
  auto a = limit.admit(t0 + 1s);
  EXPECT_TRUE(a.log);
  EXPECT_EQ(a.suppressedBefore, 99990U);
  EXPECT_EQ(limit.takeSuppressed(), 0U) << "reported once";
  // A timer that reports at the window's end takes the count; the window roll then has none.
  for (int i = 0; i < 15; ++i) limit.admit(t0 + 1s + std::chrono::milliseconds(i));
  EXPECT_EQ(limit.takeSuppressed(), 6U);
  EXPECT_EQ(limit.admit(t0 + 2s).suppressedBefore, 0U);
  EXPECT_EQ(limit.suppressedTotal(), 99996U);
}

TEST(RtnetlinkLineRateLimit, AQuietSourceIsNeverLimited) {
  using namespace std::chrono_literals;
  rtnl::LineRateLimit limit(3);
  const auto t0 = rtnl::LineRateLimit::Clock::time_point{} + 1h;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limit.admit(t0 + i * 400ms).log) << i;
  EXPECT_EQ(limit.suppressedTotal(), 0U);
}

TEST(RtnetlinkLineRateLimit, SummaryLine) {
  EXPECT_EQ(rtnl::suppressedLine(4321, 10),
            "suppressed 4321 more malformed messages (at most 10 are logged per second; all are counted and skipped)");
  EXPECT_THAT(rtnl::suppressedLine(1, 10), ::testing::StartsWith("suppressed 1 more malformed message ("));
}

}  // namespace
}  // namespace ipopsec
