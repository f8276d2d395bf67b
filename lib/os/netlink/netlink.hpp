#pragma once
// The one netlink layer under the rtnetlink monitor, the XFRM policy table and the XFRM
// policy watch. Each of those keeps only its own message types; framing, attributes,
// kernel errors, the socket and request/reply matching live here.
//
//  - Messages / Attributes: bounds-checked walks over untrusted bytes. They never read
//    outside the span they are given; a length that can't be trusted ends the walk with
//    a reason (error()), since nothing after it can be located.
//  - kernelErrno / classify: the single reading of NLMSG_ERROR and NLMSG_DONE codes.
//  - MessageBuilder: header, fixed payload, attributes, all 4-byte aligned.
//  - Socket: open + bind (protocol, multicast groups, receive buffer), port id, send to
//    the kernel, receive one datagram.
//  - Requester: a blocking socket for request/reply traffic: one request and its acks or
//    multipart dump, matched by sequence number; stale replies are dropped.
//
// One header, three sources by job: netlink_message.cpp (walks, classify, builder: pure
// bytes), netlink_socket.cpp (Socket, send, receive), netlink_requester.cpp (Requester).

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace ipopsec::netlink {

using Bytes = std::span<const std::uint8_t>;

// --- kernel errors ------------------------------------------------------------------------
//
// The kernel puts a negated errno (-1 .. -4095, MAX_ERRNO) into an NLMSG_ERROR's error field
// and into an NLMSG_DONE's status; 0 is an ack / a clean end. kernelErrno maps that code to
// a positive errno: 0 -> 0, -e -> e for e in 1..4095. Every other value (positive, below
// -4095, INT_MIN, whose negation overflows) is something the kernel never sends: it maps to
// EPROTO, a protocol error, never to a value derived from the code.
inline constexpr int kMaxErrno = 4095;
int kernelErrno(std::int32_t code);

// --- the message walk ---------------------------------------------------------------------

struct Message {
  nlmsghdr header{};
  Bytes payload;      // after the header, nlmsg_len - NLMSG_HDRLEN bytes
  Bytes bytes;        // the whole message, header included (nlmsg_len bytes)
  std::size_t offset = 0;  // where it starts in the walked buffer
};

// Walks the messages of one datagram (or of several concatenated ones). next() yields each
// message whose nlmsg_len lies within the bytes left; it stops, with error() set, at fewer
// trailing bytes than a header, an nlmsg_len shorter than the header or one running past
// the end. error() is "" after a clean end.
class Messages {
 public:
  explicit Messages(Bytes buf) : buf_(buf) {}
  bool next(Message& m);
  const std::string& error() const { return error_; }
  std::size_t offset() const { return off_; }  // where the walk is (or stopped)
  // The nlmsg_type of the header that stopped the walk, when there were enough bytes to read it.
  std::optional<std::uint16_t> errorType() const { return errorType_; }

 private:
  Bytes buf_;
  std::size_t off_ = 0;
  std::string error_;
  std::optional<std::uint16_t> errorType_;
};

// What a control message says. `data` is any other type (the family's own messages).
enum class Kind { data, noop, ack, error, done, overrun };
struct Control {
  Kind kind = Kind::data;
  int error = 0;           // positive errno (kernelErrno) for `error`, and for `done` with a failed status
  bool truncated = false;  // an NLMSG_ERROR too short for its code: error is EPROTO
};
// NLMSG_ERROR: code 0 -> ack, else error (too short -> EPROTO, truncated). NLMSG_DONE: done,
// with the dump's status as error when its payload holds one (a short DONE is a clean end).
Control classify(const Message& m);

// --- attributes ---------------------------------------------------------------------------

struct Attribute {
  std::uint16_t type = 0;  // nla_type without NLA_F_NESTED / NLA_F_NET_BYTEORDER
  Bytes payload;
};

// Walks rtattr/nlattr (same layout) in `bytes`. next() stops with error() set at trailing
// bytes shorter than an attribute header, a length shorter than the header, or a length
// running past the end. The last attribute's padding may be missing.
class Attributes {
 public:
  explicit Attributes(Bytes bytes) : buf_(bytes) {}
  bool next(Attribute& a);
  const std::string& error() const { return error_; }

 private:
  Bytes buf_;
  std::size_t off_ = 0;
  std::string error_;
};

// The attributes after a family's fixed header of `fixedSize` bytes in a message payload.
Bytes attributesAfter(Bytes payload, std::size_t fixedSize);

// NLMSGERR_ATTR_MSG of an extended ack (NLM_F_ACK_TLVS), "" when there is none.
std::string extackMessage(const Message& m);

// Reads a T from the start of `b` (caller checked b.size() >= sizeof(T)); no alignment assumed.
template <class T>
T load(Bytes b) {
  T v;
  std::memcpy(&v, b.data(), sizeof(T));
  return v;
}

// --- building requests --------------------------------------------------------------------

class MessageBuilder {
 public:
  MessageBuilder(std::uint16_t type, std::uint16_t flags, std::uint32_t seq = 0);
  template <class T>
  MessageBuilder& put(const T& v) {
    append(&v, sizeof v);
    return *this;
  }
  MessageBuilder& raw(Bytes b);  // bytes as they are (then padded to 4)
  MessageBuilder& attr(std::uint16_t type, const void* data, std::size_t len);
  std::vector<std::uint8_t> finish();  // sets nlmsg_len

 private:
  void append(const void* p, std::size_t n);
  std::vector<std::uint8_t> buf_;
};

// --- the socket ---------------------------------------------------------------------------

struct SocketOptions {
  int protocol = 0;                 // NETLINK_ROUTE, NETLINK_XFRM, ...
  std::uint32_t groups = 0;         // multicast groups joined at bind (the *GRP_* bit mask)
  int receiveBufferBytes = 0;       // > 0: SO_RCVBUFFORCE, else SO_RCVBUF (capped by rmem_max)
  int receiveTimeoutSeconds = 0;    // > 0: SO_RCVTIMEO (a blocking socket's bound on a lost reply)
  bool extendedAck = false;         // NETLINK_EXT_ACK + NETLINK_CAP_ACK (ignored where unsupported)
};
// NETLINK_NO_ENOBUFS is never set: an overflow must be reported so that the user re-reads.

struct Datagram {
  std::size_t size = 0;       // bytes in the buffer
  std::uint32_t port = 0;     // sender's port id: 0 is the kernel
  bool fromKernel = false;    // an AF_NETLINK address with port id 0
  bool truncated = false;     // larger than the buffer (MSG_TRUNC)
};

class Socket {
 public:
  Socket() = default;
  ~Socket() { close(); }
  Socket(Socket&& o) noexcept : fd_(o.fd_), port_(o.port_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Opens (close-on-exec), applies the options, binds and reads the port id the kernel
  // assigned. On failure the socket stays closed and `what` (if given) names the call
  // that failed, e.g. "bind(NETLINK_XFRM)".
  std::error_code open(const SocketOptions& o, std::string* what = nullptr);
  void close();
  int release();  // gives the descriptor away (e.g. to an Asio socket)
  int fd() const { return fd_; }
  std::uint32_t portId() const { return port_; }

 private:
  int fd_ = -1;
  std::uint32_t port_ = 0;
};

// Sends one datagram to the kernel (EINTR retried; a short send is EMSGSIZE).
std::error_code sendToKernel(int fd, Bytes msg);
// Receives one datagram into `buf` (EINTR retried). `dontWait`: MSG_DONTWAIT. Errors are
// the socket's errno (EAGAIN when nothing is queued or SO_RCVTIMEO expired, ENOBUFS after
// an overflow).
std::error_code receive(int fd, std::vector<std::uint8_t>& buf, Datagram& d, bool dontWait);

// --- request / reply ----------------------------------------------------------------------

class Requester {
 public:
  static constexpr std::size_t kMaxReplyBytes = 64U << 20;  // what one dump may make us hold
  static constexpr int kDumpAttempts = 3;                    // NLM_F_DUMP_INTR retries

  // Opens a blocking socket on `protocol` (no groups, extended acks, a 5 s receive
  // timeout); throws std::system_error naming the failed call.
  explicit Requester(int protocol);

  std::uint32_t portId() const { return socket_.portId(); }

  // Sends `request` (NLM_F_ACK expected in its flags) with a fresh sequence number and this
  // socket's port id stamped in (the kernel copies the port id into the notification of the
  // change the request makes). Appends to `replies` the whole messages carrying that
  // sequence number until the ack: {} on error 0, else the kernel's errno (kernelErrno),
  // with the extended-ack text in lastKernelMessage(). A lost reply is timed_out, a broken
  // framing bad_message.
  std::error_code request(std::vector<std::uint8_t> request, std::vector<std::uint8_t>* replies);

  // Several requests (each with NLM_F_ACK, no reply but the ack expected), sent together in
  // datagrams of at most kBatchBytes: the kernel handles them in order and acks each.
  // `results[i]` is request i's outcome as request() gives it, with its extended-ack text.
  // A lost ack is timed_out for every request of that datagram still unanswered; a failed
  // send fails the whole datagram.
  struct BatchResult {
    std::error_code ec;
    std::string message;
  };
  std::vector<BatchResult> requestAll(std::vector<std::vector<std::uint8_t>> requests);
  static constexpr std::size_t kBatchBytes = 32U * 1024U;  // one datagram of requestAll at most

  // Dumps `type` (NLM_F_REQUEST | NLM_F_DUMP, `body` as the payload): `out` gets the
  // messages of the dump (its sequence number only), NLMSG_DONE included. A dump the kernel
  // marks NLM_F_DUMP_INTR (the table changed meanwhile) is started again, at most
  // kDumpAttempts times, then EINTR. An NLMSG_ERROR or a failed DONE status is its errno;
  // more than kMaxReplyBytes is value_too_large; a broken framing bad_message.
  std::error_code dump(std::uint16_t type, Bytes body, std::vector<std::uint8_t>& out);

  const std::string& lastKernelMessage() const { return lastMessage_; }

 private:
  std::uint32_t nextSeq();
  // requestAll's datagram: requests [first, last), their outcomes into results[first, last).
  void sendBatch(std::vector<std::vector<std::uint8_t>>& requests, std::size_t first, std::size_t last,
                 std::vector<BatchResult>& results);
  std::error_code receiveFromKernel(Datagram& d);
  // Stamps a fresh seq and the port id into `request`, sends it, and hands every reply
  // message with that seq to `onReply` until it returns true; its error_code is the result.
  using OnReply = std::function<bool(const Message&, std::error_code&)>;
  std::error_code exchange(std::vector<std::uint8_t> request, const OnReply& onReply);
  std::error_code dumpOnce(std::uint16_t type, Bytes body, std::vector<std::uint8_t>& out, bool& interrupted);

  Socket socket_;
  std::uint32_t seq_ = 0;
  std::string lastMessage_;
  std::vector<std::uint8_t> rxbuf_;
};

}  // namespace ipopsec::netlink
