#pragma once
// Which kernel XFRM policies are this daemon's, decided here and nowhere else. The kernel
// tells policies apart by id (dir + selector) and keeps a priority with each; the daemon
// marks its own by priority:
//   - the two configured ones (xfrm.protect_priority, xfrm.bypass_priority);
//   - earlier ones: priorities an earlier configuration of this daemon used that may still
//     carry its policies (after a reload that changed them, or recorded by an earlier run in
//     state.json's owned_priorities). They stay owned until no policy carries them, so that
//     a changed priority is migrated make-before-break (UPDPOLICY replaces the policy with
//     the same id in place, whatever its priority) instead of colliding with the daemon's
//     own old policies as if they were foreign.
// Who asks: the XFRM adapter (list, install, remove, decode), the daemon (does a foreign
// change concern it, reload, adoption), state.json (what to record), `flush`/`status`
// (which policies to show or remove) and the conflict advice (a foreign policy at a
// priority that is some backend's default is probably ours from a lost state).

#include <cstdint>
#include <vector>

#include "core/policy/policy.hpp"

namespace ipopsec {

class PolicyOwnership {
 public:
  PolicyOwnership() = default;
  PolicyOwnership(std::uint32_t protectPriority, std::uint32_t bypassPriority,
                  std::vector<std::uint32_t> earlier = {});
  // The configured pair of a config.
  static PolicyOwnership configured(const Config& cfg);

  std::uint32_t protectPriority() const { return protect_; }
  std::uint32_t bypassPriority() const { return bypass_; }
  // Owned, not configured; sorted, without duplicates.
  const std::vector<std::uint32_t>& earlier() const { return earlier_; }

  bool owns(std::uint32_t priority) const;
  bool owns(const Policy& p) const { return owns(p.priority); }

  // Adoption: the priorities a predecessor recorded (state.json's owned_priorities) are
  // owned too; those that are configured now stay configured. Returns what became earlier.
  std::vector<std::uint32_t> adopt(const std::vector<std::uint32_t>& recorded);
  // Migration: the configured pair becomes (protect, bypass); the old pair stays owned as
  // earlier (until its policies are gone). False when nothing changed.
  bool moveTo(std::uint32_t protectPriority, std::uint32_t bypassPriority);
  // Forgets the earlier priorities that no policy in `kernel` (the daemon's, as listed)
  // carries any more.
  void forgetUnused(const std::vector<Policy>& kernel);

  // What state.json records as owned_priorities: the configured pair and every priority
  // that carries one of the daemon's policies now (`kernel`: what list() gave, so all
  // owned), sorted, once each. The next
  // start (or `flush`) adopts them all, so a changed priority is migrated, not stuck.
  std::vector<std::uint32_t> toRecord(const std::vector<Policy>& kernel) const;

  // The action the daemon never installs at an owned priority (bypass at the protect
  // priority, protect at any other): what a policy of ours whose shape cannot be read is
  // taken to be, so that it differs from every desired policy and is replaced.
  PolicyAction neverInstalledAt(std::uint32_t priority) const;

  // A priority that is the protect priority's default of some backend (racoon 250000,
  // strongSwan 500000, core/config's kBackendDefaults): a foreign policy there was
  // probably left by this daemon under a configuration whose state is lost.
  static bool isBackendDefault(std::uint32_t priority);

  bool operator==(const PolicyOwnership&) const = default;

 private:
  void normalise();
  std::uint32_t protect_ = 0;
  std::uint32_t bypass_ = 0;
  std::vector<std::uint32_t> earlier_;
};

}  // namespace ipopsec
