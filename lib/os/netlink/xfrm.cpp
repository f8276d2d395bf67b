// XfrmPolicyTable: the daemon's XFRM policies (and the states they lead to) over one
// blocking NETLINK_XFRM requester. Messages are built and read by the XFRM codec.
#include "os/netlink/xfrm.hpp"

#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace ipopsec {
namespace {

std::error_code sysError(int e) { return {e, std::system_category()}; }

// What a decoded dump says beyond its entries.
std::error_code checkDump(int error, bool overflow, bool done) {
  if (error != 0) return sysError(error);
  if (overflow) return std::make_error_code(std::errc::value_too_large);
  if (!done) return std::make_error_code(std::errc::bad_message);
  return {};
}

}  // namespace

XfrmPolicyTable::XfrmPolicyTable(PolicyOwnership owned) : owned_(std::move(owned)), nl_(NETLINK_XFRM) {}

std::error_code XfrmPolicyTable::transact(std::vector<std::uint8_t> request, std::vector<std::uint8_t>* replies) {
  auto ec = nl_.request(std::move(request), replies);
  lastMessage_ = nl_.lastKernelMessage();
  return ec;
}

// A dump (NLM_F_DUMP_INTR retried by the requester), then decoded.
std::error_code XfrmPolicyTable::dumpPolicies(xfrm::DecodeResult& result) {
  std::vector<std::uint8_t> raw;
  auto ec = nl_.dump(XFRM_MSG_GETPOLICY, {}, raw);
  lastMessage_ = nl_.lastKernelMessage();
  if (ec) return ec;
  result = xfrm::decodePolicyDump(raw, owned_);
  return checkDump(result.error, result.overflow, result.done);
}

std::error_code XfrmPolicyTable::dumpStates(xfrm::StateDecodeResult& result) {
  std::vector<std::uint8_t> raw;
  auto ec = nl_.dump(XFRM_MSG_GETSA, {}, raw);
  lastMessage_ = nl_.lastKernelMessage();
  if (ec) return ec;
  result = xfrm::decodeStateDump(raw);
  return checkDump(result.error, result.overflow, result.done);
}

std::error_code XfrmPolicyTable::listAll(std::vector<Policy>& out, std::vector<std::string>* unparsed) {
  xfrm::DecodeResult r;
  if (auto ec = dumpPolicies(r)) return ec;
  out = std::move(r.policies);
  if (unparsed) {
    unparsed->clear();
    for (const auto& d : r.details)
      if (!d.exact) unparsed->push_back(d.note);
    for (auto& s : r.skipped) unparsed->push_back(std::move(s));
    if (r.skippedCount > r.skipped.size())
      unparsed->push_back(std::to_string(r.skippedCount - r.skipped.size()) + " more skipped");
  }
  return {};
}

std::error_code XfrmPolicyTable::list(std::vector<Policy>& out) {
  xfrm::DecodeResult r;
  if (auto ec = dumpPolicies(r)) return ec;
  out.clear();
  for (const auto& p : r.policies)
    if (owned_.owns(p.priority)) out.push_back(p);
  return {};
}

std::error_code XfrmPolicyTable::listForeign(std::vector<Policy>& out) {
  xfrm::DecodeResult r;
  if (auto ec = dumpPolicies(r)) return ec;
  out.clear();
  for (const auto& p : r.policies)
    if (!owned_.owns(p.priority)) out.push_back(p);
  return {};
}

std::error_code XfrmPolicyTable::getPolicy(const Policy& p, bool& found, xfrm::DecodedPolicy& kernel) {
  found = false;
  std::vector<std::uint8_t> replies;
  auto ec = transact(xfrm::encodePolicyId(p, XFRM_MSG_GETPOLICY, 0), &replies);
  if (ec == std::errc::no_such_file_or_directory) return {};
  if (ec) return ec;
  auto r = xfrm::decodePolicyDump(replies, owned_);
  if (r.details.size() != 1) {
    if (!r.skipped.empty()) lastMessage_ = r.skipped.front();
    return std::make_error_code(std::errc::bad_message);
  }
  found = true;
  kernel = std::move(r.details.front());
  return {};
}

std::error_code XfrmPolicyTable::validate(const Policy& p) {
  lastMessage_ = xfrm::validatePolicy(p);
  return lastMessage_.empty() ? std::error_code{} : std::make_error_code(std::errc::invalid_argument);
}

std::error_code XfrmPolicyTable::install(const Policy& p) {
  lastConflict_.reset();
  if (auto ec = validate(p)) return ec;
  // XFRM_MSG_UPDPOLICY replaces whatever policy has this dir + selector, whatever its
  // priority: look first, so that a foreign one is never overwritten.
  bool found = false;
  xfrm::DecodedPolicy current;
  if (auto ec = getPolicy(p, found, current)) {
    // A policy with this id that we can't even decode is not provably ours.
    if (ec == std::errc::bad_message) return std::make_error_code(std::errc::file_exists);
    return ec;
  }
  if (found && !owned_.owns(current.policy.priority)) {
    lastMessage_ = "a foreign policy holds this id: " + current.policy.str();
    lastConflict_ = current.policy;
    return std::make_error_code(std::errc::file_exists);
  }
  return transact(xfrm::encodePolicy(p, XFRM_MSG_UPDPOLICY, 0), nullptr);
}

