// The framing half of netlink.hpp: the bounds-checked walks over messages and attributes,
// the one reading of the kernel's error and done codes, the extended-ack text, and the
// builder of requests. No socket: pure bytes.

#include "os/netlink/netlink.hpp"

#include <algorithm>
#include <cerrno>
#include <utility>

namespace ipopsec::netlink {
namespace {

std::size_t align4(std::size_t n) { return (n + 3U) & ~std::size_t{3}; }

}  // namespace

int kernelErrno(std::int32_t code) {
  if (code == 0) return 0;
  if (code < 0 && code >= -kMaxErrno) return -code;
  return EPROTO;
}

// --- walks --------------------------------------------------------------------------------

bool Messages::next(Message& m) {
  if (!error_.empty() || off_ >= buf_.size()) return false;
  const std::size_t remain = buf_.size() - off_;
  if (remain < sizeof(nlmsghdr)) {
    error_ = std::to_string(remain) + " trailing bytes, shorter than a netlink header";
    return false;
  }
  const auto h = load<nlmsghdr>(buf_.subspan(off_));
  if (h.nlmsg_len < sizeof(nlmsghdr)) {
    errorType_ = h.nlmsg_type;
    error_ = "nlmsg_len " + std::to_string(h.nlmsg_len) + " is shorter than the header; rest of the datagram dropped";
    return false;
  }
  if (h.nlmsg_len > remain) {
    errorType_ = h.nlmsg_type;
    error_ = "nlmsg_len " + std::to_string(h.nlmsg_len) + " exceeds the " + std::to_string(remain) +
             " bytes left; truncated";
    return false;
  }
  m.header = h;
  m.offset = off_;
  m.bytes = buf_.subspan(off_, h.nlmsg_len);
  m.payload = m.bytes.subspan(NLMSG_HDRLEN);
  off_ += std::min<std::size_t>(NLMSG_ALIGN(h.nlmsg_len), remain);
  return true;
}

Control classify(const Message& m) {
  Control c;
  switch (m.header.nlmsg_type) {
    case NLMSG_NOOP: c.kind = Kind::noop; return c;
    case NLMSG_OVERRUN: c.kind = Kind::overrun; return c;
    case NLMSG_DONE:
      c.kind = Kind::done;
      if (m.payload.size() >= sizeof(std::int32_t)) c.error = kernelErrno(load<std::int32_t>(m.payload));
      return c;
    case NLMSG_ERROR:
      if (m.payload.size() < sizeof(std::int32_t)) {
        c.kind = Kind::error;
        c.error = EPROTO;
        c.truncated = true;
        return c;
      }
      c.error = kernelErrno(load<std::int32_t>(m.payload));
      c.kind = c.error == 0 ? Kind::ack : Kind::error;
      return c;
    default: return c;
  }
}

bool Attributes::next(Attribute& a) {
  if (!error_.empty() || off_ >= buf_.size()) return false;
  const std::size_t remain = buf_.size() - off_;
  if (remain < NLA_HDRLEN) {
    error_ = "trailing " + std::to_string(remain) + " bytes after the attributes, shorter than an attribute header";
    return false;
  }
  const auto h = load<nlattr>(buf_.subspan(off_));
  const auto type = static_cast<std::uint16_t>(h.nla_type & NLA_TYPE_MASK);
  if (h.nla_len < NLA_HDRLEN) {
    error_ = "attribute " + std::to_string(type) + " has length " + std::to_string(h.nla_len) + " (< " +
             std::to_string(NLA_HDRLEN) + ")";
    return false;
  }
  if (h.nla_len > remain) {
    error_ = "attribute " + std::to_string(type) + " has length " + std::to_string(h.nla_len) + " but only " +
             std::to_string(remain) + " bytes remain";
    return false;
  }
  a.type = type;
  a.payload = buf_.subspan(off_ + NLA_HDRLEN, h.nla_len - NLA_HDRLEN);
  off_ += std::min<std::size_t>(NLA_ALIGN(h.nla_len), remain);
  return true;
}

Bytes attributesAfter(Bytes payload, std::size_t fixedSize) {
  return payload.subspan(std::min(payload.size(), NLMSG_ALIGN(fixedSize)));
}

std::string extackMessage(const Message& m) {
  if (m.header.nlmsg_type != NLMSG_ERROR || !(m.header.nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  if (m.payload.size() < sizeof(nlmsgerr)) return "";
  const auto err = load<nlmsgerr>(m.payload);
  // The TLVs follow the echoed request: only its header when capped, else all of it.
  std::size_t off = sizeof(nlmsgerr);
  if (!(m.header.nlmsg_flags & NLM_F_CAPPED) && err.msg.nlmsg_len > sizeof(nlmsghdr))
    off += err.msg.nlmsg_len - sizeof(nlmsghdr);
  off = NLMSG_ALIGN(off);
  if (off >= m.payload.size()) return "";
  Attributes attrs(m.payload.subspan(off));
  Attribute a;
  while (attrs.next(a)) {
    if (a.type != NLMSGERR_ATTR_MSG) continue;
    const auto* s = reinterpret_cast<const char*>(a.payload.data());
    return std::string(s, strnlen(s, a.payload.size()));
  }
  return "";
}

// --- builder ------------------------------------------------------------------------------

MessageBuilder::MessageBuilder(std::uint16_t type, std::uint16_t flags, std::uint32_t seq) : buf_(NLMSG_HDRLEN, 0) {
  nlmsghdr h{};
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  std::memcpy(buf_.data(), &h, sizeof h);
}

MessageBuilder& MessageBuilder::attr(std::uint16_t type, const void* data, std::size_t len) {
  nlattr a{};
  a.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + len);
  a.nla_type = type;
  append(&a, sizeof a);
  append(data, len);
  return *this;
}

std::vector<std::uint8_t> MessageBuilder::finish() {
  const auto len = static_cast<std::uint32_t>(buf_.size());
  std::memcpy(buf_.data() + offsetof(nlmsghdr, nlmsg_len), &len, sizeof len);
  return std::move(buf_);
}

MessageBuilder& MessageBuilder::raw(Bytes b) {
  append(b.data(), b.size());
  return *this;
}

void MessageBuilder::append(const void* p, std::size_t n) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  buf_.insert(buf_.end(), b, b + n);
  buf_.resize(align4(buf_.size()), 0);
}

}  // namespace ipopsec::netlink
