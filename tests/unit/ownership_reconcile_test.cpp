// The Reconciler keeps the PolicyTable's PolicyOwnership true to the kernel: an earlier
// priority (a predecessor's or an earlier configuration's) stays the daemon's while one of
// its policies carries it, and stops being its own at the first full read of the kernel that
// finds none there (PolicyOwnership::forgetUnused), so that a policy another process puts
// at that priority later is not taken for the daemon's.

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/policy/ownership.hpp"
#include "reconciler_fixture.hpp"

namespace ipopsec::test {
namespace {

using Prios = std::vector<std::uint32_t>;

struct OwnershipReconcileTest : ReconcilerFixture {
  void SetUp() override {
    ReconcilerFixture::SetUp();
    auto c = cfg();
    c.protect.ranges = {C("10.50.0.0/16")};
    make(c);
    policies.setOwnership(PolicyOwnership(c.xfrm.protectPriority, c.xfrm.bypassPriority, {123456}));
    net.links[7] = link(7, "ipop", true, {"10.50.0.16/16"});
  }
  Policy at123456() {
    Policy p;
    p.dir = Direction::out;
    p.sel.src = C("10.99.0.0/16");
    p.sel.dst = C("10.99.0.0/16");
    p.action = PolicyAction::protect;
    p.priority = 123456;
    return p;
  }
};

TEST_F(OwnershipReconcileTest, AnEarlierPriorityNoPolicyCarriesIsForgottenAtTheFirstFullRead) {
  r->reconcile(net);
  EXPECT_EQ(policies.ownership().earlier(), Prios{});
  EXPECT_TRUE(hasEvent("observe", "priority 123456 no longer carries any of this daemon's policies"));
  EXPECT_TRUE(policies.ownership().owns(r->config().xfrm.protectPriority)) << "the configured pair stays";
}

TEST_F(OwnershipReconcileTest, AnEarlierPriorityStaysOwnedWhileOneOfItsPoliciesIsInTheKernel) {
  const Policy old = at123456();
  policies.installed[FakePolicyTable::keyOf(old)] = old;
  r->reconcile(net);  // read whole: 123456 carries a policy of ours (not wanted: removed)
  EXPECT_EQ(policies.ownership().earlier(), Prios{123456});
  EXPECT_EQ(policies.installed.count(FakePolicyTable::keyOf(old)), 0u) << "ours, so not wanted and removed";
  r->reconcile(net);  // the next full read finds none there
  EXPECT_EQ(policies.ownership().earlier(), Prios{});
}

TEST_F(OwnershipReconcileTest, NothingIsForgottenWhenTheKernelCannotBeRead) {
  policies.failList = std::make_error_code(std::errc::permission_denied);
  r->reconcile(net);
  EXPECT_EQ(policies.ownership().earlier(), Prios{123456});
}

}  // namespace
}  // namespace ipopsec::test
