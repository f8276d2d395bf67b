#include "os/xfrm_watch.hpp"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

namespace ipopsec {

namespace xfrm {

void countPolicyEvents(std::span<const std::uint8_t> buf, std::uint32_t ownPortId, PolicyEvents& out) {
  std::size_t off = 0;
  while (buf.size() - off >= sizeof(nlmsghdr)) {
    nlmsghdr h{};
    std::memcpy(&h, buf.data() + off, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > buf.size() - off) {
      ++out.malformed;
      return;
    }
    const char* what = nullptr;
    switch (h.nlmsg_type) {
      case XFRM_MSG_NEWPOLICY:
      case XFRM_MSG_UPDPOLICY: what = "add/replace"; break;
      case XFRM_MSG_DELPOLICY: what = "delete"; break;
      case XFRM_MSG_FLUSHPOLICY: what = "flush"; break;
      case XFRM_MSG_POLEXPIRE: what = "expire"; break;
      default: break;  // not a policy event (the group carries only these)
    }
    if (what) {
      // Expiry is the kernel's own doing (port id 0 like any kernel-made event); a
      // request's notification carries the requester's port id.
      if (h.nlmsg_pid == ownPortId && ownPortId != 0 && h.nlmsg_type != XFRM_MSG_POLEXPIRE) {
        ++out.own;
      } else {
        if (out.foreign++ == 0) out.firstForeign = what;
      }
    }
    off += NLMSG_ALIGN(h.nlmsg_len);
    if (off > buf.size()) break;
  }
}

}  // namespace xfrm

namespace {
constexpr std::size_t kBuffer = 64 * 1024;
constexpr int kMaxDatagramsPerWakeup = 256;
}  // namespace

XfrmPolicyWatch::XfrmPolicyWatch(boost::asio::io_context& io) : socket_(io), buffer_(kBuffer) {}

XfrmPolicyWatch::~XfrmPolicyWatch() { stop(); }

void XfrmPolicyWatch::start(std::uint32_t ownPortId, OnChange onChange) {
  ownPortId_ = ownPortId;
  onChange_ = std::move(onChange);
  boost::system::error_code ec;
  socket_.open(boost::asio::generic::raw_protocol(AF_NETLINK, NETLINK_XFRM), ec);
  if (ec) throw std::system_error(ec.value(), std::system_category(), "socket(NETLINK_XFRM)");
  const int fd = socket_.native_handle();
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "fcntl");
  // NETLINK_NO_ENOBUFS stays off: an overflow must be reported, then everything is re-read.
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = XFRMGRP_POLICY;
  socket_.bind(boost::asio::generic::raw_protocol::endpoint(&sa, sizeof sa), ec);
  if (ec) throw std::system_error(ec.value(), std::system_category(), "bind(NETLINK_XFRM, XFRMNLGRP_POLICY)");
  socket_.non_blocking(true, ec);
  stopped_ = false;
  receive();
}

void XfrmPolicyWatch::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
}

void XfrmPolicyWatch::receive() {
  socket_.async_wait(boost::asio::socket_base::wait_read, [this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    onReadable();
    if (!stopped_) receive();
  });
}

void XfrmPolicyWatch::onReadable() {
  xfrm::PolicyEvents events;
  bool overflow = false;
  for (int i = 0; i < kMaxDatagramsPerWakeup; ++i) {
    sockaddr_nl from{};
    socklen_t fromLen = sizeof from;
    ssize_t n = ::recvfrom(socket_.native_handle(), buffer_.data(), buffer_.size(), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        overflow = true;
        continue;  // the queue was reset; read on
      }
      break;  // EAGAIN: drained
    }
    if (from.nl_pid != 0) continue;  // only the kernel sends policy events
    xfrm::countPolicyEvents({buffer_.data(), static_cast<std::size_t>(n)}, ownPortId_, events);
  }
  if (overflow)
    onChange_("the XFRM event queue overflowed (events lost)");
  else if (events.foreign > 0)
    onChange_(std::to_string(events.foreign) + " policy change(s) by another process (first: " + events.firstForeign +
              ")");
}

}  // namespace ipopsec
