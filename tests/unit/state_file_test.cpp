// The state file (/run/ipop-ipsec/state.json): it starts with its schema version, every
// time in it is RFC 3339 UTC, it reads back, a file of an earlier release (no version, unix
// seconds) still reads, and a newer schema is refused with a reason.

#include "daemon/state_file.hpp"

#include "core/render/quoting.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "unit/reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

const std::regex kRfc3339Utc("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z");

// The string value of a top-level key of the written JSON, found textually (the file's
// own format: one key per line).
std::string rawValue(const std::string& json, const std::string& key) {
  auto at = json.find("\n  \"" + key + "\": ");
  if (at == std::string::npos) return "<absent>";
  at = json.find(": ", at) + 2;
  return json.substr(at, json.find('\n', at) - at);
}

struct StateFileTest : ReconcilerFixture {};

TEST_F(StateFileTest, SchemaVersionFirstAndEveryTimeInRfc3339Utc) {
  // Now, whole seconds (the fake certificates are valid around the real time).
  auto wall = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  r = std::make_unique<Reconciler>(cfg(), policies, files, certs, unit, clock, [this](const Event& e) { events.push_back(e); },
                                   [&wall] { return wall; });
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  r->onTimer(net);  // the first start has no quiet period
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  ASSERT_TRUE(r->status().lastRestart);
  ASSERT_TRUE(r->status().desired.certExpiry);

  std::string json = stateJson(cfg(), *r, "active", r->statusLine(), "");
  EXPECT_THAT(json, StartsWith("{\n  \"schema_version\": 1,\n"));
  EXPECT_EQ(rawValue(json, "last_restart"), "\"" + rfc3339(wall) + "\",");
  for (const char* key : {"certificate_expiry", "last_restart", "written_at"}) {
    std::string v = rawValue(json, key);
    ASSERT_GE(v.size(), 2u) << key;
    v = v.substr(1, v.find('"', 1) - 1);
    EXPECT_TRUE(std::regex_match(v, kRfc3339Utc)) << key << ": " << v;
  }
  EXPECT_EQ(rawValue(json, "certificate_expiry"),
            "\"" + rfc3339(*r->status().desired.certExpiry) + "\",");

  std::string err;
  auto s = parseState(json, &err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->schemaVersion, kStateSchemaVersion);
  EXPECT_EQ(s->lastRestart, rfc3339(wall));
  EXPECT_TRUE(std::regex_match(s->writtenAt, kRfc3339Utc)) << s->writtenAt;
  EXPECT_TRUE(std::regex_match(s->certificateExpiry, kRfc3339Utc)) << s->certificateExpiry;
  EXPECT_EQ(s->pid, static_cast<int>(::getpid()));
}

// With ike.control: command, logs and status name the command as configured, every word:
// a wrapper (`/bin/sh -c ...`, `/bin/bash script`) is named by what it runs, not by its
// interpreter; a word that a shell would split or expand is quoted; a long one is shortened.
TEST_F(StateFileTest, TheIkeRestarterIsNamedByItsWholeCommandLine) {
  make(cfg());
  auto named = [this](std::vector<std::string> argv) {
    Config c = cfg();
    c.ike.control = IkeControl::command;
    c.ike.restartCommand = std::move(argv);
    return rawValue(stateJson(c, *r, "active", r->statusLine(), ""), "ike_unit");
  };
  EXPECT_EQ(named({"/usr/local/sbin/restart-ike"}), "\"ike.restart_command /usr/local/sbin/restart-ike\",");
  EXPECT_EQ(named({"/bin/sh", "-c", "systemctl restart strongswan"}),
            "\"ike.restart_command /bin/sh -c 'systemctl restart strongswan'\",");
  EXPECT_EQ(named({"/bin/bash", "/etc/ipop/it's.sh", "", "a$b"}),
            "\"ike.restart_command /bin/bash '/etc/ipop/it'\\\\''s.sh' '' 'a$b'\",");  // JSON escapes the backslash
  EXPECT_EQ(commandLine({"/bin/sh", "-c", "systemctl restart strongswan"}), "/bin/sh -c 'systemctl restart strongswan'");
  EXPECT_EQ(commandLine({"/bin/sh", "-c", "a\nb\tc\x01'\\"}), "/bin/sh -c $'a\\nb\\tc\\x01\\'\\\\'")
      << "a control character never reaches the log line as it is";
  // Shortened past kMaxCommandShown bytes, never inside a UTF-8 character ("\xc3\xa9" is 'é').
  std::string wide = commandLine({"/bin/echo", std::string(146, 'x') + "\xc3\xa9\xc3\xa9" + std::string(20, 'y')});
  EXPECT_EQ(wide, "/bin/echo " + std::string(146, 'x') + "...") << "the cut fell inside the first 'é': before it";
  wide = commandLine({"/bin/echo", std::string(145, 'x') + "\xc3\xa9\xc3\xa9" + std::string(20, 'y')});
  EXPECT_EQ(wide, "/bin/echo " + std::string(145, 'x') + "\xc3\xa9...") << "the cut fell between the two";
  std::string shown = commandLine({"/bin/echo", std::string(400, 'x')});
  EXPECT_EQ(shown.size(), kMaxCommandShown);
  EXPECT_THAT(shown, StartsWith("/bin/echo xxx"));
  EXPECT_EQ(shown.substr(shown.size() - 3), "...");
  Config c = cfg();
  c.ike.control = IkeControl::systemd;
  c.ike.unit = "strongswan.service";
  EXPECT_EQ(rawValue(stateJson(c, *r, "active", r->statusLine(), ""), "ike_unit"), "\"strongswan.service\",");
}

