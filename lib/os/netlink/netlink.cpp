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

std::size_t align4(std::size_t n) { return (n + 3U) & ~std::size_t{3}; }

std::string protocolName(int protocol) {
  switch (protocol) {
    case NETLINK_ROUTE: return "NETLINK_ROUTE";
    case NETLINK_XFRM: return "NETLINK_XFRM";
    default: return "netlink protocol " + std::to_string(protocol);
  }
}

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

// --- socket -------------------------------------------------------------------------------

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

// --- requester ----------------------------------------------------------------------------

namespace {
constexpr int kReceiveTimeoutSeconds = 5;
constexpr std::size_t kRxBuffer = 64U * 1024U;
}  // namespace

Requester::Requester(int protocol) : rxbuf_(kRxBuffer) {
  SocketOptions o;
  o.protocol = protocol;
  o.receiveTimeoutSeconds = kReceiveTimeoutSeconds;
  o.extendedAck = true;
  std::string what;
  if (auto ec = socket_.open(o, &what)) throw std::system_error(ec, what);
  seq_ = static_cast<std::uint32_t>(::getpid()) << 16;
}

std::uint32_t Requester::nextSeq() {
  if (++seq_ == 0) ++seq_;
  return seq_;
}

// One datagram from the kernel; others' datagrams are dropped, a timeout is timed_out.
std::error_code Requester::receiveFromKernel(Datagram& d) {
  while (true) {
    if (auto ec = receive(socket_.fd(), rxbuf_, d, false)) {
      if (ec.value() == EAGAIN || ec.value() == EWOULDBLOCK) return std::make_error_code(std::errc::timed_out);
      return ec;
    }
    if (!d.fromKernel) continue;  // only the kernel talks to us
    if (d.truncated) return std::make_error_code(std::errc::message_size);
    return {};
  }
}

std::error_code Requester::exchange(std::vector<std::uint8_t> req, const OnReply& onReply) {
  if (req.size() < sizeof(nlmsghdr)) return std::make_error_code(std::errc::invalid_argument);
  const std::uint32_t seq = nextSeq();
  std::memcpy(req.data() + offsetof(nlmsghdr, nlmsg_seq), &seq, sizeof seq);
  const std::uint32_t port = socket_.portId();
  std::memcpy(req.data() + offsetof(nlmsghdr, nlmsg_pid), &port, sizeof port);
  if (auto ec = sendToKernel(socket_.fd(), req)) return ec;
  while (true) {
    Datagram d;
    if (auto ec = receiveFromKernel(d)) return ec;
    Messages walk(Bytes(rxbuf_.data(), d.size));
    Message m;
    while (walk.next(m)) {
      if (m.header.nlmsg_seq != seq) continue;  // stale: a reply to a request that timed out
      std::error_code ec;
      if (onReply(m, ec)) return ec;
    }
    if (!walk.error().empty()) return std::make_error_code(std::errc::bad_message);
  }
}

namespace {
// Appends a whole message, padded as it was in its datagram.
void append(std::vector<std::uint8_t>& out, const Message& m) {
  out.insert(out.end(), m.bytes.begin(), m.bytes.end());
  out.resize(NLMSG_ALIGN(out.size()), 0);
}
}  // namespace

std::error_code Requester::request(std::vector<std::uint8_t> req, std::vector<std::uint8_t>* replies) {
  lastMessage_.clear();
  return exchange(std::move(req), [&](const Message& m, std::error_code& ec) {
    const Control c = classify(m);
    if (c.kind == Kind::ack) return true;
    if (c.kind == Kind::error) {
      lastMessage_ = extackMessage(m);
      ec = sysError(c.error);
      return true;
    }
    if (replies && replies->size() + m.bytes.size() <= kMaxReplyBytes) append(*replies, m);
    return false;
  });
}

