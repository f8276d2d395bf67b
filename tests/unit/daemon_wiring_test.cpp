// The daemon's wiring (daemon/daemon.cpp) on fake ports, without root: what each event,
// SIGHUP (reload()) and SIGTERM (shutdown()) does to the link monitor, the policy table, the
// IKE controller, the notifier and the certificate watch. The real adapters are tested on
// their own (tests/integration) and the whole binary by the integration and system tests.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <functional>
#include <optional>
#include <memory>
#include <string>

#include "daemon/daemon.hpp"
#include "daemon_fakes.hpp"
#include "fakes.hpp"
#include "reconciler_fixture.hpp"

namespace ipopsec::test {
namespace {

using ::testing::HasSubstr;

struct DaemonWiringTest : ::testing::Test, FakePortPointers {
  void SetUp() override { writeConfig(); }
  void TearDown() override { daemon.reset(); }

  // The keys every test shares (daemon_fakes.hpp); `ike`, `extra` and the others vary.
  void writeConfig(const std::string& ike = "  backend: racoon\n  control: command\n  restart_command: [/bin/true]\n",
                   const std::string& extra = "", const std::string& daemonExtra = "",
                   const std::string& racoonExtra = "", const std::string& protectExtra = "") {
    configFiles[configPath] = daemonTestConfig(ike, extra, daemonExtra, racoonExtra, protectExtra);
  }

  void start() {
    FakeDaemonPorts f(configFiles, watchdogPeriod);
    pointers() = f;  // the clock is virtual time: runUntil() moves it
    daemon = std::make_unique<Daemon>(io, configPath, loadConfig(), std::move(f.ports));
    ASSERT_EQ(daemon->start(), 0);
  }
  Config loadConfig();

  // Runs the daemon on virtual time until `pred` holds, at most `timeout` of it: the
  // completions posted on the io_context, then the daemon's timers one instant after the
  // other (FakeClock). Without `pred`, exactly `timeout` passes.
  template <class F>
  bool runUntil(F pred, std::chrono::steady_clock::duration timeout = 2000ms) {
    const auto end = clock->now() + timeout;
    while (true) {
      io.restart();
      io.poll();
      if (pred()) return true;
      auto next = clock->nextTimer();
      if (!next || *next > end) break;
      clock->advanceTo(*next);
    }
    clock->advanceTo(end);
    io.restart();
    io.poll();
    return pred();
  }
  void tapUp(const char* address = "172.31.0.16/16") {
    links->net.links[7] = link(7, "ipop", true, {address});
    links->change();
  }
  bool protecting(const char* range) {
    auto r = ipopsec::protectedRanges(policies->all());
    return std::find(r.begin(), r.end(), C(range)) != r.end();
  }
  bool notified(const std::string& needle) {
    return std::any_of(notifier->log.begin(), notifier->log.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  }

  std::optional<std::chrono::microseconds> watchdogPeriod;  // WatchdogSec= as the notifier reports it
  // The config file, in memory (FakeConfigSource reads it at start and at each reload), and
  // where the daemon writes state.json (FakeFileStore).
  std::map<std::string, std::string> configFiles;
  const std::string configPath = kTestConfigPath;
  const std::string statePath = kTestStateDir + "/state.json";
  boost::asio::io_context io;
  std::unique_ptr<Daemon> daemon;
};

}  // namespace
}  // namespace ipopsec::test

namespace ipopsec::test {
namespace {

Config DaemonWiringTest::loadConfig() { return parseConfig(configFiles[configPath], configPath); }

TEST_F(DaemonWiringTest, StartsOnThePortsProtectsTheTapAndStartsTheIkeDaemonOnce) {
  start();
  EXPECT_TRUE(links->started);
  EXPECT_EQ(dirWatch->dirs, std::vector<std::string>{"/certs"}) << "the certificate directory is watched";
  EXPECT_EQ(files->prepared, std::vector<std::string>{"create " + kTestStateDir})
      << "its state directory made and cleared of a predecessor's temp files, through the FileStore port";
  ASSERT_TRUE(notified("READY=1")) << "ready after the first reconcile";
  tapUp();
  EXPECT_TRUE(protecting("172.31.0.0/16")) << "the policies go in within the event, no timer";
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; })) << "IPOP came up: the IKE daemon is started";
  ike->complete();
  EXPECT_EQ(ike->listenWaits, 1) << "the larval states are removed once the IKE daemon listens";
  EXPECT_EQ(policies->larvalFlushes.size(), 1u);
  runUntil([] { return false; }, 50ms);
  EXPECT_EQ(ike->restarts, 1) << "nothing else to do";
  EXPECT_TRUE(notified("STATUS='ipop' up at 172.31.0.16; protecting 172.31.0.0/16"));
  ASSERT_TRUE(files->files.count(statePath));
  EXPECT_THAT(files->files[statePath], HasSubstr("172.31.0.0/16"));
}

