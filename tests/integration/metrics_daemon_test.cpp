// daemon.metrics_file with the real daemon on the real kernel (private network namespace):
// the file node_exporter's textfile collector reads says the range is protected and the node
// healthy once IPOP is up, and is only ever replaced whole (a reader never sees it empty,
// cut short or invalid).

#include <sys/stat.h>

#include <atomic>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/daemon_fixture.hpp"
#include "integration/tap_carrier.hpp"
#include "unit/prometheus_text.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

namespace {

class MetricsDaemonTest : public DaemonFixture {};

TEST_F(MetricsDaemonTest, FileSaysTheRangeIsProtectedAndHealthyAndIsReplacedAtomically) {
  // In a directory that does not exist yet: the file store creates it.
  const fs::path prom = dir_ / "textfile" / "ipop-ipsec.prom";
  writeConfig("  ranges: [10.254.0.0/16]\n", "", "  metrics_file: " + prom.string() + "\n");

  // A reader as node_exporter is one: opens and reads the whole file, over and over.
  std::atomic<int> reads{0}, emptyReads{0}, invalidReads{0};
  int inodeChanges = 0;  // consecutive reads that found another file (inode numbers may be reused)
  ino_t lastInode = 0;
  std::string firstInvalid;
  // A jthread: joined on every way out of the test, a failed ASSERT included.
  std::jthread reader([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      struct stat sb {};
      std::ifstream in(prom);
      if (in) {
        if (::stat(prom.c_str(), &sb) == 0) {
          if (lastInode && sb.st_ino != lastInode) ++inodeChanges;
          lastInode = sb.st_ino;
        }
        std::stringstream s;
        s << in.rdbuf();
        std::string text = s.str();
        ++reads;
        if (text.empty()) ++emptyReads;
        else if (!checkPrometheusText(text).empty() && invalidReads++ == 0) firstInvalid = text;
      }
      std::this_thread::sleep_for(100us);
    }
  });
  auto finish = [&] {
    reader.request_stop();
    if (reader.joinable()) reader.join();
  };
  auto metrics = [&] { return readFile(prom); };
  auto says = [&](const std::string& s) { return metrics().find(s) != std::string::npos; };

  startDaemon();
  // A fixed range is protected before IPOP exists; the node is not healthy yet.
  ASSERT_TRUE(waitFor([&] { return says("ipop_ipsec_ipop_up 0\n"); })) << metrics();
  EXPECT_THAT(metrics(), HasSubstr("ipop_ipsec_range_protected{range=\"10.254.0.0/16\"} 1\n"));
  EXPECT_THAT(metrics(), HasSubstr("ipop_ipsec_healthy 0\n"));
  EXPECT_THAT(metrics(), HasSubstr("ipop_ipsec_policies_installed 4\n"));

  tapUp();
  ASSERT_TRUE(waitFor([&] { return says("ipop_ipsec_healthy 1\n") && says("ipop_ipsec_ike_restarts_total 1\n"); }))
      << metrics();
  std::string text = metrics();
  EXPECT_THAT(text, HasSubstr("ipop_ipsec_ipop_up 1\n"));
  EXPECT_THAT(text, HasSubstr("ipop_ipsec_range_protected{range=\"10.254.0.0/16\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ipop_ipsec_ike_restart_failures_total 0\n"));
  EXPECT_THAT(text, HasSubstr("ipop_ipsec_certificate_expiry_timestamp_seconds "));
  EXPECT_THAT(text, HasSubstr("ipop_ipsec_last_reconcile_duration_seconds "));
  EXPECT_THAT(checkPrometheusText(text), IsEmpty()) << text;

  // Churn: every reconcile that changes the content rewrites the file.
  for (int i = 0; i < 20; ++i) sh("ip addr add 10.254.0.99/16 dev ipop && ip addr del 10.254.0.99/16 dev ipop");
  std::this_thread::sleep_for(300ms);
  finish();
  EXPECT_GT(reads.load(), 20);
  EXPECT_EQ(emptyReads.load(), 0) << "the file was seen empty: not replaced atomically";
  EXPECT_EQ(invalidReads.load(), 0) << "first invalid read:\n" << firstInvalid;
  EXPECT_GE(inodeChanges, 2) << "each change must be a new file renamed over the old one";
  EXPECT_TRUE(says("ipop_ipsec_healthy 1\n")) << metrics();

  struct stat sb {};
  ASSERT_EQ(::stat(prom.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0644u) << "node_exporter runs as another user";
  // No temp file left beside it (node_exporter reads every *.prom of the directory).
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(prom.parent_path())) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"ipop-ipsec.prom"});
}

