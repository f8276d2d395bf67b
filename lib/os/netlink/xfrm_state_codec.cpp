// XFRM states: decoding a state dump (xfrm_usersa_info), ALLOCSPI and DELSA requests.
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>

#include <cstdio>

#include "os/netlink/netlink.hpp"
#include "os/netlink/xfrm_codec.hpp"
#include "os/netlink/xfrm_codec_detail.hpp"

namespace ipopsec {
namespace xfrm {

using namespace detail;
using netlink::Bytes;
using netlink::MessageBuilder;

bool StateInfo::larval() const {
  return !keyed && (proto == IPPROTO_ESP || proto == IPPROTO_AH || proto == IPPROTO_COMP);
}

bool StateInfo::acquirePending() const { return proto == IPPROTO_ESP && spi == 0 && seq != 0; }

std::string protoName(std::uint8_t proto) {
  switch (proto) {
    case IPPROTO_ESP: return "esp";
    case IPPROTO_AH: return "ah";
    case IPPROTO_COMP: return "comp";
    default: return "proto " + std::to_string(proto);
  }
}

std::string modeName(std::uint8_t mode) {
  switch (mode) {
    case XFRM_MODE_TRANSPORT: return "transport";
    case XFRM_MODE_TUNNEL: return "tunnel";
    case XFRM_MODE_ROUTEOPTIMIZATION: return "ro";
    case XFRM_MODE_IN_TRIGGER: return "in_trigger";
    case XFRM_MODE_BEET: return "beet";
    default: return "mode " + std::to_string(mode);
  }
}

std::string describe(const StateInfo& s) {
  char spi[16];
  std::snprintf(spi, sizeof spi, "0x%08x", s.spi);
  std::string line = protoName(s.proto) + " spi " + spi + " " + s.src.str() + " -> " + s.dst.str() + " " +
                     modeName(s.mode) + " reqid " + std::to_string(s.reqid);
  if (s.larval()) line += " larval";
  return line;
}

namespace {

std::uint16_t familyOf(const StateInfo& s) { return s.src.family == Family::v4 ? AF_INET : AF_INET6; }

// Whether a state's attributes carry an algorithm; "" or why they are malformed.
std::string stateKeyed(Bytes attributes, bool& keyed) {
  netlink::Attributes walk(attributes);
  netlink::Attribute a;
  keyed = false;
  while (walk.next(a)) {
    switch (a.type) {
      case XFRMA_ALG_AEAD:
      case XFRMA_ALG_CRYPT:
      case XFRMA_ALG_AUTH:
      case XFRMA_ALG_AUTH_TRUNC:
      case XFRMA_ALG_COMP: keyed = true; break;
      default: break;
    }
  }
  return walk.error();
}

}  // namespace

std::vector<std::uint8_t> encodeAllocSpi(const StateInfo& s) {
  const std::uint16_t family = familyOf(s);
  xfrm_userspi_info spi{};
  spi.info.family = family;
  putAddress(spi.info.id.daddr, s.dst);
  putAddress(spi.info.saddr, s.src);
  spi.info.id.proto = s.proto;
  spi.info.seq = s.seq;
  spi.info.reqid = s.reqid;
  spi.info.mode = s.mode;
  spi.info.sel.family = family;
  spi.min = 0x100;
  spi.max = 0xffffffffU;
  return MessageBuilder(XFRM_MSG_ALLOCSPI, NLM_F_REQUEST | NLM_F_ACK).put(spi).finish();
}

std::vector<std::uint8_t> encodeDeleteState(const StateInfo& s) {
  xfrm_usersa_id id{};
  putAddress(id.daddr, s.dst);
  id.spi = htonl(s.spi);
  id.family = familyOf(s);
  id.proto = s.proto;
  xfrm_address_t src{};
  putAddress(src, s.src);
  return MessageBuilder(XFRM_MSG_DELSA, NLM_F_REQUEST | NLM_F_ACK).put(id).attr(XFRMA_SRCADDR, &src, sizeof src).finish();
}

StateDecodeResult decodeStateDump(std::span<const std::uint8_t> buf, std::uint32_t seq) {
  StateDecodeResult res;
  walkEntries(buf, seq, res, XFRM_MSG_NEWSA, "XFRM_MSG_NEWSA", res.states, [&](Bytes payload) -> std::string {
    if (payload.size() < sizeof(xfrm_usersa_info))
      return "truncated xfrm_usersa_info (" + std::to_string(payload.size()) + " of " +
             std::to_string(sizeof(xfrm_usersa_info)) + " bytes)";
    const auto info = netlink::load<xfrm_usersa_info>(payload);
    auto src = decodeAddress(info.saddr, info.family);
    auto dst = decodeAddress(info.id.daddr, info.family);
    if (!src || !dst) return "state of " + familyName(info.family) + " with unusable addresses";
    StateInfo s;
    if (auto why = stateKeyed(netlink::attributesAfter(payload, sizeof info), s.keyed); !why.empty()) return why;
    s.src = *src;
    s.dst = *dst;
    s.proto = info.id.proto;
    s.spi = ntohl(info.id.spi);
    s.seq = info.seq;
    s.reqid = info.reqid;
    s.mode = info.mode;
    res.states.push_back(s);
    return "";
  });
  return res;
}

}  // namespace xfrm
}  // namespace ipopsec