// What the IKE daemon runs with goes into the file and back: the restart and reload parts of
// its inputs and the CRL it loaded (fingerprint, revoked serials, when). An ipop-ipsecd that
// adopts it from the file gives it a routine CRL refresh as a credentials load, not a restart,
// and cuts only what its CRL did not revoke yet.
TEST_F(StateFileTest, TheCrlTheIkeDaemonRunsWithSurvivesARestartOfTheDaemon) {
  auto wall = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  Config c = cfg();
  c.ike.backend = IkeBackend::strongswan;
  c.ike.unit = "strongswan.service";
  c.racoon.crl = "crl.pem";
  unit.reloadable = unit.credsLoadable = unit.cuttable = true;
  files.files["/certs/crl.pem"] = "CRL v1\nrevoked: 0F";
  auto start = [&] {
    r = std::make_unique<Reconciler>(c, policies, files, certs, unit, clock, [this](const Event& e) { events.push_back(e); },
                                     [&wall] { return wall; });
  };
  start();
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  r->onTimer(net);
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  std::string json = stateJson(c, *r, "active", r->statusLine(), "");
  EXPECT_EQ(rawValue(json, "ike_crl"), "{\"fingerprint\": \"" + r->status().desired.ikeCrl +
                                           "\", \"revoked\": [\"0F\"], \"loaded_at\": \"" + rfc3339(wall) + "\"},");
  std::string err;
  auto s = parseState(json, &err);
  ASSERT_TRUE(s) << err;
  ASSERT_TRUE(s->ikeCrl);
  EXPECT_EQ(s->ikeCrl->fingerprint, r->status().desired.ikeCrl);
  EXPECT_EQ(s->ikeCrl->revoked, (std::vector<std::string>{"0F"}));
  EXPECT_EQ(s->ikeCrl->loadedAt, rfc3339(wall));
  EXPECT_EQ(s->ikeRestartInputs, *r->scheduler().startedRestartInputs());
  EXPECT_EQ(s->ikeReloadInputs, *r->scheduler().startedReloadInputs());

  // The daemon restarts and adopts the running charon as Daemon::start does.
  start();
  r->assumeIkeStarted(s->ikeInputs, s->ikeRestartInputs, s->ikeReloadInputs);
  r->assumeCrlRunning(s->ikeCrl->fingerprint, s->ikeCrl->revoked, parseRfc3339(s->ikeCrl->loadedAt));
  r->reconcile(net);
  clock.now_ += std::chrono::seconds(60);
  r->onTimer(net);
  EXPECT_EQ(unit.restarts + unit.reloads + unit.credLoads, 1) << "the same CRL: nothing loaded or restarted";
  EXPECT_EQ(rawValue(stateJson(c, *r, "active", r->statusLine(), ""), "ike_crl"), rawValue(json, "ike_crl"))
      << "written again as adopted";
  files.files["/certs/crl.pem"] = "CRL v2\nrevoked: 0F\nrevoked: 77";
  r->certificatesChanged();
  r->reconcile(net);
  clock.now_ += std::chrono::seconds(60);
  r->onTimer(net);
  EXPECT_EQ(unit.restarts, 1) << "not restarted for a new CRL";
  ASSERT_EQ(unit.credLoads, 1);
  EXPECT_TRUE(hasEvent("reload", "the new CRL revokes serial 77"));
  unit.complete();
  ASSERT_EQ(unit.cuts.size(), 1u);
  EXPECT_EQ(unit.cuts[0], (std::vector<std::string>{"77"}));

  // A file without them (an earlier release): unknown, not empty.
  s = parseState("{\"ike_inputs\": \"x\", \"ike_crl\": null}", &err);
  ASSERT_TRUE(s) << err;
  EXPECT_FALSE(s->ikeCrl);
  EXPECT_EQ(s->ikeRestartInputs, "");
}

TEST(StateFile, Rfc3339) {
  EXPECT_EQ(rfc3339(std::chrono::system_clock::time_point{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(1893456000))), "2030-01-01T00:00:00Z");
  // Sub-second parts are cut, never rounded up into the next second.
  EXPECT_EQ(rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(1893455999999))),
            "2029-12-31T23:59:59Z");
}

TEST(StateFile, AFileOfAnEarlierReleaseStillReads) {
  // No schema_version, written_at in unix seconds (what releases before it wrote).
  std::string err;
  auto s = parseState("{\"status\": \"x\", \"pid\": 42, \"written_at\": 1764600000}", &err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->schemaVersion, 0);
  EXPECT_EQ(s->writtenAt, "2025-12-01T14:40:00Z");
  EXPECT_EQ(s->pid, 42);
}

// Found by the state_file fuzz target: a legacy written_at past the year 2262 overflowed a
// nanosecond time_point (tests/fuzz/regressions/state_file_written_at_overflow.json).
TEST(StateFile, ALegacyTimeFarInTheFutureIsConvertedWithoutOverflow) {
  std::string err;
  auto s = parseState("{\"written_at\": 17642281601}", &err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->writtenAt, "2529-01-23T01:46:41Z");
}

TEST(StateFile, UnknownSchemaVersionsAreRefusedWithAReason) {
  for (const char* text : {"{\"schema_version\": 2, \"pid\": 1}", "{\"schema_version\": 0, \"pid\": 1}",
                           "{\"schema_version\": -5}"}) {
    std::string err;
    EXPECT_FALSE(parseState(text, &err)) << text;
    EXPECT_THAT(err, HasSubstr("schema_version")) << text;
  }
  std::string err;
  EXPECT_FALSE(parseState("{\"schema_version\": \"one\"}", &err));
  EXPECT_FALSE(err.empty());
  EXPECT_FALSE(parseState("{\"written_at\": 99999999999999}", &err));  // no year 5138 in a legacy file
  EXPECT_THAT(err, HasSubstr("written_at"));
}

}  // namespace
