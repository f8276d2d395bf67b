// Fault injection: SIGKILL at random points of a reconcile. The tap's address moves between
// two ranges; 0..5 ms later (a random point: the daemon is reading netlink, installing,
// removing, writing files or restarting the IKE daemon) the daemon is killed, then started
// again. Many iterations (IPOPSEC_FAULT_ITERATIONS, default 120).
// Expected at every kill: each rendered file is complete (exactly what
// `ipop-ipsecd render` gives for one of the two addresses: never torn, never empty), the
// state file parses. After every restart: the final state is exact (owned policies ==
// the desired ones, files == render for the current address). Throughout, sampled from a
// thread: never a moment without a protect policy in the SPD.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "daemon/state_file.hpp"
#include "integration/fault_fixture.hpp"
#include "integration/spd_sampler.hpp"
#include "os/files/file_store.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct Rendered {
  std::string racoon, spd;
  std::vector<std::string> policies;  // Policy::str(), sorted
};

class FaultSigkillTest : public FaultFixture {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();
    prepare("fault-sigkill", {"etc", "renderA", "renderB"}, {"10.254.0.16", "10.77.0.16"});
    logTail_ = 4000;
    writeRestartScript();
    std::ofstream(dir_ / "ipop-ipsecd.yaml")
        << "ipop:\n  interface: ipop\nprotect:\n  ranges: auto\n  exclude: [10.254.0.1, 10.77.0.1]\n"
        << "ike:\n  control: command\n  restart_command: [\"" << (dir_ / "restart.sh").string() << "\"]\n"
        << "  quiet_period: 20ms\n  min_interval: 50ms\n"
        << "racoon:\n  config: " << (dir_ / "etc" / "racoon.conf").string()
        << "\n  spd_file: " << (dir_ / "etc" / "ipsec-tools.conf").string()
        << "\n  certificate_dir: " << (dir_ / "certs").string() << "\n"
        << "daemon:\n  state_dir: " << (dir_ / "run").string() << "\n  remember_dir: " << (dir_ / "lib").string() << "\n  log_level: info\n";
    sh("ip link add eth0 type veth peer name lan0 && ip addr add 192.168.1.5/24 dev eth0 && ip link set eth0 up");
    sh("ip tuntap add dev ipop mode tap && ip link set ipop up");
    carrier_ = TapCarrier("ipop");  // IPOP's controller holds the tap open: carrier
  }
  Rendered render(const std::string& address, const fs::path& out) {
    sh(std::string(IPOPSEC_BINARY) + " render --config " + (dir_ / "ipop-ipsecd.yaml").string() + " --address " +
       address + " --output-dir " + out.string());
    Rendered r{readFile(out / "racoon.conf"), readFile(out / "ipsec-tools.conf"), {}};
    std::istringstream in(readFile(out / "policies.txt"));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) r.policies.push_back(line);
    std::sort(r.policies.begin(), r.policies.end());
    return r;
  }
  bool settledAt(const Rendered& r) {
    return owned() == r.policies && readFile(dir_ / "etc" / "ipsec-tools.conf") == r.spd &&
           readFile(dir_ / "etc" / "racoon.conf") == r.racoon;
  }
};

// A daemon killed while writing ipop-up leaves ".ipop-up.ipop-ipsecd.XXXXXX" in the state
// directory; the write-time cleanup of ipop-up's temps never comes while the tap has no
// address (ipop-up is then removed, not written). The next daemon removes such files at start.
TEST_F(FaultSigkillTest, StaleTempFilesInTheStateDirAreRemovedAtStart) {
  const fs::path run = dir_ / "run";
  const std::string ipopUp = tempNamePrefix("ipop-up") + "AbCdE1";
  const std::string state = tempNamePrefix("state.json") + "Zz9Zz9";
  std::ofstream(run / ipopUp) << "10.254.0";
  std::ofstream(run / state) << "{\n  \"status\": ";
  std::ofstream(run / "operator-notes") << "mine";
  start();
  ASSERT_TRUE(waitUntil([&] { return fs::exists(run / "state.json"); })) << "the daemon wrote no state";
  EXPECT_FALSE(fs::exists(run / ipopUp)) << "a killed writer's temp file of ipop-up must go at start";
  EXPECT_FALSE(fs::exists(run / state));
  EXPECT_FALSE(fs::exists(run / "ipop-up")) << "the tap has no address";
  EXPECT_TRUE(fs::exists(run / "operator-notes")) << "only the store's temp files are removed";
}

