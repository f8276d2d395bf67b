// Encoding and decoding of XFRM policy messages (no socket, no root). States: xfrm_state_test.cpp.
#include "os/netlink/xfrm.hpp"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "support/policy_builders.hpp"
#include "unit/netlink_bytes.hpp"

namespace ipopsec {
namespace {

using namespace test;  // Bytes, message, attr, done, ... (unit/netlink_bytes.hpp)

constexpr std::uint32_t kProtect = 250000;
constexpr std::uint32_t kBypass = 1000;
const PolicyOwnership kOwned{kProtect, kBypass};

// The payload after the netlink header.
Bytes payloadOf(const Bytes& msg) { return Bytes(msg.begin() + NLMSG_HDRLEN, msg.end()); }

// A dump entry as the kernel sends it: the request encoding, retyped NEWPOLICY, multi.
Bytes dumpEntry(const Policy& p, std::uint32_t seq, std::uint32_t index = 0) {
  Bytes m = xfrm::encodePolicy(p, XFRM_MSG_NEWPOLICY, seq);
  nlmsghdr h = headerOf(m);
  h.nlmsg_flags = NLM_F_MULTI;
  std::memcpy(m.data(), &h, sizeof h);
  xfrm_userpolicy_info info{};
  std::memcpy(&info, m.data() + NLMSG_HDRLEN, sizeof info);
  info.index = index;
  std::memcpy(m.data() + NLMSG_HDRLEN, &info, sizeof info);
  return m;
}

xfrm_userpolicy_info infoOf(const Bytes& msg) {
  xfrm_userpolicy_info info{};
  std::memcpy(&info, msg.data() + NLMSG_HDRLEN, sizeof info);
  return info;
}

// Replaces the fixed part of an encoded policy message, keeping its attributes.
Bytes withInfo(Bytes msg, const xfrm_userpolicy_info& info) {
  std::memcpy(msg.data() + NLMSG_HDRLEN, &info, sizeof info);
  return msg;
}

// A policy message built by hand: info + the given attributes.
Bytes policyMessage(const xfrm_userpolicy_info& info, const Bytes& attrs, std::uint32_t seq = 0) {
  Bytes payload = bytesOf(info);
  payload.resize(NLMSG_ALIGN(payload.size()), 0);
  payload.insert(payload.end(), attrs.begin(), attrs.end());
  return message(XFRM_MSG_NEWPOLICY, NLM_F_MULTI, seq, payload);
}

Bytes hex(const std::string& s) {
  Bytes b;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) b.push_back(static_cast<std::uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
  return b;
}

// ---------------------------------------------------------------------------------------
// Encoding, compared with what iproute2 6.1 sends (captured with strace).

TEST(XfrmEncode, ProtectV4UseMatchesIproute2Bytes) {
  // ip xfrm policy add src 10.254.0.0/16 dst 10.254.0.0/16 dir out priority 250000
  //   tmpl proto esp mode transport level use
  const Bytes iproute2 = hex(
      "0afe00000000000000000000000000000afe0000000000000000000000000000"
      "000000000000000002001010000000000000000000000000ffffffffffffffff"
      "ffffffffffffffffffffffffffffffffffffffffffffffff0000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000"
      "00000000000000000000000000000000000000000000000090d0030000000000"
      "0100000000000000440005000000000000000000000000000000000000000000"
      "3200000002000000000000000000000000000000000000000000000000000100"
      "ffffffffffffffffffffffff");
  Bytes mine = xfrm::encodePolicy(protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16", PolicyLevel::use),
                                  XFRM_MSG_UPDPOLICY, 42);
  EXPECT_EQ(payloadOf(mine), iproute2);
  nlmsghdr h = headerOf(mine);
  EXPECT_EQ(h.nlmsg_len, mine.size());
  EXPECT_EQ(h.nlmsg_len, 252U);
  EXPECT_EQ(h.nlmsg_type, XFRM_MSG_UPDPOLICY);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
  EXPECT_EQ(h.nlmsg_seq, 42U);
}

TEST(XfrmEncode, ProtectV6RequireMatchesIproute2Bytes) {
  // ip xfrm policy add src fd50::/64 dst fd50::/64 dir out priority 250000 tmpl proto esp mode transport
  const Bytes iproute2 = hex(
      "fd500000000000000000000000000000fd500000000000000000000000000000"
      "00000000000000000a004040000000000000000000000000ffffffffffffffff"
      "ffffffffffffffffffffffffffffffffffffffffffffffff0000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000"
      "00000000000000000000000000000000000000000000000090d0030000000000"
      "0100000000000000440005000000000000000000000000000000000000000000"
      "320000000a000000000000000000000000000000000000000000000000000000"
      "ffffffffffffffffffffffff");
  Bytes mine = xfrm::encodePolicy(protect(Direction::out, "fd50::/64", "fd50::/64"), XFRM_MSG_NEWPOLICY, 1);
  EXPECT_EQ(payloadOf(mine), iproute2);
}

TEST(XfrmEncode, IcmpV6TypeGoesInSourcePortLikeIproute2) {
  // ip xfrm policy add src fd50::/64 dst fd50::/64 proto ipv6-icmp type 135 dir out priority 1000:
  // sport = htons(135) with sport_mask 0xffff, dport/dport_mask 0, no template.
  Bytes m = xfrm::encodePolicy(ndBypass(Direction::out, 135), XFRM_MSG_UPDPOLICY, 3);
  xfrm_userpolicy_info info = infoOf(m);
  EXPECT_EQ(info.sel.proto, 58);
  EXPECT_EQ(ntohs(info.sel.sport), 135);
  EXPECT_EQ(info.sel.sport_mask, 0xffff);
  EXPECT_EQ(info.sel.dport, 0);
  EXPECT_EQ(info.sel.dport_mask, 0);
  EXPECT_EQ(info.sel.family, AF_INET6);
  EXPECT_EQ(info.sel.prefixlen_s, 64);
  EXPECT_EQ(info.priority, kBypass);
  EXPECT_EQ(info.action, XFRM_POLICY_ALLOW);
  EXPECT_EQ(info.dir, XFRM_POLICY_OUT);
  EXPECT_EQ(m.size(), NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(xfrm_userpolicy_info)));  // no XFRMA_TMPL
}

TEST(XfrmEncode, DirectionsAndTemplateFields) {
  for (auto [d, k] : {std::pair{Direction::in, XFRM_POLICY_IN}, std::pair{Direction::out, XFRM_POLICY_OUT},
                      std::pair{Direction::fwd, XFRM_POLICY_FWD}}) {
    Bytes m = xfrm::encodePolicy(protect(d, "10.254.0.0/16", "10.254.0.0/16"), XFRM_MSG_UPDPOLICY, 1);
    EXPECT_EQ(infoOf(m).dir, k);
    xfrm_user_tmpl t{};
    std::memcpy(&t, m.data() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(xfrm_userpolicy_info)) + NLA_HDRLEN, sizeof t);
    EXPECT_EQ(t.id.proto, IPPROTO_ESP);
    EXPECT_EQ(t.mode, XFRM_MODE_TRANSPORT);
    EXPECT_EQ(t.optional, 0);
    EXPECT_EQ(t.family, AF_INET);
    EXPECT_EQ(t.aalgos, ~0U);
  }
}

