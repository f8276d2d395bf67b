#pragma once
// The kernel's XFRM security policy database over NETLINK_XFRM: the real PolicyTable.
//
// Every call is one short, synchronous kernel round-trip on a plain blocking socket
// (SO_RCVTIMEO bounds a lost reply), so no Asio is involved.
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
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "core/cidr.hpp"
#include "core/policy.hpp"
#include "core/ports.hpp"

namespace ipopsec {

namespace xfrm {

// The priorities whose policies the daemon owns: the two configured ones, and those an
// earlier configuration of this daemon used and that may still carry its policies (from
// the state file), so that a changed priority is migrated make-before-break (UPDPOLICY
// replaces a policy with the same selector in place, whatever its priority) instead of
// colliding with the daemon's own old policies.
struct Owned {
  std::uint32_t protectPriority = 0;
  std::uint32_t bypassPriority = 0;
  std::vector<std::uint32_t> earlier;
  bool owns(std::uint32_t priority) const {
    if (priority == protectPriority || priority == bypassPriority) return true;
    for (auto e : earlier)
      if (e == priority) return true;
    return false;
  }
};

// Upper bounds for what a dump may make us allocate.
inline constexpr std::size_t kMaxDumpBytes = 64U << 20;
inline constexpr std::size_t kMaxEntries = 200000;
inline constexpr std::size_t kMaxSkipped = 64;  // reasons kept; the rest are counted

// An xfrm_userpolicy_info (+ XFRMA_TMPL for protect) in a netlink message with
// NLM_F_REQUEST | NLM_F_ACK. `type` is XFRM_MSG_NEWPOLICY or XFRM_MSG_UPDPOLICY.
std::vector<std::uint8_t> encodePolicy(const Policy& p, std::uint16_t type, std::uint32_t seq);

// An xfrm_userpolicy_id for XFRM_MSG_GETPOLICY / XFRM_MSG_DELPOLICY: by selector when
// `index` is 0, else by the kernel's index (dir must still match).
std::vector<std::uint8_t> encodePolicyId(const Policy& p, std::uint16_t type, std::uint32_t seq,
                                         std::uint32_t index = 0);

// Why Policy can't be encoded (e.g. src and dst of different families); empty when fine.
std::string validatePolicy(const Policy& p);

// One XFRM_MSG_NEWPOLICY decoded.
struct DecodedPolicy {
  Policy policy;
  std::uint32_t index = 0;   // the kernel's policy index
  bool exact = true;         // false: shape not expressible, see the header comment
  std::string note;          // why not exact
};

struct DecodeResult {
  std::vector<Policy> policies;       // every policy with an expressible id, in dump order
  std::vector<DecodedPolicy> details; // parallel to `policies`
  std::vector<std::string> skipped;   // malformed messages / inexpressible ids, with a reason
  std::size_t skippedCount = 0;       // all skipped, also those beyond kMaxSkipped
  bool done = false;                  // NLMSG_DONE seen
  bool interrupted = false;           // NLM_F_DUMP_INTR: the table changed during the dump
  bool overflow = false;              // more than kMaxEntries policies
  int error = 0;                      // positive errno from an NLMSG_ERROR (or NLMSG_DONE) in the dump
};

// Decodes the messages of a policy dump (one or more concatenated datagrams). Messages
// whose nlmsg_seq differs from `seq` are ignored when `seq` != 0. Malformed input is
// skipped with a reason, never a crash. `owned` only steers how inexact shapes are
// reported (see the header comment); no policy is filtered out here.
DecodeResult decodePolicyDump(std::span<const std::uint8_t> buf, const Owned& owned,
                              std::uint32_t seq = 0);

// The part of an SA (xfrm_usersa_info) that flushLarval needs.
struct StateInfo {
  IpAddress src;
  IpAddress dst;
  std::uint8_t proto = 0;
  std::uint32_t spi = 0;     // host byte order
  std::uint32_t seq = 0;     // km.seq: non-zero for acquire-created states
  std::uint32_t reqid = 0;
  std::uint8_t mode = 0;
  bool larval() const;       // ESP, spi 0, acquire seq set
};

struct StateDecodeResult {
  std::vector<StateInfo> states;
  std::vector<std::string> skipped;
  std::size_t skippedCount = 0;
  bool done = false;
  bool interrupted = false;
  bool overflow = false;
  int error = 0;
};

// Decodes XFRM_MSG_NEWSA messages of a state dump (or an ALLOCSPI reply).
StateDecodeResult decodeStateDump(std::span<const std::uint8_t> buf, std::uint32_t seq = 0);

// "out 10.254.0.0/16 -> 10.254.0.0/16 esp/transport/require prio 250000" (no dependency
// on the core's Policy::str, so diagnostics work on their own).
std::string describe(const Policy& p);

}  // namespace xfrm

class XfrmPolicyTable final : public PolicyTable {
 public:
  // Opens and binds the NETLINK_XFRM socket; throws std::system_error if it can't.
  XfrmPolicyTable(std::uint32_t protectPriority, std::uint32_t bypassPriority);
  ~XfrmPolicyTable() override;
  XfrmPolicyTable(const XfrmPolicyTable&) = delete;
  XfrmPolicyTable& operator=(const XfrmPolicyTable&) = delete;