TEST_F(DaemonWiringTest, LarvalStatesWaitUntilTheIkeDaemonListens) {
  start();
  ike->listening = false;
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  EXPECT_TRUE(policies->larvalFlushes.empty()) << "restarted, but not listening yet: a flush now would be too early";
  ike->listen(true);
  EXPECT_EQ(policies->larvalFlushes.size(), 1u);
}

// An ACQUIRE (a packet that found no SA) leads to a removal of the larval states
// ike.acquire_retry later, so that a failed IKE attempt is asked again by the next packet.
TEST_F(DaemonWiringTest, AnAcquireRemovesTheLarvalStatesAfterTheRetryDelay) {
  writeConfig("  backend: racoon\n  control: command\n  restart_command: [/bin/true]\n  acquire_retry: 20ms\n");
  start();
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  ASSERT_EQ(policies->larvalFlushes.size(), 1u) << "the restart's own removal, once the IKE daemon listens";
  policyWatch->acquire();
  policyWatch->acquire();  // a second one before the first is handled: one removal
  EXPECT_TRUE(policies->larvalFlushes.size() == 1u) << "not at once: the IKE daemon gets its chance first";
  runUntil([] { return false; }, 19ms);
  EXPECT_EQ(policies->larvalFlushes.size(), 1u) << "not before acquire_retry";
  ASSERT_TRUE(runUntil([&] { return policies->larvalFlushes.size() == 2u; }, 1ms)) << "removed at acquire_retry";
  EXPECT_EQ(policies->larvalFlushes.back(), std::vector<Cidr>{*Cidr::parse("172.31.0.0/16")});
  runUntil([] { return false; }, 60ms);
  EXPECT_EQ(policies->larvalFlushes.size(), 2u) << "one removal per ACQUIRE burst, no loop";
  policyWatch->acquire();
  runUntil([] { return false; }, 39ms);
  EXPECT_EQ(policies->larvalFlushes.size(), 2u) << "the next removal waits twice as long (core/reconcile/acquire_retry.hpp)";
  EXPECT_TRUE(runUntil([&] { return policies->larvalFlushes.size() == 3u; }, 1ms)) << "the next ACQUIRE arms it again";
}

TEST_F(DaemonWiringTest, AcquireRetryOffRemovesNothing) {
  writeConfig("  backend: racoon\n  control: command\n  restart_command: [/bin/true]\n  acquire_retry: off\n");
  start();
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  ASSERT_EQ(policies->larvalFlushes.size(), 1u);
  policyWatch->acquire();
  runUntil([] { return false; }, 100ms);
  EXPECT_EQ(policies->larvalFlushes.size(), 1u);
}

// While a restart is under way, its own removal (once the IKE daemon listens) is the one:
// an earlier one would let the next packet make a larval state the IKE daemon never hears of.
TEST_F(DaemonWiringTest, NoAcquireRetryWhileTheIkeDaemonIsNotListeningYet) {
  writeConfig("  backend: racoon\n  control: command\n  restart_command: [/bin/true]\n  acquire_retry: 20ms\n");
  start();
  ike->listening = false;
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  policyWatch->acquire();
  runUntil([] { return false; }, 100ms);
  EXPECT_TRUE(policies->larvalFlushes.empty()) << "restarted, not listening yet";
  ike->listen(true);
  EXPECT_EQ(policies->larvalFlushes.size(), 1u);
  policyWatch->acquire();
  EXPECT_TRUE(runUntil([&] { return policies->larvalFlushes.size() == 2u; })) << "listening: retries again";
}

