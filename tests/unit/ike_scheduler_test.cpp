// IkeScheduler (core/reconcile/ike_scheduler.hpp) on its own, with clock values: the quiet
// period, the minimum interval, the backoff after failures, IPOP coming up, and the cheap
// reload next to the restart. Its use by the Reconciler: reconciler_test.cpp and
// ike_reload_test.cpp.

#include "core/reconcile/ike_scheduler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace ipopsec;
using namespace std::chrono_literals;

namespace {

using TP = IkeScheduler::time_point;
TP at(std::chrono::milliseconds ms) { return TP(std::chrono::seconds(1000)) + ms; }

// --- strongSwan: reload next to restart ---------------------------------------------------
TEST(IkeSchedulerReload, OnlyTheReloadablePartChangedGivesAReloadWithoutTheMinInterval) {
  IkeScheduler s(2s, 10s);
  s.observe(true, "certs1|conf1", "certs1", at(0ms));
  ASSERT_TRUE(s.pending());
  EXPECT_EQ(s.pendingAction(), IkeAction::restart) << "nothing runs yet: the first step is a restart";
  ASSERT_TRUE(s.due(at(2000ms)));
  s.begin(at(2000ms));
  EXPECT_EQ(s.inFlightAction(), IkeAction::restart);
  s.finished(true, at(3000ms));

  // The configuration changes 1 s later: a reload, after the quiet period only (not at
  // lastStart + min_interval = 12 s).
  s.observe(true, "certs1|conf2", "certs1", at(4000ms));
  EXPECT_EQ(s.pendingAction(), IkeAction::reload);
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(6000ms));
  s.begin(at(6000ms));
  EXPECT_EQ(s.inFlightAction(), IkeAction::reload);
  s.finished(true, at(6100ms));
  EXPECT_EQ(s.startedInputs(), std::optional<std::string>("certs1|conf2"));
  EXPECT_FALSE(s.pending());
  // The same inputs again: nothing to do.
  s.observe(true, "certs1|conf2", "certs1", at(7000ms));
  EXPECT_FALSE(s.pending());
}

TEST(IkeSchedulerReload, CertificatesChangedGivesARestartWithTheMinInterval) {
  IkeScheduler s(2s, 10s);
  s.observe(true, "certs1|conf1", "certs1", at(0ms));
  s.begin(at(2000ms));
  s.finished(true, at(2500ms));
  s.observe(true, "certs2|conf1", "certs2", at(3000ms));
  EXPECT_EQ(s.pendingAction(), IkeAction::restart);
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(12000ms)) << "restarts keep their minimum interval";
}

TEST(IkeSchedulerReload, AFailedReloadIsRetriedAsARestart) {
  IkeScheduler s(2s, 10s);
  s.observe(true, "c|a", "c", at(0ms));
  s.begin(at(2000ms));
  s.finished(true, at(2100ms));
  s.observe(true, "c|b", "c", at(3000ms));
  ASSERT_EQ(s.pendingAction(), IkeAction::reload);
  s.begin(at(5000ms));
  s.finished(false, at(5100ms));  // swanctl could not reach charon: it may not run
  ASSERT_TRUE(s.pending());
  EXPECT_EQ(s.pendingAction(), IkeAction::restart);
  EXPECT_EQ(s.consecutiveFailures(), 1);
  ASSERT_TRUE(s.deadline());
  s.begin(*s.deadline());
  EXPECT_EQ(s.inFlightAction(), IkeAction::restart);
  s.finished(true, *s.deadline() + 1s);
  // Back to normal: the next configuration change is a reload again.
  s.observe(true, "c|d", "c", at(60000ms));
  EXPECT_EQ(s.pendingAction(), IkeAction::reload);
}

