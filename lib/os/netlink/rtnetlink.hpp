#pragma once
// rtnetlink: the node's links and addresses, as the kernel reports them.
//
//  - rtnl::applyMessages (rtnetlink_parse.hpp): a pure, bounds-checked parser that applies one
//    datagram's worth of rtnetlink messages to a NetSnapshot; the log of what it skips is
//    bounded by rtnl::LineRateLimit (line_rate_limit.hpp).
//  - NetlinkLinkMonitor: the real LinkMonitor adapter. One NETLINK_ROUTE socket on the
//    daemon's io_context: subscribe, dump links then addresses, then follow the events.
//
// Dump consistency (why events that arrive during a dump are applied, not ignored):
// the kernel appends dump parts and multicast events to the socket's one receive queue in
// the order it produces them, and a dump part shows the state at the moment it is produced.
// So an event received before a dump part is already reflected in that part (the part
// overwrites it with the same or newer state), and an event received after a part happened
// after the part was taken and must be applied on top. Applying every message, dump parts and
// events alike, in receive order, to the snapshot being built therefore ends with the
// current state. Ignoring events during the dump would lose those that touch an object the
// dump had already passed (a link created after the link dump but before the address dump,
// an address removed from a link already dumped). What a dump cannot do is remove entries,
// so every (re-)dump starts from an empty snapshot on a freshly opened socket (no stale
// queue, no half-finished dump), and is swapped in as a whole when the address dump ends.
// A dump whose parts carry NLM_F_DUMP_INTR (the kernel's list changed between parts, so an
// entry may have been skipped), that ends with an error, or that is disturbed by ENOBUFS or a
// truncated datagram, is started again from scratch.
//
// Ignored on purpose (not errors): link messages of family AF_BRIDGE (bridge-port
// notifications share RTMGRP_LINK; their DELLINK means "left the bridge", not "deleted"),
// address families other than AF_INET/AF_INET6, and message types other than links/addresses.

#include <utility>

#include <boost/asio/generic/raw_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "core/policy/net_state.hpp"
#include "os/netlink/line_rate_limit.hpp"
#include "os/netlink/rtnetlink_parse.hpp"
#include "core/ports.hpp"


namespace ipopsec {

// Thrown by NetlinkLinkMonitor::start when the netlink socket can't be opened or bound.
class NetlinkError : public std::system_error {
 public:
  using std::system_error::system_error;
};

struct NetlinkMonitorOptions {
  // SO_RCVBUFFORCE (root) or SO_RCVBUF (capped by net.core.rmem_max). The kernel doubles it.
  // Tests make it tiny to provoke ENOBUFS.
  int receiveBufferBytes = 1 << 20;
};

class NetlinkLinkMonitor final : public LinkMonitor {
 public:
  explicit NetlinkLinkMonitor(boost::asio::io_context& io, NetlinkMonitorOptions options = {});
  ~NetlinkLinkMonitor() override;
  NetlinkLinkMonitor(const NetlinkLinkMonitor&) = delete;
  NetlinkLinkMonitor& operator=(const NetlinkLinkMonitor&) = delete;

  // Opens and binds the socket (throws NetlinkError if it can't), requests the link dump, and
  // returns. `onChange` runs on the io_context once the first full dump is in snapshot(), then
  // once per drained batch of messages that changed the snapshot, and after every re-dump.
  // Do not destroy the monitor from inside onChange (stop() from inside is fine).
  void start(std::function<void()> onChange) override;
  // Cancels and closes; no callback runs after it. snapshot() keeps the last picture.
  void stop() override;
  const NetSnapshot& snapshot() const override { return snapshot_; }
  // Reads what the socket already holds (non-blocking) while following; onChange as above.
  void drain() override;

  // Diagnostics.
  std::uint64_t redumps() const { return redumps_; }    // dumps redone (ENOBUFS, DUMP_INTR, errors)
  std::uint64_t skipped() const { return skipped_; }    // messages/datagrams skipped
  std::uint64_t datagrams() const { return datagrams_; }  // datagrams received from the kernel
  bool synced() const { return phase_ == Phase::following; }  // a full dump is in snapshot()

  // Lines about skipped messages are rate-limited (kMaxSkipLinesPerSecond, then one
  // "suppressed N more malformed messages" line per second); this counts the ones dropped.
  std::uint64_t suppressedLines() const { return skipLines_.suppressedTotal(); }
  static constexpr unsigned kMaxSkipLinesPerSecond = 10;

  // Called with each human line about skipped messages / re-dumps (the daemon logs them).
  void setLogger(std::function<void(const std::string&)> log) { log_ = std::move(log); }

 private:
  enum class Phase { stopped, dumpingLinks, dumpingAddresses, following };

  std::error_code openSocket();
  std::error_code requestDump(std::uint16_t type);
  void beginDump();                        // fresh socket, empty snapshot, link dump
  void restartDump(const std::string& why);  // counts a re-dump, backs off when it repeats
  void armWait();
  void onReadable(bool rearm = true);  // rearm: wait again (not from drain(): a wait is armed)
  void log(const std::string& line) const;
  void logSkipped(const std::string& line);  // rate-limited (skipLines_)
  void reportSuppressed();

  NetlinkMonitorOptions options_;
  boost::asio::generic::raw_protocol::socket socket_;
  boost::asio::steady_timer retryTimer_;
  boost::asio::steady_timer summaryTimer_;  // the end of a window in which lines were dropped
  rtnl::LineRateLimit skipLines_{kMaxSkipLinesPerSecond};
  std::function<void()> onChange_;
  std::function<void(const std::string&)> log_;
  std::vector<std::uint8_t> buffer_;

  Phase phase_ = Phase::stopped;
  NetSnapshot snapshot_;   // last complete picture (what snapshot() returns)
  NetSnapshot building_;   // the dump in progress
  bool dumpInterrupted_ = false;
  std::uint32_t seq_ = 0;
  std::uint64_t generation_ = 0;  // bumped on every open/stop: stale handlers do nothing
  unsigned consecutiveFailures_ = 0;
  std::uint64_t redumps_ = 0;
  std::uint64_t skipped_ = 0;
  std::uint64_t datagrams_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // handlers hold a weak_ptr
};

}  // namespace ipopsec
