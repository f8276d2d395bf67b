#pragma once
// The policy step's decision, pure: from the daemon's policies the kernel holds and those it
// wants, the ordered actions (what goes in, in which order; what goes out once everything
// new is in; what stays). Applying it is the Reconciler's (Reconciler::applyPlan), through
// the PolicyTable port, with a read-back.

#include <vector>

#include "core/policy/policy.hpp"

namespace ipopsec {

struct PolicyPlan {
  // New ids, or ids whose attributes changed (replaced in place), in install order: what
  // stops plaintext first (protect out: the node's own sends; then protect in; then the
  // rest: fwd, bypasses). The kernel takes them in one batch in this order.
  std::vector<Policy> add;
  // Ids no longer wanted: removed only once every add is in (make before break); kept when
  // any add failed (fail closed).
  std::vector<Policy> remove;
  // Held by the kernel exactly as wanted: nothing to do.
  std::vector<Policy> keep;
  bool empty() const { return add.empty() && remove.empty(); }
};

// The install rank of a policy: 0 protect out, 1 protect in, 2 other protect (fwd), 3 the rest.
int installRank(const Policy& p);

// `kernel`: the daemon's policies the kernel holds; `desired`: the ones it wants.
PolicyPlan planPolicies(const std::vector<Policy>& kernel, const std::vector<Policy>& desired);

}  // namespace ipopsec
