// NetlinkLinkMonitor against the real kernel, inside a private network namespace per test.
// Waits are on real events: io.run_one_for() in a loop until a predicate on the snapshot
// holds, bounded by a deadline. Only 10.254.x.x and fd50:: addresses, only inside the namespace.

#include <utility>

#include "os/netlink/rtnetlink.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/netns.hpp"
#include "os/netlink/netlink.hpp"
#include "support/policy_builders.hpp"

namespace ipopsec {
namespace {

using namespace std::chrono_literals;
using test::sh;

using test::cidr;

// A user-space NETLINK_ROUTE socket that forges link events: it sends to the link group,
// which reaches the monitor, and as unicast to itself, never to the kernel (port id 0).
struct Forger {
  netlink::Socket socket;
  sockaddr_nl to{};

  std::error_code open() {
    netlink::SocketOptions o;
    o.protocol = NETLINK_ROUTE;
    if (auto ec = socket.open(o)) return ec;
    to.nl_family = AF_NETLINK;
    to.nl_pid = socket.portId();
    to.nl_groups = RTMGRP_LINK;
    return {};
  }
  ssize_t send(const void* datagram, std::size_t size) {
    return ::sendto(socket.fd(), datagram, size, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
  // Reads away its own copies (the unicast to itself), so that its receive buffer never fills.
  void drainOwnCopies() {
    char drain[256];
    while (::recv(socket.fd(), drain, sizeof drain, MSG_DONTWAIT) > 0) {
    }
  }
};

// The kernel's view, read with iproute2: an independent check of the monitor's snapshot.
NetSnapshot snapshotFromIp() {
  NetSnapshot snap;
  std::istringstream links(sh("ip -o link show"));
  for (std::string line; std::getline(links, line);) {
    std::istringstream in(line);
    std::string index, name, flags;
    in >> index >> name >> flags;
    LinkState l;
    l.index = std::stoi(index);
    name.pop_back();  // "ipop:"
    l.name = name.substr(0, name.find('@'));
    // flags is "<A,B,C>": look for ",F," in ",A,B,C,".
    std::string list = "," + flags.substr(1, flags.size() - 2) + ",";
    auto has = [&](const std::string& f) { return list.find("," + f + ",") != std::string::npos; };
    l.up = has("UP");
    // iproute2 hides IFF_RUNNING and prints NO-CARRIER for UP without RUNNING.
    l.running = has("LOWER_UP") || (l.up && !has("NO-CARRIER"));
    snap.links[l.index] = l;
  }
  std::istringstream addrs(sh("ip -o addr show"));
  for (std::string line; std::getline(addrs, line);) {
    std::istringstream in(line);
    std::string index, name, family, address;
    in >> index >> name >> family >> address;
    auto& l = snap.links.at(std::stoi(index));
    l.addresses.push_back(cidr(address));
  }
  for (auto& [i, l] : snap.links) std::sort(l.addresses.begin(), l.addresses.end());
  return snap;
}

std::string describe(const NetSnapshot& s) {
  std::string out;
  for (const auto& [i, l] : s.links) {
    out += std::to_string(i) + ":" + l.name + (l.up ? " up" : " down") + (l.running ? " running" : "") + " [";
    for (const auto& c : l.addresses) out += c.str() + " ";
    out += "]\n";
  }
  return out;
}

class LinkMonitorTest : public testing::Test {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();
    test::enterFreshNetns();
  }

  // Runs the io_context until pred() holds or `limit` passes; returns pred().
  template <class Pred>
  bool runUntil(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      if (io_.stopped()) io_.restart();
      io_.run_one_for(deadline - now);
    }
    return true;
  }

  void startAndSync(NetlinkLinkMonitor& m) {
    m.setLogger([this](const std::string& line) { log_.push_back(line); });
    m.start([this] { ++changes_; });
    ASSERT_TRUE(runUntil([&] { return m.synced() && changes_ >= 1; })) << "no initial dump";
  }

  // Writes an `ip -batch` file and runs it (synchronously: the io_context does not run meanwhile).
  std::string batchFile(const std::vector<std::string>& lines) {
    std::string path = testing::TempDir() + "ipopsec-rtnl-" + std::to_string(::getpid()) + "-" +
                       std::to_string(batchCount_++) + ".batch";
    std::ofstream f(path);
    for (const auto& l : lines) f << l << '\n';
    f.close();
    files_.push_back(path);
    return path;
  }

  void TearDown() override {
    for (const auto& f : files_) std::remove(f.c_str());
  }

