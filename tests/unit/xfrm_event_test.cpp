// The XFRMNLGRP_POLICY walker: the daemon's own changes are told apart from others' by the
// port id the kernel stamps on each notification; malformed input stops the walk; others'
// changes of policies that do not concern the daemon (an IKE daemon's) are left out.

#include <linux/netlink.h>
#include <linux/xfrm.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "os/netlink/netlink.hpp"
#include "os/netlink/xfrm_codec.hpp"
#include "os/netlink/xfrm_watch.hpp"

using namespace ipopsec;

namespace {

void put(std::vector<std::uint8_t>& buf, std::uint16_t type, std::uint32_t pid, std::size_t payload = 8) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(payload));
  h.nlmsg_type = type;
  h.nlmsg_pid = pid;
  std::size_t off = buf.size();
  buf.resize(off + NLMSG_ALIGN(h.nlmsg_len));
  std::memcpy(buf.data() + off, &h, sizeof h);
}

TEST(XfrmPolicyEvents, OwnChangesAreNotForeignAndTheFirstForeignIsNamed) {
  std::vector<std::uint8_t> buf;
  put(buf, XFRM_MSG_UPDPOLICY, 4242);   // the daemon's own install
  put(buf, XFRM_MSG_DELPOLICY, 4242);   // its own make-before-break removal
  put(buf, XFRM_MSG_FLUSHPOLICY, 0);    // `ip xfrm policy flush` (another socket)
  put(buf, XFRM_MSG_DELPOLICY, 977);    // another process
  put(buf, XFRM_MSG_NEWSA, 977);        // not a policy event
  xfrm::PolicyEvents e;
  xfrm::countPolicyEvents(buf, 4242, e);
  EXPECT_EQ(e.own, 2u);
  EXPECT_EQ(e.foreign, 2u);
  EXPECT_EQ(e.firstForeign, "flush");
  EXPECT_EQ(e.malformed, 0u);
}

TEST(XfrmPolicyEvents, AcquiresAreCountedApartAndNeverAPolicyChange) {
  std::vector<std::uint8_t> buf;
  put(buf, XFRM_MSG_ACQUIRE, 0);
  put(buf, XFRM_MSG_ACQUIRE, 0);
  put(buf, XFRM_MSG_UPDPOLICY, 4242);
  xfrm::PolicyEvents e;
  xfrm::countPolicyEvents(buf, 4242, e);
  EXPECT_EQ(e.acquires, 2u);
  EXPECT_EQ(e.foreign, 0u) << "an ACQUIRE changes no policy: nothing to reconcile";
  EXPECT_EQ(e.own, 1u);
}

TEST(XfrmPolicyEvents, KernelExpiryIsForeignEvenWithAMatchingPortId) {
  std::vector<std::uint8_t> buf;
  put(buf, XFRM_MSG_POLEXPIRE, 4242);
  xfrm::PolicyEvents e;
  xfrm::countPolicyEvents(buf, 4242, e);
  EXPECT_EQ(e.foreign, 1u);
  EXPECT_EQ(e.firstForeign, "expire");
}

TEST(XfrmPolicyEvents, ATruncatedMessageStopsTheWalk) {
  std::vector<std::uint8_t> buf;
  put(buf, XFRM_MSG_DELPOLICY, 1);
  put(buf, XFRM_MSG_DELPOLICY, 1);
  std::uint32_t bad = 4096;  // longer than what follows
  std::memcpy(buf.data() + NLMSG_ALIGN(NLMSG_LENGTH(8)), &bad, sizeof bad);
  xfrm::PolicyEvents e;
  xfrm::countPolicyEvents(buf, 9, e);
  EXPECT_EQ(e.foreign, 1u);
  EXPECT_EQ(e.malformed, 1u);
}

Policy pol(Direction d, const char* src, const char* dst, std::uint32_t prio) {
  Policy p;
  p.dir = d;
  p.sel.src = *Cidr::parse(src);
  p.sel.dst = *Cidr::parse(dst);
  p.action = PolicyAction::protect;
  p.priority = prio;
  return p;
}

