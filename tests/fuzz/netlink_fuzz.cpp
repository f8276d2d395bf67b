// Fuzz target: the shared netlink layer (lib/os/netlink.*) on one datagram: the message
// walk, the control-message reading (kernel errno mapping, extended acks), the attribute
// walk after a fixed header, and the XFRM policy-event count built on them (this target
// replaces xfrm_event_fuzz, which only exercised that walk; its corpus moved here).
// Input: bytes 0-1 the daemon's own port id, byte 2 picks the fixed-header size before the
// attributes, byte 3 unused; the rest is the datagram.
// Contract: never reads outside the buffer, every message and attribute lies inside it,
// errors are 0..4095 or EPROTO, a stopped walk stays stopped.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "os/netlink/netlink.hpp"
#include "os/netlink/xfrm_watch.hpp"

using namespace ipopsec;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(netlink::Bytes part, netlink::Bytes whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::uint32_t own = static_cast<std::uint32_t>(data[0]) | (static_cast<std::uint32_t>(data[1]) << 8);
  static constexpr std::size_t kFixed[] = {0, 4, 8, 12, 16, 20, 224};  // none .. xfrm_usersa_info
  const std::size_t fixed = kFixed[data[2] % (sizeof kFixed / sizeof kFixed[0])];
  // A copy of exactly the datagram: ASan then catches any read past its end.
  std::vector<std::uint8_t> buf(data + 4, data + size);
  const netlink::Bytes whole(buf.data(), buf.size());

  netlink::Messages walk(whole);
  netlink::Message m;
  std::size_t messages = 0;
  std::size_t last = 0;
  while (walk.next(m)) {
    ++messages;
    check(inside(m.bytes, whole) && inside(m.payload, m.bytes));
    check(m.bytes.size() == m.header.nlmsg_len && m.payload.size() + NLMSG_HDRLEN == m.bytes.size());
    check(messages == 1 || m.offset > last);
    last = m.offset;
    const auto c = netlink::classify(m);
    check(c.error == EPROTO || (c.error >= 0 && c.error <= netlink::kMaxErrno));
    check(!c.truncated || (c.kind == netlink::Kind::error && c.error == EPROTO));
    check(netlink::extackMessage(m).size() <= m.payload.size());

    const auto attrs = netlink::attributesAfter(m.payload, fixed);
    check(inside(attrs, m.payload));
    netlink::Attributes aw(attrs);
    netlink::Attribute a;
    std::size_t n = 0;
    while (aw.next(a)) {
      check(inside(a.payload, attrs));
      check(++n * NLA_HDRLEN <= attrs.size());
    }
    check(!aw.next(a));  // a finished walk stays finished
  }
  check(messages * NLMSG_HDRLEN <= buf.size());
  check(!walk.next(m));
  check(walk.error().empty() || walk.offset() < buf.size());

  xfrm::PolicyEvents e;
  xfrm::countPolicyEvents(whole, own, e);
  check((e.foreign + e.own) <= messages);
  // With a filter: every policy read out of an event is asked about; the counts still add up.
  xfrm::PolicyEvents f;
  std::size_t asked = 0;
  xfrm::countPolicyEvents(whole, own, f, [&](const Policy& p) {
    ++asked;
    check(p.sel.src.family() == p.sel.dst.family());
    return (p.priority & 1U) != 0;
  });
  check(f.own == e.own && f.malformed == e.malformed);
  check(f.foreign + f.unrelated == e.foreign);
  check(f.unrelated <= asked);
  check(e.malformed == (walk.error().empty() ? 0U : 1U));  // the walk stops at the first malformed message
  return 0;
}
