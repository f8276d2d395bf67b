// The mesh benchmark's "ideal in order" anchor (tests/system/uml/mesh_nodes.sh): the least a
// program can do between IPOP coming up and the node's IKE daemon being started (or its
// configuration loaded). "Up" is what ipop-ipsecd waits for: ADDRESS on IFNAME, and IFNAME
// up with carrier (IFF_UP, and IFF_RUNNING or IFF_LOWER_UP); an anchor that started charon
// on the address alone, while the tap is still down, would break the order the product
// requires. It subscribes to rtnetlink's link and IPv4 address events, asks the kernel for the
// links and addresses already there (so none is missed), and once both hold it appends
// "EPOCH_SECONDS seen ADDRESS" to LOG and execs COMMAND at once: no fork, no shell, no files
// but the one line. One watcher per node, started before the taps come up (it appends
// "EPOCH_SECONDS ready ADDRESS" once it is subscribed); its reaction is the kernel's event
// delivery plus one write and one exec.
//   ipopsec_addr_watch IFNAME ADDRESS LOG COMMAND [ARG...]
// Exits 2 on a usage error, 1 when netlink fails or COMMAND cannot be executed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>
// After <net/if.h>: linux/if.h then only adds what glibc lacks (IFF_LOWER_UP).
#include <linux/if.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "ipopsec_addr_watch: %s: %s\n", what, std::strerror(errno));
  return 1;
}

// True when the message is an RTM_NEWADDR (or RTM_DELADDR) of `want` whose label (IPv4: the
// interface's name when the address was added) is `ifname`.
bool matches(const nlmsghdr* h, const in_addr& want, const char* ifname) {
  if (h->nlmsg_type != RTM_NEWADDR && h->nlmsg_type != RTM_DELADDR) return false;
  const auto* ifa = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
  if (ifa->ifa_family != AF_INET) return false;
  bool addr = false, label = false;
  int len = static_cast<int>(IFA_PAYLOAD(h));
  for (const rtattr* a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if ((a->rta_type == IFA_LOCAL || a->rta_type == IFA_ADDRESS) && RTA_PAYLOAD(a) == sizeof(in_addr) &&
        std::memcmp(RTA_DATA(a), &want, sizeof want) == 0)
      addr = true;
    if (a->rta_type == IFA_LABEL) label = std::strcmp(static_cast<const char*>(RTA_DATA(a)), ifname) == 0;
  }
  if (addr && !label) {  // no label: compare the interface's name now
    char name[IF_NAMESIZE] = {};
    label = if_indextoname(ifa->ifa_index, name) != nullptr && std::strcmp(name, ifname) == 0;
  }
  return addr && label;
}

// For an RTM_NEWLINK / RTM_DELLINK of `ifname`: whether it is up with carrier now (the
// daemon's test, LinkState::upWithCarrier): 1 or 0; -1 for any other message.
int linkUp(const nlmsghdr* h, const char* ifname) {
  if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) return -1;
  const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  int len = static_cast<int>(IFLA_PAYLOAD(h));
  bool named = false;
  for (const rtattr* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == IFLA_IFNAME) named = std::strcmp(static_cast<const char*>(RTA_DATA(a)), ifname) == 0;
  if (!named) return -1;
  if (h->nlmsg_type == RTM_DELLINK) return 0;
  const unsigned f = ifi->ifi_flags;
  const bool carrier = (f & static_cast<unsigned>(IFF_RUNNING)) != 0 || (f & static_cast<unsigned>(IFF_LOWER_UP)) != 0;
  return (f & static_cast<unsigned>(IFF_UP)) != 0 && carrier ? 1 : 0;
}

// Asks for a dump of the links (seq 1) or the IPv4 addresses (seq 2).
bool askDump(int fd, bool links) {
  struct {
    nlmsghdr h;
    union {
      ifinfomsg ifi;
      ifaddrmsg ifa;
    };
  } req{};
  req.h.nlmsg_len = NLMSG_LENGTH(links ? sizeof(ifinfomsg) : sizeof(ifaddrmsg));
  req.h.nlmsg_type = links ? RTM_GETLINK : RTM_GETADDR;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = links ? 1 : 2;
  if (links)
    req.ifi.ifi_family = AF_UNSPEC;
  else
    req.ifa.ifa_family = AF_INET;
  return send(fd, &req, req.h.nlmsg_len, 0) >= 0;
}

// Appends "EPOCH_SECONDS WHAT ADDRESS" to the log in one write.
bool stamp(int log, const char* what, const char* address) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  char line[128];
  const int l = std::snprintf(line, sizeof line, "%lld.%09ld %s %s\n", static_cast<long long>(ts.tv_sec), ts.tv_nsec,
                              what, address);
  return l > 0 && write(log, line, static_cast<size_t>(l)) == l;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: ipopsec_addr_watch IFNAME ADDRESS LOG COMMAND [ARG...]\n");
    return 2;
  }
  const char* ifname = argv[1];
  in_addr want{};
  if (inet_pton(AF_INET, argv[2], &want) != 1) {
    std::fprintf(stderr, "ipopsec_addr_watch: '%s' is not an IPv4 address\n", argv[2]);
    return 2;
  }
  const int log = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return fail(argv[3]);

  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return fail("socket(NETLINK_ROUTE)");
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  local.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR;  // subscribed before the dumps: nothing falls between
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return fail("bind(RTMGRP_LINK|RTMGRP_IPV4_IFADDR)");
  if (!stamp(log, "ready", argv[2])) return fail(argv[3]);
  // The links' dump first, then the addresses' (one dump at a time on a socket).
  if (!askDump(fd, true)) return fail("send(RTM_GETLINK)");

  bool haveAddress = false, up = false;
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // events lost: ask again, from the links
        haveAddress = up = false;
        if (!askDump(fd, true)) return fail("send(RTM_GETLINK)");
        continue;
      }
      return fail("recv(rtnetlink)");
    }
    int len = static_cast<int>(n);
    for (const auto* h = reinterpret_cast<const nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE && h->nlmsg_seq == 1 && !askDump(fd, false)) return fail("send(RTM_GETADDR)");
      if (matches(h, want, ifname)) haveAddress = h->nlmsg_type == RTM_NEWADDR;
      if (int l = linkUp(h, ifname); l >= 0) up = l == 1;
    }
    if (!haveAddress || !up) continue;
    if (!stamp(log, "seen", argv[2])) return fail(argv[3]);
    close(fd);
    close(log);
    execvp(argv[4], argv + 4);
    return fail(argv[4]);
  }
}
