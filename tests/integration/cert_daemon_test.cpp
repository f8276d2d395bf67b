// Certificates in the whole daemon (the real binary, a private network namespace per test,
// IKE control `command` with a script that logs each restart): an invalid set never
// restarts the IKE daemon and is reported in the log and state.json; a renewal in place
// (cp over the old files, or an editor's write-and-rename) is seen through inotify and
// restarts it exactly once, well before the 5-minute resync could have noticed.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/fault_support.hpp"
#include "integration/netns.hpp"
#include "integration/pki_fixtures.hpp"
#include "integration/tap_carrier.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

// Far below the daemon's resync (every 5 minutes): a change seen within this was seen through
// inotify.
constexpr auto kEventDriven = 8s;

class CertDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();
    enterFreshNetns();
    dir_ = fs::temp_directory_path() / ("ipopsec-certd-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "run");
    fs::create_directories(dir_ / "stage");
    std::ofstream(dir_ / "restart.sh") << "#!/bin/sh\necho restarted >> " << (dir_ / "restarts.log").string() << "\n";
    fs::permissions(dir_ / "restart.sh", fs::perms::owner_all);
    ca_ = makeTestCa();
  }
  void TearDown() override {
    stopDaemon();
    if (HasFailure() && fs::exists(dir_ / "daemon.log")) std::cerr << "--- daemon log:\n" << readFile(dir_ / "daemon.log");
    fs::remove_all(dir_);
  }

  void writeConfig(const fs::path& certDir) {
    std::ofstream(dir_ / "ipop-ipsecd.yaml")
        << "ipop:\n  interface: ipop\nprotect:\n  ranges: auto\n"
        << "ike:\n  control: command\n  restart_command: [\"" << (dir_ / "restart.sh").string() << "\"]\n"
        << "  quiet_period: 300ms\n  min_interval: 1s\n"
        << "racoon:\n  config: " << (dir_ / "racoon.conf").string() << "\n  spd_file: "
        << (dir_ / "ipsec-tools.conf").string() << "\n  certificate_dir: " << certDir.string() << "\n"
        << "daemon:\n  state_dir: " << (dir_ / "run").string() << "\n  remember_dir: " << (dir_ / "lib").string() << "\n  log_level: debug\n";
  }
  void tapUp() {
    sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
    carrier_ = TapCarrier("ipop");  // IPOP's controller holds the tap open: carrier
  }
  TapCarrier carrier_;
  void startDaemon() { daemon_.start(IPOPSEC_BINARY, dir_ / "ipop-ipsecd.yaml", dir_ / "daemon.log"); }
  void stopDaemon() { daemon_.stop(SIGTERM); }
  template <class F>
  bool waitFor(F pred, std::chrono::milliseconds timeout = 10s) {
    return waitUntil(pred, timeout, 5ms);
  }
  int restarts() { return countLinesIn(dir_ / "restarts.log"); }
  std::string state() { return readFile(dir_ / "run" / "state.json"); }
  bool stateHas(const std::string& s) { return state().find(s) != std::string::npos; }
  std::string log() { return readFile(dir_ / "daemon.log"); }
  // A valid set in certs/, the daemon started on it with the tap up: false unless the IKE
  // daemon's first restart is done (bounded wait).
  bool runningOnAGoodSet() {
    fs::create_directories(dir_ / "certs");
    writeHostSet(dir_ / "certs", ca_);
    writeConfig(dir_ / "certs");
    tapUp();
    startDaemon();
    return waitFor([&] { return restarts() == 1 && stateHas("\"last_restart_result\": \"done\""); });
  }
  // Long enough for a restart to have happened (quiet period + minimum interval + slack):
  // used only to show that none does.
  void quietSpell() { std::this_thread::sleep_for(1500ms); }

  fs::path dir_;
  DaemonProcess daemon_;
  TestCa ca_;
};

TEST_F(CertDaemonTest, InvalidSetNeverRestartsTheIkeDaemonAndIsReported) {
  fs::create_directories(dir_ / "certs");
  auto spec = hostSpec();
  spec.notBefore = std::chrono::system_clock::now() - std::chrono::hours(24 * 30);
  spec.notAfter = std::chrono::system_clock::now() - std::chrono::hours(24);
  writeHostSet(dir_ / "certs", ca_, spec);
  writeConfig(dir_ / "certs");
  tapUp();
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return stateHas("\"ipop_up\": true") && stateHas("\"certificate_problems\": [\"host-cert.pem expired on"); }))
      << state();
  EXPECT_TRUE(stateHas("\"certificates_usable\": false"));
  EXPECT_TRUE(stateHas("\"certificate_expiry\": \"20"));
  EXPECT_TRUE(stateHas("not starting the IKE daemon (ike.restart_command ") && stateHas(": host-cert.pem expired on"))
      << state();
  quietSpell();
  EXPECT_EQ(restarts(), 0);
  EXPECT_THAT(log(), HasSubstr("host-cert.pem expired on"));
  std::string out;
  EXPECT_NE(shStatus(std::string(IPOPSEC_BINARY) + " status --config " + (dir_ / "ipop-ipsecd.yaml").string(), &out), 0);
  EXPECT_THAT(out, HasSubstr("NOT usable"));
  EXPECT_THAT(out, HasSubstr("error: host-cert.pem expired on"));
  // The policies are in anyway: fail closed.
  EXPECT_THAT(sh("ip xfrm policy"), HasSubstr("10.254.0.0/16"));
}

