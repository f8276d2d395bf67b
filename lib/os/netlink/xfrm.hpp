#pragma once
// The kernel's XFRM security policy database over NETLINK_XFRM: the real PolicyTable.
//
// Every call is one short, synchronous kernel round-trip on a plain blocking socket
// (netlink::Requester: SO_RCVTIMEO bounds a lost reply), so no Asio is involved. The
// messages are encoded and decoded in os/netlink/xfrm_codec.hpp.
//
// Ownership. The daemon owns exactly the policies of the main policy type, without
// mark, interface id or security context, whose selector Policy can express (no ports
// except an ICMP type, no ifindex/uid), and whose priority is one of the two configured
// ones. list() returns only those; everything else is foreign and never touched:
//   - install() refuses (std::errc::file_exists) to replace a foreign policy with the
//     same kernel id (dir + selector): XFRM_MSG_UPDPOLICY would silently overwrite it
//     whatever its priority.
//   - remove() deletes by the kernel's policy index after checking the priority, so a
//     foreign policy with the same selector is left alone (and counts as "not ours,
//     already absent": success).
//
// Decoding owned policies faithfully. A policy is decoded exactly when it has the shape
// install() would give it: action allow, flags 0, infinite byte/packet limits, and either
// no template (bypass) or one ESP transport template with any address, spi 0, reqid 0,
// share any and all algorithms (protect; optional=1 -> level use). Anything else (action
// block, tunnel mode, AH, several templates, a reqid, ...) can't be expressed by Policy;
// such a policy is reported with the shape the daemon never installs at its priority
// (bypass at the protect priority, protect/require at the bypass priority), so it always
// differs from the desired policy with the same id and the reconciler replaces it in place
// (or removes it when that id is not wanted). listAll() describes each such policy in
// `unparsed` as well.
//
// Larval states. When traffic hits a protect policy and a key manager listens for
// XFRM_MSG_ACQUIRE, the kernel inserts a larval ("acquire") state: spi 0, its km.seq in
// xfrm_usersa_info.seq, state XFRM_STATE_ACQ, hard add-expiry net.core.xfrm_acq_expires
// (30 s). They do show in an XFRM_MSG_GETSA dump. XFRM_MSG_DELSA can't reach them: for
// ESP the kernel looks states up by (daddr, spi, proto) and spi-0 states are not in the
// SPI hash (`ip xfrm state deleteall ... proto esp` fails with ESRCH on them). What works
// (and is what a key manager does when it answers an acquire): XFRM_MSG_ALLOCSPI with the
// acquire's seq gives that larval state an SPI, then XFRM_MSG_DELSA by that SPI deletes it.
// XFRM_MSG_FLUSHSA is never used (it would remove every state).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "core/policy/cidr.hpp"
#include "core/policy/policy.hpp"
#include "core/ports.hpp"
#include "os/netlink/netlink.hpp"
#include "os/netlink/xfrm_codec.hpp"

namespace ipopsec {

// One SA as listStates reports it (src, dst, proto, spi, reqid, mode, larval).
using XfrmStateInfo = xfrm::StateInfo;

class XfrmPolicyTable final : public PolicyTable {
 public:
  // Opens and binds the NETLINK_XFRM socket; throws std::system_error if it can't.
  // `owned`: which policies are this table's (the daemon's configured pair and what it adopted).
  explicit XfrmPolicyTable(PolicyOwnership owned);
  // Owning exactly this pair (the tests' and the benchmark's tables).
  XfrmPolicyTable(std::uint32_t protectPriority, std::uint32_t bypassPriority)
      : XfrmPolicyTable(PolicyOwnership(protectPriority, bypassPriority)) {}
  ~XfrmPolicyTable() override = default;
  XfrmPolicyTable(const XfrmPolicyTable&) = delete;
  XfrmPolicyTable& operator=(const XfrmPolicyTable&) = delete;

  // Which policies are this table's (core/policy/ownership.hpp); list() keeps only those.
  const PolicyOwnership& ownership() const override { return owned_; }
  void setOwnership(PolicyOwnership owned) override { owned_ = std::move(owned); }

  std::error_code list(std::vector<Policy>& out) override;    // dump, keep only owned ones
  std::error_code install(const Policy& p) override;          // XFRM_MSG_UPDPOLICY (add or replace)
  // XFRM_MSG_NEWPOLICY for all in one batch (adds what no policy holds yet: nothing is
  // replaced); an id already held goes through install() (ours: replaced; foreign: refused).
  std::vector<InstallResult> installAll(const std::vector<Policy>& ps) override;
  std::error_code remove(const Policy& p) override;           // by id; absent -> success
  std::error_code flushLarval(const std::vector<Cidr>& ranges) override;
  std::optional<Policy> lastConflict() const override { return lastConflict_; }
  std::error_code removeStates(const std::vector<Cidr>& ranges, std::size_t& removed) override;
  // Same, and says how many larval states were deleted.
  std::error_code flushLarval(const std::vector<Cidr>& ranges, std::size_t* removed);

  // Every policy in the kernel, owned or not (status, diagnostics, tests). `unparsed`
  // gets one line per message or policy that could not be decoded exactly.
  std::error_code listAll(std::vector<Policy>& out, std::vector<std::string>* unparsed = nullptr);
  // Every SA in the kernel, larval ones included (read-only: `ipop-ipsecd status`, tests).
  std::error_code listStates(std::vector<XfrmStateInfo>& out);
  // The same, as the core's plain facts.
  std::error_code listSas(std::vector<SaFact>& out) override;
  std::error_code listForeign(std::vector<Policy>& out) override;  // dump, keep what list() does not

  // The kernel's extended-ack text of the last failed request ("" when none was given).
  const std::string& lastKernelMessage() const { return lastMessage_; }
  // The netlink port id of this table's socket: the kernel stamps the policy events of the
  // changes this table makes with it (XfrmPolicyWatch ignores those).
  std::uint32_t portId() const { return nl_.portId(); }

 private:
  std::error_code deleteStates(const std::vector<Cidr>& ranges, bool larvalOnly, std::size_t* removed);
  std::error_code dumpPolicies(xfrm::DecodeResult& result);
  std::error_code dumpStates(xfrm::StateDecodeResult& result);
  // One request and its ack (netlink::Requester::request); keeps the kernel's message.
  std::error_code transact(std::vector<std::uint8_t> request, std::vector<std::uint8_t>* replies);
  std::error_code getPolicy(const Policy& p, bool& found, xfrm::DecodedPolicy& kernel);
  // Clears lastKernelMessage(); invalid_argument (and why) when `p` can't be encoded.
  std::error_code validate(const Policy& p);

  PolicyOwnership owned_;
  netlink::Requester nl_;
  std::string lastMessage_;
  std::optional<Policy> lastConflict_;
};

}  // namespace ipopsec
