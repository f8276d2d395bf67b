#include "os/sock_diag.hpp"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace ipopsec {
namespace {

std::error_code errnoCode(int e) { return {e, std::generic_category()}; }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// One dump of the UDP sockets of `family`; sets `bound` when one has local port `port`.
std::error_code dumpUdp(int fd, std::uint8_t family, std::uint16_t port, std::uint32_t seq, bool& bound) {
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.nlh.nlmsg_seq = seq;
  msg.req.sdiag_family = family;
  msg.req.sdiag_protocol = IPPROTO_UDP;
  msg.req.idiag_states = ~0U;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
    return errnoCode(errno);
  std::vector<char> buf(32768);
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoCode(errno);
    }
    auto len = static_cast<std::uint32_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return {};
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return errnoCode(EPROTO);
        int e = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        // No UDP diag module for this family (IPv6 disabled): nothing bound there.
        if (e == ENOENT || e == EAFNOSUPPORT) return {};
        return errnoCode(e > 0 ? e : EPROTO);
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
      const auto* d = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      if (ntohs(d->id.idiag_sport) == port) bound = true;
    }
  }
}

}  // namespace

std::error_code udpPortBound(std::uint16_t port, bool& bound) {
  bound = false;
  Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (fd.get() < 0) return errnoCode(errno);
  if (auto ec = dumpUdp(fd.get(), AF_INET, port, 1, bound)) return ec;
  if (bound) return {};
  return dumpUdp(fd.get(), AF_INET6, port, 2, bound);
}

}  // namespace ipopsec
