#pragma once
// Test support: netlink messages and attributes built by hand, as the kernel lays them out
// (header, payload, 4-byte padding), for the decoders' unit tests.

#include <linux/netlink.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace ipopsec::test {

using Bytes = std::vector<std::uint8_t>;

template <class T>
Bytes bytesOf(const T& v) {
  Bytes b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const auto& p : parts) b.insert(b.end(), p.begin(), p.end());
  return b;
}

// One message: header (nlmsg_len = header + payload), payload, padding to 4.
inline Bytes message(std::uint16_t type, std::uint16_t flags, std::uint32_t seq, const Bytes& payload) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_HDRLEN + payload.size());
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  Bytes b(NLMSG_HDRLEN, 0);
  std::memcpy(b.data(), &h, sizeof h);
  b.insert(b.end(), payload.begin(), payload.end());
  b.resize(NLMSG_ALIGN(b.size()), 0);
  return b;
}

// One attribute: nla_len = header + data, then padding to 4.
inline Bytes attr(std::uint16_t type, const Bytes& data) {
  nlattr a{};
  a.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + data.size());
  a.nla_type = type;
  Bytes b = bytesOf(a);
  b.insert(b.end(), data.begin(), data.end());
  b.resize(NLA_ALIGN(b.size()), 0);
  return b;
}

inline nlmsghdr headerOf(const Bytes& msg) {
  nlmsghdr h{};
  std::memcpy(&h, msg.data(), sizeof h);
  return h;
}

// The end of a dump: NLMSG_DONE with status 0.
inline Bytes done(std::uint32_t seq) { return message(NLMSG_DONE, NLM_F_MULTI, seq, bytesOf(std::int32_t{0})); }

}  // namespace ipopsec::test