TEST_F(DaemonWiringTest, AnExternalPolicyDeletionIsRepairedByTheWatchEvent) {
  start();
  tapUp();
  ASSERT_TRUE(protecting("172.31.0.0/16"));
  policies->installed.clear();  // `ip xfrm policy flush`
  policyWatch->foreignChange("flush");
  EXPECT_TRUE(protecting("172.31.0.0/16")) << "repaired within the event";
}

// The IKE daemon's own policies come and go with every SA: no reason to re-read the kernel.
// A change of one of the daemon's (by priority) or of one with its id (any priority: the
// kernel's id ignores it) is; the watch asks the daemon which is which.
TEST_F(DaemonWiringTest, PolicyChangesThatDoNotConcernTheDaemonCauseNoReconcile) {
  start();
  tapUp();
  ASSERT_TRUE(protecting("172.31.0.0/16"));
  Policy charon;
  charon.dir = Direction::out;
  charon.sel.src = *Cidr::parse("172.31.0.16/32");
  charon.sel.dst = *Cidr::parse("172.31.0.17/32");
  charon.action = PolicyAction::protect;
  charon.priority = 2400;
  Policy trap = charon;
  trap.sel.dst = *Cidr::parse("172.31.0.0/16");
  const int before = policies->lists;
  EXPECT_FALSE(policyWatch->foreignChange("add/replace", charon));
  EXPECT_FALSE(policyWatch->foreignChange("delete", trap));
  EXPECT_EQ(policies->lists, before) << "no reconcile (no dump of the kernel's policies)";

  const Policy ours = policies->all().front();
  EXPECT_TRUE(policyWatch->foreignChange("delete", ours)) << "its own policy, deleted by someone else";
  Policy sameId = ours;
  sameId.priority = 7;
  EXPECT_TRUE(policyWatch->foreignChange("add/replace", sameId)) << "the id of one of its policies: replaced it";
  EXPECT_GT(policies->lists, before);
}

// The IKE side of health through the daemon's wiring: systemd's signal for the unit, the
// removal of charon's trap (the watch asks the daemon: it concerns it), and an SA flush
// each reach the Reconciler at once and are repaired by a restart.
TEST_F(DaemonWiringTest, TheIkeUnitsSignalIsJudgedAtOnceAndAStopRepaired) {
  start();
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  ike->announce("active");
  runUntil([] { return false; }, 20ms);
  ASSERT_THAT(files->files[statePath], HasSubstr("\"healthy\": true"));
  ike->announce("inactive");  // `systemctl stop racoon`
  EXPECT_THAT(files->files[statePath], HasSubstr("\"healthy\": false"))
      << "not healthy from the signal on, not at the next resync";
  EXPECT_THAT(files->files[statePath], HasSubstr("\"ike_unit_state\": \"inactive\""));
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 2; })) << "repaired";
  EXPECT_THAT(files->files[statePath], HasSubstr("is inactive while IPOP is up"));
}

TEST_F(DaemonWiringTest, CharonsTrapRemovedByAnotherProcessConcernsTheDaemonAndIsRepaired) {
  writeConfig("  backend: strongswan\n  control: command\n  restart_command: [/bin/true]\n");
  start();
  Policy trap;
  trap.dir = Direction::out;
  trap.sel.src = *Cidr::parse("172.31.0.16/32");
  trap.sel.dst = *Cidr::parse("172.31.0.0/16");
  trap.action = PolicyAction::protect;
  trap.priority = 366000;
  policies->foreign = std::vector<Policy>{trap};
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  runUntil([] { return false; }, 20ms);
  ASSERT_THAT(files->files[statePath], HasSubstr("\"healthy\": true"));
  policies->foreign = std::vector<Policy>{};
  EXPECT_TRUE(policyWatch->foreignChange("delete", trap)) << "charon's trap for a protected range concerns the daemon";
  runUntil([&] { return files->files[statePath].find("\"healthy\": false") != std::string::npos; });
  EXPECT_THAT(files->files[statePath], HasSubstr("\"healthy\": false"));
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 2; }));
  EXPECT_THAT(files->files[statePath], HasSubstr("were removed by another process"));
}

