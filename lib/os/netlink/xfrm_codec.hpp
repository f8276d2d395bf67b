#pragma once
// Encoding and decoding of XFRM messages (NETLINK_XFRM): policies (xfrm_userpolicy_info,
// xfrm_userpolicy_id, XFRMA_TMPL) and states (xfrm_usersa_info, ALLOCSPI, DELSA). Pure: no
// socket; the framing, attributes and kernel errors are the netlink layer's (os/netlink/netlink.hpp).
// What a decoded policy means for ownership is described in os/netlink/xfrm.hpp.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/policy/cidr.hpp"
#include "core/policy/ownership.hpp"
#include "core/policy/policy.hpp"

namespace ipopsec {

namespace xfrm {

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
// The policy a policy event (XFRMNLGRP_POLICY) is about: its id (dir + selector) and
// priority, from the message's xfrm_userpolicy_info (NEWPOLICY/UPDPOLICY: the payload;
// DELPOLICY: the XFRMA_POLICY attribute; POLEXPIRE: the xfrm_user_polexpire). nullopt when
// the message carries none it can read, or a selector no Policy can express (ports, an
// ifindex: never the daemon's, nor the id of one of its policies).
std::optional<Policy> policyOfEvent(const std::uint16_t type, std::span<const std::uint8_t> payload);

DecodeResult decodePolicyDump(std::span<const std::uint8_t> buf, const PolicyOwnership& owned,
                              std::uint32_t seq = 0);

// One SA (xfrm_usersa_info) as a state dump shows it: what flushLarval/removeStates need
// to find and delete it, and what a status line shows.
struct StateInfo {
  IpAddress src;
  IpAddress dst;
  std::uint8_t proto = 0;    // IPPROTO_ESP, IPPROTO_AH, IPPROTO_COMP, ...
  std::uint32_t spi = 0;     // host byte order
  std::uint32_t seq = 0;     // km.seq: non-zero for acquire-created states
  std::uint32_t reqid = 0;
  std::uint8_t mode = 0;     // XFRM_MODE_TRANSPORT, XFRM_MODE_TUNNEL, ...
  bool keyed = false;        // carries an algorithm (XFRMA_ALG_AEAD/CRYPT/AUTH/AUTH_TRUNC/COMP)
  // No keys yet: an ESP/AH/IPComp state without any algorithm, i.e. the kernel's placeholder
  // for an ACQUIRE (spi 0) or a state given an SPI by ALLOCSPI but never filled in.
  bool larval() const;
  // A placeholder still waiting for its key manager: ESP, spi 0, acquire seq set. These are
  // what flushLarval deletes.
  bool acquirePending() const;
};

// "esp", "ah", "comp", else "proto N"; "transport", "tunnel", "beet", ... else "mode N".
std::string protoName(std::uint8_t proto);
std::string modeName(std::uint8_t mode);
// "esp spi 0x00001234 10.254.0.1 -> 10.254.0.2 transport reqid 7" + " larval" when it is.
std::string describe(const StateInfo& s);

// XFRM_MSG_ALLOCSPI for the larval state `s` (found by its acquire seq), asking an SPI in
// 0x100..0xffffffff; NLM_F_REQUEST | NLM_F_ACK, seq left to the sender.
std::vector<std::uint8_t> encodeAllocSpi(const StateInfo& s);
// XFRM_MSG_DELSA of the state (daddr, spi, proto) with XFRMA_SRCADDR; NLM_F_ACK.
std::vector<std::uint8_t> encodeDeleteState(const StateInfo& s);

struct StateDecodeResult {
  std::vector<StateInfo> states;
  std::vector<std::string> skipped;
  std::size_t skippedCount = 0;
  bool done = false;
  bool interrupted = false;
  bool overflow = false;
  int error = 0;
};

// Decodes XFRM_MSG_NEWSA messages of a state dump (or an ALLOCSPI reply). Messages whose
// nlmsg_seq differs from `seq` are ignored when `seq` != 0; malformed ones are skipped with
// a reason.
StateDecodeResult decodeStateDump(std::span<const std::uint8_t> buf, std::uint32_t seq = 0);

}  // namespace xfrm

}  // namespace ipopsec