  static bool hasAddress(const NetlinkLinkMonitor& m, const std::string& link, const std::string& c) {
    const LinkState* l = m.snapshot().byName(link);
    if (!l) return false;
    return std::find(l->addresses.begin(), l->addresses.end(), cidr(c)) != l->addresses.end();
  }

  boost::asio::io_context io_;
  int changes_ = 0;
  std::vector<std::string> log_;
  std::vector<std::string> files_;
  int batchCount_ = 0;
};

TEST_F(LinkMonitorTest, InitialDumpMatchesTheKernel) {
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  ASSERT_NE(m.snapshot().byName("lo"), nullptr);
  EXPECT_TRUE(m.snapshot().byName("lo")->up);
  EXPECT_THAT(m.snapshot().byName("lo")->addresses, testing::Contains(cidr("127.0.0.1/8")));
  EXPECT_EQ(m.snapshot(), snapshotFromIp()) << describe(m.snapshot());
  EXPECT_EQ(m.redumps(), 0U);
  EXPECT_EQ(m.skipped(), 0U);
  EXPECT_EQ(changes_, 1);
}

// Enough links and addresses that each dump spans several datagrams.
TEST_F(LinkMonitorTest, MultiPartDumpMatchesTheKernel) {
  std::vector<std::string> lines;
  for (int t = 0; t < 150; ++t) {
    lines.push_back("tuntap add dev ipop" + std::to_string(t) + " mode tap");
    lines.push_back("addr add 10.254." + std::to_string(t) + ".1/24 dev ipop" + std::to_string(t));
    lines.push_back("addr add fd50:" + std::to_string(t) + "::1/64 dev ipop" + std::to_string(t) + " nodad");
  }
  sh("ip -batch " + batchFile(lines));
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  EXPECT_GT(m.datagrams(), 4U);
  EXPECT_EQ(m.snapshot().links.size(), 151U);
  EXPECT_EQ(m.snapshot(), snapshotFromIp());
  EXPECT_EQ(changes_, 1);
}

TEST_F(LinkMonitorTest, TapCreatedAfterStart) {
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  EXPECT_EQ(m.snapshot().byName("ipop"), nullptr);

  sh("ip tuntap add dev ipop mode tap");
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop") != nullptr; }));
  EXPECT_FALSE(m.snapshot().byName("ipop")->up);

  sh("ip link set ipop up");
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop")->up; }));
  EXPECT_FALSE(m.snapshot().byName("ipop")->running);  // a tap nobody holds has no carrier

  sh("ip addr add 10.254.3.7/16 dev ipop");
  ASSERT_TRUE(runUntil([&] { return hasAddress(m, "ipop", "10.254.3.7/16"); })) << describe(m.snapshot());
  EXPECT_THAT(m.snapshot().byName("ipop")->addresses, testing::ElementsAre(cidr("10.254.3.7/16")));
  EXPECT_GE(changes_, 4);
  EXPECT_EQ(m.redumps(), 0U);
  EXPECT_EQ(m.skipped(), 0U);
}

TEST_F(LinkMonitorTest, TapPresentAtStartIsInTheFirstSnapshot) {
  sh("ip tuntap add dev ipop mode tap");
  sh("ip link set ipop up");
  sh("ip addr add 10.254.3.7/16 dev ipop");

  NetlinkLinkMonitor m(io_);
  bool sawTapInFirstCallback = false;
  m.start([&] {
    if (++changes_ == 1) sawTapInFirstCallback = hasAddress(m, "ipop", "10.254.3.7/16");
  });
  ASSERT_TRUE(runUntil([&] { return changes_ >= 1; }));
  EXPECT_TRUE(sawTapInFirstCallback) << describe(m.snapshot());
  EXPECT_TRUE(m.snapshot().byName("ipop")->up);
  EXPECT_EQ(m.snapshot(), snapshotFromIp());
}

TEST_F(LinkMonitorTest, Ipv6Address) {
  sh("ip tuntap add dev ipop mode tap");
  sh("ip link set ipop up");
  NetlinkLinkMonitor m(io_);
  startAndSync(m);

  sh("ip -6 addr add fd50::7/64 dev ipop nodad");
  ASSERT_TRUE(runUntil([&] { return hasAddress(m, "ipop", "fd50::7/64"); })) << describe(m.snapshot());
  sh("ip -6 addr del fd50::7/64 dev ipop");
  ASSERT_TRUE(runUntil([&] { return !hasAddress(m, "ipop", "fd50::7/64"); }));
}

TEST_F(LinkMonitorTest, AddressReplaced) {
  sh("ip tuntap add dev ipop mode tap");
  sh("ip link set ipop up");
  sh("ip addr add 10.254.3.7/16 dev ipop");
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  ASSERT_TRUE(hasAddress(m, "ipop", "10.254.3.7/16"));

  sh("ip -batch " + batchFile({"addr del 10.254.3.7/16 dev ipop", "addr add 10.254.5.9/24 dev ipop"}));
  ASSERT_TRUE(runUntil([&] {
    return m.snapshot().byName("ipop")->addresses == std::vector<Cidr>{cidr("10.254.5.9/24")};
  })) << describe(m.snapshot());
}

TEST_F(LinkMonitorTest, DelAddr) {
  sh("ip tuntap add dev ipop mode tap");
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  sh("ip addr add 10.254.3.7/16 dev ipop");
  sh("ip addr add 10.254.3.8/24 dev ipop");  // another prefix: not a secondary of the first
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop")->addresses.size() == 2; }));
  sh("ip addr del 10.254.3.7/16 dev ipop");
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop")->addresses.size() == 1; }));
  EXPECT_THAT(m.snapshot().byName("ipop")->addresses, testing::ElementsAre(cidr("10.254.3.8/24")));

  // Deleting a primary IPv4 address takes its secondaries with it; the kernel says so per address.
  sh("ip addr add 10.254.3.9/24 dev ipop");
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop")->addresses.size() == 2; }));
  sh("ip addr del 10.254.3.8/24 dev ipop");
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop")->addresses.empty(); }))
      << describe(m.snapshot());
  EXPECT_EQ(m.snapshot(), snapshotFromIp());
}

TEST_F(LinkMonitorTest, LinkDeletedAndRecreated) {
  sh("ip tuntap add dev ipop mode tap");
  sh("ip addr add 10.254.3.7/16 dev ipop");
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  ASSERT_NE(m.snapshot().byName("ipop"), nullptr);
  const int oldIndex = m.snapshot().byName("ipop")->index;

  sh("ip link del ipop");
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop") == nullptr; }));
  EXPECT_EQ(m.snapshot().links.count(oldIndex), 0U);  // addresses went with it

  sh("ip tuntap add dev ipop mode tap");
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop") != nullptr; }));
  EXPECT_NE(m.snapshot().byName("ipop")->index, oldIndex);
  EXPECT_TRUE(m.snapshot().byName("ipop")->addresses.empty());
  EXPECT_EQ(m.snapshot(), snapshotFromIp());
}

TEST_F(LinkMonitorTest, Renamed) {
  sh("ip tuntap add dev ipop mode tap");
  sh("ip addr add 10.254.3.7/16 dev ipop");
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  const int index = m.snapshot().byName("ipop")->index;

  sh("ip link set ipop down");
  sh("ip link set ipop name ipop2");
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop2") != nullptr; }));
  EXPECT_EQ(m.snapshot().byName("ipop"), nullptr);
  EXPECT_EQ(m.snapshot().byName("ipop2")->index, index);
  EXPECT_THAT(m.snapshot().byName("ipop2")->addresses, testing::ElementsAre(cidr("10.254.3.7/16")));
}

TEST_F(LinkMonitorTest, SeveralAddresses) {
  sh("ip tuntap add dev ipop mode tap");
  sh("ip link set ipop up");
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  sh("ip -batch " + batchFile({"addr add 10.254.9.1/24 dev ipop", "addr add 10.254.3.7/16 dev ipop",
                               "addr add 10.254.200.1/32 dev ipop", "addr add fd50::7/64 dev ipop nodad",
                               "addr add fd50:1::1/48 dev ipop nodad"}));
  const std::vector<Cidr> want{cidr("10.254.3.7/16"), cidr("10.254.9.1/24"), cidr("10.254.200.1/32"),
                               cidr("fd50::7/64"), cidr("fd50:1::1/48")};
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop")->addresses == want; }))
      << describe(m.snapshot());
}

// 200 address adds in one `ip -batch` while the io_context is not running: one drain, one
// onChange, and all 200 in the snapshot. (4 taps of 50: a link holds at most 64 addresses.)
TEST_F(LinkMonitorTest, BurstIsCoalescedIntoOneChange) {
  std::vector<std::string> lines;
  for (int t = 0; t < 4; ++t) lines.push_back("tuntap add dev ipop" + std::to_string(t) + " mode tap");
  sh("ip -batch " + batchFile(lines));
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  const int changesBefore = changes_;
  const auto datagramsBefore = m.datagrams();

  lines.clear();
  for (int t = 0; t < 4; ++t)
    for (int i = 1; i <= 50; ++i)
      lines.push_back("addr add 10.254." + std::to_string(t) + "." + std::to_string(i) + "/16 dev ipop" +
                      std::to_string(t));
  sh("ip -batch " + batchFile(lines));
  const NetSnapshot expected = snapshotFromIp();
  ASSERT_TRUE(runUntil([&] { return m.snapshot() == expected; })) << describe(m.snapshot());
  for (int t = 0; t < 4; ++t)
    EXPECT_EQ(m.snapshot().byName("ipop" + std::to_string(t))->addresses.size(), 50U);
  EXPECT_GE(m.datagrams() - datagramsBefore, 200U);
  EXPECT_EQ(changes_ - changesBefore, 1);
  EXPECT_EQ(m.redumps(), 0U);
}

// A tiny receive buffer and a burst nobody reads: the kernel drops events (ENOBUFS), the
// monitor re-dumps into a fresh snapshot, and ends exactly where the kernel is.
TEST_F(LinkMonitorTest, EnobufsTriggersARedumpAndEndsExact) {
  std::vector<std::string> lines;
  for (int t = 0; t < 4; ++t) lines.push_back("tuntap add dev ipop" + std::to_string(t) + " mode tap");
  sh("ip -batch " + batchFile(lines));
  NetlinkLinkMonitor m(io_, NetlinkMonitorOptions{.receiveBufferBytes = 1});  // the kernel's minimum
  startAndSync(m);
  const auto redumpsBefore = m.redumps();

  lines.clear();
  for (int t = 0; t < 4; ++t) {
    lines.push_back("link set ipop" + std::to_string(t) + " up");
    for (int i = 1; i <= 60; ++i)
      lines.push_back("addr add 10.254." + std::to_string(t) + "." + std::to_string(i) + "/16 dev ipop" +
                      std::to_string(t));
  }
  // Secondaries only (deleting the primary .1 would take all of them along).
  for (int i = 41; i <= 60; ++i) lines.push_back("addr del 10.254.0." + std::to_string(i) + "/16 dev ipop0");
  sh("ip -batch " + batchFile(lines));
  const NetSnapshot expected = snapshotFromIp();
  ASSERT_TRUE(runUntil([&] { return m.synced() && m.snapshot() == expected; }))
      << describe(m.snapshot()) << "want\n" << describe(expected);
  EXPECT_GE(m.redumps(), redumpsBefore + 1);
  EXPECT_THAT(log_, testing::Contains(testing::HasSubstr("ENOBUFS")));
  EXPECT_EQ(m.snapshot().byName("ipop0")->addresses.size(), 40U);
}

// Changes made while the dump runs: events and dump parts applied in order end exact.
TEST_F(LinkMonitorTest, DumpRacingWithChangesEndsExact) {
  std::vector<std::string> lines;
  for (int t = 0; t < 4; ++t) lines.push_back("tuntap add dev ipop" + std::to_string(t) + " mode tap");
  auto a = [](int t, int i) {
    return "10.254." + std::to_string(t) + "." + std::to_string(i) + "/16 dev ipop" + std::to_string(t);
  };
  for (int t = 0; t < 4; ++t)
    for (int i = 1; i <= 40; ++i) lines.push_back("addr add " + a(t, i));
  for (int cycle = 0; cycle < 3; ++cycle) {
    for (int t = 0; t < 4; ++t)
      for (int i = 2; i <= 40; i += 2) lines.push_back("addr del " + a(t, i));
    for (int t = 0; t < 4; ++t)
      for (int i = 2; i <= 40; i += 2) lines.push_back("addr add " + a(t, i));
    lines.push_back("link set ipop1 " + std::string(cycle % 2 ? "down" : "up"));
  }
  for (int t = 0; t < 4; ++t)
    for (int i = 4; i <= 40; i += 4) lines.push_back("addr del " + a(t, i));
  lines.push_back("link del ipop3");
  lines.push_back("tuntap add dev ipop3 mode tap");
  lines.push_back("addr add 10.254.3.1/16 dev ipop3");
  const std::string file = batchFile(lines);

  // A witness monitor tells when the batch is under way; the monitors under test start
  // their dumps at two points in the middle of it.
  NetlinkLinkMonitor witness(io_);
  startAndSync(witness);
  bool done = false;  // only touched on the io_context's thread
  std::string error;
  std::thread writer([&] {
    try {
      sh("ip -batch " + file);
    } catch (const std::exception& e) {
      error = e.what();
    }
    boost::asio::post(io_, [&] { done = true; });  // wakes run_one_for: no polling
  });
  NetlinkLinkMonitor early(io_), later(io_);
  int overlapped = 0;
  auto startUnderTest = [&](NetlinkLinkMonitor& m) {
    m.setLogger([this](const std::string& line) { log_.push_back(line); });
    m.start([&done, &overlapped, first = true]() mutable {
      if (first && !done) ++overlapped;
      first = false;
    });
  };
  const bool sawStart = runUntil([&] { return done || witness.snapshot().byName("ipop0"); }, 20000ms);
  startUnderTest(early);
  const bool sawMiddle = runUntil(
      [&] {
        const LinkState* l = witness.snapshot().byName("ipop3");
        return done || (l && !l->addresses.empty());
      },
      20000ms);
  startUnderTest(later);
  const bool finished = runUntil([&] { return done; }, 20000ms);
  writer.join();
  ASSERT_TRUE(sawStart && sawMiddle && finished);
  ASSERT_TRUE(error.empty()) << error;
  const NetSnapshot expected = snapshotFromIp();
  ASSERT_TRUE(runUntil([&] {
    return early.synced() && later.synced() && early.snapshot() == expected && later.snapshot() == expected &&
           witness.snapshot() == expected;  // the one that followed the whole batch as events
  }))
      << "early:\n" << describe(early.snapshot()) << "later:\n" << describe(later.snapshot()) << "want\n"
      << describe(expected) << "witness:\n" << describe(witness.snapshot());
  // A dump may legitimately be redone here (NLM_F_DUMP_INTR); nothing else may go wrong.
  for (const auto& line : log_) EXPECT_THAT(line, testing::HasSubstr("NLM_F_DUMP_INTR"));
  EXPECT_EQ(witness.redumps(), 0U);
  EXPECT_EQ(early.skipped() + later.skipped() + witness.skipped(), 0U);
  if (overlapped == 0) std::cout << "note: no dump overlapped the batch this time\n";
  RecordProperty("dumps_overlapping_changes", overlapped);
  RecordProperty("dumps_redone", static_cast<int>(early.redumps() + later.redumps()));
}

TEST_F(LinkMonitorTest, NoCallbackAfterStop) {
  NetlinkLinkMonitor stopped(io_);
  startAndSync(stopped);
  const int changesAtStop = changes_;
  stopped.stop();

  int otherChanges = 0;
  NetlinkLinkMonitor witness(io_);
  witness.start([&] { ++otherChanges; });
  ASSERT_TRUE(runUntil([&] { return witness.synced(); }));
  sh("ip tuntap add dev ipop mode tap");
  ASSERT_TRUE(runUntil([&] { return witness.snapshot().byName("ipop") != nullptr; }));
  io_.poll();  // run whatever else is ready
  EXPECT_EQ(changes_, changesAtStop);
  EXPECT_EQ(stopped.snapshot().byName("ipop"), nullptr);

  // And it can be started again.
  stopped.start([&] { ++changes_; });
  ASSERT_TRUE(runUntil([&] { return stopped.snapshot().byName("ipop") != nullptr; }));
}

TEST_F(LinkMonitorTest, StopFromInsideTheCallback) {
  NetlinkLinkMonitor m(io_);
  int calls = 0;
  m.start([&] {
    ++calls;
    m.stop();
  });
  ASSERT_TRUE(runUntil([&] { return calls == 1; }));
  sh("ip tuntap add dev ipop mode tap");
  NetlinkLinkMonitor witness(io_);
  witness.start([] {});
  ASSERT_TRUE(runUntil([&] { return witness.snapshot().byName("ipop") != nullptr; }));
  io_.poll();
  EXPECT_EQ(calls, 1);
}

// A datagram that claims to be a link event but comes from a user-space socket (port id != 0)
// is dropped, not applied.
TEST_F(LinkMonitorTest, MessagesNotFromTheKernelAreIgnored) {
  NetlinkLinkMonitor m(io_);
  startAndSync(m);

  Forger forger;
  ASSERT_FALSE(forger.open());

  struct {
    nlmsghdr h;
    ifinfomsg i;
    rtattr a;
    char name[8];
  } fake{};
  fake.h.nlmsg_len = sizeof fake;
  fake.h.nlmsg_type = RTM_NEWLINK;
  fake.i.ifi_index = 4242;
  fake.i.ifi_flags = 1;  // IFF_UP
  fake.a.rta_type = IFLA_IFNAME;
  fake.a.rta_len = RTA_LENGTH(6);
  std::memcpy(fake.name, "evil0", 6);
  ASSERT_EQ(forger.send(&fake, sizeof fake), static_cast<ssize_t>(sizeof fake)) << std::strerror(errno);
  forger.socket.close();

  sh("ip tuntap add dev ipop mode tap");  // a real event, queued after the fake one
  ASSERT_TRUE(runUntil([&] { return m.snapshot().byName("ipop") != nullptr; }));
  EXPECT_EQ(m.snapshot().byName("evil0"), nullptr);
  EXPECT_EQ(m.snapshot().links.count(4242), 0U);
  EXPECT_GE(m.skipped(), 1U);
  EXPECT_THAT(log_, testing::Contains(testing::HasSubstr("not the kernel")));
}

// A root process can flood the monitor's socket with forged datagrams: each is skipped and
// counted, but the log gets at most kMaxSkipLinesPerSecond lines a second plus summaries
// ("suppressed N more malformed messages"), which account for every one of them.
TEST_F(LinkMonitorTest, AFloodOfForgedDatagramsGivesABoundedNumberOfLogLines) {
  NetlinkLinkMonitor m(io_);
  startAndSync(m);
  log_.clear();

  Forger forger;
  ASSERT_FALSE(forger.open());
  struct {
    nlmsghdr h;
    ifinfomsg i;
  } fake{};
  fake.h.nlmsg_len = sizeof fake;
  fake.h.nlmsg_type = RTM_NEWLINK;
  fake.i.ifi_index = 4242;

  constexpr std::uint64_t kRounds = 25, kPerRound = 200;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t round = 1; round <= kRounds; ++round) {
    for (std::uint64_t i = 0; i < kPerRound; ++i)
      ASSERT_EQ(forger.send(&fake, sizeof fake), static_cast<ssize_t>(sizeof fake)) << std::strerror(errno);
    forger.drainOwnCopies();
    ASSERT_TRUE(runUntil([&] { return m.skipped() >= round * kPerRound; })) << m.skipped();
  }
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
  forger.socket.close();
  EXPECT_EQ(m.skipped(), kRounds * kPerRound);
  EXPECT_EQ(m.redumps(), 0U) << "the flood was paced to fit the receive buffer";