// A SIGHUP (reload) or SIGTERM that reaches the daemon before its handlers exist (an
// operator's `kill -HUP` right after a start; a start slowed down by a sanitizer) waits for
// them: a reload, or a clean stop, never the default action that ends the process. Here the
// signal is already pending at the exec, blocked by whoever started the daemon: the daemon
// also unblocks what its parent left blocked.
TEST_F(FaultSigkillTest, SignalsThatArriveBeforeItsHandlersAreAReloadAndACleanStop) {
  const fs::path log = dir_ / "daemon.log", config = dir_ / "ipop-ipsecd.yaml";
  daemon_.start(IPOPSEC_BINARY, config, log, {}, {SIGHUP});
  ASSERT_TRUE(waitUntil([&] { return readFile(log).find("reloading " + config.string()) != std::string::npos; }, 20s))
      << "the SIGHUP pending at the start was never handled";
  EXPECT_TRUE(daemon_.alive()) << "a SIGHUP is a reload, never the end of the daemon";
  EXPECT_NE(readFile(log).find("watching 'ipop'"), std::string::npos);
  int status = daemon_.stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;

  fs::remove(log);
  daemon_.start(IPOPSEC_BINARY, config, log, {}, {SIGTERM});
  ASSERT_TRUE(waitUntil([&] { return !daemon_.alive(); }, 20s)) << "the SIGTERM pending at the start was never handled";
  EXPECT_TRUE(WIFEXITED(daemon_.exitStatus()) && WEXITSTATUS(daemon_.exitStatus()) == 0)
      << "a clean stop, not the default action; wait status " << daemon_.exitStatus();
  EXPECT_NE(readFile(log).find("SIGTERM: stopping; policies stay in the kernel"), std::string::npos);
}