// The sign of life: ipop_ipsec_metrics_timestamp_seconds advances while nothing happens
// (the heartbeat rewrite, here daemon.metrics_interval: 1s), the rest of the file stays as
// it was; a reload that moves the file or turns the metrics off removes the old one; a
// clean stop (SIGTERM) removes the file while the policies stay.
TEST_F(MetricsDaemonTest, TheTimestampAdvancesWhileIdleAndTheFileGoesWithACleanStop) {
  const fs::path prom = dir_ / "textfile" / "ipop-ipsec.prom";
  writeConfig("  ranges: [10.254.0.0/16]\n", "", "  metrics_file: " + prom.string() + "\n  metrics_interval: 1s\n");
  startDaemon();
  auto timestamp = [&]() -> long {
    std::string text = readFile(prom);
    const std::string key = "\nipop_ipsec_metrics_timestamp_seconds ";
    auto at = text.find(key);
    return at == std::string::npos ? -1 : std::stol(text.substr(at + key.size()));
  };
  auto body = [&] {  // everything but the timestamp family
    std::string text = readFile(prom);
    return text.substr(0, text.find("# HELP ipop_ipsec_metrics_timestamp_seconds"));
  };
  auto mtime = [&] {
    struct stat sb {};
    return ::stat(prom.c_str(), &sb) == 0 ? std::chrono::seconds(sb.st_mtim.tv_sec) + std::chrono::nanoseconds(sb.st_mtim.tv_nsec)
                                           : std::chrono::nanoseconds(0);
  };
  ASSERT_TRUE(waitFor([&] { return timestamp() > 0; })) << readFile(prom);
  std::string text = readFile(prom);
  EXPECT_THAT(checkPrometheusText(text), IsEmpty()) << text;
  EXPECT_THAT(text, HasSubstr("# TYPE ipop_ipsec_metrics_timestamp_seconds gauge\n"));
  const long now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(std::abs(timestamp() - now), 2) << "wall clock seconds";

  // Idle: nothing changes in the namespace, yet the file is written again every second.
  const std::string idle = body();
  std::vector<std::chrono::nanoseconds> writes{mtime()};
  std::vector<long> stamps{timestamp()};
  while (writes.size() < 4) {
    auto last = writes.back();
    ASSERT_TRUE(waitFor([&] { return mtime() != last; }, 3s)) << "no heartbeat rewrite within 3 s (interval 1 s)";
    writes.push_back(mtime());
    stamps.push_back(timestamp());
  }
  for (std::size_t i = 1; i < writes.size(); ++i) {
    auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(writes[i] - writes[i - 1]);
    std::cout << "heartbeat rewrite " << i << ": " << gap.count() << " ms after the one before\n";
    EXPECT_GE(gap, 900ms);
    EXPECT_LE(gap, 1500ms);
  }
  EXPECT_GE(stamps.back() - stamps.front(), 2) << "the timestamp advances with the rewrites";
  EXPECT_EQ(body(), idle) << "only the timestamp changed while idle";

  // A reload that moves the file: the old one goes (node_exporter would export both), the
  // new one comes; one that turns the metrics off removes the file.
  const fs::path moved = dir_ / "textfile" / "moved.prom";
  writeConfig("  ranges: [10.254.0.0/16]\n", "", "  metrics_file: " + moved.string() + "\n  metrics_interval: 1s\n");
  ::kill(daemon_.pid(), SIGHUP);
  ASSERT_TRUE(waitFor([&] { return fs::exists(moved) && !fs::exists(prom); })) << "moved on reload";
  writeConfig("  ranges: [10.254.0.0/16]\n");
  ::kill(daemon_.pid(), SIGHUP);
  ASSERT_TRUE(waitFor([&] { return !fs::exists(moved); })) << "metrics turned off on reload: the file goes";
  EXPECT_FALSE(waitFor([&] { return fs::exists(moved) || fs::exists(prom); }, 1500ms)) << "no heartbeat once off";
  writeConfig("  ranges: [10.254.0.0/16]\n", "", "  metrics_file: " + prom.string() + "\n  metrics_interval: 1s\n");
  ::kill(daemon_.pid(), SIGHUP);
  ASSERT_TRUE(waitFor([&] { return timestamp() > 0; })) << "on again";

  // SIGTERM: a clean stop; the file is gone, the policies stay (fail closed).
  EXPECT_EQ(stopDaemon(SIGTERM), 0);
  EXPECT_FALSE(fs::exists(prom)) << "the metrics file outlived a clean stop";
  EXPECT_TRUE(protects("10.254.0.0/16"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(prom.parent_path())) names.push_back(e.path().filename().string());
  EXPECT_TRUE(names.empty()) << "left behind: " << names.front();
}

}  // namespace
