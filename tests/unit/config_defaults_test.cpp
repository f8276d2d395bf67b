// The defaults that follow ike.backend (core/config/config_defaults.hpp): one row per
// backend, applied once after the keys the file sets; a key the file sets is never
// overwritten, whichever backend. Each row a document and what it must give.

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>

#include "core/config/parse_config.hpp"

namespace ipopsec {
namespace {

struct DefaultsRow {
  std::string name;
  std::string yaml;
  std::string unit;
  std::uint32_t protectPriority;
  std::string certificateDir;
  bool certificateDirDefaulted;
  friend void PrintTo(const DefaultsRow& r, std::ostream* os) { *os << r.name; }
};

class BackendDefault : public ::testing::TestWithParam<DefaultsRow> {};

TEST_P(BackendDefault, FillsOnlyWhatTheFileDoesNotSet) {
  const auto& row = GetParam();
  const Config c = parseConfig(row.yaml, "t.yaml");
  EXPECT_EQ(c.ike.unit, row.unit);
  EXPECT_EQ(c.xfrm.protectPriority, row.protectPriority);
  EXPECT_EQ(c.racoon.certificateDir, row.certificateDir);
  EXPECT_EQ(c.racoon.certificateDirDefaulted, row.certificateDirDefaulted);
}

// The smallest file that validates (an empty one does not): sets no key of the table.
const std::string kMinimal = "ipop:\n  interface: ipop\n";
const std::string kSwan = "ike:\n  backend: strongswan\n";

INSTANTIATE_TEST_SUITE_P(
    ConfigDefaults, BackendDefault,
    ::testing::Values(
        DefaultsRow{"no_key_of_the_table_is_racoons_row", kMinimal, "racoon.service", 250000, "/etc/racoon/certs", true},
        DefaultsRow{"racoon_named", "ike:\n  backend: racoon\n", "racoon.service", 250000, "/etc/racoon/certs", true},
        DefaultsRow{"strongswan_row", kSwan, "strongswan.service", 500000, "/etc/ipop-ipsec/certs", true},
        DefaultsRow{"strongswan_unit_set", kSwan + "  unit: strongswan-starter.service\n",
                    "strongswan-starter.service", 500000, "/etc/ipop-ipsec/certs", true},
        DefaultsRow{"strongswan_priority_set", kSwan + "xfrm:\n  protect_priority: 600000\n", "strongswan.service",
                    600000, "/etc/ipop-ipsec/certs", true},
        DefaultsRow{"strongswan_dir_set", kSwan + "racoon:\n  certificate_dir: /srv/certs\n", "strongswan.service",
                    500000, "/srv/certs", false},
        DefaultsRow{"racoon_dir_set_to_the_default_is_still_set", "racoon:\n  certificate_dir: /etc/racoon/certs\n",
                    "racoon.service", 250000, "/etc/racoon/certs", false},
        DefaultsRow{"racoon_priority_set_to_strongswans_value", "xfrm:\n  protect_priority: 500000\n",
                    "racoon.service", 500000, "/etc/racoon/certs", true},
        DefaultsRow{"backend_after_the_keys_in_the_file",
                    "xfrm:\n  protect_priority: 450000\nike:\n  backend: strongswan\n", "strongswan.service", 450000,
                    "/etc/ipop-ipsec/certs", true}),
    [](const auto& info) { return info.param.name; });

// Config{} is what an empty file gives for the keys of the table (the members start from
// the default backend's row), so code that builds a Config by hand sees the same defaults.
TEST(ConfigDefaults, ConfigOfNothingIsTheDefaultBackendsRow) {
  const Config none{};
  const Config empty = parseConfig(kMinimal, "t.yaml");
  EXPECT_EQ(none.ike.backend, IkeBackend::racoon);
  EXPECT_EQ(none.ike.unit, empty.ike.unit);
  EXPECT_EQ(none.xfrm.protectPriority, empty.xfrm.protectPriority);
  EXPECT_EQ(none.racoon.certificateDir, empty.racoon.certificateDir);
  EXPECT_EQ(none.ike.unit, backendDefaults(IkeBackend::racoon).unit);
}

}  // namespace
}  // namespace ipopsec
