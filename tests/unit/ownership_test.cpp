// PolicyOwnership (core/policy/ownership.hpp): which priorities make a kernel policy the
// daemon's, adoption of what state.json recorded, migration on a changed priority, what
// state.json records, and the backend defaults the conflict advice names. Tables: each row
// is its own test, named.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "core/policy/ownership.hpp"

namespace ipopsec {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using Prios = std::vector<std::uint32_t>;

Policy at(std::uint32_t priority) {
  Policy p;
  p.dir = Direction::out;
  p.sel.src = *Cidr::parse("10.0.0.0/8");
  p.sel.dst = *Cidr::parse("10.0.0.0/8");
  p.priority = priority;
  return p;
}

// --- owns(): a state, then which priorities are owned and which are not.
struct OwnsRow {
  std::string name;
  PolicyOwnership owned;
  Prios yes, no;
  friend void PrintTo(const OwnsRow& r, std::ostream* os) { *os << r.name; }
};

class Owns : public ::testing::TestWithParam<OwnsRow> {};

TEST_P(Owns, ExactlyTheConfiguredAndEarlierPriorities) {
  const auto& row = GetParam();
  for (auto p : row.yes) {
    EXPECT_TRUE(row.owned.owns(p)) << p;
    EXPECT_TRUE(row.owned.owns(at(p))) << p;
  }
  for (auto p : row.no) {
    EXPECT_FALSE(row.owned.owns(p)) << p;
    EXPECT_FALSE(row.owned.owns(at(p))) << p;
  }
}

INSTANTIATE_TEST_SUITE_P(
    PolicyOwnership, Owns,
    ::testing::Values(
        OwnsRow{"nothing_configured_owns_only_zero", {}, {0}, {1, 1000, 250000}},
        OwnsRow{"the_configured_pair", {250000, 1000}, {250000, 1000}, {0, 999, 1001, 249999, 250001, 500000, 400000}},
        OwnsRow{"earlier_ones_too", {500000, 1000, {250000, 2000}}, {500000, 1000, 250000, 2000}, {0, 1001, 1999, 400000}},
        OwnsRow{"unsorted_duplicate_earlier", {500000, 1000, {7, 3, 7, 250000}}, {3, 7, 250000}, {4, 6, 8}},
        OwnsRow{"same_priority_twice_from_recorded", {260000, 260000, {260000}}, {260000}, {250000, 1000}}),
    [](const auto& info) { return info.param.name; });

TEST(PolicyOwnership, EarlierNeverHoldsAConfiguredPriorityAndIsSortedOnce) {
  PolicyOwnership o(500000, 1000, {250000, 1000, 500000, 2000, 250000});
  EXPECT_THAT(o.earlier(), ElementsAre(2000, 250000));
  EXPECT_EQ(PolicyOwnership::configured(Config{}), PolicyOwnership(250000, 1000));
}

// --- adopt(): a configured pair, what state.json recorded -> earlier after, and what the
// call reports as newly adopted.
struct AdoptRow {
  std::string name;
  PolicyOwnership before;
  Prios recorded;
  Prios earlier, added;
  friend void PrintTo(const AdoptRow& r, std::ostream* os) { *os << r.name; }
};

class Adopt : public ::testing::TestWithParam<AdoptRow> {};

TEST_P(Adopt, RecordedPrioritiesNotConfiguredBecomeEarlier) {
  auto row = GetParam();
  auto added = row.before.adopt(row.recorded);
  EXPECT_THAT(row.before.earlier(), ElementsAreArray(row.earlier));
  EXPECT_THAT(added, ElementsAreArray(row.added));
  for (auto r : row.recorded) EXPECT_TRUE(row.before.owns(r)) << r;
}

INSTANTIATE_TEST_SUITE_P(
    PolicyOwnership, Adopt,
    ::testing::Values(
        AdoptRow{"nothing_recorded", {250000, 1000}, {}, {}, {}},
        AdoptRow{"recorded_what_is_configured", {250000, 1000}, {1000, 250000}, {}, {}},
        AdoptRow{"backend_changed_racoon_to_strongswan", {500000, 1000}, {1000, 250000}, {250000}, {250000}},
        AdoptRow{"several_earlier_runs", {500000, 1000}, {1000, 2000, 250000, 260000}, {2000, 250000, 260000},
                 {2000, 250000, 260000}},
        AdoptRow{"already_earlier_not_reported_again", {500000, 1000, {250000}}, {250000, 260000},
                 {250000, 260000}, {260000}},
        AdoptRow{"duplicates_in_the_file", {500000, 1000}, {250000, 250000}, {250000}, {250000}}),
    [](const auto& info) { return info.param.name; });

// --- moveTo(): the configured pair changes; the old pair stays owned until its policies go.
struct MoveRow {
  std::string name;
  PolicyOwnership before;
  std::uint32_t protect, bypass;
  bool changed;
  Prios earlier;
  friend void PrintTo(const MoveRow& r, std::ostream* os) { *os << r.name; }
};

class Move : public ::testing::TestWithParam<MoveRow> {};

TEST_P(Move, TheOldPairStaysOwnedAsEarlier) {
  auto row = GetParam();
  const auto old = row.before;
  EXPECT_EQ(row.before.moveTo(row.protect, row.bypass), row.changed);
  EXPECT_EQ(row.before.protectPriority(), row.protect);
  EXPECT_EQ(row.before.bypassPriority(), row.bypass);
  EXPECT_THAT(row.before.earlier(), ElementsAreArray(row.earlier));
  // Everything owned before is still owned: make before break.
  EXPECT_TRUE(row.before.owns(old.protectPriority()));
  EXPECT_TRUE(row.before.owns(old.bypassPriority()));
  for (auto e : old.earlier()) EXPECT_TRUE(row.before.owns(e)) << e;
}

INSTANTIATE_TEST_SUITE_P(
    PolicyOwnership, Move,
    ::testing::Values(MoveRow{"unchanged", {250000, 1000}, 250000, 1000, false, {}},
                      MoveRow{"protect_only", {250000, 1000}, 260000, 1000, true, {250000}},
                      MoveRow{"bypass_only", {250000, 1000}, 250000, 2000, true, {1000}},
                      MoveRow{"both", {250000, 1000}, 500000, 2000, true, {1000, 250000}},
                      MoveRow{"swap_back_to_an_earlier_pair", {260000, 1000, {250000}}, 250000, 1000, true, {260000}},
                      MoveRow{"twice_keeps_all", {500000, 2000, {1000, 250000}}, 600000, 3000, true,
                              {1000, 2000, 250000, 500000}}),
    [](const auto& info) { return info.param.name; });

// --- forgetUnused() and toRecord(): what the kernel holds of ours decides.
struct RecordRow {
  std::string name;
  PolicyOwnership owned;
  Prios kernel;        // priorities of the daemon's policies in the kernel (as list() gives)
  Prios record;        // state.json's owned_priorities
  Prios earlierAfter;  // after forgetUnused
  friend void PrintTo(const RecordRow& r, std::ostream* os) { *os << r.name; }
};

class Record : public ::testing::TestWithParam<RecordRow> {};

TEST_P(Record, TheConfiguredPairAndWhatCarriesPoliciesNow) {
  auto row = GetParam();
  std::vector<Policy> kernel;
  for (auto p : row.kernel) kernel.push_back(at(p));
  EXPECT_THAT(row.owned.toRecord(kernel), ElementsAreArray(row.record));
  row.owned.forgetUnused(kernel);
  EXPECT_THAT(row.owned.earlier(), ElementsAreArray(row.earlierAfter));
}

INSTANTIATE_TEST_SUITE_P(
    PolicyOwnership, Record,
    ::testing::Values(
        RecordRow{"no_policies_records_the_pair", {250000, 1000}, {}, {1000, 250000}, {}},
        RecordRow{"policies_at_the_pair", {250000, 1000}, {250000, 250000, 1000}, {1000, 250000}, {}},
        RecordRow{"migration_in_flight", {500000, 1000, {250000}}, {250000, 500000, 1000}, {1000, 250000, 500000},
                  {250000}},
        RecordRow{"migration_done_forgets_the_old", {500000, 1000, {250000}}, {500000, 1000}, {1000, 500000}, {}},
        RecordRow{"one_of_two_earlier_left", {500000, 1000, {2000, 250000}}, {2000}, {1000, 2000, 500000}, {2000}}),
    [](const auto& info) { return info.param.name; });

// --- neverInstalledAt() and isBackendDefault().
TEST(PolicyOwnership, TheShapeNeverInstalledAtAnOwnedPriority) {
  PolicyOwnership o(250000, 1000, {500000});
  EXPECT_EQ(o.neverInstalledAt(250000), PolicyAction::bypass);
  EXPECT_EQ(o.neverInstalledAt(1000), PolicyAction::protect);
  EXPECT_EQ(o.neverInstalledAt(500000), PolicyAction::protect);
}

TEST(PolicyOwnership, BackendDefaultsAreEachBackendsProtectPriorityAndNothingElse) {
  for (const auto& row : kBackendDefaults) EXPECT_TRUE(PolicyOwnership::isBackendDefault(row.protectPriority));
  EXPECT_TRUE(PolicyOwnership::isBackendDefault(250000));
  EXPECT_TRUE(PolicyOwnership::isBackendDefault(500000));
  for (std::uint32_t p : {0u, 1000u, 249999u, 250001u, 400000u, 499999u, 500001u})
    EXPECT_FALSE(PolicyOwnership::isBackendDefault(p)) << p;
}

}  // namespace
}  // namespace ipopsec
