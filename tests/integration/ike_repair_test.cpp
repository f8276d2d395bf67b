// The IKE side of health on the real kernel, with the real binary: another process's
// `ip xfrm state flush` (the IKE daemon's keys gone, and it does not know) is seen as the
// kernel's XFRM_MSG_FLUSHSA event and repaired by a restart that names its reason, while
// the daemon's own larval-state removals are not mistaken for one. The stand-in IKE daemon
// is a restart command that counts its runs.

#include <sys/stat.h>

#include <signal.h>

#include <sstream>
#include <thread>

#include "integration/daemon_fixture.hpp"

namespace ipopsec::test {
namespace {

class IkeHealthTest : public DaemonFixture {
 protected:
  bool logHas(const std::string& s) { return readFile(dir_ / "daemon.log").find(s) != std::string::npos; }
  void TearDown() override {
    std::istringstream pids(readFile(dir_ / "binder.pids"));
    for (std::string pid; std::getline(pids, pid);)
      if (!pid.empty()) ::kill(std::stoi(pid), SIGKILL);  // by pid; a gone one is fine
    DaemonFixture::TearDown();
  }
  void startNode(const std::string& ikeExtra) {
    writeConfig("  ranges: [10.254.0.0/16]\n", "", "", ikeExtra);
    // The stand-in IKE daemon: counts its starts and listens on UDP 500 (the first start's
    // binder stays; a later one finds the port taken and ends).
    std::ofstream(dir_ / "restart.sh")
        << "#!/bin/sh\necho restarted >> " << (dir_ / "restarts.log").string() << "\n"
        << "( exec python3 -c \"import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        << "s.bind(('0.0.0.0', 500)); time.sleep(600)\" ) </dev/null >/dev/null 2>&1 &\n"
        << "echo $! >> " << (dir_ / "binder.pids").string() << "\n";
    ::chmod((dir_ / "restart.sh").c_str(), 0755);
    sh("ip link add ipop type veth peer name peer0 && ip link set peer0 up");
    sh("ip addr add 10.254.0.16/16 dev ipop && ip link set ipop up");
    startDaemon();
    ASSERT_TRUE(waitFor([&] { return restarts() == 1; })) << "the first start, once IPOP is up";
    ASSERT_TRUE(waitFor([&] { return logHas("removed stale larval states"); })) << "the stand-in listens: started";
  }
};

TEST_F(IkeHealthTest, AnSaFlushByAnotherProcessRestartsTheIkeDaemonAndSaysWhy) {
  // acquire_retry off: the daemon then removes no larval state itself; a key manager
  // listening for ACQUIREs makes the kernel keep one.
  startNode("  acquire_retry: off\n");
  startAcquireMonitor();
  ASSERT_TRUE(waitFor([&] {
    sendOne();
    return larvalStates() >= 1;
  })) << "a larval state to flush (a flush of an empty SAD is no event)";
  ASSERT_EQ(restarts(), 1);
  sh("ip xfrm state flush");
  ASSERT_EQ(larvalStates(), 0u);
  ASSERT_TRUE(waitFor([&] { return restarts() == 2; }, 5s)) << "repaired by a restart (after min_interval 1 s)";
  EXPECT_TRUE(logHas("its SAs were removed from the kernel by another process"));
  EXPECT_TRUE(logHas("restarting the IKE daemon (ike.restart_command"));
}

TEST_F(IkeHealthTest, TheDaemonsOwnLarvalRemovalsAreNoFlush) {
  // acquire_retry removes larval states itself (ALLOCSPI + DELSA, never FLUSHSA).
  startNode("  acquire_retry: 200ms\n");
  for (int i = 0; i < 3; ++i) {
    sendOne();
    ASSERT_TRUE(waitFor([&] { return logHas("removed the larval states of unanswered ACQUIREs"); }, 5s));
  }
  ASSERT_TRUE(waitFor([&] { return larvalStates() == 0; }, 5s));
  // An absence: one minimum interval and more (1 s), in which a mistaken repair would run.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(restarts(), 1);
  EXPECT_FALSE(logHas("removed from the kernel by another process"));
}

}  // namespace
}  // namespace ipopsec::test
