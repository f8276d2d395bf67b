#include "os/rtnetlink.hpp"

#include <errno.h>
#include <fcntl.h>
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

namespace ipopsec::rtnl {
namespace {

using Bytes = std::span<const std::uint8_t>;

template <class T>
T load(Bytes b) {  // caller checked b.size() >= sizeof(T); memcpy: no alignment assumption
  T v;
  std::memcpy(&v, b.data(), sizeof(T));
  return v;
}

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

struct Attr {
  std::uint16_t type;
  Bytes data;
};

// Splits `b` into attributes. Returns an error text when one is malformed (length shorter
// than its header or running past the end); trailing padding (< 4 bytes) is tolerated.
std::optional<std::string> parseAttrs(Bytes b, std::vector<Attr>& out) {
  std::size_t off = 0;
  while (off < b.size() && b.size() - off >= sizeof(rtattr)) {
    auto a = load<rtattr>(b.subspan(off));
    if (a.rta_len < sizeof(rtattr))
      return "attribute " + std::to_string(a.rta_type) + " has length " + std::to_string(a.rta_len) +
             " (< " + std::to_string(sizeof(rtattr)) + ")";
    if (a.rta_len > b.size() - off)
      return "attribute " + std::to_string(a.rta_type) + " has length " + std::to_string(a.rta_len) +
             " but only " + std::to_string(b.size() - off) + " bytes remain";
    out.push_back(Attr{static_cast<std::uint16_t>(a.rta_type & NLA_TYPE_MASK),
                       b.subspan(off + RTA_LENGTH(0), a.rta_len - RTA_LENGTH(0))});
    off += RTA_ALIGN(a.rta_len);
  }
  return std::nullopt;
}

class Applier {
 public:
  Applier(NetSnapshot& snap, ParseResult& r) : snap_(snap), r_(r) {}

  // Walks the messages; stops at a header that can't be trusted.
  void run(Bytes buf) {
    std::size_t off = 0;
    std::size_t n = 0;
    while (off < buf.size()) {
      ++n;
      std::size_t remain = buf.size() - off;
      if (remain < sizeof(nlmsghdr)) {
        skip(n, "", std::to_string(remain) + " trailing bytes, shorter than a netlink header");
        return;
      }
      auto h = load<nlmsghdr>(buf.subspan(off));
      if (h.nlmsg_len < sizeof(nlmsghdr)) {
        skip(n, typeName(h.nlmsg_type), "nlmsg_len " + std::to_string(h.nlmsg_len) +
                                            " is shorter than the header; rest of the datagram dropped");
        return;
      }
      if (h.nlmsg_len > remain) {
        skip(n, typeName(h.nlmsg_type), "nlmsg_len " + std::to_string(h.nlmsg_len) + " exceeds the " +
                                            std::to_string(remain) + " bytes left; truncated");
        return;
      }
      ++r_.messages;
      if (h.nlmsg_flags & NLM_F_DUMP_INTR) r_.dumpInterrupted = true;
      Bytes payload = buf.subspan(off + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN);
      one(n, h, payload);
      off += std::min<std::size_t>(NLMSG_ALIGN(h.nlmsg_len), remain);
    }
  }

 private:
  void skip(std::size_t n, const std::string& type, const std::string& why) {
    std::string line = "message " + std::to_string(n);
    if (!type.empty()) line += " (" + type + ")";
    r_.skipped.push_back(line + ": " + why);
  }

