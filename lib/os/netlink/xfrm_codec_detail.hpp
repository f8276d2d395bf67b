#pragma once
// Internal to the XFRM codec (xfrm_codec.cpp: policies, xfrm_state_codec.cpp: states): the
// address helpers and the dump walk both decoders share. Not for other users.

#include <linux/netlink.h>
#include <linux/xfrm.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/policy/cidr.hpp"
#include "os/netlink/netlink.hpp"
#include "os/netlink/xfrm_codec.hpp"

namespace ipopsec::xfrm::detail {

using netlink::Bytes;

// Writes `a` into a kernel address, zero-padded.
void putAddress(xfrm_address_t& dst, const IpAddress& a);
bool allZero(const void* p, std::size_t n);
// The address of `family` (AF_INET: the bytes beyond the first four must be zero).
std::optional<IpAddress> decodeAddress(const xfrm_address_t& a, std::uint16_t family);
std::string familyName(std::uint16_t f);
// Counts a skipped message; keeps at most kMaxSkipped reasons.
void addSkipped(std::vector<std::string>& skipped, std::size_t& count, std::string why);
// "message at offset N (type T): "
std::string msgLabel(std::size_t offset, std::uint16_t type);

// The dump walk both decoders share: framing and control messages by the netlink layer
// (done, error, interrupted into `res`); each data message of sequence `seq` (any when 0)
// that is of `type` goes to `onEntry(payload)`, which returns "" or why it was skipped.
// Other types are skipped; beyond kMaxEntries `entries` stop growing and res.overflow is set.
template <class Result, class Entries, class OnEntry>
void walkEntries(Bytes buf, std::uint32_t seq, Result& res, std::uint16_t type, const char* typeName,
                 const Entries& entries, OnEntry&& onEntry) {
  netlink::Messages walk(buf);
  netlink::Message m;
  while (walk.next(m)) {
    if (seq != 0 && m.header.nlmsg_seq != seq) continue;  // a stale reply to an earlier request
    if (m.header.nlmsg_flags & NLM_F_DUMP_INTR) res.interrupted = true;
    const auto c = netlink::classify(m);
    const std::string label = msgLabel(m.offset, m.header.nlmsg_type);
    switch (c.kind) {
      case netlink::Kind::noop: continue;
      case netlink::Kind::done:
      case netlink::Kind::ack:
      case netlink::Kind::error:
        res.error = c.error;
        if (c.truncated) {
          addSkipped(res.skipped, res.skippedCount, label + "truncated nlmsgerr");
          return;
        }
        res.done = true;
        return;
      case netlink::Kind::overrun:
      case netlink::Kind::data: break;
    }
    if (m.header.nlmsg_type != type) {
      addSkipped(res.skipped, res.skippedCount, label + "not " + typeName);
      continue;
    }
    if (entries.size() >= kMaxEntries) {
      res.overflow = true;
      continue;
    }
    if (std::string why = onEntry(m.payload); !why.empty()) addSkipped(res.skipped, res.skippedCount, label + why);
  }
  if (!walk.error().empty()) {
    // Framing is lost: nothing after this can be trusted.
    addSkipped(res.skipped, res.skippedCount,
               "message at offset " + std::to_string(walk.offset()) + ": " + walk.error());
  }
}

}  // namespace ipopsec::xfrm::detail