TEST(IkeSchedulerReload, FlappingConfigurationGivesOneReload) {
  IkeScheduler s(2s, 10s);
  s.observe(true, "c|a", "c", at(0ms));
  s.begin(at(2000ms));
  s.finished(true, at(2100ms));
  int reloads = 0;
  auto t = at(3000ms);
  for (int i = 0; i < 1000; ++i) {
    s.observe(true, i % 2 ? "c|a" : "c|b", "c", t);
    t += 1ms;
    if (s.due(t)) ++reloads;
  }
  s.observe(true, "c|b", "c", t);
  EXPECT_EQ(reloads, 0) << "the quiet period coalesces";
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), t + 2s);
  EXPECT_EQ(s.pendingAction(), IkeAction::reload);
}

// A reload for the first change after a calm spell runs at once: the quiet period is for a
// burst, and the changes right after it (the rest of the burst) wait for it again. A restart
// after a calm spell still waits (it tears down every SA).
TEST(IkeSchedulerReload, TheFirstChangeAfterACalmSpellIsReloadedAtOnceTheRestOfTheBurstWaits) {
  IkeScheduler s(2s, 10s);
  s.observe(true, "c|a", "c", at(0ms));
  s.begin(at(0ms));
  s.finished(true, at(1000ms));
  // 1.5 s after the start finished: not calm yet, the quiet period applies.
  s.observe(true, "c|b", "c", at(2500ms));
  ASSERT_EQ(s.pendingAction(), IkeAction::reload);
  EXPECT_EQ(*s.deadline(), at(4500ms));
  s.begin(at(4500ms));
  s.finished(true, at(4600ms));
  // 20 s of calm, then a change (a DHCP renewal, a range change): reloaded at once.
  s.observe(true, "c|c", "c", at(24600ms));
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(24600ms)) << "a calm spell: no quiet period";
  EXPECT_TRUE(s.due(at(24600ms)));
  // A second change of the same instant (address deleted, then added) before the timer
  // fired: still one step, at once, with the latest inputs.
  s.observe(true, "c|d", "c", at(24600ms));
  EXPECT_EQ(*s.deadline(), at(24600ms));
  s.begin(at(24600ms));
  s.finished(true, at(24700ms));
  EXPECT_EQ(s.startedInputs(), std::optional<std::string>("c|d"));
  // The burst goes on: the next change waits for the quiet period after it.
  s.observe(true, "c|e", "c", at(25000ms));
  EXPECT_EQ(*s.deadline(), at(27000ms)) << "right after a step: coalesced";
  s.observe(true, "c|f", "c", at(26000ms));
  EXPECT_EQ(*s.deadline(), at(28000ms));
  s.begin(at(28000ms));
  s.finished(true, at(28100ms));
  // A restart (certificates) after a calm spell keeps its quiet period.
  s.observe(true, "d|f", "d", at(60000ms));
  ASSERT_EQ(s.pendingAction(), IkeAction::restart);
  EXPECT_EQ(*s.deadline(), at(62000ms)) << "a restart tears SAs down: always coalesced";
}

