#include "os/netlink/xfrm_watch.hpp"

#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

#include "os/netlink/netlink.hpp"
#include "os/netlink/xfrm_codec.hpp"

namespace ipopsec {

namespace xfrm {

void countPolicyEvents(std::span<const std::uint8_t> buf, std::uint32_t ownPortId, PolicyEvents& out,
                       const PolicyConcerns& concerns) {
  netlink::Messages walk(buf);
  netlink::Message m;
  while (walk.next(m)) {
    const nlmsghdr& h = m.header;
    const char* what = nullptr;
    if (h.nlmsg_type == XFRM_MSG_ACQUIRE) {
      ++out.acquires;  // the kernel's (port id 0); nothing to reconcile
      continue;
    }
    if (h.nlmsg_type == XFRM_MSG_FLUSHSA) {
      // The daemon never flushes SAs; anyone who does removed the IKE daemon's keys.
      if (h.nlmsg_pid != ownPortId || ownPortId == 0) ++out.saFlushes;
      continue;
    }
    switch (h.nlmsg_type) {
      case XFRM_MSG_NEWPOLICY:
      case XFRM_MSG_UPDPOLICY: what = "add/replace"; break;
      case XFRM_MSG_DELPOLICY: what = "delete"; break;
      case XFRM_MSG_FLUSHPOLICY: what = "flush"; break;
      case XFRM_MSG_POLEXPIRE: what = "expire"; break;
      default: break;  // not a policy event (the group carries only these)
    }
    if (!what) continue;
    // Expiry is the kernel's own doing (port id 0 like any kernel-made event); a
    // request's notification carries the requester's port id.
    if (h.nlmsg_pid == ownPortId && ownPortId != 0 && h.nlmsg_type != XFRM_MSG_POLEXPIRE) {
      ++out.own;
    } else {
      // A flush, or a change whose policy can't be read, always counts.
      std::optional<Policy> changed;
      if (concerns && h.nlmsg_type != XFRM_MSG_FLUSHPOLICY) changed = policyOfEvent(h.nlmsg_type, m.payload);
      if (changed && !concerns(*changed))
        ++out.unrelated;
      else if (out.foreign++ == 0)
        out.firstForeign = what;
    }
  }
  if (!walk.error().empty()) ++out.malformed;
}

Drained drainPolicyEvents(int fd, std::vector<std::uint8_t>& buf, std::uint32_t ownPortId,
                          const PolicyConcerns& concerns, int maxDatagrams) {
  Drained out;
  for (int i = 0; i < maxDatagrams; ++i) {
    netlink::Datagram d;
    if (auto ec = netlink::receive(fd, buf, d, true)) {
      if (ec.value() == ENOBUFS) {
        out.overflow = true;
        continue;  // the queue was reset; read on
      }
      break;  // EAGAIN: drained
    }
    if (!d.fromKernel) continue;  // only the kernel sends policy events and ACQUIREs
    countPolicyEvents({buf.data(), d.size}, ownPortId, out.events, concerns);
  }
  return out;
}

}  // namespace xfrm

namespace {
constexpr std::size_t kBuffer = 64 * 1024;
constexpr int kMaxDatagramsPerWakeup = 256;
}  // namespace

XfrmPolicyWatch::XfrmPolicyWatch(boost::asio::io_context& io) : socket_(io), buffer_(kBuffer) {}

XfrmPolicyWatch::~XfrmPolicyWatch() { stop(); }

void XfrmPolicyWatch::start(std::uint32_t ownPortId, OnChange onChange, xfrm::PolicyConcerns concerns,
                            OnAcquire onAcquire) {
  ownPortId_ = ownPortId;
  concerns_ = std::move(concerns);
  onChange_ = std::move(onChange);
  onAcquire_ = std::move(onAcquire);
  // The SA group carries every SA the IKE daemon adds or deletes, not only flushes: only
  // followed when asked for (the messages other than FLUSHSA are skipped).
  const std::uint32_t groups =
      XFRMGRP_POLICY | (onAcquire_ ? XFRMGRP_ACQUIRE : 0u) | (onFlushSa_ ? static_cast<std::uint32_t>(XFRMGRP_SA) : 0u);
  // NETLINK_NO_ENOBUFS stays off: an overflow must be reported, then everything is re-read.
  netlink::Socket sock;
  std::string what;
  if (auto ec = sock.open({.protocol = NETLINK_XFRM, .groups = groups}, &what))
    throw std::system_error(ec, what + " (XFRMNLGRP_POLICY" + (onAcquire_ ? ", XFRMNLGRP_ACQUIRE" : "") +
                                    (onFlushSa_ ? ", XFRMNLGRP_SA" : "") + ")");
  boost::system::error_code ec;
  socket_.assign(boost::asio::generic::raw_protocol(AF_NETLINK, NETLINK_XFRM), sock.fd(), ec);
  if (ec) throw std::system_error(ec.value(), std::system_category(), "assigning the NETLINK_XFRM socket");
  sock.release();  // the Asio socket owns it now
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
  const auto [events, overflow] =
      xfrm::drainPolicyEvents(socket_.native_handle(), buffer_, ownPortId_, concerns_, kMaxDatagramsPerWakeup);
  // After an overflow ACQUIREs may have been lost too.
  if ((events.acquires > 0 || overflow) && onAcquire_) onAcquire_();
  // An overflow may have hidden a flush: the policy side re-reads everything, but SAs have
  // no level to re-read (the IKE daemon's keys are its own); only a seen flush counts.
  if (events.saFlushes > 0 && onFlushSa_) onFlushSa_("`ip xfrm state flush` or the like");
  if (overflow)
    onChange_("the XFRM event queue overflowed (events lost)");
  else if (events.foreign > 0)
    onChange_(std::to_string(events.foreign) + " policy change(s) by another process (first: " + events.firstForeign +
              ")");
}

}  // namespace ipopsec
