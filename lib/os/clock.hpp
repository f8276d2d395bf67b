#pragma once
// The real Clock: std::chrono::steady_clock (CLOCK_MONOTONIC), so it agrees with
// boost::asio::steady_timer.

#include <chrono>

#include "core/ports.hpp"

namespace ipopsec {

class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace ipopsec
