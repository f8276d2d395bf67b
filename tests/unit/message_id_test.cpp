// journald MESSAGE_ID= of the key events: the real reconciler's events get the right id
// (so a reworded message or a renamed action cannot silently lose it), the ids are stable
// 128-bit values, and systemd/ipop-ipsec.catalog explains every one of them.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "os/systemd/logging.hpp"
#include "unit/reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using ::testing::Contains;

namespace {

spdlog::level::level_enum spd(Severity s) {
  switch (s) {
    case Severity::debug: return spdlog::level::debug;
    case Severity::info: return spdlog::level::info;
    case Severity::warning: return spdlog::level::warn;
    case Severity::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

const std::vector<std::pair<const char*, const char*>> kIds{
    {"kPoliciesChanged", message_id::kPoliciesChanged},     {"kIkeRestarted", message_id::kIkeRestarted},
    {"kIkeRestartFailed", message_id::kIkeRestartFailed},   {"kReloadRefused", message_id::kReloadRefused},
    {"kCertificateProblem", message_id::kCertificateProblem}, {"kConflictHeld", message_id::kConflictHeld},
    {"kRangeRefused", message_id::kRangeRefused},           {"kIkeLost", message_id::kIkeLost},
};

struct MessageIdTest : ReconcilerFixture {
  // The MESSAGE_ID each event so far would carry in the journal, with its message.
  std::multimap<std::string, std::string> ids() {
    std::multimap<std::string, std::string> out;
    for (const auto& e : events) {
      auto fields = journalFields(spd(e.severity), fieldsOf(e.kind, "ipop", e.range), e.message);
      for (const auto& f : fields)
        if (f.rfind("MESSAGE_ID=", 0) == 0) out.emplace(f.substr(11), e.message);
    }
    return out;
  }
  std::vector<std::string> messagesWith(const char* id) {
    std::vector<std::string> v;
    for (const auto& [k, m] : ids())
      if (k == id) v.push_back(m);
    return v;
  }
};

TEST_F(MessageIdTest, PoliciesChangedAndIkeRestartedButNotRestarting) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  r->onTimer(net);  // the first start has no quiet period
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  auto policies = messagesWith(message_id::kPoliciesChanged);
  ASSERT_EQ(policies.size(), 1u);
  EXPECT_NE(policies[0].find("now protecting 172.31.0.0/16"), std::string::npos) << policies[0];
  auto restarted = messagesWith(message_id::kIkeRestarted);
  ASSERT_EQ(restarted.size(), 1u) << "only the completion, not 'restarting ...'";
  EXPECT_EQ(restarted[0], "racoon.service restarted");
  EXPECT_TRUE(hasEvent("restart", "restarting racoon.service"));  // the beginning exists, without an id
  EXPECT_TRUE(messagesWith(message_id::kIkeRestartFailed).empty());
}

TEST_F(MessageIdTest, IkeRestartFailed) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  r->onTimer(net);  // the first start has no quiet period
  ASSERT_EQ(unit.restarts, 1);
  unit.complete(std::make_error_code(std::errc::timed_out), "job timed out");
  auto failed = messagesWith(message_id::kIkeRestartFailed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0].find("restart failed"), std::string::npos) << failed[0];
  EXPECT_TRUE(messagesWith(message_id::kIkeRestarted).empty());
}

// The IKE daemon stopped while IPOP is up: the warning that it is lost and repaired carries
// its own id; the restart that repairs it is an IKE restart like any other.
TEST_F(MessageIdTest, IkeLostAndRepaired) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  r->onTimer(net);
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  clock.advance(std::chrono::minutes(1));
  r->ikeStateChanged("inactive");
  auto lost = messagesWith(message_id::kIkeLost);
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_NE(lost[0].find("racoon.service is inactive while IPOP is up"), std::string::npos) << lost[0];
  r->onTimer(net);
  ASSERT_EQ(unit.restarts, 2);
  unit.complete();
  EXPECT_EQ(messagesWith(message_id::kIkeRestarted).size(), 2u);
}

TEST_F(MessageIdTest, CertificateProblem) {
  files.files.erase("/certs/host-key.pem");
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  auto problems = messagesWith(message_id::kCertificateProblem);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("host-key.pem"), std::string::npos) << problems[0];
}