std::vector<InstallResult> XfrmPolicyTable::installAll(const std::vector<Policy>& ps) {
  std::vector<InstallResult> results(ps.size());
  std::vector<std::size_t> sent;
  std::vector<std::vector<std::uint8_t>> batch;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    if (auto ec = validate(ps[i])) {
      results[i].ec = ec;
      continue;
    }
    sent.push_back(i);
    batch.push_back(xfrm::encodePolicy(ps[i], XFRM_MSG_NEWPOLICY, 0));
  }
  auto acks = nl_.requestAll(std::move(batch));
  for (std::size_t k = 0; k < sent.size(); ++k) {
    const std::size_t i = sent[k];
    results[i].ec = acks[k].ec;
    if (acks[k].ec == std::errc::file_exists) {
      // Something holds this id already: ours is replaced, a foreign one is refused.
      results[i].ec = install(ps[i]);
      if (results[i].ec == std::errc::file_exists) results[i].conflict = lastConflict_;
    } else if (acks[k].ec) {
      lastMessage_ = acks[k].message;
    }
  }
  return results;
}

std::error_code XfrmPolicyTable::remove(const Policy& p) {
  if (auto ec = validate(p)) return ec;
  bool found = false;
  xfrm::DecodedPolicy current;
  if (auto ec = getPolicy(p, found, current)) return ec;
  if (!found || !owned_.owns(current.policy.priority)) return {};  // ours is not there
  // Delete by index: exactly the policy just looked at, not a foreign one that replaced it.
  auto ec = transact(xfrm::encodePolicyId(p, XFRM_MSG_DELPOLICY, 0, current.index), nullptr);
  if (ec == std::errc::no_such_file_or_directory) return {};
  return ec;
}

std::error_code XfrmPolicyTable::listStates(std::vector<XfrmStateInfo>& out) {
  xfrm::StateDecodeResult r;
  if (auto ec = dumpStates(r)) return ec;
  out = std::move(r.states);
  return {};
}

std::error_code XfrmPolicyTable::flushLarval(const std::vector<Cidr>& ranges) { return flushLarval(ranges, nullptr); }

std::error_code XfrmPolicyTable::flushLarval(const std::vector<Cidr>& ranges, std::size_t* removed) {
  return deleteStates(ranges, true, removed);
}

std::error_code XfrmPolicyTable::removeStates(const std::vector<Cidr>& ranges, std::size_t& removed) {
  return deleteStates(ranges, false, &removed);
}

// ESP states whose two ends lie in one of `ranges` (only larval ones when `larvalOnly`):
// a larval state gets an SPI first (ALLOCSPI by its acquire seq: DELSA can't reach spi 0),
// then each is deleted by (daddr, spi, proto) and its source. A state that went away
// meanwhile (expired, or its key manager deleted it) counts as done.
// With `larvalOnly`, the placeholder for packets A -> B stays while the kernel holds an
// inbound SPI B -> A without keys (ALLOCSPI: the IKE daemon is making a CHILD_SA with B right
// now, in IKE_AUTH). Removed, the next packet would raise a new ACQUIRE, and if the IKE
// daemon reads it after that CHILD_SA is installed (under load, hundreds of ms later),
// nothing is pending any more and it starts a second IKE_SA with B for nothing (seen in the
// UML mesh: up to twice the IKE_SAs of a node that never removes them).
std::error_code XfrmPolicyTable::deleteStates(const std::vector<Cidr>& ranges, bool larvalOnly, std::size_t* removed) {
  if (removed) *removed = 0;
  std::vector<XfrmStateInfo> states;
  if (auto ec = listStates(states)) return ec;
  auto negotiating = [&states](const XfrmStateInfo& placeholder) {
    return std::any_of(states.begin(), states.end(), [&](const XfrmStateInfo& in) {
      return in.proto == IPPROTO_ESP && in.spi != 0 && in.larval() && in.src == placeholder.dst &&
             in.dst == placeholder.src;
    });
  };
  std::error_code first;
  for (const auto& s : states) {
    if (larvalOnly ? !s.acquirePending() || negotiating(s) : s.proto != IPPROTO_ESP) continue;
    bool inside = std::any_of(ranges.begin(), ranges.end(),
                              [&](const Cidr& r) { return r.contains(s.src) && r.contains(s.dst); });
    if (!inside) continue;
    xfrm::StateInfo keyed = s;
    if (s.spi == 0) {
      // 1. Give the larval state an SPI (found by its acquire seq).
      std::vector<std::uint8_t> reply;
      auto ec = transact(xfrm::encodeAllocSpi(s), &reply);
      if (ec == std::errc::no_such_file_or_directory || ec == std::errc::no_such_process) continue;  // expired meanwhile
      if (ec) {
        if (!first) first = ec;
        continue;
      }
      auto got = xfrm::decodeStateDump(reply);
      if (got.states.size() != 1 || got.states.front().spi == 0) {
        if (!first) first = std::make_error_code(std::errc::bad_message);
        continue;
      }
      keyed = got.states.front();
    }

    // 2. Delete it by its SPI.
    auto ec = transact(xfrm::encodeDeleteState(keyed), nullptr);
    if (ec == std::errc::no_such_process || ec == std::errc::no_such_file_or_directory) continue;
    if (ec) {
      if (!first) first = ec;
      continue;
    }
    if (removed) ++*removed;
  }
  return first;
}

std::error_code XfrmPolicyTable::listSas(std::vector<SaFact>& out) {
  std::vector<XfrmStateInfo> states;
  if (auto ec = listStates(states)) return ec;
  out.clear();
  for (const auto& st : states) out.push_back({st.src, st.dst, st.proto == IPPROTO_ESP, st.larval()});
  return {};
}

}  // namespace ipopsec
