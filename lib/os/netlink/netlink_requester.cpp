// The Requester of netlink.hpp: one blocking socket's request/reply traffic, matched by
// sequence number: a request and its ack, a batch of requests and their acks, a dump
// (started again when the kernel marks it interrupted).

#include "os/netlink/netlink.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace ipopsec::netlink {
namespace {

std::error_code sysError(int e) { return {e, std::system_category()}; }

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
