#include "os/xfrm.hpp"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

namespace ipopsec {
namespace xfrm {
namespace {

constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kIcmpV6 = 58;
constexpr std::size_t kHdr = NLMSG_HDRLEN;
constexpr std::size_t kAttrHdr = NLA_HDRLEN;

std::size_t align4(std::size_t n) { return (n + 3U) & ~std::size_t{3}; }

// Builds one netlink message: header, fixed payload, attributes.
class MsgBuilder {
 public:
  MsgBuilder(std::uint16_t type, std::uint16_t flags, std::uint32_t seq) : buf_(kHdr, 0) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    std::memcpy(buf_.data(), &h, sizeof h);
  }
  template <class T>
  void put(const T& v) {
    append(&v, sizeof v);
  }
  void attr(std::uint16_t type, const void* data, std::size_t len) {
    nlattr a{};
    a.nla_len = static_cast<std::uint16_t>(kAttrHdr + len);
    a.nla_type = type;
    append(&a, sizeof a);
    append(data, len);
  }
  std::vector<std::uint8_t> finish() {
    auto len = static_cast<std::uint32_t>(buf_.size());
    std::memcpy(buf_.data() + offsetof(nlmsghdr, nlmsg_len), &len, sizeof len);
    return std::move(buf_);
  }

 private:
  void append(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
    buf_.resize(align4(buf_.size()), 0);
  }
  std::vector<std::uint8_t> buf_;
};

std::uint16_t toKernelFamily(Family f) { return f == Family::v4 ? AF_INET : AF_INET6; }

void putAddress(xfrm_address_t& dst, const IpAddress& a) {
  std::memset(&dst, 0, sizeof dst);
  std::memcpy(&dst, a.bytes.data(), static_cast<std::size_t>(a.byteLength()));
}

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

const char* dirName(Direction d) {
  switch (d) {
    case Direction::in: return "in";
    case Direction::out: return "out";
    case Direction::fwd: return "fwd";
  }
  return "?";
}

std::string describeId(const Policy& p) {
  std::string s = std::string(dirName(p.dir)) + " " + p.sel.src.str() + " -> " + p.sel.dst.str();
  if (p.sel.proto != 0) s += " proto " + std::to_string(p.sel.proto);
  if (p.sel.hasIcmpType) s += " type " + std::to_string(p.sel.icmpType);
  s += " prio " + std::to_string(p.priority);
  return s;
}

struct Attrs {
  std::span<const std::uint8_t> tmpl;
  bool hasTmpl = false;
  std::optional<std::uint8_t> policyType;
  std::optional<xfrm_mark> mark;
  std::uint32_t ifId = 0;
  bool secCtx = false;
};

// Walks the attributes; returns "" or why they are malformed.
std::string parseAttrs(std::span<const std::uint8_t> data, Attrs& attrs) {
  std::size_t off = 0;
  while (off < data.size()) {
    if (data.size() - off < kAttrHdr) return "trailing " + std::to_string(data.size() - off) + " bytes after attributes";
    nlattr a{};
    std::memcpy(&a, data.data() + off, sizeof a);
    if (a.nla_len < kAttrHdr || a.nla_len > data.size() - off)
      return "attribute " + std::to_string(a.nla_type & NLA_TYPE_MASK) + " has length " + std::to_string(a.nla_len) +
             " (" + std::to_string(data.size() - off) + " bytes left)";
    auto payload = data.subspan(off + kAttrHdr, a.nla_len - kAttrHdr);
    switch (a.nla_type & NLA_TYPE_MASK) {
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
        attrs.mark.emplace();
        std::memcpy(&*attrs.mark, payload.data(), sizeof(xfrm_mark));
        break;
      case XFRMA_IF_ID:
        if (payload.size() < sizeof(std::uint32_t)) return "short XFRMA_IF_ID";
        std::memcpy(&attrs.ifId, payload.data(), sizeof attrs.ifId);
        break;
      case XFRMA_SEC_CTX:
        attrs.secCtx = true;
        break;
      default:
        break;  // e.g. XFRMA_LASTUSED: not part of the policy's shape
    }
    off += align4(a.nla_len);
  }
  return "";
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

void addSkipped(std::vector<std::string>& skipped, std::size_t& count, std::string why) {
  ++count;
  if (skipped.size() < kMaxSkipped) skipped.push_back(std::move(why));
}

std::string msgLabel(std::size_t offset, std::uint16_t type) {
  return "message at offset " + std::to_string(offset) + " (type " + std::to_string(type) + "): ";
}

// Outcome of decoding one XFRM_MSG_NEWPOLICY payload.
struct PolicyOutcome {
  std::optional<DecodedPolicy> decoded;
  std::string skipReason;  // set when not decoded
};

PolicyOutcome decodePolicyPayload(std::span<const std::uint8_t> payload, const Owned& owned) {
  PolicyOutcome r;
  if (payload.size() < sizeof(xfrm_userpolicy_info)) {
    r.skipReason = "truncated xfrm_userpolicy_info (" + std::to_string(payload.size()) + " of " +
                   std::to_string(sizeof(xfrm_userpolicy_info)) + " bytes)";
    return r;
  }
  xfrm_userpolicy_info info{};
  std::memcpy(&info, payload.data(), sizeof info);
  Attrs attrs;
  std::size_t attrOff = std::min(payload.size(), NLMSG_ALIGN(sizeof info));
  if (auto why = parseAttrs(payload.subspan(attrOff), attrs); !why.empty()) {
    r.skipReason = why;
    return r;
  }
  DecodedPolicy d;
  d.index = info.index;
  Policy& p = d.policy;
  switch (info.dir) {
    case XFRM_POLICY_IN: p.dir = Direction::in; break;
    case XFRM_POLICY_OUT: p.dir = Direction::out; break;
    case XFRM_POLICY_FWD: p.dir = Direction::fwd; break;
    default: r.skipReason = "direction " + std::to_string(info.dir) + " is not in/out/fwd"; return r;
  }
  if (auto why = decodeSelector(info.sel, p.sel); !why.empty()) {
    r.skipReason = std::string(dirName(p.dir)) + " policy prio " + std::to_string(info.priority) + ": " + why;
    return r;
  }
  p.priority = info.priority;
  const std::string where = describeId(p);
  // A different identity namespace from the one the daemon manages.
  if (attrs.policyType && *attrs.policyType != XFRM_POLICY_TYPE_MAIN) {
    r.skipReason = where + ": sub policy type " + std::to_string(*attrs.policyType);
    return r;
  }
  if (attrs.mark && attrs.mark->m != 0) {
    r.skipReason = where + ": has a mark";
    return r;
  }
  if (attrs.ifId != 0) {
    r.skipReason = where + ": has interface id " + std::to_string(attrs.ifId);
    return r;
  }
  if (attrs.secCtx) {
    r.skipReason = where + ": has a security context";
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
    d.note = where + ": " + diff;
    if (owned.owns(info.priority)) {
      // The shape the daemon never installs at this priority: it differs from any desired
      // policy with this id, so the reconciler replaces (or removes) it.
      p.action = info.priority == owned.protectPriority ? PolicyAction::bypass : PolicyAction::protect;
      p.level = PolicyLevel::require;
    } else {
      p.action = (ntmpl > 0 || info.action != XFRM_POLICY_ALLOW) ? PolicyAction::protect : PolicyAction::bypass;
      p.level = allOptional && info.action == XFRM_POLICY_ALLOW ? PolicyLevel::use : PolicyLevel::require;
    }
  }
  r.decoded = std::move(d);
  return r;
}

template <class Result, class OnMessage>
void walkMessages(std::span<const std::uint8_t> buf, std::uint32_t seq, Result& res, OnMessage&& onMessage) {
  std::size_t off = 0;
  while (off < buf.size()) {
    if (buf.size() - off < sizeof(nlmsghdr)) {
      addSkipped(res.skipped, res.skippedCount,
                 "trailing " + std::to_string(buf.size() - off) + " bytes: shorter than a netlink header");
      return;
    }
    nlmsghdr h{};
    std::memcpy(&h, buf.data() + off, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > buf.size() - off) {
      addSkipped(res.skipped, res.skippedCount,
                 msgLabel(off, h.nlmsg_type) + "length " + std::to_string(h.nlmsg_len) + " with " +
                     std::to_string(buf.size() - off) + " bytes left");
      return;  // framing is lost: nothing after this can be trusted
    }
    auto payload = buf.subspan(off + kHdr, h.nlmsg_len - std::min<std::size_t>(h.nlmsg_len, kHdr));
    const std::size_t here = off;
    off += std::min<std::size_t>(NLMSG_ALIGN(h.nlmsg_len), buf.size() - off);
    if (seq != 0 && h.nlmsg_seq != seq) continue;  // a stale reply to an earlier request
    if (h.nlmsg_flags & NLM_F_DUMP_INTR) res.interrupted = true;
    switch (h.nlmsg_type) {
      case NLMSG_NOOP:
        continue;
      case NLMSG_DONE: {
        res.done = true;
        if (payload.size() >= sizeof(int)) {
          int e = 0;
          std::memcpy(&e, payload.data(), sizeof e);
          if (e < 0) res.error = e == INT_MIN ? EPROTO : -e;  // -INT_MIN overflows (found by tests/fuzz)
        }
        return;
      }
      case NLMSG_ERROR: {
        if (payload.size() < sizeof(int)) {
          addSkipped(res.skipped, res.skippedCount, msgLabel(here, h.nlmsg_type) + "truncated nlmsgerr");
          res.error = EPROTO;
          return;
        }
        int e = 0;
        std::memcpy(&e, payload.data(), sizeof e);
        res.error = e < 0 ? (e == INT_MIN ? EPROTO : -e) : (e > 0 ? EPROTO : 0);
        res.done = true;
        return;
      }
      default:
        onMessage(h, payload, here);
    }
  }
}

}  // namespace

std::string describe(const Policy& p) {
  std::string s = std::string(dirName(p.dir)) + " " + p.sel.src.str() + " -> " + p.sel.dst.str();
  if (p.sel.proto != 0) s += " proto " + std::to_string(p.sel.proto);
  if (p.sel.hasIcmpType) s += " type " + std::to_string(p.sel.icmpType);
  if (p.action == PolicyAction::protect)
    s += p.level == PolicyLevel::use ? " esp/transport/use" : " esp/transport/require";
  else
    s += " bypass";
  s += " prio " + std::to_string(p.priority);
  return s;
}

std::string validatePolicy(const Policy& p) {
  if (p.sel.src.family() != p.sel.dst.family()) return "source and destination are of different families";
  if (p.sel.src.prefix < 0 || p.sel.dst.prefix < 0 || p.sel.src.prefix > 255 || p.sel.dst.prefix > 255)
    return "prefix length out of range";
  return "";
}

std::vector<std::uint8_t> encodePolicy(const Policy& p, std::uint16_t type, std::uint32_t seq) {
  MsgBuilder m(type, NLM_F_REQUEST | NLM_F_ACK, seq);
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
  MsgBuilder m(type, NLM_F_REQUEST | NLM_F_ACK, seq);
  xfrm_userpolicy_id id{};
  id.sel = encodeSelector(p.sel);
  id.index = index;
  id.dir = toKernelDir(p.dir);
  m.put(id);
  return m.finish();
}

DecodeResult decodePolicyDump(std::span<const std::uint8_t> buf, const Owned& owned, std::uint32_t seq) {
  DecodeResult res;
  walkMessages(buf, seq, res, [&](const nlmsghdr& h, std::span<const std::uint8_t> payload, std::size_t off) {
    if (h.nlmsg_type != XFRM_MSG_NEWPOLICY) {
      addSkipped(res.skipped, res.skippedCount, msgLabel(off, h.nlmsg_type) + "not XFRM_MSG_NEWPOLICY");
      return;
    }
    if (res.policies.size() >= kMaxEntries) {
      res.overflow = true;
      return;
    }
    auto outcome = decodePolicyPayload(payload, owned);
    if (!outcome.decoded) {
      addSkipped(res.skipped, res.skippedCount, msgLabel(off, h.nlmsg_type) + outcome.skipReason);
      return;
    }
    res.policies.push_back(outcome.decoded->policy);
    res.details.push_back(std::move(*outcome.decoded));
  });
  return res;
}

bool StateInfo::larval() const { return proto == IPPROTO_ESP && spi == 0 && seq != 0; }

StateDecodeResult decodeStateDump(std::span<const std::uint8_t> buf, std::uint32_t seq) {
  StateDecodeResult res;
  walkMessages(buf, seq, res, [&](const nlmsghdr& h, std::span<const std::uint8_t> payload, std::size_t off) {
    if (h.nlmsg_type != XFRM_MSG_NEWSA) {
      addSkipped(res.skipped, res.skippedCount, msgLabel(off, h.nlmsg_type) + "not XFRM_MSG_NEWSA");
      return;
    }
    if (res.states.size() >= kMaxEntries) {
      res.overflow = true;
      return;
    }
    if (payload.size() < sizeof(xfrm_usersa_info)) {
      addSkipped(res.skipped, res.skippedCount,
                 msgLabel(off, h.nlmsg_type) + "truncated xfrm_usersa_info (" + std::to_string(payload.size()) +
                     " of " + std::to_string(sizeof(xfrm_usersa_info)) + " bytes)");
      return;
    }
    xfrm_usersa_info info{};
    std::memcpy(&info, payload.data(), sizeof info);
    auto src = decodeAddress(info.saddr, info.family);
    auto dst = decodeAddress(info.id.daddr, info.family);
    if (!src || !dst) {
      addSkipped(res.skipped, res.skippedCount,
                 msgLabel(off, h.nlmsg_type) + "state of " + familyName(info.family) + " with unusable addresses");
      return;
    }
    StateInfo s;
    s.src = *src;
    s.dst = *dst;
    s.proto = info.id.proto;
    s.spi = ntohl(info.id.spi);
    s.seq = info.seq;
    s.reqid = info.reqid;
    s.mode = info.mode;
    res.states.push_back(s);
  });
  return res;
}

}  // namespace xfrm

// --- the socket ---------------------------------------------------------------------

namespace {

using xfrm::kAttrHdr;
using xfrm::kHdr;

std::error_code sysError(int e) { return {e, std::system_category()}; }

constexpr int kReceiveTimeoutSeconds = 5;
constexpr std::size_t kRxBuffer = 64U * 1024U;

}  // namespace

XfrmPolicyTable::XfrmPolicyTable(std::uint32_t protectPriority, std::uint32_t bypassPriority)
    : owned_{protectPriority, bypassPriority, {}}, rxbuf_(kRxBuffer) {
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM);
  if (fd_ < 0) throw std::system_error(errno, std::system_category(), "socket(NETLINK_XFRM)");
  auto fail = [&](const char* what) {
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::system_error(e, std::system_category(), what);
  };
  timeval tv{kReceiveTimeoutSeconds, 0};
  if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) fail("setsockopt(SO_RCVTIMEO)");
  int one = 1;
  // Extended acks give the kernel's reason for a refusal; older kernels lack them: ignore.
  (void)::setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  (void)::setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail("bind(NETLINK_XFRM)");
  socklen_t len = sizeof sa;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) fail("getsockname(NETLINK_XFRM)");
  portId_ = sa.nl_pid;
  seq_ = static_cast<std::uint32_t>(::getpid()) << 16;
}

