// The real Clock's timers (os/clock.hpp: AsioTimer on boost::asio::steady_timer): what the
// daemon relies on when it sets, replaces and cancels its timers. No root needed.

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "os/clock.hpp"

namespace ipopsec {
namespace {

using namespace std::chrono_literals;

TEST(AsioTimer, RunsOnTheIoContextAtItsInstantNeverInsideAt) {
  boost::asio::io_context io;
  SteadyClock clock(io);
  auto t = clock.timer();
  int runs = 0;
  const auto when = clock.now() + 20ms;
  t->at(when, [&] { ++runs; });
  EXPECT_EQ(runs, 0) << "not inside at()";
  ASSERT_TRUE(t->pending().has_value());
  EXPECT_EQ(*t->pending(), when);
  io.run_for(2s);  // returns once nothing is pending
  EXPECT_EQ(runs, 1);
  EXPECT_GE(clock.now(), when);
  EXPECT_FALSE(t->pending().has_value()) << "nothing pending after it ran";
  // An instant already past: soon, still on the io_context.
  t->at(clock.now() - 1s, [&] { ++runs; });
  EXPECT_EQ(runs, 1);
  io.restart();
  io.run_for(2s);
  EXPECT_EQ(runs, 2);
}

// The handler of an instant that has passed may already be queued on the io_context when the
// daemon cancels or replaces it (from another timer's function that ran first in the same
// pass): it must not run then. Asio cannot take a completed wait back; the timer's generation
// tells the handler it is stale.
TEST(AsioTimer, CancelledOrReplacedAfterItsInstantPassedItNeverRuns) {
  boost::asio::io_context io;
  SteadyClock clock(io);
  auto first = clock.timer(), second = clock.timer();
  int ran = 0, replacement = 0;
  first->at(clock.now() + 1ms, [&] { second->cancel(); });
  second->at(clock.now() + 2ms, [&] { ++ran; });
  std::this_thread::sleep_for(20ms);  // both instants passed before the io_context runs
  io.run_for(200ms);
  EXPECT_EQ(ran, 0) << "cancelled after its instant by a function that ran first: never runs";
  EXPECT_FALSE(second->pending().has_value());

  first->at(clock.now() + 1ms, [&] { second->at(clock.now() + 5ms, [&] { ++replacement; }); });
  second->at(clock.now() + 2ms, [&] { ++ran; });
  std::this_thread::sleep_for(20ms);
  io.restart();
  io.run_for(200ms);
  EXPECT_EQ(ran, 0) << "replaced after its instant: the old function never runs";
  EXPECT_EQ(replacement, 1) << "the new one does";
}

TEST(AsioTimer, ADestroyedTimerNeverRuns) {
  boost::asio::io_context io;
  SteadyClock clock(io);
  int runs = 0;
  {
    auto t = clock.timer();
    t->at(clock.now() + 1ms, [&] { ++runs; });
    std::this_thread::sleep_for(10ms);
  }
  io.run_for(200ms);
  EXPECT_EQ(runs, 0);
}

TEST(AsioTimer, AClockWithoutIoContextHasNoTimers) {
  SteadyClock clock;
  EXPECT_THROW(clock.timer(), std::logic_error);
}

}  // namespace
}  // namespace ipopsec