TEST_F(CertDaemonTest, RenewalInPlaceRestartsExactlyOnceWithCpAndWithRename) {
  ASSERT_TRUE(runningOnAGoodSet()) << state();
  // racoon's CA lookup by subject hash is in place.
  std::string hash = sh("openssl x509 -hash -noout -in " + (dir_ / "certs" / "cacert.pem").string());
  hash.pop_back();
  ASSERT_TRUE(fs::exists(dir_ / "certs" / (hash + ".0")));
  EXPECT_THAT(sh("openssl verify -CApath " + (dir_ / "certs").string() + " " + (dir_ / "certs" / "host-cert.pem").string()),
              HasSubstr(": OK"))
      << "OpenSSL's hash-directory lookup (racoon's) finds the CA";

  // 1. cp over the old files (truncate and write in place), the key and then the certificate.
  std::string expiry1 = state().substr(state().find("certificate_expiry"), 60);
  auto spec = hostSpec();
  spec.notAfter = std::chrono::system_clock::now() + std::chrono::hours(24 * 500);
  writeHostSet(dir_ / "stage", ca_, spec);
  auto t0 = std::chrono::steady_clock::now();
  sh("cp " + (dir_ / "stage" / "host-key.pem").string() + " " + (dir_ / "certs" / "host-key.pem").string() + " && cp " +
     (dir_ / "stage" / "host-cert.pem").string() + " " + (dir_ / "certs" / "host-cert.pem").string());
  ASSERT_TRUE(waitFor([&] { return restarts() == 2; }, kEventDriven)) << log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, kEventDriven);
  ASSERT_TRUE(waitFor([&] { return stateHas("\"last_restart_result\": \"done\""); }));
  EXPECT_NE(state().substr(state().find("certificate_expiry"), 60), expiry1) << "the new expiry is reported";
  quietSpell();
  EXPECT_EQ(restarts(), 2) << "one renewal, one restart";

  // 2. An editor: write a temporary file next to the old one, then rename it over.
  writeHostSet(dir_ / "stage", ca_);
  sh("cp -p " + (dir_ / "stage" / "host-key.pem").string() + " " + (dir_ / "certs" / ".host-key.pem.swp").string() +
     " && mv " + (dir_ / "certs" / ".host-key.pem.swp").string() + " " + (dir_ / "certs" / "host-key.pem").string() +
     " && cp -p " + (dir_ / "stage" / "host-cert.pem").string() + " " + (dir_ / "certs" / ".host-cert.pem.swp").string() +
     " && mv " + (dir_ / "certs" / ".host-cert.pem.swp").string() + " " + (dir_ / "certs" / "host-cert.pem").string());
  ASSERT_TRUE(waitFor([&] { return restarts() == 3; }, kEventDriven)) << log();
  quietSpell();
  EXPECT_EQ(restarts(), 3);
}

TEST_F(CertDaemonTest, BadRenewalLeavesTheRunningIkeDaemonAloneUntilAGoodOneArrives) {
  ASSERT_TRUE(runningOnAGoodSet()) << state();
  // A certificate from another CA is copied in (with its key).
  writeHostSet(dir_ / "stage", makeTestCa("Another CA"));
  sh("cp " + (dir_ / "stage" / "host-key.pem").string() + " " + (dir_ / "certs" / "host-key.pem").string() + " && cp " +
     (dir_ / "stage" / "host-cert.pem").string() + " " + (dir_ / "certs" / "host-cert.pem").string());
  ASSERT_TRUE(waitFor([&] { return stateHas("host-cert.pem is not signed by cacert.pem"); }, kEventDriven)) << state();
  EXPECT_TRUE(stateHas("\"certificates_usable\": false"));
  quietSpell();
  EXPECT_EQ(restarts(), 1) << "the running IKE daemon is left alone";
  EXPECT_THAT(log(), HasSubstr("host-cert.pem is not signed by cacert.pem"));
  // A key left readable by others is refused as well, with the fix.
  writeHostSet(dir_ / "stage", ca_);
  sh("cp " + (dir_ / "stage" / "host-cert.pem").string() + " " + (dir_ / "certs" / "host-cert.pem").string() + " && cp " +
     (dir_ / "stage" / "host-key.pem").string() + " " + (dir_ / "certs" / "host-key.pem").string() + " && chmod 644 " +
     (dir_ / "certs" / "host-key.pem").string());
  ASSERT_TRUE(waitFor([&] { return stateHas("host-key.pem is readable by group/other (mode 0644): chmod 600"); }, kEventDriven))
      << state();
  quietSpell();
  EXPECT_EQ(restarts(), 1);
  sh("chmod 600 " + (dir_ / "certs" / "host-key.pem").string());
  ASSERT_TRUE(waitFor([&] { return restarts() == 2; }, kEventDriven)) << log();
  EXPECT_TRUE(waitFor([&] { return stateHas("\"certificates_usable\": true") && stateHas("\"certificate_problems\": []"); }));
}

