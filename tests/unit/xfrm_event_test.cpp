// The XFRMNLGRP_POLICY walker: the daemon's own changes are told apart from others' by the
// port id the kernel stamps on each notification; malformed input stops the walk.

#include <linux/netlink.h>
#include <linux/xfrm.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "os/xfrm_watch.hpp"

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

}  // namespace
