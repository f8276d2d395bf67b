#pragma once
// Follows the kernel's XFRM policy events (XFRMNLGRP_POLICY) on the daemon's io_context:
// a policy added, replaced, deleted, expired or a whole table flushed by anyone but the
// daemon's own XFRM socket. Optionally also the kernel's ACQUIREs (XFRMNLGRP_ACQUIRE: a
// packet hit a policy with a template and no SA; the kernel made a larval state for it).
// Listening for them makes the daemon one of the key managers the kernel asks: it keeps
// its larval states even while no IKE daemon runs (traffic stays dropped either way). Level-triggered like the link monitor: the callback only says
// "the policy database may have changed"; the daemon then reconciles, which re-reads the
// kernel and repairs what is missing (an `ip xfrm policy flush` is undone in well under a
// millisecond instead of at the next resync).
//
// The daemon's own changes come back as events too; the kernel stamps each notification
// with the port id of the request that caused it, so those of `ownPortId` are ignored
// (no reconcile loop). A receive-queue overflow (ENOBUFS: events were lost) is reported as
// a change: the reconcile re-reads everything.

#include <utility>  // before any Asio header (Boost 1.74 + g++ 12)

#include <boost/asio/generic/raw_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "core/policy/policy.hpp"

namespace ipopsec {

namespace xfrm {

// What a batch of XFRMNLGRP_POLICY datagrams says.
struct PolicyEvents {
  std::size_t foreign = 0;    // changes made by others (or by the kernel: expiry) that concern the daemon
  std::size_t own = 0;        // changes the daemon's own socket made
  std::size_t unrelated = 0;  // changes by others to policies that do not concern it (an IKE daemon's)
  std::size_t malformed = 0;  // messages that could not be walked
  std::size_t acquires = 0;   // XFRM_MSG_ACQUIRE (only with the ACQUIRE group)
  std::size_t saFlushes = 0;  // XFRM_MSG_FLUSHSA by another process (only with the SA group)
  std::string firstForeign;   // "flush", "delete", "add/replace", "expire" of the first foreign one
};

// Whether a change of this policy (id and priority, xfrm::policyOfEvent) concerns the daemon.
using PolicyConcerns = std::function<bool(const Policy& changed)>;

// Counts the policy events in `buf` (one datagram, possibly several messages). A foreign
// change counts as `foreign` unless `concerns` is set and says no about its policy; a flush,
// or a change whose policy cannot be read, always counts.
void countPolicyEvents(std::span<const std::uint8_t> buf, std::uint32_t ownPortId, PolicyEvents& out,
                       const PolicyConcerns& concerns = nullptr);

// What one drain of a subscribed XFRM socket read: the events of every datagram from the
// kernel, and whether the receive queue overflowed meanwhile (ENOBUFS: events, ACQUIREs among
// them, were lost; the kernel reset the queue and the drain read on).
struct Drained {
  PolicyEvents events;
  bool overflow = false;
};

// Reads the datagrams queued on `fd` without blocking, at most `maxDatagrams`, into `buf`,
// and counts their events (countPolicyEvents; datagrams not from the kernel are skipped).
// Stops at EAGAIN or any other error (the next wake-up reads on).
Drained drainPolicyEvents(int fd, std::vector<std::uint8_t>& buf, std::uint32_t ownPortId,
                          const PolicyConcerns& concerns, int maxDatagrams);

}  // namespace xfrm

class XfrmPolicyWatch {
 public:
  using OnChange = std::function<void(const std::string& what)>;
  using OnAcquire = std::function<void()>;
  explicit XfrmPolicyWatch(boost::asio::io_context& io);
  ~XfrmPolicyWatch();
  XfrmPolicyWatch(const XfrmPolicyWatch&) = delete;
  XfrmPolicyWatch& operator=(const XfrmPolicyWatch&) = delete;

  // Opens the socket and starts following; `onChange(what)` runs once per drained batch
  // that held a foreign change (or after an overflow). Throws std::system_error when the
  // socket cannot be opened or bound.
  // `concerns` (optional) leaves out the changes of policies that are none of the daemon's
  // business: an IKE daemon installs and removes its own all the time.
  // `onAcquire` (optional) subscribes to the ACQUIREs too; it runs once per drained batch
  // that held any.
  void start(std::uint32_t ownPortId, OnChange onChange, xfrm::PolicyConcerns concerns = nullptr,
             OnAcquire onAcquire = nullptr);
  void stop();
  // Before start(): also follow the SA group and call `f(what)` once per drained batch that
  // held an `ip xfrm state flush` (XFRM_MSG_FLUSHSA) by another process.
  void onStatesFlushed(OnChange f) { onFlushSa_ = std::move(f); }

 private:
  void receive();
  void onReadable();

  boost::asio::generic::raw_protocol::socket socket_;
  std::uint32_t ownPortId_ = 0;
  OnChange onChange_;
  OnAcquire onAcquire_;
  OnChange onFlushSa_;
  xfrm::PolicyConcerns concerns_;
  std::vector<std::uint8_t> buffer_;
  bool stopped_ = true;
};

}  // namespace ipopsec
