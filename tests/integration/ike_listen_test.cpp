// After an IKE restart, the stale larval states go only once the IKE daemon really listens
// (UDP port 500 bound in the node's namespace), not when the restart command (or systemd's
// job) finishes: a packet between the two would otherwise leave a larval state that stalls
// its peer for ~30 s. The real binary, the real kernel; the "IKE daemon" binds port 500
// when the test says so.

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "integration/daemon_fixture.hpp"
#include "os/netlink/sock_diag.hpp"

namespace ipopsec::test {
namespace {

class IkeListenTest : public DaemonFixture {
 protected:
  void TearDown() override {
    // The stand-in IKE daemon, stopped by its pid.
    std::string pid = readFile(dir_ / "binder.pid");
    if (!pid.empty()) {
      if (!fs::exists(dir_ / "bound")) std::ofstream(dir_ / "go.fifo") << "go\n";  // unblock, then stop
      ::kill(std::stoi(pid), SIGKILL);
    }
    DaemonFixture::TearDown();
  }
};

TEST_F(IkeListenTest, LarvalStatesAreRemovedOnceTheIkeDaemonListensNotWhenItsRestartReturns) {
  writeConfig("  ranges: [10.254.0.0/16]\n");
  ASSERT_EQ(::mkfifo((dir_ / "go.fifo").c_str(), 0600), 0);
  // The restart: a packet races the IKE daemon's start (the kernel makes a larval state for
  // it), and the IKE daemon binds its port only later, when the test writes to go.fifo.
  std::ofstream(dir_ / "restart.sh")
      << "#!/bin/sh\n"
      << "echo restart >> " << (dir_ / "restarts.log").string() << "\n"
      << "ping -c1 -W1 10.254.0.17 >/dev/null 2>&1\n"
      << "( read x < " << (dir_ / "go.fifo").string() << "; exec python3 -c \"import socket, time; "
      << "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 500)); "
      << "open('" << (dir_ / "bound").string() << "', 'w').close(); time.sleep(600)\" ) </dev/null >/dev/null 2>&1 &\n"
      << "echo $! > " << (dir_ / "binder.pid").string() << "\n";
  // A key manager must be listening for the kernel to keep a larval state (here: ip's).
  startAcquireMonitor();
  sh("ip link add ipop type veth peer name peer0 && ip link set peer0 up");
  sh("ip addr add 10.254.0.16/16 dev ipop && ip link set ipop up");
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return readFile(dir_ / "daemon.log").find("restart.sh) restarted") != std::string::npos; }))
      << "the restart command returned";
  ASSERT_TRUE(fs::exists(dir_ / "binder.pid"));
  EXPECT_GE(larvalStates(), 1u) << "the packet that raced the start left a larval state";
  // The restart has returned, the IKE daemon does not listen yet: the larval state stays
  // (removing it now would let the next packet make another one before the daemon listens).
  EXPECT_FALSE(waitFor([&] { return larvalStates() == 0; }, 500ms))
      << "larval states were removed before the IKE daemon listened";
  std::ofstream(dir_ / "go.fifo") << "go\n";
  ASSERT_TRUE(waitFor([&] { return fs::exists(dir_ / "bound"); })) << "the stand-in IKE daemon bound UDP 500";
  EXPECT_TRUE(waitFor([&] { return larvalStates() == 0; }, 3s)) << "removed once it listens";
  EXPECT_TRUE(waitFor([&] { return readFile(dir_ / "daemon.log").find("removed stale larval states") != std::string::npos; }));
}