TEST_F(DaemonWiringTest, AnSaFlushByAnotherProcessRestartsTheIkeDaemon) {
  start();
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  runUntil([] { return false; }, 20ms);
  policyWatch->statesFlushed("`ip xfrm state flush`");
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 2; }));
  EXPECT_THAT(files->files[statePath], HasSubstr("its SAs were removed from the kernel"));
}

TEST_F(DaemonWiringTest, ACertificateChangeIsReadAgainAndRestartsTheIkeDaemon) {
  start();
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  files->files["/certs/host-cert.pem"] = "RENEWED";
  dirWatch->changed();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 2; })) << "a renewed certificate restarts the IKE daemon";
}

TEST_F(DaemonWiringTest, ACertificateChangeDuringARestartRestartsOnceMoreAfterIt) {
  start();
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  // The restart is still running when the certificate is renewed.
  files->files["/certs/host-cert.pem"] = "RENEWED";
  dirWatch->changed();
  runUntil([] { return false; }, 50ms);
  EXPECT_EQ(ike->restarts, 1) << "one action at a time";
  ike->complete();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 2; })) << "the restart in flight carried the old certificate";
  ike->complete();
  runUntil([] { return false; }, 50ms);
  EXPECT_EQ(ike->restarts, 2);
}

// Every kind of key a reload may change, and how the running daemon shows it applied.
struct KeyChange {
  const char* name;
  std::string ike, extra, daemonExtra, racoonExtra, protectExtra;
  std::function<bool(const Config&)> applied;
  std::function<bool()> shown = [] { return true; };  // what the change does on the ports
};

TEST_F(DaemonWiringTest, ReloadAppliesEveryKindOfKeyChangeOnTheSameReconcilerAndController) {
  const std::string cmd = "  backend: racoon\n  control: command\n  restart_command: [/bin/true]\n";
  const std::string metrics = std::string("/var/lib/prometheus/node-exporter/ipop-ipsec.prom");
  const std::vector<KeyChange> changes = {
      {"log level", cmd, "", "  log_level: debug\n", "", "",
       [](const Config& c) { return c.daemon.logLevel == "debug"; }},
      {"restart command", "  backend: racoon\n  control: command\n  restart_command: [/bin/echo, x]\n", "", "", "", "",
       [](const Config& c) { return c.ike.restartCommand.size() == 2; }},
      {"restart timeout", cmd + "  restart_timeout: 5s\n", "", "", "", "",
       [](const Config& c) { return c.ike.restartTimeout == 5s; }},
      {"systemd control", "  backend: racoon\n  control: systemd\n  unit: ike-test.service\n", "", "", "", "",
       [](const Config& c) { return c.ike.control == IkeControl::systemd; }},
      {"listen on tap", cmd, "", "", "  listen_on_tap: true\n", "",
       [](const Config& c) { return c.racoon.listenOnTap; },
       [&] { return files->files["/etc/racoon/racoon.conf"].find("isakmp 172.31.0.16 [500]") != std::string::npos; }},
      {"exclusions", cmd, "", "", "", "  exclude: [172.31.9.0/24]\n",
       [](const Config& c) { return c.protect.exclude.size() == 1; },
       [&] {
         return std::any_of(policies->installed.begin(), policies->installed.end(),
                            [](const auto& kv) { return kv.second.sel.dst == C("172.31.9.0/24"); });
       }},
      {"proposals", cmd, "proposals:\n  phase1:\n    hash: sha512\n", "", "", "",
       [](const Config& c) { return c.proposals.phase1.hash == "sha512"; }},
      {"certificate checks", cmd, "certificates:\n  expiry_warning_days: 10\n", "", "", "",
       [](const Config& c) { return c.certificates.expiryWarningDays == 10; }},
      {"metrics file", cmd, "", "  metrics_file: " + metrics + "\n", "", "",
       [&](const Config& c) { return c.daemon.metricsFile == metrics; },
       [&] { return files->files.count(metrics) == 1; }},
  };
  start();
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  const Reconciler* before = &daemon->reconciler();
  int n = 0;
  for (const auto& c : changes) {
    SCOPED_TRACE(c.name);
    writeConfig(c.ike, c.extra, c.daemonExtra, c.racoonExtra, c.protectExtra);
    notifier->log.clear();
    daemon->reload();
    ++n;
    ASSERT_FALSE(notifier->log.empty());
    EXPECT_EQ(notifier->log.front(), "RELOADING=1");
    EXPECT_TRUE(notified("READY=1"));
    EXPECT_THAT(daemon->statusLine(), ::testing::Not(HasSubstr("RELOAD REFUSED")));
    EXPECT_TRUE(c.applied(daemon->config())) << "the running config has the new value";
    EXPECT_TRUE(c.applied(daemon->reconciler().config())) << "and the reconciler works with it";
    EXPECT_TRUE(c.shown()) << "and its effect is on the ports";
    EXPECT_EQ(&daemon->reconciler(), before) << "one reconciler for the daemon's lifetime";
    EXPECT_EQ(ike->reconfigures, n) << "the IKE controller sees every reload (it swaps only what changed)";
    EXPECT_TRUE(protecting("172.31.0.0/16")) << "protection is never interrupted by a reload";
  }
}

