// Fault injection: the directory of the rendered files becomes read-only (EROFS) or full
// (ENOSPC) while the tap's range changes. The real daemon, a real tap, real XFRM policies,
// and a tmpfs mounted in a private mount namespace (the host's mounts are never touched).
// Expected: the error is reported (state.json last_error, log), retried with backoff; the
// previous file stays intact (never torn, never empty, no temp file left); the policies go
// in regardless; the IKE daemon is not restarted onto the unwritten file; once the fault is
// lifted the file is written and the IKE daemon restarted exactly once.

#include <sched.h>
#include <sys/mount.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "integration/fault_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class FaultFilesTest : public FaultFixture {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();
    // The certificate is valid at both addresses the test moves between.
    prepare("fault-files", {"etc"}, {"10.254.0.16", "10.77.0.16"});
    ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << "unshare(CLONE_NEWNS)";
    // Nothing mounted here propagates back to the host.
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
    writeRestartScript();
    std::ofstream(dir_ / "ipop-ipsecd.yaml")
        << "ipop:\n  interface: ipop\nprotect:\n  ranges: auto\n"
        << "ike:\n  control: command\n  restart_command: [\"" << (dir_ / "restart.sh").string() << "\"]\n"
        << "  quiet_period: 200ms\n  min_interval: 500ms\n"
        // listen_on_tap: racoon.conf names the tap's address, so the move below needs a restart.
        << "racoon:\n  listen_on_tap: true\n  config: " << (dir_ / "etc" / "racoon.conf").string()
        << "\n  spd_file: " << (dir_ / "etc" / "ipsec-tools.conf").string()
        << "\n  certificate_dir: " << (dir_ / "certs").string() << "\n"
        << "daemon:\n  state_dir: " << (dir_ / "run").string() << "\n  remember_dir: " << (dir_ / "lib").string() << "\n  log_level: debug\n";
    sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
    carrier_ = TapCarrier("ipop");  // IPOP's controller holds the tap open: carrier
  }
  void TearDown() override {
    daemon_.stop(SIGTERM);
    if (mounted_) ::umount2((dir_ / "etc").c_str(), MNT_DETACH);
    FaultFixture::TearDown();
  }

  void mountTmpfs(const std::string& options) {
    ASSERT_EQ(::mount("tmpfs", (dir_ / "etc").c_str(), "tmpfs", 0, options.c_str()), 0) << options;
    mounted_ = true;
  }

  bool protects(const char* range) {
    XfrmPolicyTable t(250000, 1000);
    std::vector<Policy> v;
    if (t.list(v)) return false;
    std::vector<Cidr> r;
    for (const auto& p : v)
      if (p.action == PolicyAction::protect && p.dir == Direction::out && p.sel.src == p.sel.dst) r.push_back(p.sel.dst);
    return r == std::vector<Cidr>{*Cidr::parse(range)};
  }
  std::string spd() { return readFile(dir_ / "etc" / "ipsec-tools.conf"); }
  // Only the two rendered files: no temporary file left behind.
  std::vector<std::string> etcEntries() {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir_ / "etc"))
      if (e.path().filename() != "filler") v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }

  // The scenario both faults share: up and settled, inject, move the address, check, lift, check.
  void runScenario(const std::function<void()>& inject, const std::function<void()>& lift, const std::string& errnoText) {
    start();
    ASSERT_TRUE(waitUntil([&] { return protects("10.254.0.0/16") && restarts() == 1; }));
    ASSERT_TRUE(waitUntil([&] { return stateHas("\"last_restart_result\": \"done\""); }));
    const std::string oldSpd = spd(), oldRacoon = readFile(dir_ / "etc" / "racoon.conf");
    ASSERT_NE(oldSpd.find("10.254.0.0/16"), std::string::npos) << oldSpd;

    inject();
    sh("ip addr add 10.77.0.16/16 dev ipop && ip addr del 10.254.0.16/16 dev ipop");
    // The policies do not depend on the files: they move at once.
    ASSERT_TRUE(waitUntil([&] { return protects("10.77.0.0/16"); }));
    ASSERT_TRUE(waitUntil([&] { return stateHas(errnoText) && stateHas("cannot write"); })) << state();
    // Retried with backoff (0.2 s, 0.4 s, 0.8 s...): wait for three failed attempts, then
    // the IKE daemon must still not have been restarted onto the old file.
    ASSERT_TRUE(waitUntil([&] { return logCount("cannot write " + (dir_ / "etc" / "ipsec-tools.conf").string()) >= 3; },
                          15s));
    EXPECT_EQ(restarts(), 1) << "the IKE daemon was restarted although its new file could not be written";
    EXPECT_EQ(spd(), oldSpd) << "the previous file must stay intact";
    EXPECT_EQ(readFile(dir_ / "etc" / "racoon.conf"), oldRacoon);
    // A retry's temp file exists for microseconds; a leftover one stays.
    const std::vector<std::string> clean{"ipsec-tools.conf", "racoon.conf"};
    EXPECT_TRUE(waitUntil([&] { return etcEntries() == clean; }, 1s)) << "temp file left behind";
    EXPECT_TRUE(stateHas("\"healthy\": false"));
    EXPECT_GE(logCount(errnoText), 1);

    lift();
    ASSERT_TRUE(waitUntil([&] { return spd().find("10.77.0.0/16") != std::string::npos; }, 30s)) << spd();
    EXPECT_EQ(spd().find("10.254.0.0/16"), std::string::npos);
    ASSERT_TRUE(waitUntil([&] { return restarts() == 2; }, 10s));
    ASSERT_TRUE(waitUntil([&] { return stateHas("\"last_restart_result\": \"done\"") && stateHas("\"last_error\": \"\"") &&
                                       stateHas("\"healthy\": true"); }))
        << state();
    // Settled: nothing pending, and exactly one restart for the change.
    EXPECT_EQ(state().find("restart pending"), std::string::npos) << state();
    EXPECT_EQ(restarts(), 2);
    EXPECT_TRUE(protects("10.77.0.0/16"));
  }

  bool mounted_ = false;
};

TEST_F(FaultFilesTest, ReadOnlyDirectoryKeepsThePreviousFileAndRestartsOnceWhenWritable) {
  mountTmpfs("size=1m,mode=0755");
  const auto etc = (dir_ / "etc").string();
  runScenario(
      [&] { ASSERT_EQ(::mount("tmpfs", etc.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=1m"), 0); },
      [&] { ASSERT_EQ(::mount("tmpfs", etc.c_str(), "tmpfs", MS_REMOUNT, "size=1m"), 0); },
      "Read-only file system");
}

TEST_F(FaultFilesTest, FullFilesystemKeepsThePreviousFileAndRestartsOnceWhenThereIsRoom) {
  mountTmpfs("size=64k,mode=0755");
  const auto filler = dir_ / "etc" / "filler";
  runScenario(
      [&] {
        // Take every free block: the new file's data can't be written.
        std::FILE* f = std::fopen(filler.c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::vector<char> block(4096, 'x');
        std::setvbuf(f, nullptr, _IONBF, 0);
        while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
        }
        std::fwrite(block.data(), 1, 1, f);
        std::fclose(f);
        ASSERT_GT(fs::file_size(filler), 0U);
      },
      [&] { fs::remove(filler); }, "No space left on device");
}

}  // namespace
