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
  auto metrics = [&] { return slurp(prom); };
  auto says = [&](const std::string& s) { return metrics().find(s) != std::string::npos; };

  startDaemon();
  // A fixed range is protected before IPOP exists; the node is not healthy yet.
  ASSERT_TRUE(waitFor([&] { return says("ipop_ipsec_ipop_up 0\n"); })) << metrics();
  EXPECT_THAT(metrics(), HasSubstr("ipop_ipsec_range_protected{range=\"10.254.0.0/16\"} 1\n"));
  EXPECT_THAT(metrics(), HasSubstr("ipop_ipsec_healthy 0\n"));
  EXPECT_THAT(metrics(), HasSubstr("ipop_ipsec_policies_installed 4\n"));

  sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
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

}  // namespace