TEST_F(DaemonWiringTest, ReloadMovesThePoliciesToNewPriorities) {
  start();
  tapUp();
  writeConfig("  backend: racoon\n  control: command\n  restart_command: [/bin/true]\n",
              "xfrm:\n  protect_priority: 300000\n  bypass_priority: 1200\n");
  daemon->reload();
  EXPECT_EQ(policies->priorities, (std::pair<std::uint32_t, std::uint32_t>{300000, 1200}));
  const auto earlier = policies->earlierPriorities();
  EXPECT_NE(std::find(earlier.begin(), earlier.end(), 250000u), earlier.end())
      << "the old priorities stay the daemon's until their policies are moved";
  EXPECT_TRUE(protecting("172.31.0.0/16"));
}

TEST_F(DaemonWiringTest, ABrokenConfigOrAStateDirChangeIsRefusedAndTheRunningConfigKept) {
  start();
  tapUp();
  configFiles[configPath] = "ipop:\n  interface: [oops\n";
  daemon->reload();
  EXPECT_THAT(daemon->statusLine(), HasSubstr("RELOAD REFUSED"));
  EXPECT_EQ(daemon->config().ipop.interface, "ipop");
  EXPECT_TRUE(notified("READY=1")) << "a refused reload still ends the reloading state";
  EXPECT_TRUE(notified("RELOAD REFUSED"));

  writeConfig();
  std::string& text = configFiles[configPath];
  auto at = text.find(kTestStateDir);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, kTestStateDir.size(), "/run/elsewhere");
  daemon->reload();
  EXPECT_THAT(daemon->statusLine(), HasSubstr("daemon.state_dir"));
  EXPECT_EQ(daemon->config().daemon.stateDir, kTestStateDir);

  writeConfig();
  daemon->reload();
  EXPECT_THAT(daemon->statusLine(), ::testing::Not(HasSubstr("RELOAD REFUSED"))) << "a good reload clears it";
}

TEST_F(DaemonWiringTest, SwitchingTheBackendOnReloadRendersStrongSwanAndRestartsTheNewUnit) {
  start();
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  ASSERT_TRUE(files->files.count("/etc/racoon/racoon.conf"));
  // Not strongswan.service: its drop-in needs the default daemon.state_dir (a temp one here).
  writeConfig("  backend: strongswan\n  control: systemd\n  unit: strongswan-test.service\n",
              "strongswan:\n  swanctl_dir: /swanctl\n  config: /swanctl/conf.d/ipop-ipsec.conf\n");
  daemon->reload();
  EXPECT_EQ(ike->unitName, "strongswan-test.service") << "the controller now runs the other backend's unit";
  EXPECT_TRUE(ike->reloadable) << "strongSwan reloads with swanctl --load-all";
  EXPECT_TRUE(files->files.count("/swanctl/conf.d/ipop-ipsec.conf")) << "swanctl config rendered";
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 2; })) << "charon is started on its new inputs";
  EXPECT_EQ(ike->actions.back(), IkeAction::restart) << "a reload cannot start a daemon that never ran";
  EXPECT_TRUE(protecting("172.31.0.0/16"));
}