TEST_F(FaultSigkillTest, KilledAtRandomPointsOfReconcilesRestartsIntoTheExactStateWithoutGaps) {
  const int iterations = std::getenv("IPOPSEC_FAULT_ITERATIONS") ? std::atoi(std::getenv("IPOPSEC_FAULT_ITERATIONS")) : 120;
  const Cidr a = *Cidr::parse("10.254.0.16/16"), b = *Cidr::parse("10.77.0.16/16");
  const Rendered ra = render(a.str(), dir_ / "renderA"), rb = render(b.str(), dir_ / "renderB");
  ASSERT_NE(ra.spd, rb.spd);
  ASSERT_FALSE(ra.policies.empty());

  AddressSetter addr;
  ASSERT_EQ(addr.add("ipop", a), 0);
  start();
  ASSERT_TRUE(waitUntil([&] { return settledAt(ra); })) << "first start";

  SpdGapSampler sampler;

  std::mt19937 rng(20251127);
  std::uniform_int_distribution<int> delayUs(0, 5000);
  int torn = 0, badState = 0, unsettled = 0, leftoverTemps = 0;
  const Cidr* current = &a;
  for (int i = 0; i < iterations; ++i) {
    const Cidr* next = current == &a ? &b : &a;
    const Rendered& want = next == &a ? ra : rb;
    // Move: the old address goes (the range is held, fail closed), the new one comes.
    ASSERT_EQ(addr.del("ipop", *current), 0);
    ASSERT_EQ(addr.add("ipop", *next), 0);
    current = next;
    std::this_thread::sleep_for(std::chrono::microseconds(delayUs(rng)));  // the injection point
    int status = daemon_.stop(SIGKILL);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "iteration " << i << ": " << status;

    for (const char* f : {"racoon.conf", "ipsec-tools.conf"}) {
      std::string content = readFile(dir_ / "etc" / f);
      bool whole = content == (std::string(f) == "racoon.conf" ? ra.racoon : ra.spd) ||
                   content == (std::string(f) == "racoon.conf" ? rb.racoon : rb.spd);
      if (!whole) {
        ++torn;
        ADD_FAILURE() << "iteration " << i << ": " << f << " is neither rendering:\n" << content;
      }
    }
    std::string err;
    // Absent is fine (killed before the first write); present must be whole.
    if (fs::exists(dir_ / "run" / "state.json") && !parseState(readFile(dir_ / "run" / "state.json"), &err)) {
      ++badState;
      ADD_FAILURE() << "iteration " << i << ": state.json: " << err;
    }

    start();
    if (!waitUntil([&] { return settledAt(want); }, 10s)) {
      ++unsettled;
      ADD_FAILURE() << "iteration " << i << ": not exact after the restart; kernel:\n"
                    << ::testing::PrintToString(owned()) << "\nwanted:\n" << ::testing::PrintToString(want.policies);
      break;
    }
  }
  sampler.stop();
  for (const auto& e : fs::directory_iterator(dir_ / "etc"))
    if (e.path().filename().string().find(tempNamePrefix("")) != std::string::npos ||
        e.path().filename().string().find(".ipop-ipsecd.") != std::string::npos)
      ++leftoverTemps;

  std::cout << "  " << iterations << " kills: " << torn << " torn files, " << badState << " bad state files, "
            << unsettled << " unsettled restarts; " << sampler.samples() << " SPD samples, " << sampler.gaps()
            << " without a protect policy; " << leftoverTemps << " temp files left by killed writes\n";
  EXPECT_EQ(torn, 0);
  EXPECT_EQ(badState, 0);
  EXPECT_EQ(unsettled, 0);
  EXPECT_GT(sampler.samples(), iterations);
  EXPECT_EQ(sampler.gaps(), 0) << "a moment without any protect policy was observed";
  EXPECT_EQ(leftoverTemps, 0) << "temp files of killed writes must be cleaned up by the next write";
  EXPECT_TRUE(daemon_.alive());
}

}  // namespace

namespace {

// Regression for the defect the test above found: every writer killed between creating its
// temp file and the rename left a ".<name>.ipop-ipsecd.XXXXXX" behind, forever.
TEST(FaultSigkillCleanup, TempFileOfAKilledWriterIsRemovedByTheNextWriteALiveOneIsKept) {
  auto dir = fs::temp_directory_path() / ("ipopsec-fault-temp-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string stale = tempNamePrefix("racoon.conf") + "AbCdE1";
  const std::string live = tempNamePrefix("racoon.conf") + "LiVe00";
  const std::string other = tempNamePrefix("other.conf") + "XyZ123";
  std::ofstream(dir / stale) << "half a fi";
  std::ofstream(dir / live) << "being written";
  std::ofstream(dir / other) << "another file's";
  int liveFd = ::open((dir / live).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(liveFd, 0);
  ASSERT_EQ(::flock(liveFd, LOCK_EX), 0);  // a writer that is still alive
  AtomicFileStore store;
  ASSERT_FALSE(store.write((dir / "racoon.conf").string(), "whole\n", 0644));
  EXPECT_FALSE(fs::exists(dir / stale)) << "a dead writer's temp file must go";
  EXPECT_TRUE(fs::exists(dir / live)) << "a live writer's temp file must stay";
  EXPECT_TRUE(fs::exists(dir / other)) << "only temp files of the file written are considered";
  EXPECT_EQ(readFile(dir / "racoon.conf"), "whole\n");
  ::close(liveFd);
  fs::remove_all(dir);
}

}  // namespace
