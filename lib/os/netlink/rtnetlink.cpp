#include "os/netlink/rtnetlink.hpp"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "os/netlink/netlink.hpp"

namespace ipopsec {
namespace {

constexpr std::size_t kBufferBytes = 64 * 1024;
constexpr int kMaxDatagramsPerWakeup = 4096;  // bounds one drain so onChange can't starve
constexpr unsigned kImmediateRetries = 3;     // re-dumps in a row before backing off

}  // namespace

NetlinkLinkMonitor::NetlinkLinkMonitor(boost::asio::io_context& io, NetlinkMonitorOptions options)
    : options_(options), socket_(io), retryTimer_(io), summaryTimer_(io), buffer_(kBufferBytes) {}

NetlinkLinkMonitor::~NetlinkLinkMonitor() { stop(); }

void NetlinkLinkMonitor::log(const std::string& line) const {
  if (log_) log_(line);
}

void NetlinkLinkMonitor::logSkipped(const std::string& line) {
  auto a = skipLines_.admit(rtnl::LineRateLimit::Clock::now());
  if (a.suppressedBefore > 0) log(rtnl::suppressedLine(a.suppressedBefore, skipLines_.perWindow()));
  if (a.log) {
    log(line);
    return;
  }
  if (!a.firstSuppressed) return;
  // The summary is due when the window ends, even if the flood stops now.
  summaryTimer_.expires_at(skipLines_.windowEnd());
  summaryTimer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
    if (alive.expired() || ec) return;
    reportSuppressed();
  });
}

void NetlinkLinkMonitor::reportSuppressed() {
  if (auto n = skipLines_.takeSuppressed(); n > 0) log(rtnl::suppressedLine(n, skipLines_.perWindow()));
}

std::error_code NetlinkLinkMonitor::openSocket() {
  boost::system::error_code ec;
  ++generation_;
  socket_.close(ec);
  netlink::SocketOptions o;
  o.protocol = NETLINK_ROUTE;
  o.groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  o.receiveBufferBytes = options_.receiveBufferBytes;
  netlink::Socket s;
  if (auto err = s.open(o)) return err;
  socket_.assign(boost::asio::generic::raw_protocol(AF_NETLINK, NETLINK_ROUTE), s.fd(), ec);
  if (ec) return {ec.value(), std::system_category()};
  s.release();  // the Asio socket owns it now
  socket_.non_blocking(true, ec);
  if (ec) return {ec.value(), std::system_category()};
  return {};
}

std::error_code NetlinkLinkMonitor::requestDump(std::uint16_t type) {
  // Header + the family struct of the request (AF_UNSPEC: all families).
  netlink::MessageBuilder b(type, NLM_F_REQUEST | NLM_F_DUMP, ++seq_);
  const auto req = type == RTM_GETLINK ? b.put(ifinfomsg{}).finish() : b.put(ifaddrmsg{}).finish();
  return netlink::sendToKernel(socket_.native_handle(), req);
}

void NetlinkLinkMonitor::beginDump() {
  retryTimer_.cancel();
  if (auto ec = openSocket()) {
    restartDump("cannot open the rtnetlink socket: " + ec.message());
    return;
  }
  building_ = NetSnapshot{};
  dumpInterrupted_ = false;
  phase_ = Phase::dumpingLinks;
  if (auto ec = requestDump(RTM_GETLINK)) {
    restartDump("link dump request failed: " + ec.message());
    return;
  }
  armWait();
}

void NetlinkLinkMonitor::restartDump(const std::string& why) {
  boost::system::error_code ignored;
  ++generation_;  // whatever is pending on the old socket is now stale
  socket_.close(ignored);
  ++redumps_;
  ++consecutiveFailures_;
  if (consecutiveFailures_ <= kImmediateRetries) {
    log(why + "; re-dumping links and addresses");
    beginDump();
    return;
  }
  // Something keeps failing: back off (100 ms doubling, at most 5 s) instead of spinning.
  const unsigned doublings = std::min(consecutiveFailures_ - kImmediateRetries - 1, 6U);
  const auto delay = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(100L << doublings),
                                                         std::chrono::seconds(5));
  log(why + "; re-dumping in " + std::to_string(delay.count()) + " ms (" +
      std::to_string(consecutiveFailures_) + " failures in a row)");
  retryTimer_.expires_after(delay);
  retryTimer_.async_wait([this, gen = generation_, alive = std::weak_ptr<int>(alive_)](
                             const boost::system::error_code& ec) {
    if (alive.expired() || ec || gen != generation_ || phase_ == Phase::stopped) return;
    beginDump();
  });
}

void NetlinkLinkMonitor::start(std::function<void()> onChange) {
  stop();
  onChange_ = std::move(onChange);
  consecutiveFailures_ = 0;
  if (auto ec = openSocket()) {
    boost::system::error_code ignored;
    socket_.close(ignored);
    throw NetlinkError(ec, "opening the rtnetlink socket");
  }
  building_ = NetSnapshot{};
  dumpInterrupted_ = false;
  phase_ = Phase::dumpingLinks;
  if (auto ec = requestDump(RTM_GETLINK)) {
    stop();
    throw NetlinkError(ec, "requesting the rtnetlink link dump");
  }
  armWait();
}

