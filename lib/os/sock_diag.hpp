#pragma once
// Asks the kernel which sockets exist (NETLINK_SOCK_DIAG), in the caller's network
// namespace: no event is sent when a socket binds, so this is a question, not a watch.

#include <cstdint>
#include <system_error>

namespace ipopsec {

// Whether a UDP socket (IPv4 or IPv6) is bound to local port `port`.
std::error_code udpPortBound(std::uint16_t port, bool& bound);

}  // namespace ipopsec
