// The mesh benchmark's "ideal in order" anchor, second half (tests/system/uml/mesh_nodes.sh):
// what ipop-ipsecd does once the IKE daemon it (re)started listens, and after, with the
// daemon's own code.
//  - Once: the larval ESP states within RANGEs (a kernel ACQUIRE that nobody answered, left
//    by a packet sent before charon listened) are removed (XfrmPolicyTable::flushLarval), so
//    that the next packet asks charon again instead of waiting for the larval state to
//    expire. Prints when (epoch seconds) and how many states it removed.
//  - With --follow, then: ike.acquire_retry at its default, as the daemon does it. It follows
//    the kernel's ACQUIREs (XFRMNLGRP_ACQUIRE) and removes the larval states in RANGEs on the
//    daemon's schedule (core/reconcile/acquire_retry.hpp, the first wait the daemon's
//    default), until it is stopped. Without it, an attempt a peer refused while its charon
//    was still loading its configuration waits for the larval state's expiry (165 s) or for
//    the peer's own attempt; the daemon asks again, so an ideal without it is not the best
//    possible. It subscribes before the first removal, as the daemon is subscribed all along.
//    SIGUSR1 starts the schedule over, as the daemon's IKE reload does (AcquireRetry::restart):
//    the mesh's ideal sends it when it loads range B's files into charon.
//   ipopsec_larval_flush [--follow] RANGE...
// Exits 2 on a usage error, 1 when the kernel refused.
#include <poll.h>

#include <linux/xfrm.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "core/policy/cidr.hpp"
#include "core/reconcile/acquire_retry.hpp"
#include "os/netlink/netlink.hpp"
#include "os/netlink/xfrm.hpp"
#include "os/netlink/xfrm_watch.hpp"

namespace {

volatile std::sig_atomic_t g_restart = 0;
void onRestart(int) { g_restart = 1; }

int flushOnce(ipopsec::XfrmPolicyTable& table, const std::vector<ipopsec::Cidr>& ranges) {
  std::size_t removed = 0;
  if (auto ec = table.flushLarval(ranges, &removed)) {
    std::fprintf(stderr, "ipopsec_larval_flush: %s\n", ec.message().c_str());
    return 1;
  }
  // The wall clock, as charon's log and the mesh's timings read it: when each removal was.
  const auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::printf("%.3f removed %zu larval states\n", now, removed);
  std::fflush(stdout);
  return 0;
}

// Follows the ACQUIREs on `sock` (subscribed to XFRMNLGRP_ACQUIRE) until killed; returns
// only on an error.
int follow(ipopsec::netlink::Socket& sock, ipopsec::XfrmPolicyTable& table, const std::vector<ipopsec::Cidr>& ranges) {
  using Clock = std::chrono::steady_clock;
  ipopsec::AcquireRetry retry(ipopsec::Config{}.ike.acquireRetry);
  // SIGUSR1 is blocked except inside ppoll, so it always ends the wait it arrives in (or the
  // next one) and is applied before the ACQUIREs read after it.
  struct sigaction sa {};
  sa.sa_handler = onRestart;
  ::sigaction(SIGUSR1, &sa, nullptr);
  sigset_t usr1, waiting;
  ::sigemptyset(&usr1);
  ::sigaddset(&usr1, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &usr1, &waiting);
  ::sigdelset(&waiting, SIGUSR1);
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    timespec left{};
    const timespec* timeout = nullptr;
    if (auto at = retry.at()) {
      auto ns = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(*at - Clock::now()).count());
      left = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
      timeout = &left;
    }
    pollfd p{.fd = sock.fd(), .events = POLLIN, .revents = 0};
    if (::ppoll(&p, 1, timeout, &waiting) < 0 && errno != EINTR) {
      std::fprintf(stderr, "ipopsec_larval_flush: ppoll: %s\n", std::strerror(errno));
      return 1;
    }
    if (g_restart) {
      g_restart = 0;
      retry.restart();
    }
    if (p.revents & POLLIN) {
      // The daemon's own drain (XfrmPolicyWatch), without its bound: nothing else waits here.
      const auto drained = ipopsec::xfrm::drainPolicyEvents(sock.fd(), buf, sock.portId(), nullptr, INT_MAX);
      if (drained.events.acquires > 0 || drained.overflow) retry.acquired(Clock::now());
    }
    if (retry.due(Clock::now()) && flushOnce(table, ranges) != 0) return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int first = 1;
  bool keepFollowing = false;
  if (argc > 1 && std::strcmp(argv[1], "--follow") == 0) {
    keepFollowing = true;
    first = 2;
  }
  if (argc <= first) {
    std::fprintf(stderr, "usage: ipopsec_larval_flush [--follow] RANGE...\n");
    return 2;
  }
  std::vector<ipopsec::Cidr> ranges;
  for (int i = first; i < argc; ++i) {
    auto c = ipopsec::Cidr::parse(argv[i]);
    if (!c) {
      std::fprintf(stderr, "ipopsec_larval_flush: '%s' is not a CIDR range\n", argv[i]);
      return 2;
    }
    ranges.push_back(c->network());
  }
  try {
    // The priorities do not matter here: only states are touched.
    ipopsec::XfrmPolicyTable table(250000, 1000);
    ipopsec::netlink::Socket sock;
    std::string what;
    if (keepFollowing) {
      if (auto ec = sock.open({.protocol = NETLINK_XFRM, .groups = XFRMGRP_ACQUIRE}, &what)) {
        std::fprintf(stderr, "ipopsec_larval_flush: %s: %s\n", what.c_str(), ec.message().c_str());
        return 1;
      }
    }
    if (int rc = flushOnce(table, ranges); rc != 0 || !keepFollowing) return rc;
    return follow(sock, table, ranges);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipopsec_larval_flush: %s\n", e.what());
    return 1;
  }
}
