// ike.acquire_retry's schedule (core/reconcile/acquire_retry.hpp): the first removal after
// `first`, each next one, while ACQUIREs keep coming, twice as late up to 16x; a calm of that
// longest wait, or an IKE restart or reload, starts over.
#include "core/reconcile/acquire_retry.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

namespace ipopsec {
namespace {

using namespace std::chrono_literals;
using tp = AcquireRetry::time_point;

const tp T0 = tp{} + 1000s;

// The times of the removals (s after T0) when an ACQUIRE comes at T0 and `gap` after each
// removal (a packet every `gap`: the refusing peer still refuses), up to the first removal
// at or after `until`; nothing is armed after it.
std::vector<double> removalsUnderStorm(AcquireRetry& r, std::chrono::milliseconds gap, std::chrono::seconds until) {
  std::vector<double> at;
  r.acquired(T0);
  for (;;) {
    if (!r.at()) {
      ADD_FAILURE() << "an ACQUIRE armed no removal";
      return at;
    }
    tp now = *r.at();
    EXPECT_FALSE(r.due(now - 1ms));
    EXPECT_TRUE(r.due(now));
    at.push_back(std::chrono::duration<double>(now - T0).count());
    if (now >= T0 + until) return at;
    r.acquired(now + gap);
  }
}

TEST(AcquireRetry, OffArmsNothing) {
  AcquireRetry r(0ms);
  r.acquired(T0);
  EXPECT_FALSE(r.at());
  EXPECT_FALSE(r.due(T0 + 1h));
}

TEST(AcquireRetry, TheFirstRemovalComesAfterFirstAndOnlyOncePerArming) {
  AcquireRetry r(1s);
  r.acquired(T0);
  r.acquired(T0 + 500ms);  // a second ACQUIRE before the removal: the same removal
  ASSERT_TRUE(r.at());
  EXPECT_EQ(*r.at(), T0 + 1s);
  EXPECT_FALSE(r.due(T0 + 999ms));
  EXPECT_TRUE(r.due(T0 + 1s));
  EXPECT_FALSE(r.at());
  EXPECT_FALSE(r.due(T0 + 2s)) << "disarmed: no removal without a new ACQUIRE";
}

TEST(AcquireRetry, WhileAcquiresKeepComingEachWaitDoublesUpToSixteenTimesFirst) {
  AcquireRetry r(1s);
  auto at = removalsUnderStorm(r, 100ms, 70s);
  // Waits 1, 2, 4, 8, 16, 16, 16 ... s, each after an ACQUIRE 0.1 s after the removal before.
  std::vector<double> want{1.0, 3.1, 7.2, 15.3, 31.4, 47.5, 63.6, 79.7};
  ASSERT_EQ(at.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(at[i], want[i], 1e-9) << "removal " << i;
}

TEST(AcquireRetry, ACalmOfTheLongestWaitStartsOver) {
  AcquireRetry r(1s);
  removalsUnderStorm(r, 100ms, 10s);  // removals at 1, 3.1, 7.2, 15.3 s: the next wait is 16 s
  const tp last = T0 + 15300ms;
  EXPECT_EQ(r.nextWait(last + 15s), 16s) << "15 s of calm is not yet the longest wait";
  r.acquired(last + 16s);
  ASSERT_TRUE(r.at());
  EXPECT_EQ(*r.at(), last + 17s) << "16 s of calm: back to the first wait";
}

TEST(AcquireRetry, AnIkeRestartStartsOver) {
  AcquireRetry r(1s);
  removalsUnderStorm(r, 100ms, 5s);
  r.acquired(T0 + 20s);
  ASSERT_TRUE(r.at());
  r.restart();
  EXPECT_FALSE(r.at()) << "the restart removes the larval states itself once the IKE daemon listens";
  r.acquired(T0 + 21s);
  EXPECT_EQ(*r.at(), T0 + 22s);
}

TEST(AcquireRetry, ANewFirstWaitStartsOver) {
  AcquireRetry r(1s);
  removalsUnderStorm(r, 100ms, 5s);
  r.setFirst(250ms);
  r.acquired(T0 + 20s);
  EXPECT_EQ(*r.at(), T0 + 20250ms);
  r.setFirst(0ms);
  EXPECT_FALSE(r.at()) << "turned off: nothing stays armed";
}

}  // namespace
}  // namespace ipopsec
