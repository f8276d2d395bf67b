#include "os/netlink/rtnetlink.hpp"

#include <errno.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

// After <net/if.h>: linux/libc-compat.h then only adds what glibc lacks (IFF_LOWER_UP).
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>

#include "os/netlink/netlink.hpp"

namespace ipopsec::rtnl {
namespace {

using netlink::Bytes;
using netlink::load;

std::string typeName(std::uint16_t type) {
  switch (type) {
    case NLMSG_NOOP: return "NLMSG_NOOP";
    case NLMSG_ERROR: return "NLMSG_ERROR";
    case NLMSG_DONE: return "NLMSG_DONE";
    case NLMSG_OVERRUN: return "NLMSG_OVERRUN";
    case RTM_NEWLINK: return "RTM_NEWLINK";
    case RTM_DELLINK: return "RTM_DELLINK";
    case RTM_NEWADDR: return "RTM_NEWADDR";
    case RTM_DELADDR: return "RTM_DELADDR";
    default: return "type " + std::to_string(type);
  }
}

// All attributes of `b` (the netlink layer's walk), or why they are malformed.
std::optional<std::string> parseAttrs(Bytes b, std::vector<netlink::Attribute>& out) {
  netlink::Attributes walk(b);
  netlink::Attribute a;
  while (walk.next(a)) out.push_back(a);
  if (walk.error().empty()) return std::nullopt;
  return walk.error();
}

class Applier {
 public:
  Applier(NetSnapshot& snap, ParseResult& r) : snap_(snap), r_(r) {}

  // Walks the messages; stops at a header that can't be trusted.
  void run(Bytes buf) {
    netlink::Messages walk(buf);
    netlink::Message m;
    std::size_t n = 0;
    while (walk.next(m)) {
      ++n;
      ++r_.messages;
      if (m.header.nlmsg_flags & NLM_F_DUMP_INTR) r_.dumpInterrupted = true;
      one(n, m);
    }
    if (!walk.error().empty()) skip(n + 1, walk.errorType() ? typeName(*walk.errorType()) : "", walk.error());
  }

 private:
  void skip(std::size_t n, const std::string& type, const std::string& why) {
    std::string line = "message " + std::to_string(n);
    if (!type.empty()) line += " (" + type + ")";
    r_.skipped.push_back(line + ": " + why);
  }

  void one(std::size_t n, const netlink::Message& m) {
    const nlmsghdr& h = m.header;
    const Bytes p = m.payload;
    const auto c = netlink::classify(m);
    switch (c.kind) {
      case netlink::Kind::noop:
      case netlink::Kind::ack: return;  // 0 in an NLMSG_ERROR is an ACK
      case netlink::Kind::overrun: r_.overrun = true; return;
      case netlink::Kind::done:
        // A dump's DONE carries the dump's final status (negative errno on failure).
        r_.sawDone = true;
        if (c.error != 0) {
          r_.sawError = true;
          r_.errorCode = c.error;
        }
        return;
      case netlink::Kind::error:
        r_.sawError = true;
        r_.errorCode = c.error;
        if (c.truncated) skip(n, "NLMSG_ERROR", "payload shorter than the error code");
        return;
      case netlink::Kind::data: break;
    }
    switch (h.nlmsg_type) {
      case RTM_NEWLINK:
      case RTM_DELLINK: return link(n, h, p);
      case RTM_NEWADDR:
      case RTM_DELADDR: return address(n, h, p);
      default: return;  // other rtnetlink traffic is not ours to interpret
    }
  }

  LinkState* findOrCreate(std::size_t n, const std::string& type, int index) {
    auto it = snap_.links.find(index);
    if (it != snap_.links.end()) return &it->second;
    if (snap_.links.size() >= kMaxLinks) {
      skip(n, type, "more than " + std::to_string(kMaxLinks) + " links; link " + std::to_string(index) +
                        " not recorded");
      return nullptr;
    }
    LinkState& l = snap_.links[index];
    l.index = index;
    r_.changed = true;
    return &l;
  }

  void link(std::size_t n, const nlmsghdr& h, Bytes p) {
    const std::string type = typeName(h.nlmsg_type);
    if (p.size() < sizeof(ifinfomsg)) return skip(n, type, "payload shorter than struct ifinfomsg");
    auto ifi = load<ifinfomsg>(p);
    if (ifi.ifi_family == AF_BRIDGE) return;  // bridge-port notification, not a link change
    if (ifi.ifi_index <= 0) return skip(n, type, "invalid ifindex " + std::to_string(ifi.ifi_index));

    std::vector<netlink::Attribute> attrs;
    if (auto err = parseAttrs(netlink::attributesAfter(p, sizeof(ifinfomsg)), attrs)) return skip(n, type, *err);

    std::optional<std::string> name;
    for (const auto& a : attrs) {
      if (a.type != IFLA_IFNAME) continue;
      const auto* s = reinterpret_cast<const char*>(a.payload.data());
      std::size_t len = a.payload.size();
      const void* nul = len ? std::memchr(s, '\0', std::min<std::size_t>(len, IFNAMSIZ)) : nullptr;
      if (!nul)
        return skip(n, type, "IFLA_IFNAME of " + std::to_string(len) + " bytes has no NUL within " +
                                 std::to_string(IFNAMSIZ) + " bytes");
      std::size_t nameLen = static_cast<std::size_t>(static_cast<const char*>(nul) - s);
      if (nameLen == 0) return skip(n, type, "IFLA_IFNAME is empty");
      name = std::string(s, nameLen);
    }

    if (h.nlmsg_type == RTM_DELLINK) {
      if (snap_.links.erase(ifi.ifi_index)) r_.changed = true;
      return;
    }
    LinkState* l = findOrCreate(n, type, ifi.ifi_index);
    if (!l) return;
    LinkState before = *l;
    if (name) l->name = *name;
    l->up = (ifi.ifi_flags & static_cast<unsigned>(IFF_UP)) != 0;
    l->running = (ifi.ifi_flags & static_cast<unsigned>(IFF_RUNNING)) != 0 ||
                 (ifi.ifi_flags & static_cast<unsigned>(IFF_LOWER_UP)) != 0;
    if (l->upWithCarrier() && !before.upWithCarrier()) ++l->upCount;
    if (!(before == *l)) r_.changed = true;  // (a new upCount comes with `up` or `running` changing)
  }