// A notification as the kernel sends it, with another process's port id.
void putEvent(std::vector<std::uint8_t>& buf, std::uint16_t type, const Policy& p) {
  std::vector<std::uint8_t> m;
  if (type == XFRM_MSG_DELPOLICY) {
    // xfrm_userpolicy_id, then the whole policy in XFRMA_POLICY.
    auto info = xfrm::encodePolicy(p, XFRM_MSG_NEWPOLICY, 0);
    xfrm_userpolicy_id id{};
    id.dir = static_cast<std::uint8_t>(p.dir == Direction::in ? XFRM_POLICY_IN : XFRM_POLICY_OUT);
    m = netlink::MessageBuilder(XFRM_MSG_DELPOLICY, 0)
            .put(id)
            .attr(XFRMA_POLICY, info.data() + NLMSG_HDRLEN, sizeof(xfrm_userpolicy_info))
            .finish();
  } else {
    m = xfrm::encodePolicy(p, type, 0);
  }
  std::uint32_t pid = 977;
  std::memcpy(m.data() + offsetof(nlmsghdr, nlmsg_pid), &pid, sizeof pid);
  buf.insert(buf.end(), m.begin(), m.end());
  buf.resize(NLMSG_ALIGN(buf.size()), 0);
}

TEST(XfrmPolicyEvents, OthersChangesOfPoliciesThatDoNotConcernTheDaemonAreLeftOut) {
  const Policy ours = pol(Direction::out, "10.254.0.0/16", "10.254.0.0/16", 500000);
  std::vector<Policy> asked;
  xfrm::PolicyConcerns concerns = [&](const Policy& p) {
    asked.push_back(p);
    return p.priority == ours.priority || (p.dir == ours.dir && p.sel == ours.sel);
  };
  // charon at work: an SA's policies and its trap, added and removed.
  std::vector<std::uint8_t> buf;
  putEvent(buf, XFRM_MSG_UPDPOLICY, pol(Direction::out, "10.254.0.11/32", "10.254.0.12/32", 2400));
  putEvent(buf, XFRM_MSG_NEWPOLICY, pol(Direction::in, "10.254.0.12/32", "10.254.0.11/32", 2400));
  putEvent(buf, XFRM_MSG_DELPOLICY, pol(Direction::out, "10.254.0.11/32", "10.254.0.0/16", 2900));
  xfrm::PolicyEvents e;
  xfrm::countPolicyEvents(buf, 4242, e, concerns);
  EXPECT_EQ(e.foreign, 0u);
  EXPECT_EQ(e.unrelated, 3u);
  ASSERT_EQ(asked.size(), 3u) << "each change's policy was read and asked about";
  EXPECT_EQ(asked[0].sel.dst, *Cidr::parse("10.254.0.12/32"));
  EXPECT_EQ(asked[1].dir, Direction::in);
  EXPECT_EQ(asked[2].priority, 2900u) << "a deletion's policy comes from its XFRMA_POLICY";
  EXPECT_EQ(asked[2].sel.dst, *Cidr::parse("10.254.0.0/16"));

  // What does concern it: its own policy deleted by someone else, a policy with its id (any
  // priority: the kernel's id ignores it, so that add replaced the daemon's), a flush, and a
  // change whose policy cannot be read.
  for (auto [type, p] : {std::pair{XFRM_MSG_DELPOLICY, ours},
                         std::pair{XFRM_MSG_UPDPOLICY, pol(Direction::out, "10.254.0.0/16", "10.254.0.0/16", 7)}}) {
    std::vector<std::uint8_t> one;
    putEvent(one, type, p);
    xfrm::PolicyEvents f;
    xfrm::countPolicyEvents(one, 4242, f, concerns);
    EXPECT_EQ(f.foreign, 1u) << type;
  }
  std::vector<std::uint8_t> other;
  put(other, XFRM_MSG_FLUSHPOLICY, 0);
  put(other, XFRM_MSG_DELPOLICY, 977, 8);  // too short for a policy id: can't be told, so it counts
  asked.clear();
  xfrm::PolicyEvents g;
  xfrm::countPolicyEvents(other, 4242, g, concerns);
  EXPECT_EQ(g.foreign, 2u);
  EXPECT_EQ(g.firstForeign, "flush");
  EXPECT_TRUE(asked.empty()) << "neither has a policy to ask about";
}

}  // namespace
