#pragma once
// ike.acquire_retry's schedule: when to remove the larval states of ACQUIREs nobody answered,
// so that the next packet asks the IKE daemon again. Pure logic, driven by a clock value.
//
// An attempt a peer refuses (NO_PROPOSAL_CHOSEN while its IKE daemon starts or reloads) ends
// at once, and its larval state would hold off this node's next attempt for
// net.core.xfrm_acq_expires (charon: 165 s). Each removal lets charon try again, and each try
// costs this node a key exchange (charon starts a new IKE_SA for the fresh ACQUIRE). A peer
// that refuses for seconds (its charon starved of CPU while a whole mesh comes up) would
// cost one key exchange per pair and per `first` if the removals kept that pace: measured in
// a 16-node mesh, twice the IKE_SAs of a node without the retry, and the mesh up 1.7x later.
// So the removals back off: `first` after the first unanswered ACQUIRE, then, while
// ACQUIREs keep coming, each removal waits twice as long as the one before, up to 16 x
// `first`. After a calm of that longest wait without a removal due, or after an IKE restart
// or reload (which removes the larval states itself once the IKE daemon listens), the
// schedule starts over at `first`.
#include <chrono>
#include <optional>

namespace ipopsec {

class AcquireRetry {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;
  static constexpr int kMaxFactor = 16;  // the longest wait: 16 x first

  // first <= 0: off (nothing is ever due).
  explicit AcquireRetry(duration first = {}) { setFirst(first); }
  void setFirst(duration first);

  // An ACQUIRE at `now`: arms the removal (the current wait after now) unless one is armed.
  void acquired(time_point now);
  // The armed removal, if any.
  std::optional<time_point> at() const { return at_; }
  // True when the armed removal is due at `now`: it is disarmed, and the next wait doubles.
  bool due(time_point now);
  // An IKE restart or reload began: disarmed, and the next wait is `first` again.
  void restart();
  // The wait the next ACQUIRE would arm (for tests and the log).
  duration nextWait(time_point now) const;

 private:
  duration first_{};
  duration wait_{};
  std::optional<time_point> at_;
  std::optional<time_point> lastRemoval_;
};

}  // namespace ipopsec
