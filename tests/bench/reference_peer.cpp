// The reaction-latency reference for scripts/bench latency: the least a program can do to
// turn IPOP's address into the range's ESP policies. One tight loop, no checks, no
// configuration, no state, no files, no logging: rtnetlink (RTM_NEWADDR / RTM_DELADDR on
// IPv4) -> XFRM. On a NEWADDR on the tap it computes the range R (address & prefix) and sends
// the same four policies ipop-ipsecd installs for a range, in its order (out R -> R, out
// any -> R, in R -> R, in any -> R; XFRM_MSG_UPDPOLICY, priority 250000, ESP transport
// required) in ONE sendmsg; the acks are read after. On a DELADDR it deletes the four the
// same way (the benchmark's change cycle needs the old range gone). ipopsec_bench runs it
// under the same observer, in the same run, as the daemon.
//   ipopsec_reference TAP
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

struct PolicyMsg {  // XFRM_MSG_UPDPOLICY: info + one template
  nlmsghdr h;
  xfrm_userpolicy_info info;
  nlattr a;
  xfrm_user_tmpl tmpl;
};
// The request ends with the template (no trailing struct padding: the kernel would warn).
constexpr unsigned kPolicyLen = offsetof(PolicyMsg, tmpl) + sizeof(xfrm_user_tmpl);
static_assert(offsetof(PolicyMsg, info) == NLMSG_HDRLEN);
static_assert(offsetof(PolicyMsg, a) == NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(xfrm_userpolicy_info)));
static_assert(offsetof(PolicyMsg, tmpl) == offsetof(PolicyMsg, a) + NLA_HDRLEN && kPolicyLen % 4 == 0);
struct DeleteMsg {  // XFRM_MSG_DELPOLICY: selector and direction
  nlmsghdr h;
  xfrm_userpolicy_id id;
};

// R -> R (fromAny false) or any -> R
xfrm_selector selector(std::uint32_t net, unsigned prefix, bool fromAny) {
  xfrm_selector s{};
  if (!fromAny) std::memcpy(&s.saddr, &net, 4);
  std::memcpy(&s.daddr, &net, 4);
  s.prefixlen_s = static_cast<std::uint8_t>(fromAny ? 0 : prefix);
  s.prefixlen_d = static_cast<std::uint8_t>(prefix);
  s.family = AF_INET;
  return s;
}

void fillPolicy(PolicyMsg& m, const xfrm_selector& sel, std::uint8_t dir, std::uint32_t seq) {
  std::memset(&m, 0, sizeof m);
  m.h.nlmsg_len = kPolicyLen;
  m.h.nlmsg_type = XFRM_MSG_UPDPOLICY;
  m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  m.h.nlmsg_seq = seq;
  m.info.sel = sel;
  m.info.lft.soft_byte_limit = m.info.lft.hard_byte_limit = XFRM_INF;
  m.info.lft.soft_packet_limit = m.info.lft.hard_packet_limit = XFRM_INF;
  m.info.priority = 250000;
  m.info.dir = dir;
  m.info.action = XFRM_POLICY_ALLOW;
  m.info.share = XFRM_SHARE_ANY;
  m.a.nla_len = NLA_HDRLEN + sizeof m.tmpl;
  m.a.nla_type = XFRMA_TMPL;
  m.tmpl.id.proto = IPPROTO_ESP;
  m.tmpl.family = AF_INET;
  m.tmpl.mode = XFRM_MODE_TRANSPORT;
  m.tmpl.share = XFRM_SHARE_ANY;
  m.tmpl.aalgos = m.tmpl.ealgos = m.tmpl.calgos = ~0U;
}

void fillDelete(DeleteMsg& m, const xfrm_selector& sel, std::uint8_t dir, std::uint32_t seq) {
  std::memset(&m, 0, sizeof m);
  m.h.nlmsg_len = sizeof m;
  m.h.nlmsg_type = XFRM_MSG_DELPOLICY;
  m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  m.h.nlmsg_seq = seq;
  m.id.sel = sel;
  m.id.dir = dir;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: ipopsec_reference TAP\n");
    return 2;
  }
  const unsigned tap = if_nametoindex(argv[1]);
  int rt = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  int xf = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_IPV4_IFADDR;
  bind(rt, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  static char buf[1 << 16], acks[1 << 12];
  std::uint32_t seq = 0;
  for (;;) {
    ssize_t n = recv(rt, buf, sizeof buf, 0);
    if (n <= 0) continue;
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != RTM_NEWADDR && h->nlmsg_type != RTM_DELADDR) continue;
      auto* ifa = static_cast<ifaddrmsg*>(NLMSG_DATA(h));
      if (ifa->ifa_index != tap) continue;
      int len = static_cast<int>(IFA_PAYLOAD(h));
      for (auto* a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type != IFA_LOCAL) continue;
        std::uint32_t addr;
        std::memcpy(&addr, RTA_DATA(a), 4);
        const std::uint32_t mask = ifa->ifa_prefixlen == 0 ? 0 : htonl(~0U << (32 - ifa->ifa_prefixlen));
        constexpr int kPolicies = 4;
        iovec iov[kPolicies];
        PolicyMsg pol[kPolicies];
        DeleteMsg del[kPolicies];
        for (int d = 0; d < kPolicies; ++d) {
          const std::uint8_t dir = d < 2 ? XFRM_POLICY_OUT : XFRM_POLICY_IN;
          const xfrm_selector sel = selector(addr & mask, ifa->ifa_prefixlen, d % 2 == 1);
          if (h->nlmsg_type == RTM_NEWADDR) {
            fillPolicy(pol[d], sel, dir, ++seq);
            iov[d] = {&pol[d], kPolicyLen};
          } else {
            fillDelete(del[d], sel, dir, ++seq);
            iov[d] = {&del[d], sizeof del[d]};
          }
        }
        // The four requests in one datagram (one sendmsg), then their acks.
        msghdr mh{};
        mh.msg_iov = iov;
        mh.msg_iovlen = kPolicies;
        sendmsg(xf, &mh, 0);
        for (int k = 0; k < kPolicies;) {
          ssize_t r = recv(xf, acks, sizeof acks, 0);
          if (r <= 0) break;
          for (auto* ah = reinterpret_cast<nlmsghdr*>(acks); NLMSG_OK(ah, static_cast<unsigned>(r)); ah = NLMSG_NEXT(ah, r))
            ++k;
        }
      }
    }
  }
}