std::vector<Requester::BatchResult> Requester::requestAll(std::vector<std::vector<std::uint8_t>> requests) {
  lastMessage_.clear();
  std::vector<BatchResult> results(requests.size());
  // Datagrams of at most kBatchBytes: a netlink send larger than the socket's send buffer
  // fails whole (EMSGSIZE), and the acks of a very large batch would overflow the receive
  // buffer (ENOBUFS: acks lost). Each datagram's acks are read before the next is sent.
  std::size_t first = 0;
  while (first < requests.size()) {
    std::size_t bytes = 0, last = first;
    while (last < requests.size() && (last == first || bytes + NLMSG_ALIGN(requests[last].size()) <= kBatchBytes))
      bytes += NLMSG_ALIGN(requests[last++].size());
    sendBatch(requests, first, last, results);
    first = last;
  }
  return results;
}

void Requester::sendBatch(std::vector<std::vector<std::uint8_t>>& requests, std::size_t first, std::size_t last,
                          std::vector<BatchResult>& results) {
  const std::uint32_t port = socket_.portId();
  std::vector<std::uint8_t> batch;
  std::vector<std::uint32_t> seqs;
  for (std::size_t i = first; i < last; ++i) {
    auto& req = requests[i];
    if (req.size() < sizeof(nlmsghdr)) {
      for (std::size_t k = first; k < last; ++k) results[k].ec = std::make_error_code(std::errc::invalid_argument);
      return;
    }
    const std::uint32_t seq = nextSeq();
    std::memcpy(req.data() + offsetof(nlmsghdr, nlmsg_seq), &seq, sizeof seq);
    std::memcpy(req.data() + offsetof(nlmsghdr, nlmsg_pid), &port, sizeof port);
    seqs.push_back(seq);
    batch.insert(batch.end(), req.begin(), req.end());
    batch.resize(NLMSG_ALIGN(batch.size()), 0);
  }
  std::vector<bool> answered(seqs.size(), false);
  auto failOpen = [&](std::error_code ec) {
    for (std::size_t k = 0; k < seqs.size(); ++k)
      if (!answered[k]) results[first + k].ec = ec;
  };
  if (auto ec = sendToKernel(socket_.fd(), batch)) {
    failOpen(ec);
    return;
  }
  std::size_t open = seqs.size();
  while (open > 0) {
    Datagram d;
    if (auto ec = receiveFromKernel(d)) {
      failOpen(ec);
      return;
    }
    Messages walk(Bytes(rxbuf_.data(), d.size));
    Message m;
    while (walk.next(m)) {
      // The seqs are consecutive except where they wrapped past 0: look each one up.
      auto it = std::find(seqs.begin(), seqs.end(), m.header.nlmsg_seq);
      if (it == seqs.end()) continue;  // stale: a reply to an earlier request that timed out
      const std::size_t k = static_cast<std::size_t>(it - seqs.begin());
      const Control c = classify(m);
      if (answered[k] || (c.kind != Kind::ack && c.kind != Kind::error)) continue;
      answered[k] = true;
      --open;
      if (c.kind == Kind::error) {
        results[first + k].ec = sysError(c.error);
        results[first + k].message = extackMessage(m);
      }
    }
    if (!walk.error().empty()) {
      failOpen(std::make_error_code(std::errc::bad_message));
      return;
    }
  }
}

std::error_code Requester::dumpOnce(std::uint16_t type, Bytes body, std::vector<std::uint8_t>& out,
                                    bool& interrupted) {
  out.clear();
  interrupted = false;
  auto req = MessageBuilder(type, NLM_F_REQUEST | NLM_F_DUMP).raw(body).finish();
  return exchange(std::move(req), [&](const Message& m, std::error_code& ec) {
    if (m.header.nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
    if (out.size() + m.bytes.size() > kMaxReplyBytes) {
      ec = std::make_error_code(std::errc::value_too_large);
      return true;
    }
    append(out, m);
    const Control c = classify(m);
    if (c.kind == Kind::error) lastMessage_ = extackMessage(m);
    if (c.kind == Kind::error || c.kind == Kind::done || c.kind == Kind::ack) {
      if (c.error) ec = sysError(c.error);
      return true;
    }
    return false;
  });
}

std::error_code Requester::dump(std::uint16_t type, Bytes body, std::vector<std::uint8_t>& out) {
  lastMessage_.clear();
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    bool interrupted = false;
    if (auto ec = dumpOnce(type, body, out, interrupted)) return ec;
    if (!interrupted) return {};
  }
  return sysError(EINTR);  // the table kept changing under the dump
}

}  // namespace ipopsec::netlink