// ike.acquire_retry on the real kernel: the daemon subscribes to the kernel's ACQUIREs
// (it is then a key manager the kernel asks, so the larval state is kept with no other
// listener), and the larval state of a packet nobody answered is gone acquire_retry later,
// so the next packet would raise a fresh ACQUIRE. With `off` it stays.
class AcquireRetryTest : public IkeListenTest {
 protected:
  void startNode(const std::string& retry) {
    writeConfig("  ranges: [10.254.0.0/16]\n", "", "", "  acquire_retry: " + retry + "\n");
    // The stand-in IKE daemon listens at once (UDP 500): the restart's own removal is done.
    std::ofstream(dir_ / "restart.sh")
        << "#!/bin/sh\n"
        << "( exec python3 -c \"import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        << "s.bind(('0.0.0.0', 500)); open('" << (dir_ / "bound").string() << "', 'w').close(); time.sleep(600)\" ) "
        << "</dev/null >/dev/null 2>&1 &\n"
        << "echo $! > " << (dir_ / "binder.pid").string() << "\n";
    ::chmod((dir_ / "restart.sh").c_str(), 0755);
    sh("ip link add ipop type veth peer name peer0 && ip link set peer0 up");
    sh("ip addr add 10.254.0.16/16 dev ipop && ip link set ipop up");
    startDaemon();
    ASSERT_TRUE(waitFor([&] { return readFile(dir_ / "daemon.log").find("removed stale larval states") != std::string::npos; }))
        << "the restart's own removal, once the stand-in listens";
  }
};

TEST_F(AcquireRetryTest, TheLarvalStateOfAnUnansweredAcquireIsRemovedAfterTheRetryDelay) {
  startNode("300ms");
  ASSERT_EQ(larvalStates(), 0u);
  sendOne();  // no SA: the kernel asks its key managers
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(waitFor([&] { return larvalStates() >= 1; }, 2s))
      << "the daemon listens for ACQUIREs, so the kernel keeps a larval state";
  ASSERT_TRUE(waitFor([&] { return larvalStates() == 0; }, 5s)) << "removed after acquire_retry";
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 250ms) << "not before the IKE daemon had its chance";
  EXPECT_TRUE(waitFor([&] {
    return readFile(dir_ / "daemon.log").find("removed the larval states of unanswered ACQUIREs") != std::string::npos;
  }));
  // A second packet: a fresh ACQUIRE, a fresh removal.
  sendOne();
  ASSERT_TRUE(waitFor([&] { return larvalStates() >= 1; }, 2s)) << "the next packet asks again";
  EXPECT_TRUE(waitFor([&] { return larvalStates() == 0; }, 5s));
}

TEST_F(AcquireRetryTest, OffKeepsTheLarvalStateAsTheKernelMadeIt) {
  startNode("off");
  sendOne();
  ASSERT_TRUE(waitFor([&] { return larvalStates() >= 1; }, 2s));
  EXPECT_FALSE(waitFor([&] { return larvalStates() == 0; }, 1500ms)) << "acquire_retry: off removes nothing";
  EXPECT_EQ(readFile(dir_ / "daemon.log").find("removed the larval states of unanswered ACQUIREs"), std::string::npos);
}

// The question behind the wait, on its own: a UDP socket bound to port 500 in this
// namespace (IPv4 or IPv6), and nothing else, answers yes.
TEST_F(IkeListenTest, UdpPortBoundSeesABindInThisNamespaceOnly) {
  bool bound = true;
  ASSERT_FALSE(udpPortBound(500, bound));
  EXPECT_FALSE(bound) << "a fresh namespace has nothing on UDP 500";
  int other = ::socket(AF_INET, SOCK_DGRAM, 0), v6 = ::socket(AF_INET6, SOCK_DGRAM, 0);
  ASSERT_GE(other, 0);
  ASSERT_GE(v6, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(4500);
  ASSERT_EQ(::bind(other, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_FALSE(udpPortBound(500, bound));
  EXPECT_FALSE(bound) << "4500 is not 500";
  sockaddr_in6 b{};
  b.sin6_family = AF_INET6;
  b.sin6_port = htons(500);
  ASSERT_EQ(::bind(v6, reinterpret_cast<sockaddr*>(&b), sizeof b), 0);
  ASSERT_FALSE(udpPortBound(500, bound));
  EXPECT_TRUE(bound) << "an IPv6 socket on 500 counts";
  ::close(other);
  ::close(v6);
  ASSERT_FALSE(udpPortBound(500, bound));
  EXPECT_FALSE(bound) << "closed again";
}

}  // namespace
}  // namespace ipopsec::test