TEST_F(CertDaemonTest, MissingCertificateDirectoryIsWatchedUntilItAppears) {
  fs::path later = dir_ / "later" / "certs";
  writeConfig(later);
  tapUp();
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return stateHas("cacert.pem does not exist"); })) << state();
  EXPECT_THAT(log(), HasSubstr("does not exist yet; watching " + dir_.string()));
  quietSpell();
  EXPECT_EQ(restarts(), 0);
  fs::create_directories(later);
  writeHostSet(later, ca_);
  ASSERT_TRUE(waitFor([&] { return restarts() == 1; }, kEventDriven)) << log();
  EXPECT_TRUE(stateHas("\"certificates_usable\": true"));
}

// --- racoon's CA lookup files next to an operator's (c_rehash / openssl rehash) --------------

std::string subjectHash(const fs::path& cert) {
  std::string hash = sh("openssl x509 -hash -noout -in " + cert.string());
  while (!hash.empty() && (hash.back() == '\n' || hash.back() == '\r')) hash.pop_back();
  return hash;
}

bool isDaemonCopy(const fs::path& p) {
  return !fs::is_symlink(p) && readFile(p).rfind(std::string(kHashCopyMarker), 0) == 0;
}

TEST_F(CertDaemonTest, RehashedCertificateDirectoryIsUsedAsItIsAndTheIkeDaemonStartsOnce) {
  fs::create_directories(dir_ / "certs");
  writeHostSet(dir_ / "certs", ca_);
  // Exits 1 over host-key.pem ("does not contain exactly one certificate or CRL"), as it
  // does in any racoon certificate directory; the links are made nevertheless.
  shStatus("openssl rehash " + (dir_ / "certs").string());
  fs::path link = dir_ / "certs" / (subjectHash(dir_ / "certs" / "cacert.pem") + ".0");
  ASSERT_TRUE(fs::is_symlink(link)) << sh("ls -l " + (dir_ / "certs").string());
  ASSERT_EQ(fs::read_symlink(link), "cacert.pem");
  writeConfig(dir_ / "certs");
  tapUp();
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return restarts() == 1 && stateHas("\"last_restart_result\": \"done\""); })) << state();
  quietSpell();
  EXPECT_EQ(restarts(), 1) << "started exactly once";
  EXPECT_TRUE(stateHas("\"certificates_usable\": true")) << state();
  EXPECT_TRUE(stateHas("\"certificate_problems\": []")) << state();
  EXPECT_TRUE(stateHas("\"last_error\": \"\"")) << state();
  std::string out;
  EXPECT_EQ(shStatus(std::string(IPOPSEC_BINARY) + " status --config " + (dir_ / "ipop-ipsecd.yaml").string(), &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("health:     protected"));
  EXPECT_EQ(shStatus(std::string(IPOPSEC_BINARY) + " check --config " + (dir_ / "ipop-ipsecd.yaml").string(), &out), 0)
      << out;
  // The link is the operator's: neither written through nor replaced; cacert.pem untouched.
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), "cacert.pem");
  EXPECT_EQ(readFile(dir_ / "certs" / "cacert.pem"), certificatePem(ca_.cert.get()));
  EXPECT_THAT(log(), Not(HasSubstr("cannot write")));
  EXPECT_THAT(log(), Not(HasSubstr("usable again"))) << "they never were unusable";
  EXPECT_THAT(sh("openssl verify -CApath " + (dir_ / "certs").string() + " " + (dir_ / "certs" / "host-cert.pem").string()),
              HasSubstr(": OK"));
}