TEST_F(DaemonWiringTest, ARestartInFlightDuringAReloadIsRunAgainOnTheNewControlNotCountedAsAFailure) {
  start();
  ike->cancelOnReconfigure = true;
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ASSERT_EQ(ike->pending.size(), 1u) << "the restart is still running";
  writeConfig("  backend: racoon\n  control: command\n  restart_command: [/bin/echo, new]\n");
  daemon->reload();  // cuts the restart short (operation_canceled)
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 2; })) << "run again on the new restart command";
  EXPECT_EQ(daemon->reconciler().status().restartFailures, 0);
  EXPECT_EQ(daemon->reconciler().status().ikeRestartFailuresTotal, 0u);
  ike->complete();
  EXPECT_EQ(daemon->reconciler().status().ikeRestartsTotal, 1u);
}

TEST_F(DaemonWiringTest, ShutdownStopsFollowingAndKeepsThePolicies) {
  start();
  tapUp();
  daemon->shutdown(SIGTERM);
  EXPECT_TRUE(notified("STOPPING=1"));
  EXPECT_FALSE(links->started);
  EXPECT_TRUE(protecting("172.31.0.0/16")) << "fail closed: SIGTERM leaves the policies in the kernel";
  tapUp("172.31.0.99/16");
  EXPECT_EQ(ike->restarts, 0);
}

TEST_F(DaemonWiringTest, TheMetricsFileCountsTheEspSasAndPeersOfEachProtectedRange) {
  const std::string metrics = std::string("/var/lib/prometheus/node-exporter/ipop-ipsec.prom");
  writeConfig("  backend: racoon\n  control: command\n  restart_command: [/bin/true]\n", "",
              "  metrics_file: " + metrics + "\n");
  start();
  auto ip = [](const char* s) { return *IpAddress::parse(s); };
  policies->sas = {{ip("172.31.0.16"), ip("172.31.0.17"), true, false},
                   {ip("172.31.0.17"), ip("172.31.0.16"), true, false},
                   {ip("172.31.0.16"), ip("172.31.0.18"), true, false},
                   {ip("172.31.0.16"), ip("172.31.0.19"), true, true},     // larval: not counted
                   {ip("192.168.1.5"), ip("192.168.1.9"), true, false}};  // the underlay
  tapUp();
  runUntil([&] { return files->files[metrics].find("range_sas{") != std::string::npos; });  // the file step
  const std::string text = files->files[metrics];
  EXPECT_THAT(text, HasSubstr("ipop_ipsec_range_sas{range=\"172.31.0.0/16\"} 3\n")) << text;
  EXPECT_THAT(text, HasSubstr("ipop_ipsec_range_sa_peers{range=\"172.31.0.0/16\"} 2\n")) << text;
}

TEST_F(DaemonWiringTest, TheWatchdogIsPingedAtHalfItsPeriodOnlyWhenAskedFor) {
  start();
  runUntil([] { return false; }, 30ms);
  EXPECT_EQ(notifier->watchdogs, 0) << "no WatchdogSec=, no pings";
  daemon.reset();
  watchdogPeriod = std::chrono::microseconds(20000);
  start();
  EXPECT_EQ(notifier->watchdogs, 1) << "pinged at the start";
  runUntil([] { return false; }, 9ms);
  EXPECT_EQ(notifier->watchdogs, 1) << "not before half the period";
  runUntil([] { return false; }, 1ms);
  EXPECT_EQ(notifier->watchdogs, 2) << "at half the period";
  runUntil([] { return false; }, 30ms);
  EXPECT_EQ(notifier->watchdogs, 5) << "every 10 ms";
}

