// The socket half of netlink.hpp: open and bind with its options, send one datagram to
// the kernel, receive one.

#include "os/netlink/netlink.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace ipopsec::netlink {
namespace {

std::error_code sysError(int e) { return {e, std::system_category()}; }

std::string protocolName(int protocol) {
  switch (protocol) {
    case NETLINK_ROUTE: return "NETLINK_ROUTE";
    case NETLINK_XFRM: return "NETLINK_XFRM";
    default: return "netlink protocol " + std::to_string(protocol);
  }
}

}  // namespace

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    port_ = o.port_;
  }
  return *this;
}

void Socket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  port_ = 0;
}

int Socket::release() {
  port_ = 0;
  return std::exchange(fd_, -1);
}

std::error_code Socket::open(const SocketOptions& o, std::string* what) {
  close();
  const std::string proto = protocolName(o.protocol);
  auto fail = [&](const std::string& call) {
    const int e = errno;
    close();
    if (what) *what = call;
    return sysError(e);
  };
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, o.protocol);
  if (fd_ < 0) return fail("socket(" + proto + ")");
  if (o.receiveBufferBytes > 0) {
    const int size = o.receiveBufferBytes;
    if (::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0 &&
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) != 0)
      return fail("setsockopt(SO_RCVBUF)");
  }
  if (o.receiveTimeoutSeconds > 0) {
    timeval tv{o.receiveTimeoutSeconds, 0};
    if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return fail("setsockopt(SO_RCVTIMEO)");
  }
  if (o.extendedAck) {
    // The kernel's reason for a refusal; older kernels lack these options: ignored.
    const int one = 1;
    (void)::setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    (void)::setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  }
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = o.groups;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return fail("bind(" + proto + ")");
  socklen_t len = sizeof sa;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return fail("getsockname(" + proto + ")");
  port_ = sa.nl_pid;
  return {};
}

std::error_code sendToKernel(int fd, Bytes msg) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  while (true) {
    const ssize_t n = ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    if (n >= 0) return static_cast<std::size_t>(n) == msg.size() ? std::error_code{} : sysError(EMSGSIZE);
    if (errno != EINTR) return sysError(errno);
  }
}

std::error_code receive(int fd, std::vector<std::uint8_t>& buf, Datagram& d, bool dontWait) {
  while (true) {
    sockaddr_nl from{};
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd, &msg, dontWait ? MSG_DONTWAIT : 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sysError(errno);
    }
    d.size = std::min(static_cast<std::size_t>(n), buf.size());
    d.port = from.nl_pid;
    d.fromKernel = msg.msg_namelen >= sizeof(sockaddr_nl) && from.nl_family == AF_NETLINK && from.nl_pid == 0;
    d.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    return {};
  }
}

}  // namespace ipopsec::netlink
