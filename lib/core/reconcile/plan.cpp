#include "core/reconcile/plan.hpp"

#include <algorithm>

namespace ipopsec {

int installRank(const Policy& p) {
  if (p.action != PolicyAction::protect) return 3;
  return p.dir == Direction::out ? 0 : p.dir == Direction::in ? 1 : 2;
}

PolicyPlan planPolicies(const std::vector<Policy>& kernel, const std::vector<Policy>& desired) {
  PolicyDiff diff = diffPolicies(kernel, desired);
  PolicyPlan plan;
  plan.add = std::move(diff.add);
  plan.remove = std::move(diff.remove);
  std::stable_sort(plan.add.begin(), plan.add.end(),
                   [](const Policy& a, const Policy& b) { return installRank(a) < installRank(b); });
  std::vector<Policy> want = desired;
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  std::vector<Policy> have = kernel;
  std::sort(have.begin(), have.end());
  std::set_intersection(want.begin(), want.end(), have.begin(), have.end(), std::back_inserter(plan.keep));
  return plan;
}

}  // namespace ipopsec
