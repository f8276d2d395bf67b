// Decoding XFRM state dumps (the SAD as listStates, flushLarval and removeStates read it)
// and the ALLOCSPI / DELSA requests, on crafted bytes (no socket, no root).
#include "os/netlink/xfrm_codec.hpp"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "unit/netlink_bytes.hpp"

namespace ipopsec {
namespace {

using namespace test;  // Bytes, message, attr, done, ... (unit/netlink_bytes.hpp)

Bytes stateMessage(const char* src, const char* dst, std::uint8_t proto, std::uint32_t spi, std::uint32_t seq,
                   std::uint32_t nlseq = 0, const Bytes& attrs = {}, std::uint32_t reqid = 0,
                   std::uint8_t mode = XFRM_MODE_TRANSPORT) {
  xfrm_usersa_info sa{};
  auto s = IpAddress::parse(src);
  auto d = IpAddress::parse(dst);
  sa.family = s->family == Family::v4 ? AF_INET : AF_INET6;
  std::memcpy(&sa.saddr, s->bytes.data(), static_cast<std::size_t>(s->byteLength()));
  std::memcpy(&sa.id.daddr, d->bytes.data(), static_cast<std::size_t>(d->byteLength()));
  sa.id.proto = proto;
  sa.id.spi = htonl(spi);
  sa.seq = seq;
  sa.reqid = reqid;
  sa.mode = mode;
  return message(XFRM_MSG_NEWSA, NLM_F_MULTI, nlseq, concat({bytesOf(sa), attrs}));
}

// An XFRMA_ALG_CRYPT as the kernel dumps it: xfrm_algo (name, key length in bits) + key.
Bytes cryptAttr() {
  Bytes algo(sizeof(xfrm_algo) + 16, 0x5a);
  xfrm_algo a{};
  std::strncpy(a.alg_name, "cbc(aes)", sizeof a.alg_name - 1);
  a.alg_key_len = 128;
  std::memcpy(algo.data(), &a, sizeof a);
  return attr(XFRMA_ALG_CRYPT, algo);
}

TEST(XfrmStates, AcquirePlaceholdersAreRecognised) {
  Bytes buf = concat({stateMessage("10.254.0.1", "10.254.0.2", IPPROTO_ESP, 0, 17, 4),
                    stateMessage("10.254.0.1", "10.254.0.3", IPPROTO_ESP, 0xc0001234, 18, 4),
                    stateMessage("fd50::1", "fd50::2", IPPROTO_ESP, 0, 19, 4),
                    stateMessage("10.254.0.1", "10.254.0.4", IPPROTO_AH, 0, 20, 4), done(4)});
  auto r = xfrm::decodeStateDump(buf, 4);
  EXPECT_TRUE(r.done);
  ASSERT_EQ(r.states.size(), 4U);
  EXPECT_TRUE(r.states[0].acquirePending());
  EXPECT_EQ(r.states[0].src.str(), "10.254.0.1");
  EXPECT_EQ(r.states[0].dst.str(), "10.254.0.2");
  EXPECT_EQ(r.states[0].seq, 17U);
  EXPECT_FALSE(r.states[1].acquirePending());  // it has an SPI (ALLOCSPI gave it one)
  EXPECT_EQ(r.states[1].spi, 0xc0001234U);
  EXPECT_TRUE(r.states[2].acquirePending());
  EXPECT_EQ(r.states[2].dst.str(), "fd50::2");
  EXPECT_FALSE(r.states[3].acquirePending());  // AH: not what flushLarval deletes
  // None of them carries a key: all four are larval.
  for (const auto& st : r.states) EXPECT_TRUE(st.larval()) << xfrm::describe(st);
}

TEST(XfrmStates, SadDumpGivesEachStatesFieldsAndKeyedness) {
  Bytes buf = concat({stateMessage("10.254.0.1", "10.254.0.2", IPPROTO_ESP, 0x1234, 0, 9,
                                 concat({attr(XFRMA_SRCADDR, Bytes(16, 0)), cryptAttr()}), 7, XFRM_MODE_TUNNEL),
                    stateMessage("fd50::1", "fd50::2", IPPROTO_ESP, 0x100, 0, 9, attr(XFRMA_LASTUSED, Bytes(8, 0)), 3),
                    stateMessage("10.254.0.1", "10.254.0.5", IPPROTO_COMP, 0x42, 0, 9,
                                 attr(XFRMA_ALG_COMP, bytesOf(xfrm_algo{})), 0),
                    stateMessage("10.254.0.1", "10.254.0.6", 43 /* routing header */, 0, 0, 9), done(9)});
  auto r = xfrm::decodeStateDump(buf, 9);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.error, 0);
  EXPECT_TRUE(r.skipped.empty()) << r.skipped.front();
  ASSERT_EQ(r.states.size(), 4U);
  const auto& esp = r.states[0];
  EXPECT_EQ(esp.src.str(), "10.254.0.1");
  EXPECT_EQ(esp.dst.str(), "10.254.0.2");
  EXPECT_EQ(esp.proto, IPPROTO_ESP);
  EXPECT_EQ(esp.spi, 0x1234U);
  EXPECT_EQ(esp.reqid, 7U);
  EXPECT_EQ(esp.mode, XFRM_MODE_TUNNEL);
  EXPECT_TRUE(esp.keyed);
  EXPECT_FALSE(esp.larval());
  EXPECT_EQ(xfrm::describe(esp), "esp spi 0x00001234 10.254.0.1 -> 10.254.0.2 tunnel reqid 7");
  // An SPI but no algorithm: given an SPI by ALLOCSPI, never keyed.
  EXPECT_FALSE(r.states[1].keyed);
  EXPECT_TRUE(r.states[1].larval());
  EXPECT_FALSE(r.states[1].acquirePending());
  EXPECT_EQ(xfrm::describe(r.states[1]), "esp spi 0x00000100 fd50::1 -> fd50::2 transport reqid 3 larval");
  EXPECT_TRUE(r.states[2].keyed);
  EXPECT_EQ(xfrm::protoName(r.states[2].proto), "comp");
  EXPECT_FALSE(r.states[3].larval());  // not a keyed protocol at all
  EXPECT_EQ(xfrm::protoName(43), "proto 43");
  EXPECT_EQ(xfrm::modeName(XFRM_MODE_BEET), "beet");
  EXPECT_EQ(xfrm::modeName(200), "mode 200");
}

TEST(XfrmStates, MalformedStateAttributesSkipThatStateOnly) {
  Bytes broken = cryptAttr();
  broken[0] = 0xff;  // nla_len past the message
  broken[1] = 0x0f;
  Bytes buf = concat({stateMessage("10.254.0.1", "10.254.0.2", IPPROTO_ESP, 0x1234, 0, 0, broken),
                    stateMessage("10.254.0.1", "10.254.0.3", IPPROTO_ESP, 0x1235, 0, 0, cryptAttr()), done(0)});
  auto r = xfrm::decodeStateDump(buf);
  ASSERT_EQ(r.states.size(), 1U);
  EXPECT_EQ(r.states[0].spi, 0x1235U);
  ASSERT_EQ(r.skipped.size(), 1U);
  EXPECT_NE(r.skipped[0].find("bytes remain"), std::string::npos) << r.skipped[0];
  EXPECT_TRUE(r.done);
}

TEST(XfrmStates, AllocSpiAndDeleteRequestsCarryTheStatesIdentity) {
  xfrm::StateInfo s;
  s.src = *IpAddress::parse("fd50::1");
  s.dst = *IpAddress::parse("fd50::2");
  s.proto = IPPROTO_ESP;
  s.seq = 77;
  s.reqid = 5;
  s.mode = XFRM_MODE_TRANSPORT;
  Bytes alloc = xfrm::encodeAllocSpi(s);
  ASSERT_EQ(headerOf(alloc).nlmsg_type, XFRM_MSG_ALLOCSPI);
  EXPECT_EQ(headerOf(alloc).nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
  ASSERT_GE(alloc.size(), NLMSG_HDRLEN + sizeof(xfrm_userspi_info));
  xfrm_userspi_info spi{};
  std::memcpy(&spi, alloc.data() + NLMSG_HDRLEN, sizeof spi);
  EXPECT_EQ(spi.info.family, AF_INET6);
  EXPECT_EQ(spi.info.seq, 77U);
  EXPECT_EQ(spi.info.reqid, 5U);
  EXPECT_EQ(spi.min, 0x100U);
  EXPECT_EQ(std::memcmp(&spi.info.id.daddr, s.dst.bytes.data(), 16), 0);

  s.spi = 0xc0ffee;
  Bytes del = xfrm::encodeDeleteState(s);
  ASSERT_EQ(headerOf(del).nlmsg_type, XFRM_MSG_DELSA);
  xfrm_usersa_id id{};
  std::memcpy(&id, del.data() + NLMSG_HDRLEN, sizeof id);
  EXPECT_EQ(ntohl(id.spi), 0xc0ffeeU);
  EXPECT_EQ(id.proto, IPPROTO_ESP);
  EXPECT_EQ(id.family, AF_INET6);
  const std::size_t attrAt = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof id);
  ASSERT_EQ(del.size(), attrAt + NLA_HDRLEN + sizeof(xfrm_address_t));
  nlattr a{};
  std::memcpy(&a, del.data() + attrAt, sizeof a);
  EXPECT_EQ(a.nla_type, XFRMA_SRCADDR);
  EXPECT_EQ(std::memcmp(del.data() + attrAt + NLA_HDRLEN, s.src.bytes.data(), 16), 0);
}

TEST(XfrmStates, TruncatedAndGarbage) {
  Bytes full = concat({stateMessage("10.254.0.1", "10.254.0.2", IPPROTO_ESP, 0, 17),
                       stateMessage("10.254.0.1", "10.254.0.3", IPPROTO_ESP, 0, 18), done(0)});
  for (std::size_t cut = 0; cut <= full.size(); ++cut) {
    Bytes part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
    auto r = xfrm::decodeStateDump(part);
    EXPECT_LE(r.states.size(), 2U);
    EXPECT_EQ(r.done, cut == full.size());
  }
  std::mt19937 rng(99);
  for (int iter = 0; iter < 2000; ++iter) {
    Bytes buf = full;
    buf[rng() % buf.size()] = static_cast<std::uint8_t>(rng());
    buf[rng() % buf.size()] = static_cast<std::uint8_t>(rng());
    auto r = xfrm::decodeStateDump(buf);
    EXPECT_LE(r.states.size(), 2U);
    for (const auto& s : r.states) EXPECT_EQ(s.src.family, s.dst.family);
  }
  Bytes bad = stateMessage("10.254.0.1", "10.254.0.2", IPPROTO_ESP, 0, 1);
  xfrm_usersa_info sa{};
  std::memcpy(&sa, bad.data() + NLMSG_HDRLEN, sizeof sa);
  sa.family = 77;
  std::memcpy(bad.data() + NLMSG_HDRLEN, &sa, sizeof sa);
  auto r = xfrm::decodeStateDump(bad);
  EXPECT_TRUE(r.states.empty());
  ASSERT_EQ(r.skipped.size(), 1U);
  EXPECT_NE(r.skipped[0].find("family 77"), std::string::npos);
}

}  // namespace
}  // namespace ipopsec
