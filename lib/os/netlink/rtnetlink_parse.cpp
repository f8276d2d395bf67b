#include "os/netlink/rtnetlink_parse.hpp"

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
