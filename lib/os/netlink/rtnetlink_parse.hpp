#pragma once
// rtnetlink's parser: one datagram's worth of link and address messages applied to a
// NetSnapshot. Pure (no socket), bounds-checked, unit-tested with hand-built and garbage
// buffers; the monitor that feeds it is rtnetlink.hpp.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/policy/net_state.hpp"

namespace ipopsec::rtnl {

// What a peer (here: the kernel, or garbage) can make us allocate.
inline constexpr std::size_t kMaxAddressesPerLink = 64;
inline constexpr std::size_t kMaxLinks = 4096;

struct ParseResult {
  bool sawDone = false;          // NLMSG_DONE (end of a dump) was in the buffer
  bool sawError = false;         // NLMSG_ERROR with a non-zero (or unreadable) code, or a DONE carrying an error
  int errorCode = 0;             // positive errno of that error (netlink::kernelErrno: EPROTO when impossible)
  bool overrun = false;          // NLMSG_OVERRUN
  bool dumpInterrupted = false;  // some message carried NLM_F_DUMP_INTR
  bool changed = false;          // `snap` was modified
  std::size_t messages = 0;      // well-formed messages seen (any type)
  std::vector<std::string> skipped;  // one human line per skipped/malformed message
};

// Applies every message in `buf` (one recv()'s worth: possibly several nlmsghdr, NLMSG_DONE,
// NLMSG_ERROR) to `snap`: RTM_NEWLINK/DELLINK (ifindex, IFLA_IFNAME, IFF_UP,
// IFF_RUNNING|IFF_LOWER_UP; a rename = NEWLINK with a new name for the same index),
// RTM_NEWADDR/DELADDR for AF_INET and AF_INET6 (IFA_LOCAL preferred over IFA_ADDRESS - on
// point-to-point links IFA_ADDRESS is the peer; prefixlen from ifaddrmsg). DELLINK removes the
// link and its addresses. An address for an unknown index creates a placeholder link entry
// (name empty) that the link message fills later. Malformed messages are skipped with a line
// in `skipped`; a message whose header can't be trusted ends the walk (nothing after it can
// be located). Never reads outside `buf`.
ParseResult applyMessages(std::span<const std::uint8_t> buf, NetSnapshot& snap);

}  // namespace ipopsec::rtnl
