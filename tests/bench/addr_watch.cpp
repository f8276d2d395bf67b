// The mesh benchmark's "ideal in order" anchor (tests/system/uml/mesh_nodes.sh): the least a
// program can do between IPOP's tap getting its address and the node's IKE daemon being
// started (or its configuration loaded). It subscribes to rtnetlink's IPv4 address events,
// asks the kernel for the addresses already there (so none is missed), and when ADDRESS
// appears on IFNAME it appends "EPOCH_SECONDS seen ADDRESS" to LOG and execs COMMAND at
// once: no fork, no shell, no files but the one line. One watcher per node, started before
// the taps come up (it appends "EPOCH_SECONDS ready ADDRESS" once it is subscribed); its
// reaction is the kernel's event delivery plus one write and one exec.
//   ipopsec_addr_watch IFNAME ADDRESS LOG COMMAND [ARG...]
// Exits 2 on a usage error, 1 when netlink fails or COMMAND cannot be executed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "ipopsec_addr_watch: %s: %s\n", what, std::strerror(errno));
  return 1;
}

// True when the message is an RTM_NEWADDR of `want` whose label (IPv4: the interface's name
// when the address was added) is `ifname`.
bool matches(const nlmsghdr* h, const in_addr& want, const char* ifname) {
  if (h->nlmsg_type != RTM_NEWADDR) return false;
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
  local.nl_groups = RTMGRP_IPV4_IFADDR;  // subscribed before the dump: nothing falls between
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return fail("bind(RTMGRP_IPV4_IFADDR)");
  if (!stamp(log, "ready", argv[2])) return fail(argv[3]);
  struct {
    nlmsghdr h;
    ifaddrmsg ifa;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = RTM_GETADDR;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.ifa.ifa_family = AF_INET;
  if (send(fd, &req, sizeof req, 0) < 0) return fail("send(RTM_GETADDR)");

  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // events lost: ask again
        req.h.nlmsg_seq++;
        if (send(fd, &req, sizeof req, 0) < 0) return fail("send(RTM_GETADDR)");
        continue;
      }
      return fail("recv(rtnetlink)");
    }
    int len = static_cast<int>(n);
    for (const auto* h = reinterpret_cast<const nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (!matches(h, want, ifname)) continue;
      if (!stamp(log, "seen", argv[2])) return fail(argv[3]);
      close(fd);
      close(log);
      execvp(argv[4], argv + 4);
      return fail(argv[4]);
    }
  }
}