TEST_F(MessageIdTest, ConflictHeldAndRangeRefused) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  net.links[9] = link(9, "docker0", true, {"172.31.200.1/24"});
  r->reconcile(net);
  auto held = messagesWith(message_id::kConflictHeld);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_NE(held[0].find("docker0"), std::string::npos) << held[0];

  events.clear();
  auto c = cfg();
  c.protect.autoRanges = false;
  c.protect.ranges = {C("192.168.0.0/16")};  // covers eth0's LAN 192.168.1.0/24
  make(c);
  r->reconcile(net);
  auto refused = messagesWith(message_id::kRangeRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_NE(refused[0].find("192.168.0.0/16"), std::string::npos) << refused[0];
}

// The kinds' table (core/status/events.cpp) decides the ids: in the enum's order, every kind
// with its action, exactly the published ids and each on the kinds that should carry it.
TEST(MessageId, TheKindsTableDecidesTheIds) {
  const auto& kinds = eventKinds();
  std::set<std::string> fromTable;
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(kinds[i].kind), i) << "eventKinds() out of the enum's order at " << i;
    EXPECT_STRNE(kinds[i].action, "") << i;
    if (*kinds[i].messageId) fromTable.insert(kinds[i].messageId);
  }
  EXPECT_EQ(kinds.size(), static_cast<std::size_t>(EventKind::reloadRefused) + 1) << "a kind missing from the table";
  std::set<std::string> published;
  for (const auto& [name, id] : kIds) published.insert(id);
  EXPECT_EQ(fromTable, published);
  EXPECT_STREQ(describe(EventKind::reloadRefused).messageId, message_id::kReloadRefused);
  EXPECT_STREQ(describe(EventKind::reloadRefused).action, "refuse-reload");
  EXPECT_STREQ(describe(EventKind::ikeRestarted).messageId, message_id::kIkeRestarted);
  // Same action, no id: the beginning of a restart, one cut short (which text matching on
  // "restarting " once tagged as IKE restarted), a certificate set usable again.
  for (auto k : {EventKind::ikeRestarting, EventKind::ikeRestartCutShort, EventKind::ikeReloadCutShort,
                 EventKind::certificatesUsable, EventKind::policyInstalled, EventKind::ikeRepair})
    EXPECT_STREQ(describe(k).messageId, "") << describe(k).action;
  EXPECT_STREQ(describe(EventKind::ikeRestartCutShort).action, "restart");
  // The journal entry of an event carries what its kind says, whatever its words.
  auto withId = journalFields(spdlog::level::info, fieldsOf(EventKind::ikeRestarted), "anything at all");
  EXPECT_THAT(withId, Contains(std::string("MESSAGE_ID=") + message_id::kIkeRestarted));
  EXPECT_THAT(withId, Contains(std::string("IPOPSEC_ACTION=restart")));
  // Without an id the journal entry has no MESSAGE_ID field at all.
  auto fields = journalFields(spdlog::level::info, fieldsOf(EventKind::ikeRestarting), "ipop-ipsecd restarted");
  for (const auto& f : fields) EXPECT_NE(f.rfind("MESSAGE_ID=", 0), 0u) << f;
}

TEST(MessageId, IdsAreDistinct128BitHex) {
  std::set<std::string> seen;
  for (const auto& [name, id] : kIds) {
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{32}"))) << name << " " << id;
    EXPECT_TRUE(seen.insert(id).second) << name << " repeats " << id;
  }
}

// The catalog: one entry per id (no more, no fewer), each with a Subject, the man page as
// Documentation, and an explanation.
TEST(MessageId, TheCatalogExplainsEveryId) {
  std::ifstream in(IPOPSEC_SOURCE_DIR "/systemd/ipop-ipsec.catalog");
  ASSERT_TRUE(in) << "systemd/ipop-ipsec.catalog is missing";
  std::map<std::string, std::string> entries;  // id -> its text
  std::string line, current;
  while (std::getline(in, line)) {
    if (line.rfind("-- ", 0) == 0) {
      current = line.substr(3);
      EXPECT_TRUE(entries.emplace(current, "").second) << "catalog entry twice: " << current;
    } else if (!current.empty()) {
      entries[current] += line + "\n";
    }
  }
  std::set<std::string> ids;
  for (const auto& [name, id] : kIds) {
    ids.insert(id);
    auto it = entries.find(id);
    ASSERT_NE(it, entries.end()) << "no catalog entry for " << name << " (" << id << ")";
    EXPECT_NE(it->second.find("Subject: "), std::string::npos) << name;
    EXPECT_NE(it->second.find("Documentation: man:ipop-ipsecd(8)"), std::string::npos) << name;
    EXPECT_GT(it->second.size(), 200u) << name << ": the entry explains too little";
  }
  for (const auto& [id, text] : entries) EXPECT_TRUE(ids.count(id)) << "catalog entry for an unknown id " << id;
}

}  // namespace