XfrmPolicyTable::~XfrmPolicyTable() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint32_t XfrmPolicyTable::nextSeq() {
  if (++seq_ == 0) ++seq_;
  return seq_;
}

std::error_code XfrmPolicyTable::sendAll(const std::vector<std::uint8_t>& msg) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  while (true) {
    ssize_t n = ::sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    if (n >= 0) {
      if (static_cast<std::size_t>(n) != msg.size()) return sysError(EMSGSIZE);
      return {};
    }
    if (errno != EINTR) return sysError(errno);
  }
}

namespace {

// Receives one datagram from the kernel into buf; returns its size in n.
std::error_code receive(int fd, std::vector<std::uint8_t>& buf, std::size_t& n) {
  while (true) {
    sockaddr_nl from{};
    socklen_t fromLen = sizeof from;
    ssize_t r = ::recvfrom(fd, buf.data(), buf.size(), MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return std::make_error_code(std::errc::timed_out);
      return sysError(errno);
    }
    if (from.nl_pid != 0) continue;  // only the kernel talks to us
    if (static_cast<std::size_t>(r) > buf.size()) return std::make_error_code(std::errc::message_size);
    n = static_cast<std::size_t>(r);
    return {};
  }
}

// Extracts NLMSGERR_ATTR_MSG from an extended ack, if any.
std::string extackMessage(std::span<const std::uint8_t> payload, const nlmsghdr& h) {
  if (!(h.nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  if (payload.size() < sizeof(nlmsgerr)) return "";
  nlmsgerr err{};
  std::memcpy(&err, payload.data(), sizeof err);
  std::size_t off = sizeof(nlmsgerr);
  if (!(h.nlmsg_flags & NLM_F_CAPPED)) off += err.msg.nlmsg_len >= sizeof(nlmsghdr) ? err.msg.nlmsg_len - sizeof(nlmsghdr) : 0;
  off = NLMSG_ALIGN(off);
  while (off + kAttrHdr <= payload.size()) {
    nlattr a{};
    std::memcpy(&a, payload.data() + off, sizeof a);
    if (a.nla_len < kAttrHdr || a.nla_len > payload.size() - off) break;
    if ((a.nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* s = reinterpret_cast<const char*>(payload.data() + off + kAttrHdr);
      std::size_t len = a.nla_len - kAttrHdr;
      return std::string(s, strnlen(s, len));
    }
    off += NLA_ALIGN(a.nla_len);
  }
  return "";
}

}  // namespace

std::error_code XfrmPolicyTable::transact(std::vector<std::uint8_t> request, std::vector<std::uint8_t>* replies) {
  lastMessage_.clear();
  const std::uint32_t seq = nextSeq();
  std::memcpy(request.data() + offsetof(nlmsghdr, nlmsg_seq), &seq, sizeof seq);
  // The kernel copies the request's port id into the XFRMNLGRP_POLICY notification of the
  // change it makes, so the daemon's XfrmPolicyWatch can tell its own changes from others'.
  std::memcpy(request.data() + offsetof(nlmsghdr, nlmsg_pid), &portId_, sizeof portId_);
  if (auto ec = sendAll(request)) return ec;
  while (true) {
    std::size_t n = 0;
    if (auto ec = receive(fd_, rxbuf_, n)) return ec;
    std::size_t off = 0;
    while (off + sizeof(nlmsghdr) <= n) {
      nlmsghdr h{};
      std::memcpy(&h, rxbuf_.data() + off, sizeof h);
      if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > n - off) return std::make_error_code(std::errc::bad_message);
      std::span<const std::uint8_t> payload(rxbuf_.data() + off + kHdr, h.nlmsg_len - kHdr);
      const std::size_t here = off;
      off += std::min<std::size_t>(NLMSG_ALIGN(h.nlmsg_len), n - off);
      if (h.nlmsg_seq != seq) continue;  // stale: a reply to a request that timed out
      if (h.nlmsg_type == NLMSG_ERROR) {
        if (payload.size() < sizeof(int)) return std::make_error_code(std::errc::bad_message);
        int e = 0;
        std::memcpy(&e, payload.data(), sizeof e);
        if (e == 0) return {};
        lastMessage_ = extackMessage(payload, h);
        return sysError(e < 0 && e != INT_MIN ? -e : EPROTO);
      }
      if (replies && replies->size() + h.nlmsg_len <= xfrm::kMaxDumpBytes)
        replies->insert(replies->end(), rxbuf_.begin() + static_cast<std::ptrdiff_t>(here),
                        rxbuf_.begin() + static_cast<std::ptrdiff_t>(here + h.nlmsg_len));
    }
  }
}

std::error_code XfrmPolicyTable::dump(std::uint16_t type, std::vector<std::uint8_t>& raw, std::uint32_t& seq) {
  raw.clear();
  seq = nextSeq();
  nlmsghdr h{};
  h.nlmsg_len = sizeof h;
  h.nlmsg_type = type;
  h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  h.nlmsg_seq = seq;
  std::vector<std::uint8_t> req(sizeof h);
  std::memcpy(req.data(), &h, sizeof h);
  if (auto ec = sendAll(req)) return ec;
  while (true) {
    std::size_t n = 0;
    if (auto ec = receive(fd_, rxbuf_, n)) return ec;
    if (raw.size() + n > xfrm::kMaxDumpBytes) return std::make_error_code(std::errc::value_too_large);
    raw.insert(raw.end(), rxbuf_.begin(), rxbuf_.begin() + static_cast<std::ptrdiff_t>(n));
    // Done when this datagram carries our NLMSG_DONE or an error.
    std::size_t off = 0;
    while (off + sizeof(nlmsghdr) <= n) {
      nlmsghdr m{};
      std::memcpy(&m, rxbuf_.data() + off, sizeof m);
      if (m.nlmsg_len < sizeof(nlmsghdr) || m.nlmsg_len > n - off) return {};  // the decoder reports it
      if (m.nlmsg_seq == seq && (m.nlmsg_type == NLMSG_DONE || m.nlmsg_type == NLMSG_ERROR)) return {};
      off += std::min<std::size_t>(NLMSG_ALIGN(m.nlmsg_len), n - off);
    }
  }
}

std::error_code XfrmPolicyTable::dumpPolicies(xfrm::DecodeResult& result) {
  std::vector<std::uint8_t> raw;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::uint32_t seq = 0;
    if (auto ec = dump(XFRM_MSG_GETPOLICY, raw, seq)) return ec;
    result = xfrm::decodePolicyDump(raw, owned_, seq);
    if (result.error != 0) return sysError(result.error);
    if (result.overflow) return std::make_error_code(std::errc::value_too_large);
    if (!result.done) return std::make_error_code(std::errc::bad_message);
    if (!result.interrupted) return {};
  }
  return sysError(EINTR);  // the table kept changing under the dump
}

std::error_code XfrmPolicyTable::dumpStates(xfrm::StateDecodeResult& result) {
  std::vector<std::uint8_t> raw;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::uint32_t seq = 0;
    if (auto ec = dump(XFRM_MSG_GETSA, raw, seq)) return ec;
    result = xfrm::decodeStateDump(raw, seq);
    if (result.error != 0) return sysError(result.error);
    if (result.overflow) return std::make_error_code(std::errc::value_too_large);
    if (!result.done) return std::make_error_code(std::errc::bad_message);
    if (!result.interrupted) return {};
  }
  return sysError(EINTR);
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

void XfrmPolicyTable::setPriorities(std::uint32_t protectPriority, std::uint32_t bypassPriority,
                                    std::vector<std::uint32_t> earlier) {
  std::erase_if(earlier, [&](std::uint32_t e) { return e == protectPriority || e == bypassPriority; });
  owned_ = xfrm::Owned{protectPriority, bypassPriority, std::move(earlier)};
}

std::error_code XfrmPolicyTable::install(const Policy& p) {
  lastMessage_.clear();
  lastConflict_.reset();
  if (auto why = xfrm::validatePolicy(p); !why.empty()) {
    lastMessage_ = why;
    return std::make_error_code(std::errc::invalid_argument);
  }
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
    lastMessage_ = "a foreign policy holds this id: " + xfrm::describe(current.policy);
    lastConflict_ = current.policy;
    return std::make_error_code(std::errc::file_exists);
  }
  return transact(xfrm::encodePolicy(p, XFRM_MSG_UPDPOLICY, 0), nullptr);
}