void NetlinkLinkMonitor::stop() {
  ++generation_;
  phase_ = Phase::stopped;
  retryTimer_.cancel();
  summaryTimer_.cancel();
  reportSuppressed();  // what the cancelled timer would have said
  boost::system::error_code ignored;
  socket_.close(ignored);
  building_ = NetSnapshot{};
}

void NetlinkLinkMonitor::armWait() {
  socket_.async_wait(boost::asio::socket_base::wait_read,
                     [this, gen = generation_, alive = std::weak_ptr<int>(alive_)](
                         const boost::system::error_code& ec) {
                       if (alive.expired()) return;
                       if (gen != generation_ || phase_ == Phase::stopped) return;
                       if (ec == boost::asio::error::operation_aborted) return;
                       if (ec) {
                         restartDump("waiting on the socket failed: " + ec.message());
                         return;
                       }
                       onReadable();
                     });
}

void NetlinkLinkMonitor::drain() {
  if (phase_ == Phase::following) onReadable(false);
}

void NetlinkLinkMonitor::onReadable(bool rearm) {
  const std::uint64_t gen = generation_;
  bool changed = false;
  bool dumpCompleted = false;

  for (int i = 0; i < kMaxDatagramsPerWakeup; ++i) {
    netlink::Datagram d;
    if (auto ec = netlink::receive(socket_.native_handle(), buffer_, d, true)) {
      const int err = ec.value();
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (err == ENOBUFS) {
        restartDump("receive queue overflowed (ENOBUFS), the kernel dropped events");
      } else {
        restartDump("recv failed: " + ec.message() + "; reopening the socket");
      }
      return;
    }
    if (d.truncated) {
      restartDump("a datagram larger than " + std::to_string(buffer_.size()) +
                  " bytes was truncated");
      return;
    }
    if (!d.fromKernel) {
      ++skipped_;
      logSkipped("ignored a datagram of " + std::to_string(d.size) + " bytes from port id " +
                 std::to_string(d.port) + " (not the kernel)");
      continue;
    }
    ++datagrams_;

    const bool following = phase_ == Phase::following;
    NetSnapshot& target = following ? snapshot_ : building_;
    auto r = rtnl::applyMessages(std::span<const std::uint8_t>(buffer_.data(), d.size), target);
    for (const auto& line : r.skipped) {
      ++skipped_;
      logSkipped("skipped " + line);
    }
    if (following) {
      changed = changed || r.changed;
      if (r.sawError || r.overrun)  // nothing of ours is outstanding: report, keep following
        logSkipped("unexpected " + std::string(r.overrun ? "overrun" : "error: ") +
            (r.overrun ? "" : std::error_code(r.errorCode, std::system_category()).message()));
      continue;
    }

    // A dump is in progress: dump parts and events are applied alike, in order (see header).
    const char* what = phase_ == Phase::dumpingLinks ? "link" : "address";
    if (r.sawError || r.overrun) {
      restartDump(std::string("the ") + what + " dump failed: " +
                  (r.overrun ? std::string("overrun")
                             : std::error_code(r.errorCode, std::system_category()).message()));
      return;
    }
    dumpInterrupted_ = dumpInterrupted_ || r.dumpInterrupted;
    if (!r.sawDone) continue;
    if (dumpInterrupted_) {
      restartDump(std::string("the ") + what + " dump was interrupted by changes (NLM_F_DUMP_INTR)");
      return;
    }
    if (phase_ == Phase::dumpingLinks) {
      phase_ = Phase::dumpingAddresses;
      if (auto ec = requestDump(RTM_GETADDR)) {
        restartDump("address dump request failed: " + ec.message());
        return;
      }
      continue;
    }
    // A re-dump (after an overflow) starts each link's upCount afresh: carry the count on,
    // so that only a real coming up (to up with carrier, seen now) counts as one.
    for (auto& [index, link] : building_.links) {
      auto old = snapshot_.links.find(index);
      if (old == snapshot_.links.end()) continue;
      link.upCount = old->second.upCount + ((link.upWithCarrier() && !old->second.upWithCarrier()) ? 1 : 0);
    }
    snapshot_ = std::move(building_);
    building_ = NetSnapshot{};
    phase_ = Phase::following;
    consecutiveFailures_ = 0;
    dumpCompleted = true;
  }

  if (phase_ == Phase::following && (changed || dumpCompleted) && onChange_) {
    std::weak_ptr<int> alive = alive_;
    onChange_();
    if (alive.expired()) return;
  }
  if (rearm && gen == generation_ && phase_ != Phase::stopped) armWait();
}

}  // namespace ipopsec