TEST_F(CertDaemonTest, HandMadeSymlinksToABundleAndToAFileOutsideTheDirectoryAreUsedAsTheyAre) {
  // cacert.pem is a bundle of two CAs (openssl rehash skips such a file): the operator links
  // the first one's hash to it by hand, and the second one's to a copy outside the directory.
  fs::create_directories(dir_ / "certs");
  fs::create_directories(dir_ / "outside");
  writeHostSet(dir_ / "certs", ca_);
  TestCa second = makeTestCa("Second GroupVPN CA");
  std::string secondPem = certificatePem(second.cert.get());
  writeText(dir_ / "certs" / "cacert.pem", certificatePem(ca_.cert.get()) + secondPem, 0644);
  writeText(dir_ / "outside" / "second.pem", secondPem, 0644);
  std::string h1 = subjectHash(dir_ / "certs" / "cacert.pem"), h2 = subjectHash(dir_ / "outside" / "second.pem");
  ASSERT_NE(h1, h2);
  fs::create_symlink("cacert.pem", dir_ / "certs" / (h1 + ".0"));
  fs::create_symlink(dir_ / "outside" / "second.pem", dir_ / "certs" / (h2 + ".0"));
  writeConfig(dir_ / "certs");
  tapUp();
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return restarts() == 1 && stateHas("\"last_restart_result\": \"done\""); })) << state();
  quietSpell();
  EXPECT_EQ(restarts(), 1);
  EXPECT_TRUE(stateHas("\"certificate_problems\": []")) << state();
  std::string out;
  EXPECT_EQ(shStatus(std::string(IPOPSEC_BINARY) + " status --config " + (dir_ / "ipop-ipsecd.yaml").string(), &out), 0)
      << out;
  EXPECT_TRUE(fs::is_symlink(dir_ / "certs" / (h1 + ".0")));
  EXPECT_TRUE(fs::is_symlink(dir_ / "certs" / (h2 + ".0")));
  EXPECT_EQ(readFile(dir_ / "outside" / "second.pem"), secondPem) << "a link's target is only ever read";
  for (const auto& e : fs::directory_iterator(dir_ / "certs"))
    EXPECT_FALSE(isDaemonCopy(e.path())) << e.path() << ": nothing to write, the links serve racoon";
}

TEST_F(CertDaemonTest, AnotherCasFileUnderTheCaHashIsReportedWithTheFixAndNothingStarts) {
  fs::create_directories(dir_ / "certs");
  writeHostSet(dir_ / "certs", ca_);
  // An operator's copy of an older CA made with the same name: the same subject hash.
  TestCa old = makeTestCa();
  std::string oldPem = certificatePem(old.cert.get());
  std::string hash = subjectHash(dir_ / "certs" / "cacert.pem");
  fs::path file = dir_ / "certs" / (hash + ".0");
  writeText(file, oldPem, 0644);
  writeConfig(dir_ / "certs");
  tapUp();
  startDaemon();
  std::string problem = file.string() + " holds another CA's certificate (CN=Test GroupVPN CA)";
  ASSERT_TRUE(waitFor([&] { return stateHas("\"ipop_up\": true") && stateHas(problem); })) << state();
  EXPECT_TRUE(stateHas("\"certificates_usable\": false"));
  EXPECT_TRUE(stateHas("\"last_error\": \"\"")) << "not a failed write: " << state();
  quietSpell();
  EXPECT_EQ(restarts(), 0) << "racoon would look its CA up in the wrong file";
  EXPECT_THAT(log(), HasSubstr(problem));
  EXPECT_THAT(log(), HasSubstr("remove it (ipop-ipsecd then writes its own copy of " +
                               (dir_ / "certs" / "cacert.pem").string() + ")"));
  std::string out;
  EXPECT_NE(shStatus(std::string(IPOPSEC_BINARY) + " status --config " + (dir_ / "ipop-ipsecd.yaml").string(), &out), 0);
  EXPECT_THAT(out, HasSubstr("NOT usable"));
  EXPECT_THAT(out, HasSubstr("error: " + problem));
  // `check` judges the directory as the daemon does.
  EXPECT_EQ(shStatus(std::string(IPOPSEC_BINARY) + " check --config " + (dir_ / "ipop-ipsecd.yaml").string(), &out), 1)
      << out;
  EXPECT_THAT(out, HasSubstr("error: " + problem));
  EXPECT_EQ(readFile(file), oldPem) << "an operator's file is never written over";
  EXPECT_THAT(sh("ip xfrm policy"), HasSubstr("10.254.0.0/16")) << "fail closed";

  // The operator removes it: seen through inotify, the daemon writes its own copy and
  // starts the IKE daemon once.
  fs::remove(file);
  ASSERT_TRUE(waitFor([&] { return restarts() == 1; }, kEventDriven)) << log();
  EXPECT_TRUE(waitFor([&] { return stateHas("\"certificates_usable\": true"); })) << state();
  EXPECT_TRUE(isDaemonCopy(file));
  quietSpell();
  EXPECT_EQ(restarts(), 1);
  std::string l = log();
  std::size_t n = 0;
  for (auto at = l.find("certificates are usable again"); at != std::string::npos;
       at = l.find("certificates are usable again", at + 1))
    ++n;
  EXPECT_EQ(n, 1u);
}

}  // namespace