std::error_code XfrmPolicyTable::remove(const Policy& p) {
  lastMessage_.clear();
  if (auto why = xfrm::validatePolicy(p); !why.empty()) {
    lastMessage_ = why;
    return std::make_error_code(std::errc::invalid_argument);
  }
  bool found = false;
  xfrm::DecodedPolicy current;
  if (auto ec = getPolicy(p, found, current)) return ec;
  if (!found || !owned_.owns(current.policy.priority)) return {};  // ours is not there
  // Delete by index: exactly the policy just looked at, not a foreign one that replaced it.
  auto ec = transact(xfrm::encodePolicyId(p, XFRM_MSG_DELPOLICY, 0, current.index), nullptr);
  if (ec == std::errc::no_such_file_or_directory) return {};
  return ec;
}

std::error_code XfrmPolicyTable::listStates(std::vector<xfrm::StateInfo>& out) {
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
std::error_code XfrmPolicyTable::deleteStates(const std::vector<Cidr>& ranges, bool larvalOnly, std::size_t* removed) {
  if (removed) *removed = 0;
  std::vector<xfrm::StateInfo> states;
  if (auto ec = listStates(states)) return ec;
  std::error_code first;
  for (const auto& s : states) {
    if (larvalOnly ? !s.larval() : s.proto != IPPROTO_ESP) continue;
    bool inside = std::any_of(ranges.begin(), ranges.end(),
                              [&](const Cidr& r) { return r.contains(s.src) && r.contains(s.dst); });
    if (!inside) continue;
    const std::uint16_t family = s.src.family == Family::v4 ? AF_INET : AF_INET6;
    xfrm::StateInfo keyed = s;
    if (s.spi == 0) {
      // 1. Give the larval state an SPI (found by its acquire seq).
      xfrm::MsgBuilder alloc(XFRM_MSG_ALLOCSPI, NLM_F_REQUEST | NLM_F_ACK, 0);
      xfrm_userspi_info spi{};
      spi.info.family = family;
      xfrm::putAddress(spi.info.id.daddr, s.dst);
      xfrm::putAddress(spi.info.saddr, s.src);
      spi.info.id.proto = s.proto;
      spi.info.seq = s.seq;
      spi.info.reqid = s.reqid;
      spi.info.mode = s.mode;
      spi.info.sel.family = family;
      spi.min = 0x100;
      spi.max = 0xffffffffU;
      alloc.put(spi);
      std::vector<std::uint8_t> reply;
      auto ec = transact(alloc.finish(), &reply);
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
    xfrm::MsgBuilder del(XFRM_MSG_DELSA, NLM_F_REQUEST | NLM_F_ACK, 0);
    xfrm_usersa_id id{};
    xfrm::putAddress(id.daddr, keyed.dst);
    id.spi = htonl(keyed.spi);
    id.family = family;
    id.proto = keyed.proto;
    del.put(id);
    xfrm_address_t src{};
    xfrm::putAddress(src, keyed.src);
    del.attr(XFRMA_SRCADDR, &src, sizeof src);
    auto ec = transact(del.finish(), nullptr);
    if (ec == std::errc::no_such_process || ec == std::errc::no_such_file_or_directory) continue;
    if (ec) {
      if (!first) first = ec;
      continue;
    }
    if (removed) ++*removed;
  }
  return first;
}

}  // namespace ipopsec