  void address(std::size_t n, const nlmsghdr& h, Bytes p) {
    const std::string type = typeName(h.nlmsg_type);
    if (p.size() < sizeof(ifaddrmsg)) return skip(n, type, "payload shorter than struct ifaddrmsg");
    auto ifa = load<ifaddrmsg>(p);
    Family fam;
    std::size_t want;
    if (ifa.ifa_family == AF_INET) {
      fam = Family::v4;
      want = 4;
    } else if (ifa.ifa_family == AF_INET6) {
      fam = Family::v6;
      want = 16;
    } else {
      return;  // other families (e.g. AF_MCTP) are not ours
    }
    const char* famName = fam == Family::v4 ? "IPv4" : "IPv6";
    if (ifa.ifa_prefixlen > want * 8)
      return skip(n, type, "prefix length " + std::to_string(ifa.ifa_prefixlen) + " is out of range for " +
                               famName);
    if (ifa.ifa_index == 0 || ifa.ifa_index > static_cast<std::uint32_t>(INT32_MAX))
      return skip(n, type, "invalid ifindex " + std::to_string(ifa.ifa_index));
    const int index = static_cast<int>(ifa.ifa_index);

    std::vector<netlink::Attribute> attrs;
    if (auto err = parseAttrs(netlink::attributesAfter(p, sizeof(ifaddrmsg)), attrs)) return skip(n, type, *err);

    std::optional<Bytes> local, address;
    for (const auto& a : attrs) {
      if (a.type != IFA_LOCAL && a.type != IFA_ADDRESS) continue;
      const char* an = a.type == IFA_LOCAL ? "IFA_LOCAL" : "IFA_ADDRESS";
      if (a.payload.size() != want)
        return skip(n, type, std::string(an) + " has " + std::to_string(a.payload.size()) + " bytes, want " +
                                 std::to_string(want) + " for " + famName);
      (a.type == IFA_LOCAL ? local : address) = a.payload;
    }
    // IFA_LOCAL is the interface's own address; on point-to-point links IFA_ADDRESS is the peer.
    std::optional<Bytes> chosen = local ? local : address;
    if (!chosen) return skip(n, type, "no IFA_LOCAL or IFA_ADDRESS attribute");

    Cidr c;
    c.address.family = fam;
    std::copy(chosen->begin(), chosen->end(), c.address.bytes.begin());
    c.prefix = ifa.ifa_prefixlen;

    if (h.nlmsg_type == RTM_DELADDR) {
      auto it = snap_.links.find(index);
      if (it == snap_.links.end()) return;
      auto& v = it->second.addresses;
      auto pos = std::lower_bound(v.begin(), v.end(), c);
      if (pos != v.end() && *pos == c) {
        v.erase(pos);
        r_.changed = true;
      }
      return;
    }
    LinkState* l = findOrCreate(n, type, index);
    if (!l) return;
    auto& v = l->addresses;
    auto pos = std::lower_bound(v.begin(), v.end(), c);
    if (pos != v.end() && *pos == c) return;
    if (v.size() >= kMaxAddressesPerLink)
      return skip(n, type, "link " + std::to_string(index) + " already has " +
                               std::to_string(kMaxAddressesPerLink) + " addresses; " + c.str() +
                               " not recorded");
    v.insert(pos, c);
    r_.changed = true;
  }

  NetSnapshot& snap_;
  ParseResult& r_;
};

}  // namespace

ParseResult applyMessages(std::span<const std::uint8_t> buf, NetSnapshot& snap) {
  ParseResult r;
  Applier(snap, r).run(buf);
  return r;
}

}  // namespace ipopsec::rtnl

namespace ipopsec {
namespace {

constexpr std::size_t kBufferBytes = 64 * 1024;
constexpr int kMaxDatagramsPerWakeup = 4096;  // bounds one drain so onChange can't starve
constexpr unsigned kImmediateRetries = 3;     // re-dumps in a row before backing off

}  // namespace

namespace rtnl {

LineRateLimit::Admission LineRateLimit::admit(Clock::time_point now) {
  Admission a;
  if (!started_ || now >= windowStart_ + window_ || now < windowStart_) {
    a.suppressedBefore = takeSuppressed();
    started_ = true;
    windowStart_ = now;
    inWindow_ = 0;
  }
  if (inWindow_ < perWindow_) {
    ++inWindow_;
    a.log = true;
  } else {
    a.firstSuppressed = pending_ == 0;
    ++pending_;
    ++suppressedTotal_;
  }
  return a;
}

std::string suppressedLine(std::uint64_t count, unsigned perSecond) {
  return "suppressed " + std::to_string(count) + " more malformed " + (count == 1 ? "message" : "messages") +
         " (at most " + std::to_string(perSecond) + " are logged per second; all are counted and skipped)";
}

}  // namespace rtnl

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

void NetlinkLinkMonitor::onReadable() {
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
  if (gen == generation_ && phase_ != Phase::stopped) armWait();
}

}  // namespace ipopsec