// A DHCP move on a tap that stays up: the old address goes (one netlink event), the new one
// comes (another, tens of milliseconds later). The first is reloaded at once (calm spell);
// the second would wait the whole quiet period behind it, while the node cannot initiate in
// its range (its traffic is held). A reload that lets the node initiate somewhere new runs as
// soon as the step before it is done; a flapping address gets one such reload per quiet period.
TEST(IkeSchedulerReload, AReloadThatGivesTheNodeANewAddressRunsAtOnceOncePerQuietPeriod) {
  IkeScheduler s(2s, 10s);
  const std::vector<std::string> inA{"10.1.0.0/16=10.1.0.5"}, inB{"10.2.0.0/16=10.2.0.5"}, none{};
  s.observe(true, "c|a", "c", at(0ms), inA);
  s.begin(at(0ms));
  s.finished(true, at(500ms));
  // 20 s later the old address goes: the calm-spell reload, at once.
  s.observe(true, "c|none", "c", at(20000ms), none);
  ASSERT_EQ(*s.deadline(), at(20000ms));
  s.begin(at(20000ms));
  // The new address comes 30 ms later, while that reload runs.
  s.observe(true, "c|b", "c", at(20030ms), inB);
  EXPECT_FALSE(s.deadline()) << "never two steps at once";
  s.finished(true, at(20300ms));
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(20030ms)) << "due at once, not at 22030 ms";
  EXPECT_TRUE(s.due(at(20300ms)));
  s.begin(at(20300ms));
  s.finished(true, at(20600ms));
  EXPECT_EQ(s.startedInputs(), std::optional<std::string>("c|b"));

  // Losing an address, or a change where the node initiates already, is coalesced as before.
  s.observe(true, "c|b2", "c", at(21000ms), inB);
  EXPECT_EQ(*s.deadline(), at(23000ms)) << "nothing new to initiate from: the quiet period";
  s.observe(true, "c|none2", "c", at(21100ms), none);
  EXPECT_EQ(*s.deadline(), at(23100ms));
  // The address comes back within the quiet period of the last at-once reload (20300 ms):
  // coalesced too, so a flapping address cannot keep charon reloading.
  s.observe(true, "c|b3", "c", at(21200ms), inB);
  EXPECT_EQ(*s.deadline(), at(23200ms)) << "one at-once reload per quiet period";
  s.begin(at(23200ms));
  s.finished(true, at(23300ms));

  // Gaining a second range's address later, past the quiet period: at once again, also
  // right after another step (no calm spell needed).
  s.observe(true, "c|ab", "c", at(25000ms), {"10.2.0.0/16=10.2.0.5", "10.1.0.0/16=10.1.0.7"});
  EXPECT_EQ(*s.deadline(), at(25000ms));
  s.begin(at(25000ms));
  s.finished(false, at(25100ms));  // swanctl failed: the retry is a restart, with its backoff
  ASSERT_EQ(s.pendingAction(), IkeAction::restart);
  EXPECT_EQ(*s.deadline(), at(27100ms)) << "a failed step keeps its backoff";
}

TEST(IkeSchedulerReload, NeverWhileNotReadyAndUnknownRestartPartMeansRestart) {
  IkeScheduler s(2s, 10s);
  s.observe(false, "c|a", "c", at(0ms));
  EXPECT_FALSE(s.pending());
  // A daemon restarted while charon ran remembers the inputs but not their restart part.
  s.assumeStarted("c|a");
  s.observe(true, "c|b", "c", at(1000ms));
  EXPECT_EQ(s.pendingAction(), IkeAction::restart);
  // The racoon overload never reloads.
  IkeScheduler r(2s, 10s);
  r.observe(true, "a", at(0ms));
  r.begin(at(2000ms));
  r.finished(true, at(2100ms));
  r.observe(true, "b", at(3000ms));
  EXPECT_EQ(r.pendingAction(), IkeAction::restart);
}


// --- racoon: every change is a restart ------------------------------------------------------
TEST(IkeScheduler, NothingIsPendingWhileNotReady) {
  IkeScheduler s(2s, 10s);
  s.observe(false, "a", at(0ms));
  EXPECT_FALSE(s.pending());
  EXPECT_FALSE(s.deadline());
  EXPECT_FALSE(s.due(at(60000ms)));
}

TEST(IkeScheduler, TheFirstStartIsImmediateLaterChangesWaitForTheQuietPeriod) {
  IkeScheduler s(2s, 10s);
  s.observe(true, "a", at(0ms));
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(0ms)) << "nothing started yet: no quiet period";
  ASSERT_TRUE(s.due(at(0ms)));
  s.begin(at(0ms));
  EXPECT_TRUE(s.inFlight());
  EXPECT_FALSE(s.deadline()) << "no deadline while a restart is in flight";
  s.finished(true, at(500ms));
  EXPECT_EQ(s.startedInputs(), std::optional<std::string>("a"));
  EXPECT_EQ(s.lastStart(), std::optional<IkeScheduler::time_point>(at(0ms)));
  // A change 20 s later: after the quiet period (2 s) from the change.
  s.observe(true, "b", at(20000ms));
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(22000ms));
  EXPECT_FALSE(s.due(at(21999ms)));
  EXPECT_TRUE(s.due(at(22000ms)));
  EXPECT_EQ(s.pendingAction(), IkeAction::restart);
}

