// InotifyWatch on a real directory: a burst of changes gives one debounced callback, a
// missing directory is followed from its ancestor until it appears, and a removed one
// falls back to its ancestor.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "integration/netns.hpp"
#include "os/files/inotify_watch.hpp"

using namespace ipopsec;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class InotifyWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();
    ipopsec::test::enterFreshNetns();
    dir_ = fs::temp_directory_path() / ("ipopsec-inotify-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs the io_context until `calls` reaches `n` or the timeout passes.
  bool runUntil(int n, std::chrono::milliseconds timeout = 5s) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (calls_ < n && std::chrono::steady_clock::now() < end) {
      io_.restart();
      io_.run_for(10ms);
    }
    return calls_ >= n;
  }
  void settle(std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  }

  boost::asio::io_context io_;
  fs::path dir_;
  int calls_ = 0;
};

TEST_F(InotifyWatchTest, ABurstOfChangesGivesOneCallbackAfterTheQuietPeriod) {
  InotifyWatch w(io_, 100ms);
  ASSERT_FALSE(w.watch({dir_.string()}, [&] { ++calls_; }));
  EXPECT_TRUE(w.watchingAll());
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) std::ofstream(dir_ / "host-cert.pem", std::ios::app) << "line\n";
  fs::rename(dir_ / "host-cert.pem", dir_ / "cert2.pem");
  ASSERT_TRUE(runUntil(1));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms) << "debounced";
  settle(400ms);
  EXPECT_EQ(calls_, 1);
  ::chmod((dir_ / "cert2.pem").c_str(), 0600);  // IN_ATTRIB
  ASSERT_TRUE(runUntil(2));
  fs::remove(dir_ / "cert2.pem");  // IN_DELETE
  ASSERT_TRUE(runUntil(3));
}

TEST_F(InotifyWatchTest, AMissingDirectoryIsFollowedUntilItAppearsAndAfterItIsRemoved) {
  InotifyWatch w(io_, 50ms);
  fs::path target = dir_ / "a" / "certs";
  ASSERT_FALSE(w.watch({target.string()}, [&] { ++calls_; }));
  EXPECT_FALSE(w.watchingAll());
  EXPECT_EQ(w.watchedPaths(), std::vector<std::string>{dir_.string()});
  fs::create_directories(target);
  ASSERT_TRUE(runUntil(1));
  // Two levels appeared; the watch moves down as each appears (an event per level at most).
  for (int i = 0; i < 50 && !w.watchingAll(); ++i) settle(20ms);
  ASSERT_TRUE(w.watchingAll());
  int before = calls_;
  std::ofstream(target / "cacert.pem") << "x";
  ASSERT_TRUE(runUntil(before + 1));
  fs::remove_all(dir_ / "a");
  ASSERT_TRUE(runUntil(before + 2));
  for (int i = 0; i < 50 && w.watchingAll(); ++i) settle(20ms);
  EXPECT_EQ(w.watchedPaths(), std::vector<std::string>{dir_.string()});
  // rearm() with nothing new changes nothing; once the directory is back it moves down.
  w.rearm();
  EXPECT_FALSE(w.watchingAll());
  fs::create_directories(target);
  w.rearm();
  EXPECT_TRUE(w.watchingAll());
}

// Issue 24: a certificate directory missing at watch time needs no resync (rearm) to be
// followed: an operator moving a prepared tree into place (`mv certs.new certs`, IN_MOVED_TO
// on the ancestor), two levels at once, is watched from that event, and a file written into
// it is reported. rearm() is never called here.
TEST_F(InotifyWatchTest, ADirectoryTreeMovedIntoPlaceIsFollowedWithoutRearm) {
  InotifyWatch w(io_, 50ms);
  fs::path target = dir_ / "ipop-ipsec" / "certs";
  ASSERT_FALSE(w.watch({target.string()}, [&] { ++calls_; }));
  EXPECT_EQ(w.watchedPaths(), std::vector<std::string>{dir_.string()});
  fs::create_directories(dir_ / "staging" / "certs");
  std::ofstream(dir_ / "staging" / "certs" / "cacert.pem") << "x";
  ASSERT_TRUE(runUntil(1)) << "the staging tree's creation under the watched ancestor";
  EXPECT_FALSE(w.watchingAll());
  const int before = calls_;
  fs::rename(dir_ / "staging", dir_ / "ipop-ipsec");
  ASSERT_TRUE(runUntil(before + 1)) << "the move into place is reported";
  EXPECT_TRUE(w.watchingAll()) << "and the directory itself is watched from that event on";
  std::ofstream(target / "host-cert.pem") << "y";
  ASSERT_TRUE(runUntil(before + 2)) << "a file written into it afterwards is reported";
}

// Regression (seen in CI): `mkdir -p a/certs` from another thread can create certs between
// the failed watch on a/certs and the watch on a; no event would then ever report it, and
// files written into certs went unnoticed. The watcher must look again after watching.
TEST_F(InotifyWatchTest, NestedDirectoriesMadeConcurrentlyAreAlwaysFollowedDown) {
  for (int round = 0; round < 40; ++round) {
    fs::path base = dir_ / ("r" + std::to_string(round));
    fs::path target = base / "later" / "certs";
    fs::create_directories(base);
    calls_ = 0;
    InotifyWatch w(io_, 20ms);
    ASSERT_FALSE(w.watch({target.string()}, [&] { ++calls_; }));
    std::thread maker([&] {
      fs::create_directories(target);
      std::ofstream(target / "cacert.pem") << "x";
    });
    // Process events while the other thread makes the directories.
    for (int i = 0; i < 100 && !w.watchingAll(); ++i) settle(5ms);
    maker.join();
    for (int i = 0; i < 100 && !w.watchingAll(); ++i) settle(5ms);
    ASSERT_TRUE(w.watchingAll()) << "round " << round << " watching " << w.watchedPaths().front();
    int before = calls_;
    std::ofstream(target / "host-cert.pem") << "y";
    ASSERT_TRUE(runUntil(before + 1, 2s)) << "round " << round;
  }
}

TEST_F(InotifyWatchTest, StopEndsCallbacks) {
  InotifyWatch w(io_, 50ms);
  ASSERT_FALSE(w.watch({dir_.string()}, [&] { ++calls_; }));
  w.stop();
  std::ofstream(dir_ / "x") << "x";
  settle(200ms);
  EXPECT_EQ(calls_, 0);
}

}  // namespace