// Issue 24: idle, the daemon wakes no more often than every 5 minutes, beyond the watchdog
// and the metrics heartbeat when they are configured. An hour of virtual time after a change
// has settled: every timer that fires is counted, the watchdog's pings apart.
TEST_F(DaemonWiringTest, AnIdleDaemonWakesNoMoreOftenThanEveryFiveMinutesBeyondTheWatchdog) {
  const std::string metrics = std::string("/var/lib/prometheus/node-exporter/ipop-ipsec.prom");
  for (const int run : {0, 1, 2}) {
    const bool watchdog = run == 1, heartbeat = run == 2;
    SCOPED_TRACE(watchdog ? "WatchdogSec=20s" : heartbeat ? "daemon.metrics_interval 60s" : "no watchdog");
    daemon.reset();
    watchdogPeriod = watchdog ? std::optional<std::chrono::microseconds>(20s) : std::nullopt;
    writeConfig("  backend: racoon\n  control: command\n  restart_command: [/bin/true]\n", "",
                heartbeat ? "  metrics_file: " + metrics + "\n  metrics_interval: 60s\n" : "");
    start();
    tapUp();
    ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
    ike->complete();
    runUntil([] { return false; }, 10s);  // what the change started is over
    const auto t0 = clock->now();
    const auto firings = clock->firings.size();
    const int pings = notifier->watchdogs;
    runUntil([] { return false; }, 1h);
    std::vector<std::chrono::steady_clock::time_point> woke(clock->firings.begin() + firings, clock->firings.end());
    const int pinged = notifier->watchdogs - pings;
    EXPECT_EQ(pinged, watchdog ? 360 : 0) << "the watchdog every 10 s (half its period)";
    ASSERT_GE(woke.size(), static_cast<std::size_t>(pinged));
    // The other wakeups: the resync, every 5 minutes (12 in the hour), and the metrics
    // heartbeat every minute when configured (60), nothing else.
    EXPECT_EQ(woke.size() - pinged, heartbeat ? 72u : 12u) << "wakeups in an idle hour besides the watchdog";
    if (run == 0) {
      ASSERT_FALSE(woke.empty());
      for (std::size_t i = 1; i < woke.size(); ++i)
        EXPECT_GE(woke[i] - woke[i - 1], std::chrono::minutes(5)) << "a wakeup " << (woke[i] - t0) / 1ms << " ms into the hour";
    }
    EXPECT_TRUE(protecting("172.31.0.0/16"));
    EXPECT_EQ(ike->restarts, 1) << "idle: nothing restarted";
  }
}

// Issue 24: a certificate expiring at T is judged at T (a timer at the verdict's next
// instant), not at the next resync: not a millisecond before, and not later.
TEST_F(DaemonWiringTest, ACertificateExpiringAtTIsJudgedAtT) {
  FakeClock probe;  // the wall clock the daemon's FakeClock starts from
  const auto expiresIn = 2h + 2min + 17s;  // between two resyncs
  const WallTime expiry = probe.wallAtStart_ + expiresIn;
  start();
  certs->tweak = [&](CertFacts& f) {
    if (f.hostCert) f.hostCert->notAfter = expiry;
  };
  clock->wallAtStart_ = probe.wallAtStart_;
  files->files["/certs/host-cert.pem"] = "EXPIRING";
  dirWatch->changed();
  tapUp();
  ASSERT_TRUE(runUntil([&] { return ike->restarts == 1; }));
  ike->complete();
  const auto expiresAt = clock->start_ + expiresIn;
  const auto inspections = certs->inspections;
  runUntil([] { return false; }, expiresAt - 1ms - clock->now());
  EXPECT_TRUE(daemon->reconciler().status().desired.certsUsable) << "valid until its notAfter";
  EXPECT_THAT(daemon->statusLine(), ::testing::Not(HasSubstr("expired")));
  runUntil([] { return false; }, 1ms);
  EXPECT_EQ(clock->now(), expiresAt);
  EXPECT_FALSE(daemon->reconciler().status().desired.certsUsable) << "judged at its notAfter";
  EXPECT_THAT(daemon->reconciler().status().desired.certProblems.front(), HasSubstr("expired on"));
  EXPECT_GE(certs->inspections, inspections) << "judged again, the files read again only at resyncs";
}

}  // namespace
}  // namespace ipopsec::test