  void one(std::size_t n, const nlmsghdr& h, Bytes p) {
    switch (h.nlmsg_type) {
      case NLMSG_NOOP: return;
      case NLMSG_OVERRUN: r_.overrun = true; return;
      case NLMSG_DONE:
        r_.sawDone = true;
        // A dump's DONE carries the dump's final status (negative errno on failure).
        if (p.size() >= sizeof(int)) {
          int status = load<int>(p);
          if (status < 0) {
            r_.sawError = true;
            r_.errorCode = status == INT32_MIN ? EINVAL : -status;
          }
        }
        return;
      case NLMSG_ERROR: {
        if (p.size() < sizeof(int)) return skip(n, "NLMSG_ERROR", "payload shorter than the error code");
        int err = load<int>(p);
        if (err != 0) {  // 0 is an ACK
          r_.sawError = true;
          r_.errorCode = err == INT32_MIN ? EINVAL : (err < 0 ? -err : err);
        }
        return;
      }
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

    std::vector<Attr> attrs;
    std::size_t at = std::min<std::size_t>(NLMSG_ALIGN(sizeof(ifinfomsg)), p.size());
    if (auto err = parseAttrs(p.subspan(at), attrs)) return skip(n, type, *err);

    std::optional<std::string> name;
    for (const auto& a : attrs) {
      if (a.type != IFLA_IFNAME) continue;
      const auto* s = reinterpret_cast<const char*>(a.data.data());
      std::size_t len = a.data.size();
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
    if (!(before == *l)) r_.changed = true;
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

    std::vector<Attr> attrs;
    std::size_t at = std::min<std::size_t>(NLMSG_ALIGN(sizeof(ifaddrmsg)), p.size());
    if (auto err = parseAttrs(p.subspan(at), attrs)) return skip(n, type, *err);

    std::optional<Bytes> local, address;
    for (const auto& a : attrs) {
      if (a.type != IFA_LOCAL && a.type != IFA_ADDRESS) continue;
      const char* an = a.type == IFA_LOCAL ? "IFA_LOCAL" : "IFA_ADDRESS";
      if (a.data.size() != want)
        return skip(n, type, std::string(an) + " has " + std::to_string(a.data.size()) + " bytes, want " +
                                 std::to_string(want) + " for " + famName);
      (a.type == IFA_LOCAL ? local : address) = a.data;
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

std::error_code lastError() { return {errno, std::system_category()}; }

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
  socket_.open(boost::asio::generic::raw_protocol(AF_NETLINK, NETLINK_ROUTE), ec);
  if (ec) return {ec.value(), std::system_category()};
  const int fd = socket_.native_handle();
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return lastError();

  if (options_.receiveBufferBytes > 0) {
    int size = options_.receiveBufferBytes;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0 &&
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) != 0)
      return lastError();
  }
  // NETLINK_NO_ENOBUFS stays off: an overflow must be reported so that we re-dump.

  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  socket_.bind(boost::asio::generic::raw_protocol::endpoint(&sa, sizeof sa), ec);
  if (ec) return {ec.value(), std::system_category()};
  socket_.non_blocking(true, ec);
  if (ec) return {ec.value(), std::system_category()};
  return {};
}

std::error_code NetlinkLinkMonitor::requestDump(std::uint16_t type) {
  // Header + the family struct of the request (AF_UNSPEC: all families).
  alignas(nlmsghdr) std::uint8_t req[NLMSG_SPACE(sizeof(ifinfomsg))]{};
  const std::size_t body = type == RTM_GETLINK ? sizeof(ifinfomsg) : sizeof(ifaddrmsg);
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(body));
  h.nlmsg_type = type;
  h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  h.nlmsg_seq = ++seq_;
  std::memcpy(req, &h, sizeof h);  // the family byte after it stays 0 = AF_UNSPEC

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  while (true) {
    ssize_t n = ::sendto(socket_.native_handle(), req, h.nlmsg_len, 0,
                         reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
    if (n >= 0) return {};
    if (errno != EINTR) return lastError();
  }
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
    sockaddr_nl from{};
    iovec iov{buffer_.data(), buffer_.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (err == ENOBUFS) {
        restartDump("receive queue overflowed (ENOBUFS), the kernel dropped events");
      } else {
        restartDump("recv failed: " + std::error_code(err, std::system_category()).message() +
                    "; reopening the socket");
      }
      return;
    }
    if (msg.msg_flags & MSG_TRUNC) {
      restartDump("a datagram larger than " + std::to_string(buffer_.size()) +
                  " bytes was truncated");
      return;
    }
    if (msg.msg_namelen < sizeof(sockaddr_nl) || from.nl_family != AF_NETLINK || from.nl_pid != 0) {
      ++skipped_;
      logSkipped("ignored a datagram of " + std::to_string(n) + " bytes from port id " +
                 std::to_string(from.nl_pid) + " (not the kernel)");
      continue;
    }
    ++datagrams_;

    const bool following = phase_ == Phase::following;
    NetSnapshot& target = following ? snapshot_ : building_;
    auto r = rtnl::applyMessages(std::span<const std::uint8_t>(buffer_.data(), static_cast<std::size_t>(n)),
                                 target);
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