  // New configured priorities; `earlier`: priorities of this daemon's own policies from an
  // earlier configuration, owned until they are gone from the kernel.
  void setPriorities(std::uint32_t protectPriority, std::uint32_t bypassPriority,
                     std::vector<std::uint32_t> earlier) override;
  std::vector<std::uint32_t> earlierPriorities() const override { return owned_.earlier; }
  const xfrm::Owned& owned() const { return owned_; }

  std::error_code list(std::vector<Policy>& out) override;    // dump, keep only owned ones
  std::error_code install(const Policy& p) override;          // XFRM_MSG_UPDPOLICY (add or replace)
  std::error_code remove(const Policy& p) override;           // by id; absent -> success
  std::error_code flushLarval(const std::vector<Cidr>& ranges) override;
  std::optional<Policy> lastConflict() const override { return lastConflict_; }
  std::error_code removeStates(const std::vector<Cidr>& ranges, std::size_t& removed) override;
  // Same, and says how many larval states were deleted.
  std::error_code flushLarval(const std::vector<Cidr>& ranges, std::size_t* removed);

  // Every policy in the kernel, owned or not (status, diagnostics, tests). `unparsed`
  // gets one line per message or policy that could not be decoded exactly.
  std::error_code listAll(std::vector<Policy>& out, std::vector<std::string>* unparsed = nullptr);
  // Every SA in the kernel, larval ones included.
  std::error_code listStates(std::vector<xfrm::StateInfo>& out);

  // The kernel's extended-ack text of the last failed request ("" when none was given).
  const std::string& lastKernelMessage() const { return lastMessage_; }
  // The netlink port id of this table's socket: the kernel stamps the policy events of the
  // changes this table makes with it (XfrmPolicyWatch ignores those).
  std::uint32_t portId() const { return portId_; }

 private:
  std::error_code deleteStates(const std::vector<Cidr>& ranges, bool larvalOnly, std::size_t* removed);
  std::error_code dumpPolicies(xfrm::DecodeResult& result);
  std::error_code dumpStates(xfrm::StateDecodeResult& result);
  std::error_code dump(std::uint16_t type, std::vector<std::uint8_t>& raw, std::uint32_t& seq);
  // Sends a request carrying NLM_F_ACK and waits for its ack; replies with the same seq
  // (e.g. the policy a GET returns) are appended to `replies`.
  std::error_code transact(std::vector<std::uint8_t> request, std::vector<std::uint8_t>* replies);
  std::error_code getPolicy(const Policy& p, bool& found, xfrm::DecodedPolicy& kernel);
  std::error_code sendAll(const std::vector<std::uint8_t>& msg);
  std::uint32_t nextSeq();

  xfrm::Owned owned_;
  int fd_ = -1;
  std::uint32_t portId_ = 0;
  std::uint32_t seq_ = 0;
  std::string lastMessage_;
  std::optional<Policy> lastConflict_;
  std::vector<std::uint8_t> rxbuf_;
};

}  // namespace ipopsec
