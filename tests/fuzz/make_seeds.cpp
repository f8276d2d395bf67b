// Regenerates the binary seed corpora (rtnl, xfrm_policy, xfrm_state) from what the real
// kernel sends, inside a private network namespace (root). Not run by the tests: the
// seeds it wrote are committed. Usage: make_seeds CORPUS_DIR
//   rtnl/        link and address dumps and NEWADDR/DELADDR/NEWLINK/DELLINK events
//   xfrm_policy/ policy dumps (v4, v6, exclusions, ICMPv6 types, foreign shapes); first byte
//                is the fuzz target's selector byte
//   xfrm_state/  a hand-built larval state (the kernel here has no ESP, so no real SA)
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;

void run(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
}

void save(const std::string& path, const Bytes& b, std::uint8_t prefix = 0, bool withPrefix = false) {
  std::ofstream out(path, std::ios::binary);
  if (withPrefix) out.put(static_cast<char>(prefix));
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

int openNl(int proto, std::uint32_t groups) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
  if (fd < 0) throw std::runtime_error("socket");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) throw std::runtime_error("bind");
  return fd;
}

// Every datagram until NLMSG_DONE, concatenated.
Bytes dump(int fd, std::uint16_t type, const void* payload, std::size_t plen, std::uint32_t seq) {
  Bytes req(NLMSG_SPACE(plen), 0);
  auto* h = reinterpret_cast<nlmsghdr*>(req.data());
  h->nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(plen));
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  h->nlmsg_seq = seq;
  if (plen) std::memcpy(NLMSG_DATA(h), payload, plen);
  if (::send(fd, req.data(), h->nlmsg_len, 0) < 0) throw std::runtime_error("send");
  Bytes all;
  for (;;) {
    Bytes buf(1 << 16);
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) throw std::runtime_error("recv");
    buf.resize(static_cast<std::size_t>(n));
    all.insert(all.end(), buf.begin(), buf.end());
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(m, static_cast<unsigned>(n)); m = NLMSG_NEXT(m, n))
      if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR) return all;
  }
}

// Multicast datagrams that arrive within `ms`.
std::vector<Bytes> drain(int fd, int ms) {
  std::vector<Bytes> out;
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, ms) > 0) {
    Bytes buf(1 << 16);
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    buf.resize(static_cast<std::size_t>(n));
    out.push_back(buf);
  }
  return out;
}

Bytes larvalState(int family, const char* src, const char* dst, std::uint32_t seq) {
  xfrm_usersa_info info{};
  info.family = static_cast<std::uint16_t>(family);
  info.sel.family = static_cast<std::uint16_t>(family);
  ::inet_pton(family, src, &info.saddr);
  ::inet_pton(family, dst, &info.id.daddr);
  info.sel.prefixlen_s = info.sel.prefixlen_d = family == AF_INET ? 32 : 128;
  ::inet_pton(family, src, &info.sel.saddr);
  ::inet_pton(family, dst, &info.sel.daddr);
  info.id.proto = IPPROTO_ESP;
  info.seq = seq;
  info.mode = XFRM_MODE_TRANSPORT;
  Bytes b(NLMSG_SPACE(sizeof info), 0);
  auto* h = reinterpret_cast<nlmsghdr*>(b.data());
  h->nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof info));
  h->nlmsg_type = XFRM_MSG_NEWSA;
  h->nlmsg_flags = NLM_F_MULTI;
  std::memcpy(NLMSG_DATA(h), &info, sizeof info);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  if (::unshare(CLONE_NEWNET) != 0) {
    std::perror("unshare(CLONE_NEWNET) (needs root)");
    return 1;
  }
  run("mkdir -p " + dir + "/rtnl " + dir + "/xfrm_policy " + dir + "/xfrm_state");
  run("ip link set lo up && ip link add eth0 type veth peer name lan0 && ip addr add 192.168.1.5/24 dev eth0");

  // rtnetlink: events while a tap comes and goes, then dumps.
  int ev = openNl(NETLINK_ROUTE, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR);
  run("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop && "
      "ip -6 addr add fd50::16/64 dev ipop nodad && ip addr add 10.77.0.16/16 dev ipop && ip addr del 10.254.0.16/16 dev ipop");
  auto events = drain(ev, 100);
  Bytes joined;
  for (std::size_t i = 0; i < events.size(); ++i) {
    joined.insert(joined.end(), events[i].begin(), events[i].end());
    if (i + 1 < events.size()) joined.insert(joined.end(), {0xFF, 0xFE, 0xFD, 0xFC});  // the target's datagram marker
  }
  save(dir + "/rtnl/events_tap_up_move", joined);
  int q = openNl(NETLINK_ROUTE, 0);
  rtgenmsg g{};
  g.rtgen_family = AF_UNSPEC;
  save(dir + "/rtnl/dump_links", dump(q, RTM_GETLINK, &g, sizeof g, 1));
  save(dir + "/rtnl/dump_addresses", dump(q, RTM_GETADDR, &g, sizeof g, 2));
  run("ip link del ipop");
  auto gone = drain(ev, 100);
  Bytes del;
  for (auto& d : gone) del.insert(del.end(), d.begin(), d.end());
  save(dir + "/rtnl/events_tap_deleted", del);

  // XFRM policies: what the daemon installs, and foreign shapes it must not misread.
  run("ip xfrm policy add src 10.254.0.0/16 dst 10.254.0.0/16 dir out priority 250000 tmpl proto esp mode transport level required");
  run("ip xfrm policy add src 10.254.0.0/16 dst 10.254.0.0/16 dir in priority 250000 tmpl proto esp mode transport level use");
  run("ip xfrm policy add src 10.254.0.0/16 dst 10.254.0.1/32 dir out priority 1000");
  run("ip xfrm policy add src fd50::/64 dst fd50::/64 proto ipv6-icmp type 135 dir out priority 1000");
  run("ip xfrm policy add src fd50::/64 dst fd50::/64 dir fwd priority 250000 tmpl proto esp mode transport");
  run("ip xfrm policy add src 10.9.0.0/16 dst 10.9.0.0/16 dir out priority 7 action block");
  run("ip xfrm policy add src 10.8.0.0/16 dst 10.8.0.0/16 proto tcp sport 22 dir out priority 250000 mark 5 "
      "tmpl src 1.1.1.1 dst 2.2.2.2 proto esp mode tunnel reqid 9");
  int x = openNl(NETLINK_XFRM, 0);
  Bytes policies = dump(x, XFRM_MSG_GETPOLICY, nullptr, 0, 7);
  save(dir + "/xfrm_policy/dump_mixed_seq0", policies, 1, true);
  save(dir + "/xfrm_policy/dump_mixed_seq7", policies, 0, true);

  Bytes states = larvalState(AF_INET, "10.254.0.16", "10.254.0.17", 5);
  Bytes v6 = larvalState(AF_INET6, "fd50::16", "fd50::17", 6);
  states.insert(states.end(), v6.begin(), v6.end());
  save(dir + "/xfrm_state/larval_v4_v6", states, 1, true);
  std::printf("seeds written to %s\n", dir.c_str());
  return 0;
}