  auto count = [&](const std::string& what) {
    return std::count_if(log_.begin(), log_.end(), [&](const std::string& l) { return l.find(what) != std::string::npos; });
  };
  const auto windows = seconds + 2;  // windows the flood touched, rounded up
  const auto perWindow = static_cast<long>(NetlinkLinkMonitor::kMaxSkipLinesPerSecond);
  EXPECT_LE(count("not the kernel"), perWindow * windows) << log_.size() << " lines in " << seconds << " s";
  EXPECT_LE(static_cast<long>(log_.size()), (perWindow + 2) * windows);
  EXPECT_GE(count("not the kernel"), 1) << "the first ones are logged";

  auto summarized = [&] {
    std::uint64_t n = 0;
    for (const auto& l : log_) {
      unsigned long long k = 0;
      if (std::sscanf(l.c_str(), "suppressed %llu more malformed message", &k) == 1) n += k;
    }
    return n;
  };
  // The last summary comes when its window ends, without another datagram.
  ASSERT_TRUE(runUntil([&] { return m.suppressedLines() > 0 && summarized() == m.suppressedLines(); }, 3000ms))
      << "no summary line for the last window";
  // Every forged datagram is accounted for: logged, or counted in a summary.
  EXPECT_EQ(static_cast<std::uint64_t>(count("not the kernel")) + summarized(), kRounds * kPerRound);
  EXPECT_EQ(m.snapshot().links.count(4242), 0U);
}

TEST_F(LinkMonitorTest, DestroyedWithPendingWaitIsSafe) {
  {
    NetlinkLinkMonitor m(io_);
    m.start([&] { ++changes_; });
  }  // destroyed before the io_context ran its handlers
  sh("ip tuntap add dev ipop mode tap");
  io_.poll();  // the aborted handlers run now and must do nothing
  EXPECT_EQ(changes_, 0);
}

}  // namespace
}  // namespace ipopsec
