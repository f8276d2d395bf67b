// XFRM policies: encoding requests (xfrm_userpolicy_info, xfrm_userpolicy_id) and decoding
// a policy dump into Policy, with the shape checks the ownership rules need (os/netlink/xfrm.hpp).
#include "os/netlink/xfrm_codec.hpp"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "os/netlink/netlink.hpp"
#include "os/netlink/xfrm_codec_detail.hpp"

namespace ipopsec {
namespace xfrm {

namespace detail {

void putAddress(xfrm_address_t& dst, const IpAddress& a) {
  std::memset(&dst, 0, sizeof dst);
  std::memcpy(&dst, a.bytes.data(), static_cast<std::size_t>(a.byteLength()));
}

bool allZero(const void* p, std::size_t n) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  return std::all_of(b, b + n, [](std::uint8_t x) { return x == 0; });
}

std::optional<IpAddress> decodeAddress(const xfrm_address_t& a, std::uint16_t family) {
  IpAddress ip;
  if (family == AF_INET) {
    ip.family = Family::v4;
    std::memcpy(ip.bytes.data(), &a, 4);
    const auto* b = reinterpret_cast<const std::uint8_t*>(&a);
    if (!allZero(b + 4, sizeof a - 4)) return std::nullopt;
  } else if (family == AF_INET6) {
    ip.family = Family::v6;
    std::memcpy(ip.bytes.data(), &a, 16);
  } else {
    return std::nullopt;
  }
  return ip;
}

std::string familyName(std::uint16_t f) {
  if (f == AF_INET) return "inet";
  if (f == AF_INET6) return "inet6";
  return "family " + std::to_string(f);
}

void addSkipped(std::vector<std::string>& skipped, std::size_t& count, std::string why) {
  ++count;
  if (skipped.size() < kMaxSkipped) skipped.push_back(std::move(why));
}

std::string msgLabel(std::size_t offset, std::uint16_t type) {
  return "message at offset " + std::to_string(offset) + " (type " + std::to_string(type) + "): ";
}

}  // namespace detail

namespace {

using namespace detail;

constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kIcmpV6 = 58;
using netlink::Bytes;
using netlink::MessageBuilder;

std::uint16_t toKernelFamily(Family f) { return f == Family::v4 ? AF_INET : AF_INET6; }

std::uint8_t toKernelDir(Direction d) {
  switch (d) {
    case Direction::in: return XFRM_POLICY_IN;
    case Direction::out: return XFRM_POLICY_OUT;
    case Direction::fwd: return XFRM_POLICY_FWD;
  }
  return XFRM_POLICY_OUT;
}

xfrm_selector encodeSelector(const Selector& s) {
  xfrm_selector sel{};
  putAddress(sel.daddr, s.dst.address);
  putAddress(sel.saddr, s.src.address);
  sel.family = toKernelFamily(s.src.family());
  sel.prefixlen_d = static_cast<std::uint8_t>(s.dst.prefix);
  sel.prefixlen_s = static_cast<std::uint8_t>(s.src.prefix);
  sel.proto = s.proto;
  if (s.hasIcmpType) {
    // As iproute2 does for "proto ipv6-icmp type T": the type in sport, fully masked.
    sel.sport = htons(s.icmpType);
    sel.sport_mask = 0xffff;
  }
  return sel;
}

xfrm_lifetime_cfg infiniteLifetime() {
  xfrm_lifetime_cfg lft{};
  lft.soft_byte_limit = XFRM_INF;
  lft.hard_byte_limit = XFRM_INF;
  lft.soft_packet_limit = XFRM_INF;
  lft.hard_packet_limit = XFRM_INF;
  return lft;
}

xfrm_user_tmpl espTransportTemplate(Family f, PolicyLevel level) {
  xfrm_user_tmpl t{};
  t.id.proto = IPPROTO_ESP;
  t.family = toKernelFamily(f);
  t.reqid = 0;
  t.mode = XFRM_MODE_TRANSPORT;
  t.share = XFRM_SHARE_ANY;
  t.optional = level == PolicyLevel::use ? 1 : 0;
  t.aalgos = ~0U;
  t.ealgos = ~0U;
  t.calgos = ~0U;
  return t;
}

// Decodes a selector into `out`; returns "" or why Policy can't express it.
std::string decodeSelector(const xfrm_selector& sel, Selector& out) {
  if (sel.family != AF_INET && sel.family != AF_INET6)
    return "selector " + familyName(sel.family) + " is neither inet nor inet6";
  const int bits = sel.family == AF_INET ? 32 : 128;
  if (sel.prefixlen_s > bits || sel.prefixlen_d > bits)
    return "selector prefix length /" + std::to_string(sel.prefixlen_s) + " or /" +
           std::to_string(sel.prefixlen_d) + " exceeds " + std::to_string(bits);
  auto src = decodeAddress(sel.saddr, sel.family);
  auto dst = decodeAddress(sel.daddr, sel.family);
  if (!src || !dst) return "selector inet address has bytes beyond the first four";
  out.src = Cidr{*src, sel.prefixlen_s};
  out.dst = Cidr{*dst, sel.prefixlen_d};
  out.proto = sel.proto;
  out.hasIcmpType = false;
  out.icmpType = 0;
  if (sel.ifindex != 0) return "selector is bound to interface " + std::to_string(sel.ifindex);
  if (sel.user != 0) return "selector is bound to uid " + std::to_string(sel.user);
  if (sel.dport != 0 || sel.dport_mask != 0) {
    if (sel.proto == kIcmp || sel.proto == kIcmpV6) return "selector has an ICMP code";
    return "selector has a destination port";
  }
  if (sel.sport_mask == 0 && sel.sport == 0) return "";
  if ((sel.proto == kIcmp || sel.proto == kIcmpV6) && sel.sport_mask == 0xffff && ntohs(sel.sport) <= 255) {
    out.hasIcmpType = true;
    out.icmpType = static_cast<std::uint8_t>(ntohs(sel.sport));
    return "";
  }
  return "selector has a source port";
}

std::string describeId(const Policy& p) {
  std::string s = std::string(toString(p.dir)) + " " + p.sel.src.str() + " -> " + p.sel.dst.str();
  if (p.sel.proto != 0) s += " proto " + std::to_string(p.sel.proto);
  if (p.sel.hasIcmpType) s += " type " + std::to_string(p.sel.icmpType);
  s += " prio " + std::to_string(p.priority);
  return s;
}

struct Attrs {
  Bytes tmpl;
  bool hasTmpl = false;
  std::optional<std::uint8_t> policyType;
  std::optional<xfrm_mark> mark;
  std::uint32_t ifId = 0;
  bool secCtx = false;
};

// Reads the attributes of a policy; returns "" or why they are malformed.
std::string parseAttrs(Bytes data, Attrs& attrs) {
  netlink::Attributes walk(data);
  netlink::Attribute a;
  while (walk.next(a)) {
    const auto& payload = a.payload;
    switch (a.type) {
      case XFRMA_TMPL:
        if (attrs.hasTmpl) return "two XFRMA_TMPL attributes";
        if (payload.size() % sizeof(xfrm_user_tmpl) != 0)
          return "XFRMA_TMPL of " + std::to_string(payload.size()) + " bytes is not a multiple of " +
                 std::to_string(sizeof(xfrm_user_tmpl));
        attrs.tmpl = payload;
        attrs.hasTmpl = true;
        break;
      case XFRMA_POLICY_TYPE:
        if (payload.empty()) return "empty XFRMA_POLICY_TYPE";
        attrs.policyType = payload[0];
        break;
      case XFRMA_MARK:
        if (payload.size() < sizeof(xfrm_mark)) return "short XFRMA_MARK";
        attrs.mark = netlink::load<xfrm_mark>(payload);
        break;
      case XFRMA_IF_ID:
        if (payload.size() < sizeof(std::uint32_t)) return "short XFRMA_IF_ID";
        attrs.ifId = netlink::load<std::uint32_t>(payload);
        break;
      case XFRMA_SEC_CTX:
        attrs.secCtx = true;
        break;
      default:
        break;  // e.g. XFRMA_LASTUSED: not part of the policy's shape
    }
  }
  return walk.error();
}

bool sameLifetime(const xfrm_lifetime_cfg& a, const xfrm_lifetime_cfg& b) {
  return a.soft_byte_limit == b.soft_byte_limit && a.hard_byte_limit == b.hard_byte_limit &&
         a.soft_packet_limit == b.soft_packet_limit && a.hard_packet_limit == b.hard_packet_limit &&
         a.soft_add_expires_seconds == b.soft_add_expires_seconds &&
         a.hard_add_expires_seconds == b.hard_add_expires_seconds &&
         a.soft_use_expires_seconds == b.soft_use_expires_seconds &&
         a.hard_use_expires_seconds == b.hard_use_expires_seconds;
}

// "" when `t` is exactly the template install() writes, else what differs.
std::string templateDifference(const xfrm_user_tmpl& t, std::uint16_t family) {
  if (t.id.proto != IPPROTO_ESP) return "template protocol " + std::to_string(t.id.proto) + " is not ESP";
  if (t.mode != XFRM_MODE_TRANSPORT) return "template mode " + std::to_string(t.mode) + " is not transport";
  if (t.family != family) return "template family differs from the selector's";
  if (!allZero(&t.id.daddr, sizeof t.id.daddr) || !allZero(&t.saddr, sizeof t.saddr))
    return "template has endpoint addresses";
  if (t.id.spi != 0) return "template has an SPI";
  if (t.reqid != 0) return "template has reqid " + std::to_string(t.reqid);
  if (t.share != XFRM_SHARE_ANY) return "template share is not 'any'";
  if (t.optional > 1) return "template optional flag " + std::to_string(t.optional);
  if (t.aalgos != ~0U || t.ealgos != ~0U || t.calgos != ~0U) return "template restricts algorithms";
  return "";
}

// Outcome of decoding one XFRM_MSG_NEWPOLICY payload.
struct PolicyOutcome {
  std::optional<DecodedPolicy> decoded;
  std::string skipReason;  // set when not decoded
};

// A policy's id (dir + selector) and priority into `p`; "" or why Policy can't express it.
std::string decodeId(const xfrm_userpolicy_info& info, Policy& p) {
  switch (info.dir) {
    case XFRM_POLICY_IN: p.dir = Direction::in; break;
    case XFRM_POLICY_OUT: p.dir = Direction::out; break;
    case XFRM_POLICY_FWD: p.dir = Direction::fwd; break;
    default: return "direction " + std::to_string(info.dir) + " is not in/out/fwd";
  }
  if (auto why = decodeSelector(info.sel, p.sel); !why.empty())
    return std::string(toString(p.dir)) + " policy prio " + std::to_string(info.priority) + ": " + why;
  p.priority = info.priority;
  return "";
}

PolicyOutcome decodePolicyPayload(Bytes payload, const PolicyOwnership& owned) {
  PolicyOutcome r;
  if (payload.size() < sizeof(xfrm_userpolicy_info)) {
    r.skipReason = "truncated xfrm_userpolicy_info (" + std::to_string(payload.size()) + " of " +
                   std::to_string(sizeof(xfrm_userpolicy_info)) + " bytes)";
    return r;
  }
  xfrm_userpolicy_info info{};
  std::memcpy(&info, payload.data(), sizeof info);
  Attrs attrs;
  if (auto why = parseAttrs(netlink::attributesAfter(payload, sizeof info), attrs); !why.empty()) {
    r.skipReason = why;
    return r;
  }
  DecodedPolicy d;
  d.index = info.index;
  Policy& p = d.policy;
  if (auto why = decodeId(info, p); !why.empty()) {
    r.skipReason = why;
    return r;
  }
  // Named only when something is said about it (every policy of every dump goes through here).
  auto where = [&p] { return describeId(p); };
  // A different identity namespace from the one the daemon manages.
  if (attrs.policyType && *attrs.policyType != XFRM_POLICY_TYPE_MAIN) {
    r.skipReason = where() + ": sub policy type " + std::to_string(*attrs.policyType);
    return r;
  }
  if (attrs.mark && attrs.mark->m != 0) {
    r.skipReason = where() + ": has a mark";
    return r;
  }
  if (attrs.ifId != 0) {
    r.skipReason = where() + ": has interface id " + std::to_string(attrs.ifId);
    return r;
  }
  if (attrs.secCtx) {
    r.skipReason = where() + ": has a security context";
    return r;
  }

  const std::size_t ntmpl = attrs.tmpl.size() / sizeof(xfrm_user_tmpl);
  std::string diff;
  if (info.action != XFRM_POLICY_ALLOW) diff = "action block";
  else if (info.flags != 0) diff = "flags " + std::to_string(info.flags);
  else if (info.share != XFRM_SHARE_ANY) diff = "share is not 'any'";
  else if (!sameLifetime(info.lft, infiniteLifetime())) diff = "has a lifetime";
  else if (ntmpl > 1) diff = std::to_string(ntmpl) + " templates";
  bool allOptional = ntmpl > 0;
  for (std::size_t i = 0; i < ntmpl; ++i) {
    xfrm_user_tmpl t{};
    std::memcpy(&t, attrs.tmpl.data() + i * sizeof t, sizeof t);
    if (!t.optional) allOptional = false;
    if (diff.empty()) diff = templateDifference(t, info.sel.family);
  }
  if (diff.empty()) {
    p.action = ntmpl == 0 ? PolicyAction::bypass : PolicyAction::protect;
    p.level = ntmpl == 1 && allOptional ? PolicyLevel::use : PolicyLevel::require;
  } else {
    d.exact = false;
    d.note = where() + ": " + diff;
    if (owned.owns(info.priority)) {
      // The shape the daemon never installs at this priority: it differs from any desired
      // policy with this id, so the reconciler replaces (or removes) it.
      p.action = owned.neverInstalledAt(info.priority);
      p.level = PolicyLevel::require;
    } else {
      p.action = (ntmpl > 0 || info.action != XFRM_POLICY_ALLOW) ? PolicyAction::protect : PolicyAction::bypass;
      p.level = allOptional && info.action == XFRM_POLICY_ALLOW ? PolicyLevel::use : PolicyLevel::require;
    }
  }
  r.decoded = std::move(d);
  return r;
}
}  // namespace

std::string validatePolicy(const Policy& p) {
  if (p.sel.src.family() != p.sel.dst.family()) return "source and destination are of different families";
  if (p.sel.src.prefix < 0 || p.sel.dst.prefix < 0 || p.sel.src.prefix > 255 || p.sel.dst.prefix > 255)
    return "prefix length out of range";
  return "";
}

std::vector<std::uint8_t> encodePolicy(const Policy& p, std::uint16_t type, std::uint32_t seq) {
  MessageBuilder m(type, NLM_F_REQUEST | NLM_F_ACK, seq);
  xfrm_userpolicy_info info{};
  info.sel = encodeSelector(p.sel);
  info.lft = infiniteLifetime();
  info.priority = p.priority;
  info.dir = toKernelDir(p.dir);
  info.action = XFRM_POLICY_ALLOW;
  info.flags = 0;
  info.share = XFRM_SHARE_ANY;
  m.put(info);
  if (p.action == PolicyAction::protect) {
    xfrm_user_tmpl t = espTransportTemplate(p.sel.src.family(), p.level);
    m.attr(XFRMA_TMPL, &t, sizeof t);
  }
  return m.finish();
}

std::vector<std::uint8_t> encodePolicyId(const Policy& p, std::uint16_t type, std::uint32_t seq,
                                         std::uint32_t index) {
  MessageBuilder m(type, NLM_F_REQUEST | NLM_F_ACK, seq);
  xfrm_userpolicy_id id{};
  id.sel = encodeSelector(p.sel);
  id.index = index;
  id.dir = toKernelDir(p.dir);
  m.put(id);
  return m.finish();
}

std::optional<Policy> policyOfEvent(const std::uint16_t type, std::span<const std::uint8_t> payload) {
  std::optional<xfrm_userpolicy_info> info;
  if (type == XFRM_MSG_NEWPOLICY || type == XFRM_MSG_UPDPOLICY) {
    if (payload.size() >= sizeof(xfrm_userpolicy_info)) info = netlink::load<xfrm_userpolicy_info>(payload);
  } else if (type == XFRM_MSG_POLEXPIRE) {
    if (payload.size() >= sizeof(xfrm_user_polexpire)) info = netlink::load<xfrm_user_polexpire>(payload).pol;
  } else if (type == XFRM_MSG_DELPOLICY && payload.size() >= sizeof(xfrm_userpolicy_id)) {
    netlink::Attributes attrs(netlink::attributesAfter(payload, sizeof(xfrm_userpolicy_id)));
    netlink::Attribute a;
    while (attrs.next(a))
      if (a.type == XFRMA_POLICY && a.payload.size() >= sizeof(xfrm_userpolicy_info))
        info = netlink::load<xfrm_userpolicy_info>(a.payload);
  }
  Policy p;
  if (!info || !decodeId(*info, p).empty()) return std::nullopt;
  return p;
}

DecodeResult decodePolicyDump(std::span<const std::uint8_t> buf, const PolicyOwnership& owned, std::uint32_t seq) {
  DecodeResult res;
  walkEntries(buf, seq, res, XFRM_MSG_NEWPOLICY, "XFRM_MSG_NEWPOLICY", res.policies, [&](Bytes payload) {
    auto outcome = decodePolicyPayload(payload, owned);
    if (!outcome.decoded) return outcome.skipReason;
    res.policies.push_back(outcome.decoded->policy);
    res.details.push_back(std::move(*outcome.decoded));
    return std::string();
  });
  return res;
}

}  // namespace xfrm

}  // namespace ipopsec
