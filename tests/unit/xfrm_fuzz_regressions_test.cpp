// The XFRM dump decoders (os/netlink/xfrm_codec.hpp) on the inputs the XFRM fuzz targets found,
// replayed from tests/fuzz/regressions/ with the verdict each must get.
#include <linux/netlink.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "os/netlink/xfrm_codec.hpp"
#include "support/fuzz_regression.hpp"

namespace ipopsec {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes message(std::uint16_t type, std::int32_t code) {
  Bytes b(NLMSG_SPACE(sizeof(nlmsgerr)), 0);
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof(nlmsgerr)));
  h.nlmsg_type = type;
  std::memcpy(b.data(), &h, sizeof h);
  std::memcpy(b.data() + NLMSG_HDRLEN, &code, sizeof code);
  return b;
}

// An NLMSG_ERROR or NLMSG_DONE carrying INT_MIN as its error was negated (signed
// overflow, undefined behaviour) by the XFRM dump decoders; it is a protocol error.
TEST(XfrmFuzzRegression, ErrorCodeIntMinIsAProtocolErrorNotOverflow) {
  auto p = xfrm::decodePolicyDump(message(NLMSG_ERROR, INT_MIN), PolicyOwnership(250000, 1000));
  EXPECT_EQ(p.error, EPROTO);
  auto s = xfrm::decodeStateDump(message(NLMSG_DONE, INT_MIN));
  EXPECT_EQ(s.error, EPROTO);
  auto ok = xfrm::decodePolicyDump(message(NLMSG_ERROR, -ENOENT), PolicyOwnership(250000, 1000));
  EXPECT_EQ(ok.error, ENOENT);
}

// The inputs the fuzzer found (first byte: the target's selector byte), each decoded by
// the decoder its target fed it to: the INT_MIN error is reported as EPROTO.
TEST(XfrmFuzzRegression, TheFuzzersInputsAreRejectedAsProtocolErrors) {
  std::string policy = test::readFuzzRegression("xfrm_policy_error_int_min.bin");
  ASSERT_GT(policy.size(), 1U);
  Bytes pbuf(policy.begin() + 1, policy.end());
  EXPECT_EQ(xfrm::decodePolicyDump(pbuf, PolicyOwnership(250000, 1000)).error, EPROTO);
  std::string state = test::readFuzzRegression("xfrm_state_done_int_min.bin");
  ASSERT_GT(state.size(), 1U);
  Bytes sbuf(state.begin() + 1, state.end());
  EXPECT_EQ(xfrm::decodeStateDump(sbuf).error, EPROTO);
}

}  // namespace
}  // namespace ipopsec
