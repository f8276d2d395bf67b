// Issue 24, "no reaction waits behind the disk": the policy step of every change comes
// before the file step of any earlier one, and a burst of changes writes the files once,
// for its last state. On the Reconciler (reconcilePolicies / reconcileFiles) and on the
// daemon's wiring, in virtual time (FakeClock): the file step waits for a calm spell of the
// events (Daemon::kFileStepCalm), at most Daemon::kFileStepLongestWait after the first one,
// and drains the link monitor first.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/reconcile/reconciler.hpp"
#include "daemon/daemon.hpp"
#include "daemon_fakes.hpp"
#include "fakes.hpp"
#include "os/clock.hpp"
#include "reconciler_fixture.hpp"

namespace ipopsec::test {
namespace {

// How many times each path was written, among `written`.
std::map<std::string, int> countWrites(const std::vector<std::string>& written) {
  std::map<std::string, int> n;
  for (const auto& p : written) ++n[p];
  return n;
}

bool holdsOut(const FakePolicyTable& t, const char* range) {
  for (const auto& p : t.all())
    if (p.dir == Direction::out && p.action == PolicyAction::protect && p.sel.dst == C(range)) return true;
  return false;
}

struct ReactionOrderTest : ReconcilerFixture {};

TEST_F(ReactionOrderTest, PolicyStepWritesNoFileAndTheFileStepFollowsTheLastState) {
  make(cfg());
  r->reconcile(net);
  const int before = files.writes;
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcilePolicies(net);
  EXPECT_TRUE(holdsOut(policies, "172.31.0.0/16")) << "change 1's policies at once";
  EXPECT_EQ(files.writes, before) << "the policy step writes no file";
  EXPECT_TRUE(r->filesPending());
  EXPECT_FALSE(r->deadline()) << "no IKE start is scheduled before the files are written";
  net.links[7] = link(7, "ipop", true, {"172.30.0.16/16"});
  r->reconcilePolicies(net);
  EXPECT_TRUE(holdsOut(policies, "172.30.0.0/16")) << "change 2's policies before change 1's files";
  EXPECT_FALSE(holdsOut(policies, "172.31.0.0/16")) << "the range the tap left goes (make before break)";
  EXPECT_EQ(files.writes, before) << "still no file written";
  EXPECT_EQ(r->status().protectedRanges, std::vector<Cidr>{C("172.30.0.0/16")}) << "status says what the kernel holds";
  r->reconcileFiles();
  EXPECT_FALSE(r->filesPending());
  EXPECT_EQ(files.files["/run/ipop-ipsec/ipop-up"], "172.30.0.16\n") << "the flag for the last state";
  EXPECT_NE(files.files["/etc/ipsec-tools.conf"].find("172.30.0.0/16"), std::string::npos);
  EXPECT_EQ(files.files["/etc/ipsec-tools.conf"].find("172.31.0.0/16"), std::string::npos)
      << "change 1's files were never written";
  for (const auto& [path, n] : countWrites({files.written.begin() + before, files.written.end()}))
    EXPECT_EQ(n, 1) << path << " written once for the burst";
  ASSERT_TRUE(r->deadline()) << "now the IKE daemon may start, on files written for this state";
  r->onTimer(net);
  EXPECT_EQ(unit.restarts, 1);
  const int after = files.writes;
  r->reconcileFiles();
  EXPECT_EQ(files.writes, after) << "a file step with nothing pending does nothing";
}

// The daemon: N address changes back to back (each its own rtnetlink batch) have their
// policies applied at once, one after the other; the files are written once, after the last.
struct DaemonReactionTest : ::testing::Test, FakePortPointers {
  void SetUp() override {
    configFiles[kTestConfigPath] = daemonTestConfig();
    FakeDaemonPorts f(configFiles);
    pointers() = f;  // the clock is virtual time: only what the events and the test do
    daemon = std::make_unique<Daemon>(io, kTestConfigPath, parseConfig(configFiles[kTestConfigPath], kTestConfigPath),
                                      std::move(f.ports));
    ASSERT_EQ(daemon->start(), 0);
    // Each write notes how many policy changes the kernel had taken by then.
    files->onWrite = [this](const std::string& path) { writes.emplace_back(path, policies->log.size()); };
  }
  void TearDown() override { daemon.reset(); }
  NetSnapshot withTap(const std::string& address) {
    NetSnapshot n = links->net;
    n.links[7] = link(7, "ipop", true, {address.c_str()});
    return n;
  }
  // Runs what the io_context has ready (posted handlers), without waiting for timers.
  void runReady() {
    io.restart();
    io.poll();
  }

