#pragma once
// The real Clock: std::chrono::steady_clock (CLOCK_MONOTONIC), and its timers are
// boost::asio::steady_timer on the daemon's io_context (the same clock).

#include <utility>  // before any Asio header (Boost 1.74 + g++ 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>

#include "core/ports.hpp"

namespace ipopsec {

class AsioTimer final : public Timer {
 public:
  explicit AsioTimer(boost::asio::io_context& io) : timer_(io) {}
  ~AsioTimer() override { cancel(); }
  void at(time_point when, std::function<void()> f) override {
    // A handler already queued (its instant passed) cannot be taken back from Asio: the
    // generation tells it that it was replaced or cancelled.
    const std::uint64_t gen = ++gen_;
    when_ = when;
    timer_.expires_at(when);
    timer_.async_wait([this, gen, alive = std::weak_ptr<bool>(alive_), f = std::move(f)](boost::system::error_code ec) {
      if (ec || alive.expired() || gen != gen_) return;
      when_.reset();
      f();
    });
  }
  void cancel() override {
    ++gen_;
    when_.reset();
    timer_.cancel();
  }
  std::optional<time_point> pending() const override { return when_; }

 private:
  boost::asio::steady_timer timer_;
  std::uint64_t gen_ = 0;
  std::optional<time_point> when_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class SteadyClock final : public Clock {
 public:
  // Without an io_context: now() and wallNow() only (timer() throws).
  SteadyClock() = default;
  explicit SteadyClock(boost::asio::io_context& io) : io_(&io) {}
  time_point now() const override { return std::chrono::steady_clock::now(); }
  std::unique_ptr<Timer> timer() override {
    if (!io_) throw std::logic_error("SteadyClock::timer(): this clock has no io_context");
    return std::make_unique<AsioTimer>(*io_);
  }

 private:
  boost::asio::io_context* io_ = nullptr;
};

}  // namespace ipopsec
