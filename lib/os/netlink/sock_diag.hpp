#pragma once
// Asks the kernel which sockets exist (NETLINK_SOCK_DIAG), in the caller's network
// namespace: no event is sent when a socket binds, so this is a question, not a watch.

#include <cstdint>
#include <system_error>

namespace ipopsec {

// Whether a UDP socket (IPv4 or IPv6) is bound to local port `port`. An error means the
// question could not be asked, which is no answer (not "unbound"): a kernel without UDP
// socket diagnostics (udp_diag neither built in nor loaded, as in some containers) answers
// the IPv4 dump with ENOENT; a kernel without NETLINK_SOCK_DIAG fails the socket
// (EPROTONOSUPPORT). Only an IPv6 dump refused (ENOENT, EAFNOSUPPORT: IPv6 disabled) after
// the IPv4 one answered counts as nothing bound there.
std::error_code udpPortBound(std::uint16_t port, bool& bound);

}  // namespace ipopsec
