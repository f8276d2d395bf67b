#pragma once
// Test support: the kernel's SPD sampled as fast as a thread can read it while a test moves
// addresses or kills the daemon: each sample counts, and so does each gap, a sample with no
// outbound protect policy at the daemon's priorities (a moment the range was unprotected).
// A read that fails is not a sample.

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "core/policy/policy.hpp"
#include "os/netlink/xfrm.hpp"

namespace ipopsec::test {

class SpdGapSampler {
 public:
  SpdGapSampler() : thread_([this] { run(); }) {}
  ~SpdGapSampler() { stop(); }
  SpdGapSampler(const SpdGapSampler&) = delete;
  SpdGapSampler& operator=(const SpdGapSampler&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long samples() const { return samples_.load(); }
  long gaps() const { return gaps_.load(); }

 private:
  void run() {
    XfrmPolicyTable t(250000, 1000);
    while (!stop_) {
      std::vector<Policy> v;
      if (t.list(v)) continue;
      ++samples_;
      if (std::none_of(v.begin(), v.end(),
                       [](const Policy& p) { return p.action == PolicyAction::protect && p.dir == Direction::out; }))
        ++gaps_;
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<long> samples_{0}, gaps_{0};
  std::thread thread_;  // last: it starts once the counters exist
};

}  // namespace ipopsec::test