TEST(IkeScheduler, TheMinimumIntervalSeparatesTwoRestarts) {
  IkeScheduler s(2s, 10s);
  s.observe(true, "a", at(0ms));
  s.begin(at(0ms));
  s.finished(true, at(100ms));
  s.observe(true, "b", at(1000ms));
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(10000ms)) << "lastStart + min_interval, later than the quiet period's 3 s";
}

TEST(IkeScheduler, FailuresBackOffExponentiallyUpToTheMaximum) {
  IkeScheduler s(1s, 1s, 8s);
  s.observe(true, "a", at(0ms));
  auto t = at(0ms);
  std::optional<IkeScheduler::time_point> previous;
  std::vector<std::chrono::milliseconds> gaps;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(s.deadline()) << i;
    t = std::max(t, *s.deadline());
    ASSERT_TRUE(s.due(t));
    if (previous) gaps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(t - *previous));
    previous = t;
    s.begin(t);
    s.finished(false, t);
    EXPECT_EQ(s.consecutiveFailures(), i + 1);
    EXPECT_TRUE(s.pending()) << "a failed restart is retried";
  }
  for (std::size_t i = 1; i < gaps.size(); ++i) EXPECT_GE(gaps[i], gaps[i - 1]) << "the backoff never shrinks";
  EXPECT_LE(gaps.back(), 8s) << "bounded by maxBackoff";
  EXPECT_GT(gaps.back(), gaps.front()) << "it grows";
  s.begin(t + 8s);
  s.finished(true, t + 9s);
  EXPECT_EQ(s.consecutiveFailures(), 0);
  EXPECT_FALSE(s.pending());
}

TEST(IkeScheduler, IpopComingUpRestartsAtOnceEvenWithTheSameInputs) {
  IkeScheduler s(2s, 10s);
  s.observe(true, "a", at(0ms));
  s.begin(at(0ms));
  s.finished(true, at(100ms));
  s.observe(true, "a", at(30000ms));
  EXPECT_FALSE(s.pending()) << "same inputs: nothing to do";
  s.ipopCameUp();
  s.observe(true, "a", at(30000ms));
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(30000ms)) << "no quiet period after IPOP came up";
}

TEST(IkeScheduler, AssumeStartedAvoidsARestartForTheSameInputs) {
  IkeScheduler s(2s, 10s);
  s.assumeStarted("a");
  s.observe(true, "a", at(0ms));
  EXPECT_FALSE(s.pending());
  s.observe(true, "b", at(1000ms));
  EXPECT_TRUE(s.pending());
}

}  // namespace

namespace {

// A reload of ipop-ipsecd's own config that changes how the IKE daemon is controlled cuts
// the action in flight short (IkeController::reconfigure): not a failure, and a restart is
// due again at once on the new control (the minimum interval still bounds it).
TEST(IkeSchedulerCancel, ACutShortActionIsPendingAgainAsARestartWithoutCountingAFailure) {
  IkeScheduler s(2s, 10s);
  s.observe(true, "certs1|conf1", "certs1", at(0ms));
  s.begin(at(0ms));
  s.finished(true, at(500ms));
  s.observe(true, "certs1|conf2", "certs1", at(20000ms));
  ASSERT_TRUE(s.due(at(22000ms)));
  s.begin(at(22000ms));
  ASSERT_EQ(s.inFlightAction(), IkeAction::reload);
  s.cancelled();
  EXPECT_FALSE(s.inFlight());
  EXPECT_EQ(s.consecutiveFailures(), 0);
  ASSERT_TRUE(s.pending());
  EXPECT_EQ(s.pendingAction(), IkeAction::restart) << "what the IKE daemon runs with is unknown now";
  ASSERT_TRUE(s.deadline());
  EXPECT_LE(*s.deadline(), at(22000ms)) << "no quiet period: at once";
  s.begin(at(22000ms));
  s.finished(true, at(22500ms));
  EXPECT_FALSE(s.pending());
  s.cancelled();  // nothing in flight: no effect
  EXPECT_FALSE(s.pending());
}

}  // namespace