  std::map<std::string, std::string> configFiles;  // the config file, in memory
  boost::asio::io_context io;
  std::unique_ptr<Daemon> daemon;
  std::vector<std::pair<std::string, std::size_t>> writes;
};

TEST_F(DaemonReactionTest, BackToBackChangesApplyEveryPolicyStepBeforeAnyFileAndWriteEachFileOnce) {
  const int n = 5;
  for (int i = 0; i < n; ++i) {
    links->net = withTap("172.2" + std::to_string(i) + ".0.16/16");
    links->change();  // one rtnetlink batch each, handled before the io_context runs anything posted
    EXPECT_TRUE(holdsOut(*policies, ("172.2" + std::to_string(i) + ".0.0/16").c_str())) << "change " << i << " at once";
  }
  EXPECT_TRUE(writes.empty()) << "no file written while events are pending (first: "
                              << (writes.empty() ? "" : writes.front().first) << ")";
  EXPECT_EQ(ike->restarts, 0) << "nothing started before the files";
  const std::size_t policyChanges = policies->log.size();
  runReady();
  EXPECT_TRUE(writes.empty()) << "the file step waits for the calm spell, not only for the handlers";
  clock->advance(Daemon::kFileStepCalm);
  runReady();
  ASSERT_FALSE(writes.empty()) << "the file step ran once the events were calm for kFileStepCalm";
  for (const auto& [path, seen] : writes)
    EXPECT_EQ(seen, policyChanges) << path << " was written before a policy change of the burst";
  std::vector<std::string> burst;
  for (const auto& w : writes) burst.push_back(w.first);
  for (const auto& [path, count] : countWrites(burst))
    if (path.find("state.json") == std::string::npos) {
      EXPECT_EQ(count, 1) << path << " written once for " << n << " changes";
    }
  EXPECT_EQ(files->files[kTestStateDir + "/ipop-up"], "172.24.0.16\n") << "for the last state";
  EXPECT_NE(files->files["/etc/ipsec-tools.conf"].find("172.24.0.0/16"), std::string::npos);
  EXPECT_EQ(files->files["/etc/ipsec-tools.conf"].find("172.20.0.0/16"), std::string::npos)
      << "the first change's files were never written";
}

// A batch the kernel queued while the daemon handled the first one: the file step drains it
// first, so change 2's policies go in before change 1's files would have been written, and
// only change 2's files are.
TEST_F(DaemonReactionTest, TheFileStepDrainsAQueuedBatchFirst) {
  links->net = withTap("172.21.0.16/16");
  links->change();
  ASSERT_TRUE(holdsOut(*policies, "172.21.0.0/16"));
  links->queue(withTap("172.22.0.16/16"));
  const int drainsBefore = links->drains;
  clock->advance(Daemon::kFileStepCalm);
  runReady();
  EXPECT_GT(links->drains, drainsBefore) << "the file step asked the link monitor for what is queued";
  EXPECT_TRUE(holdsOut(*policies, "172.22.0.0/16"));
  ASSERT_FALSE(writes.empty());
  for (const auto& [path, seen] : writes)
    EXPECT_EQ(seen, policies->log.size()) << path << " was written before change 2's policies";
  EXPECT_EQ(files->files[kTestStateDir + "/ipop-up"], "172.22.0.16\n");
  EXPECT_EQ(files->files["/etc/ipsec-tools.conf"].find("172.21.0.0/16"), std::string::npos)
      << "change 1's files were never written";
}

// Changes closer together than the calm spell: no file step between them (the next change
// never waits behind a file step of the previous one); the first calm spell writes the files
// once, for the last state.
TEST_F(DaemonReactionTest, ChangesCloserThanTheCalmSpellWaitForNoFileStep) {
  const auto gap = Daemon::kFileStepCalm - std::chrono::milliseconds(1);
  for (int i = 0; i < 8; ++i) {
    links->net = withTap("172.2" + std::to_string(i) + ".0.16/16");
    links->change();
    EXPECT_TRUE(holdsOut(*policies, ("172.2" + std::to_string(i) + ".0.0/16").c_str())) << "change " << i << " at once";
    clock->advance(gap);
    runReady();
    EXPECT_TRUE(writes.empty()) << "a file step ran " << gap.count() << " ms after change " << i
                                << ", before the events were calm (first write: "
                                << (writes.empty() ? "" : writes.front().first) << ")";
  }
  clock->advance(std::chrono::milliseconds(1));
  runReady();
  ASSERT_FALSE(writes.empty()) << "no file step kFileStepCalm after the last change";
  EXPECT_EQ(files->files[kTestStateDir + "/ipop-up"], "172.27.0.16\n") << "for the last state";
  const auto first = writes.size();
  clock->advance(Daemon::kFileStepLongestWait * 2);
  runReady();
  EXPECT_EQ(writes.size(), first) << "one file step for the burst: nothing pending after it";
  EXPECT_FALSE(clock->nextTimer() && *clock->nextTimer() <= clock->now()) << "no timer left due";
}

// A storm (a change every kFileStepCalm - 1 ms, never calm) cannot hold back the files and
// the IKE daemon: the file step runs kFileStepLongestWait after the first change at the
// latest, for the state of the moment, while the storm goes on.
TEST_F(DaemonReactionTest, AStormCannotHoldTheFileStepBackLongerThanTheLongestWait) {
  const auto gap = Daemon::kFileStepCalm - std::chrono::milliseconds(1);
  ASSERT_GT(gap.count(), 0);
  const auto start = clock->now();
  std::optional<std::chrono::steady_clock::duration> firstWrite;
  for (int i = 0; !firstWrite && clock->now() - start <= Daemon::kFileStepLongestWait + gap; ++i) {
    const std::string addr = "172." + std::to_string(20 + i % 2) + ".0.16/16";
    links->net = withTap(addr);
    links->change();
    clock->advance(gap);
    runReady();
    if (!writes.empty()) firstWrite = clock->now() - start;
  }
  ASSERT_TRUE(firstWrite) << "the storm held the file step back for more than kFileStepLongestWait";
  EXPECT_LE(*firstWrite, Daemon::kFileStepLongestWait + gap);
  EXPECT_GE(*firstWrite, Daemon::kFileStepLongestWait) << "the file step ran before the longest wait, in a storm";
  for (const auto& [path, seen] : writes)
    EXPECT_EQ(seen, policies->log.size()) << path << " was written before a policy change already received";
}

}  // namespace
}  // namespace ipopsec::test