TEST(XfrmEncode, PolicyIdBySelectorOrIndex) {
  Policy p = protect(Direction::in, "10.254.0.0/16", "10.254.0.0/16");
  Bytes m = xfrm::encodePolicyId(p, XFRM_MSG_DELPOLICY, 9, 0x1234);
  ASSERT_EQ(m.size(), NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(xfrm_userpolicy_id)));
  xfrm_userpolicy_id id{};
  std::memcpy(&id, m.data() + NLMSG_HDRLEN, sizeof id);
  EXPECT_EQ(id.index, 0x1234U);
  EXPECT_EQ(id.dir, XFRM_POLICY_IN);
  EXPECT_EQ(id.sel.prefixlen_d, 16);
  EXPECT_EQ(headerOf(m).nlmsg_type, XFRM_MSG_DELPOLICY);
}

TEST(XfrmEncode, ValidateRejectsMixedFamilies) {
  Policy p = protect(Direction::out, "10.254.0.0/16", "fd50::/64");
  EXPECT_NE(xfrm::validatePolicy(p), "");
  EXPECT_EQ(xfrm::validatePolicy(protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16")), "");
}

// ---------------------------------------------------------------------------------------
// Round trips.

class XfrmRoundTrip : public ::testing::TestWithParam<Policy> {};

TEST_P(XfrmRoundTrip, DecodesToTheSamePolicy) {
  const Policy& p = GetParam();
  Bytes buf = concat({dumpEntry(p, 5, 77), done(5)});
  auto r = xfrm::decodePolicyDump(buf, kOwned, 5);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.error, 0);
  EXPECT_TRUE(r.skipped.empty()) << r.skipped.front();
  ASSERT_EQ(r.policies.size(), 1U);
  EXPECT_EQ(r.policies[0], p) << r.policies[0].str() << " vs " << p.str();
  EXPECT_TRUE(r.details[0].exact);
  EXPECT_EQ(r.details[0].index, 77U);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, XfrmRoundTrip,
    ::testing::Values(protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16"),
                      protect(Direction::in, "10.254.0.0/16", "10.254.0.0/16"),
                      protect(Direction::fwd, "172.31.0.0/16", "172.31.0.0/16"),
                      protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16", PolicyLevel::use),
                      protect(Direction::in, "fd50::/64", "fd50::/64"),
                      protect(Direction::out, "fd50::/64", "fd50::/64", PolicyLevel::use),
                      protect(Direction::out, "0.0.0.0/0", "255.255.255.255/32"),
                      protect(Direction::out, "::/0", "fd50::1/128"),
                      bypass(Direction::out, "10.254.0.0/16", "10.254.9.0/24"),
                      bypass(Direction::in, "10.254.9.0/24", "10.254.0.0/16"),
                      ndBypass(Direction::out, 135), ndBypass(Direction::in, 133), ndBypass(Direction::fwd, 0),
                      ndBypass(Direction::in, 255)));

TEST(XfrmDecode, SeveralMessagesInOrderAndStaleSeqIgnored) {
  Policy a = protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16");
  Policy b = protect(Direction::in, "10.254.0.0/16", "10.254.0.0/16");
  Policy c = ndBypass(Direction::out, 136);
  Bytes buf = concat({dumpEntry(a, 9), dumpEntry(c, 8), dumpEntry(b, 9), done(9)});
  auto r = xfrm::decodePolicyDump(buf, kOwned, 9);
  ASSERT_EQ(r.policies.size(), 2U);
  EXPECT_EQ(r.policies[0], a);
  EXPECT_EQ(r.policies[1], b);
  EXPECT_TRUE(r.done);
  auto all = xfrm::decodePolicyDump(buf, kOwned, 0);  // seq 0: accept any
  EXPECT_EQ(all.policies.size(), 3U);
}

TEST(XfrmDecode, ErrorAndDoneAndInterrupted) {
  nlmsgerr e{};
  e.error = -EPERM;
  auto r = xfrm::decodePolicyDump(message(NLMSG_ERROR, 0, 1, bytesOf(e)), kOwned, 1);
  EXPECT_EQ(r.error, EPERM);
  EXPECT_TRUE(r.done);

  auto d = xfrm::decodePolicyDump(message(NLMSG_DONE, NLM_F_MULTI, 1, bytesOf(-EINTR)), kOwned, 1);
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.error, EINTR);

  Bytes entry = dumpEntry(protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16"), 1);
  nlmsghdr h = headerOf(entry);
  h.nlmsg_flags |= NLM_F_DUMP_INTR;
  std::memcpy(entry.data(), &h, sizeof h);
  auto i = xfrm::decodePolicyDump(concat({entry, done(1)}), kOwned, 1);
  EXPECT_TRUE(i.interrupted);
  EXPECT_EQ(i.policies.size(), 1U);

  auto n = xfrm::decodePolicyDump(message(XFRM_MSG_NEWSA, 0, 1, Bytes(300, 0)), kOwned, 1);
  EXPECT_TRUE(n.policies.empty());
  ASSERT_EQ(n.skipped.size(), 1U);
  EXPECT_NE(n.skipped[0].find("not XFRM_MSG_NEWPOLICY"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Shapes the daemon does not install.

TEST(XfrmDecode, BlockAtProtectPriorityIsReportedAsBypassSoItGetsReplaced) {
  Bytes m = dumpEntry(protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16"), 1);
  auto info = infoOf(m);
  info.action = XFRM_POLICY_BLOCK;
  auto r = xfrm::decodePolicyDump(withInfo(m, info), kOwned);
  ASSERT_EQ(r.policies.size(), 1U);
  EXPECT_FALSE(r.details[0].exact);
  EXPECT_NE(r.details[0].note.find("block"), std::string::npos);
  EXPECT_EQ(r.policies[0].action, PolicyAction::bypass);
  EXPECT_EQ(r.policies[0].priority, kProtect);
  EXPECT_NE(r.policies[0], protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16"));
}

TEST(XfrmDecode, BypassShapeAtProtectPriorityDiffersFromDesired) {
  Policy p = bypass(Direction::out, "10.254.0.0/16", "10.254.0.0/16");
  p.priority = kProtect;
  auto r = xfrm::decodePolicyDump(dumpEntry(p, 1), kOwned);
  ASSERT_EQ(r.policies.size(), 1U);
  EXPECT_TRUE(r.details[0].exact);
  EXPECT_EQ(r.policies[0], p);
}

TEST(XfrmDecode, TunnelTemplateIsInexact) {
  Policy want = protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16");
  xfrm_userpolicy_info info = infoOf(xfrm::encodePolicy(want, XFRM_MSG_NEWPOLICY, 0));
  xfrm_user_tmpl t{};
  t.id.proto = IPPROTO_ESP;
  t.family = AF_INET;
  t.mode = XFRM_MODE_TUNNEL;
  t.aalgos = t.ealgos = t.calgos = ~0U;
  // Owned (protect priority): reported as bypass so that it differs from `want`.
  auto r = xfrm::decodePolicyDump(policyMessage(info, attr(XFRMA_TMPL, bytesOf(t))), kOwned);
  ASSERT_EQ(r.policies.size(), 1U);
  EXPECT_FALSE(r.details[0].exact);
  EXPECT_NE(r.details[0].note.find("mode"), std::string::npos);
  EXPECT_NE(r.policies[0], want);
  // Foreign priority: decoded as close as it gets (protect).
  info.priority = 7;
  auto f = xfrm::decodePolicyDump(policyMessage(info, attr(XFRMA_TMPL, bytesOf(t))), kOwned);
  ASSERT_EQ(f.policies.size(), 1U);
  EXPECT_EQ(f.policies[0].action, PolicyAction::protect);
  EXPECT_EQ(f.policies[0].priority, 7U);
  // A reqid, AH, several templates: also inexact.
  xfrm_user_tmpl t2 = t;
  t2.mode = XFRM_MODE_TRANSPORT;
  t2.reqid = 5;
  EXPECT_FALSE(xfrm::decodePolicyDump(policyMessage(info, attr(XFRMA_TMPL, bytesOf(t2))), kOwned).details[0].exact);
  t2.reqid = 0;
  t2.id.proto = IPPROTO_AH;
  EXPECT_FALSE(xfrm::decodePolicyDump(policyMessage(info, attr(XFRMA_TMPL, bytesOf(t2))), kOwned).details[0].exact);
  t2.id.proto = IPPROTO_ESP;
  Bytes two = concat({bytesOf(t2), bytesOf(t2)});
  auto tw = xfrm::decodePolicyDump(policyMessage(info, attr(XFRMA_TMPL, two)), kOwned);
  ASSERT_EQ(tw.details.size(), 1U);
  EXPECT_FALSE(tw.details[0].exact);
  // Template at the bypass priority: exactly a protect policy at that priority.
  info.priority = kBypass;
  auto b = xfrm::decodePolicyDump(policyMessage(info, attr(XFRMA_TMPL, bytesOf(t2))), kOwned);
  ASSERT_EQ(b.policies.size(), 1U);
  EXPECT_TRUE(b.details[0].exact);
  EXPECT_EQ(b.policies[0].action, PolicyAction::protect);
}

TEST(XfrmDecode, IdentitiesPolicyCannotExpressAreSkippedWithAReason) {
  const Policy base = protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16");
  const Bytes tmpl = [&] {
    Bytes m = xfrm::encodePolicy(base, XFRM_MSG_NEWPOLICY, 0);
    return Bytes(m.begin() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(xfrm_userpolicy_info)), m.end());
  }();
  const xfrm_userpolicy_info good = infoOf(xfrm::encodePolicy(base, XFRM_MSG_NEWPOLICY, 0));

  struct Case {
    const char* name;
    xfrm_userpolicy_info info;
    Bytes extra;
    const char* reason;
  };
  std::vector<Case> cases;
  auto add = [&](const char* name, auto mutate, Bytes extra, const char* reason) {
    xfrm_userpolicy_info i = good;
    mutate(i);
    cases.push_back({name, i, std::move(extra), reason});
  };
  add("tcp port", [](auto& i) { i.sel.proto = 6; i.sel.dport = htons(22); i.sel.dport_mask = 0xffff; }, {}, "port");
  add("source port", [](auto& i) { i.sel.proto = 17; i.sel.sport = htons(53); i.sel.sport_mask = 0xffff; }, {}, "port");
  add("icmp code", [](auto& i) { i.sel.proto = 58; i.sel.dport_mask = 0xffff; }, {}, "code");
  add("ifindex", [](auto& i) { i.sel.ifindex = 3; }, {}, "interface");
  add("family", [](auto& i) { i.sel.family = AF_UNSPEC; }, {}, "neither");
  add("prefix", [](auto& i) { i.sel.prefixlen_d = 33; }, {}, "prefix");
  add("v6 prefix", [](auto& i) { i.sel.family = AF_INET6; i.sel.prefixlen_s = 129; }, {}, "prefix");
  add("v4 junk", [](auto& i) { i.sel.saddr.a6[3] = 1; }, {}, "beyond");
  add("direction", [](auto& i) { i.dir = 3; }, {}, "direction");
  xfrm_userpolicy_type sub{};
  sub.type = XFRM_POLICY_TYPE_SUB;
  add("sub", [](auto&) {}, attr(XFRMA_POLICY_TYPE, bytesOf(sub)), "sub policy");
  xfrm_mark mark{};
  mark.v = 1;
  mark.m = 0xff;
  add("mark", [](auto&) {}, attr(XFRMA_MARK, bytesOf(mark)), "mark");
  add("if_id", [](auto&) {}, attr(XFRMA_IF_ID, bytesOf(std::uint32_t{4})), "interface id");
  add("sec ctx", [](auto&) {}, attr(XFRMA_SEC_CTX, Bytes(8, 0)), "security context");
  add("bad tmpl size", [](auto&) {}, attr(XFRMA_TMPL, Bytes(10, 0)), "multiple");
  Bytes overrun = attr(XFRMA_TMPL, Bytes(8, 0));
  overrun[0] = 200;  // nla_len beyond the message
  add("overrun", [](auto&) {}, overrun, "length");
  add("short attr", [](auto&) {}, Bytes{1, 2}, "trailing");
  add("short mark", [](auto&) {}, attr(XFRMA_MARK, Bytes(4, 1)), "short");

  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes attrs = c.extra;
    const std::string name = c.name;
    if (name != "overrun" && name != "short attr" && name != "bad tmpl size") attrs = concat({tmpl, c.extra});
    auto r = xfrm::decodePolicyDump(concat({policyMessage(c.info, attrs), done(0)}), kOwned);
    EXPECT_TRUE(r.policies.empty());
    ASSERT_EQ(r.skipped.size(), 1U);
    EXPECT_NE(r.skipped[0].find(c.reason), std::string::npos) << r.skipped[0];
    EXPECT_TRUE(r.done);  // a bad entry does not stop the dump
  }
  // A mark of 0/0 is no mark at all.
  xfrm_mark none{};
  auto r = xfrm::decodePolicyDump(policyMessage(good, concat({tmpl, attr(XFRMA_MARK, bytesOf(none))})), kOwned);
  EXPECT_EQ(r.policies.size(), 1U);
}

TEST(XfrmDecode, UnknownAttributesAreIgnored) {
  Policy p = protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16");
  Bytes m = xfrm::encodePolicy(p, XFRM_MSG_NEWPOLICY, 0);
  Bytes attrs(m.begin() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(xfrm_userpolicy_info)), m.end());
  attrs = concat({attrs, attr(XFRMA_LASTUSED, Bytes(8, 0)), attr(999, Bytes(3, 7))});
  auto r = xfrm::decodePolicyDump(policyMessage(infoOf(m), attrs), kOwned);
  ASSERT_EQ(r.policies.size(), 1U);
  EXPECT_EQ(r.policies[0], p);
}

// ---------------------------------------------------------------------------------------
// Truncated and garbage input: never a crash, never a policy out of range.

void expectSane(const xfrm::DecodeResult& r) {
  EXPECT_EQ(r.policies.size(), r.details.size());
  EXPECT_LE(r.skipped.size(), xfrm::kMaxSkipped);
  EXPECT_GE(r.skippedCount, r.skipped.size());
  for (const auto& p : r.policies) {
    EXPECT_GE(p.sel.src.prefix, 0);
    EXPECT_LE(p.sel.src.prefix, p.sel.src.address.bitLength());
    EXPECT_LE(p.sel.dst.prefix, p.sel.dst.address.bitLength());
    EXPECT_EQ(p.sel.src.family(), p.sel.dst.family());
    if (!p.sel.hasIcmpType) {
      EXPECT_EQ(p.sel.icmpType, 0);
    }
  }
}

TEST(XfrmDecode, TruncatedAtEveryOffset) {
  Bytes full = concat({dumpEntry(protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16"), 3),
                       dumpEntry(ndBypass(Direction::in, 135), 3),
                       dumpEntry(protect(Direction::in, "fd50::/64", "fd50::/64", PolicyLevel::use), 3), done(3)});
  std::vector<std::size_t> boundaries{0};
  for (std::size_t off = 0; off < full.size();) {
    off += headerOf(Bytes(full.begin() + static_cast<std::ptrdiff_t>(off), full.end())).nlmsg_len;
    boundaries.push_back(off);
  }
  for (std::size_t cut = 0; cut <= full.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    // Copy into an exactly-sized buffer so that a read past the end is caught by ASan.
    Bytes part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
    auto r = xfrm::decodePolicyDump(part, kOwned, 3);
    expectSane(r);
    EXPECT_LE(r.policies.size(), 3U);
    const bool atBoundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    EXPECT_EQ(r.done, cut == full.size());
    if (!atBoundary) {
      EXPECT_EQ(r.skippedCount, 1U);
    } else {
      EXPECT_EQ(r.skippedCount, 0U);
    }
  }
}

TEST(XfrmDecode, PayloadShorterThanPolicyInfo) {
  Bytes m = dumpEntry(protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16"), 0);
  for (std::size_t len = 0; len < sizeof(xfrm_userpolicy_info); len += 7) {
    Bytes payload(m.begin() + NLMSG_HDRLEN, m.begin() + NLMSG_HDRLEN + static_cast<std::ptrdiff_t>(len));
    auto r = xfrm::decodePolicyDump(message(XFRM_MSG_NEWPOLICY, 0, 0, payload), kOwned);
    EXPECT_TRUE(r.policies.empty());
    ASSERT_EQ(r.skipped.size(), 1U);
    EXPECT_NE(r.skipped[0].find("truncated"), std::string::npos);
  }
}

TEST(XfrmDecode, FixedSeedGarbage) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int iter = 0; iter < 3000; ++iter) {
    Bytes buf(static_cast<std::size_t>(rng() % 700));
    for (auto& b : buf) b = static_cast<std::uint8_t>(byte(rng));
    if (iter % 2 == 0 && buf.size() >= NLMSG_HDRLEN) {
      // A plausible header so the decoder goes deeper than the framing check.
      nlmsghdr h{};
      h.nlmsg_len = static_cast<std::uint32_t>(buf.size() - rng() % 4);
      h.nlmsg_type = iter % 4 == 0 ? std::uint16_t{XFRM_MSG_NEWPOLICY} : static_cast<std::uint16_t>(rng() % 40);
      std::memcpy(buf.data(), &h, sizeof h);
    }
    auto r = xfrm::decodePolicyDump(buf, kOwned);
    expectSane(r);
  }
}

TEST(XfrmDecode, FixedSeedMutationsOfAValidDump) {
  const Bytes valid = concat({dumpEntry(protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16"), 0),
                              dumpEntry(ndBypass(Direction::out, 135), 0), done(0)});
  std::mt19937 rng(7);
  int decodedSome = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    Bytes buf = valid;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) buf[rng() % buf.size()] = static_cast<std::uint8_t>(rng());
    auto r = xfrm::decodePolicyDump(buf, kOwned);
    expectSane(r);
    decodedSome += r.policies.empty() ? 0 : 1;
  }
  EXPECT_GT(decodedSome, 0);  // mutations elsewhere leave decodable entries
}

TEST(XfrmDecode, SkippedReasonsAreBounded) {
  Bytes buf;
  xfrm_userpolicy_info bad = infoOf(xfrm::encodePolicy(bypass(Direction::out, "10.0.0.0/8", "10.0.0.0/8"), XFRM_MSG_NEWPOLICY, 0));
  bad.sel.family = 99;
  Bytes one = policyMessage(bad, {});
  for (std::size_t i = 0; i < xfrm::kMaxSkipped * 3; ++i) buf.insert(buf.end(), one.begin(), one.end());
  auto r = xfrm::decodePolicyDump(buf, kOwned);
  EXPECT_EQ(r.skipped.size(), xfrm::kMaxSkipped);
  EXPECT_EQ(r.skippedCount, xfrm::kMaxSkipped * 3);
}

// Decoded policies are named in diagnostics with the core's one policy-to-text.
TEST(XfrmDescribe, ReadableLine) {
  EXPECT_EQ(protect(Direction::out, "10.254.0.0/16", "10.254.0.0/16").str(),
            "out 10.254.0.0/16 -> 10.254.0.0/16 esp/transport/require prio 250000");
  EXPECT_EQ(ndBypass(Direction::in, 135).str(), "in fd50::/64 -> fd50::/64 proto 58 type 135 bypass prio 1000");
}

}  // namespace
}  // namespace ipopsec
