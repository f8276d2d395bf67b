// IkeDaemonControl::whenListening's decision, with the kernel's answer injected (no root,
// no sock_diag): "bound" ends the wait, "not bound" waits (asking every kListenPoll) until
// the restart timeout, and no answer at all (the kernel has no UDP socket diagnostics:
// ENOENT; no NETLINK_SOCK_DIAG: EPROTONOSUPPORT) is not "not listening": the finished
// action is taken as the answer at once, and the log is told why, once while it lasts.

#include <utility>  // before any boost/asio header

#include <boost/asio/io_context.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "os/ike/ike_control.hpp"

using namespace ipopsec;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

namespace {

struct ListenProbeTest : ::testing::Test {
  boost::asio::io_context io;
  std::optional<IkeDaemonControl> ike;
  std::vector<std::string> logged;
  // What the probe answers at each question (the last one repeats), and how often it was asked.
  std::vector<std::error_code> answers;
  int boundFrom = -1;  // from this question on, port 500 is bound (-1: never)
  int asked = 0;

  void SetUp() override {
    Config cfg;
    cfg.ike.control = IkeControl::command;
    cfg.ike.restartCommand = {"/bin/true"};
    cfg.ike.restartTimeout = 400ms;
    ike.emplace(io, cfg);
    ike->setLogger([this](const std::string& line) { logged.push_back(line); });
    ike->setListenProbe([this](std::uint16_t port, bool& bound) {
      EXPECT_EQ(port, 500);
      const int i = asked++;
      bound = boundFrom >= 0 && i >= boundFrom;
      if (answers.empty()) return std::error_code{};
      return answers[std::min<std::size_t>(static_cast<std::size_t>(i), answers.size() - 1)];
    });
  }

  // Waits as the Reconciler does after a restart: the answer, and how long it took.
  std::pair<bool, std::chrono::steady_clock::duration> wait() {
    std::optional<bool> answer;
    auto t0 = std::chrono::steady_clock::now();
    ike->whenListening([&](bool listening) { answer = listening; });
    io.restart();
    while (!answer && io.run_one_for(5s)) {
    }
    EXPECT_TRUE(answer) << "whenListening never answered";
    return {answer.value_or(false), std::chrono::steady_clock::now() - t0};
  }
};

TEST_F(ListenProbeTest, NoUdpDiagIsTakenAsListeningAtOnceAndSaidOnce) {
  answers = {std::make_error_code(std::errc::no_such_file_or_directory)};
  auto [listening, took] = wait();
  EXPECT_TRUE(listening) << "no answer must not count as 'not listening'";
  EXPECT_LT(took, 200ms) << "answered without waiting out the restart timeout (400 ms)";
  EXPECT_EQ(asked, 1);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_THAT(logged[0], HasSubstr("cannot ask the kernel whether the IKE daemon (ike.restart_command /bin/true) "
                                   "listens on UDP port 500 (no UDP socket diagnostics: module udp_diag)"));
  EXPECT_THAT(logged[0], HasSubstr("taking its finished restart or reload as the answer"));

  // The next restart: same answer, nothing more in the log.
  std::tie(listening, took) = wait();
  EXPECT_TRUE(listening);
  EXPECT_EQ(logged.size(), 1u) << "said once while the kernel cannot answer";
}

TEST_F(ListenProbeTest, OtherRefusalsAreNoAnswerToo) {
  answers = {std::make_error_code(std::errc::protocol_not_supported)};
  auto [listening, took] = wait();
  EXPECT_TRUE(listening);
  EXPECT_LT(took, 200ms);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_THAT(logged[0], HasSubstr("(sock_diag: " + std::make_error_code(std::errc::protocol_not_supported).message() +
                                   ")"));
}

TEST_F(ListenProbeTest, NotBoundWaitsUntilTheRestartTimeout) {
  auto [listening, took] = wait();
  EXPECT_FALSE(listening);
  EXPECT_GE(took, 400ms);
  EXPECT_GE(asked, 5) << "asked every " << IkeDaemonControl::kListenPoll.count() << " ms meanwhile";
  EXPECT_TRUE(logged.empty());
}

TEST_F(ListenProbeTest, BoundAfterAFewQuestionsEndsTheWaitThenAnotherOutageIsSaidAgain) {
  boundFrom = 3;
  auto [listening, took] = wait();
  EXPECT_TRUE(listening);
  EXPECT_EQ(asked, 4);
  EXPECT_LT(took, 300ms);
  EXPECT_TRUE(logged.empty());

  // udp_diag goes away (unloaded): said; it answers again; it goes away again: said again.
  answers = {std::make_error_code(std::errc::no_such_file_or_directory)};
  asked = 0;
  EXPECT_TRUE(wait().first);
  EXPECT_EQ(logged.size(), 1u);
  answers = {std::error_code{}};
  asked = 0;
  EXPECT_TRUE(wait().first);
  answers = {std::make_error_code(std::errc::no_such_file_or_directory)};
  asked = 0;
  EXPECT_TRUE(wait().first);
  EXPECT_EQ(logged.size(), 2u);
}

}  // namespace
