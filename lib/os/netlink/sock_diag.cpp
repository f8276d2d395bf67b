#include "os/netlink/sock_diag.hpp"

#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "os/netlink/netlink.hpp"

namespace ipopsec {

std::error_code udpPortBound(std::uint16_t port, bool& bound) {
  bound = false;
  try {
    netlink::Requester diag(NETLINK_SOCK_DIAG);
    for (std::uint8_t family : {std::uint8_t{AF_INET}, std::uint8_t{AF_INET6}}) {
      inet_diag_req_v2 req{};
      req.sdiag_family = family;
      req.sdiag_protocol = IPPROTO_UDP;
      req.idiag_states = ~0U;
      std::vector<std::uint8_t> out;
      auto ec = diag.dump(SOCK_DIAG_BY_FAMILY,
                          netlink::Bytes(reinterpret_cast<const std::uint8_t*>(&req), sizeof req), out);
      // No UDP diag for IPv6 while IPv4 answered (IPv6 disabled): nothing is bound there.
      // The IPv4 dump refused is no answer at all (no udp_diag): the caller is told.
      if (family == AF_INET6 &&
          (ec == std::errc::no_such_file_or_directory || ec == std::errc::address_family_not_supported))
        continue;
      if (ec) return ec;
      netlink::Messages walk(out);
      netlink::Message m;
      while (walk.next(m)) {
        if (m.header.nlmsg_type != SOCK_DIAG_BY_FAMILY || m.payload.size() < sizeof(inet_diag_msg)) continue;
        if (ntohs(netlink::load<inet_diag_msg>(m.payload).id.idiag_sport) == port) {
          bound = true;
          return {};
        }
      }
    }
  } catch (const std::system_error& e) {
    return e.code();
  }
  return {};
}

}  // namespace ipopsec
