#include "core/policy/ownership.hpp"

#include <algorithm>
#include <utility>

namespace ipopsec {

PolicyOwnership::PolicyOwnership(std::uint32_t protectPriority, std::uint32_t bypassPriority,
                                 std::vector<std::uint32_t> earlier)
    : protect_(protectPriority), bypass_(bypassPriority), earlier_(std::move(earlier)) {
  normalise();
}

PolicyOwnership PolicyOwnership::configured(const Config& cfg) {
  return PolicyOwnership(cfg.xfrm.protectPriority, cfg.xfrm.bypassPriority);
}

void PolicyOwnership::normalise() {
  std::erase_if(earlier_, [this](std::uint32_t e) { return e == protect_ || e == bypass_; });
  std::sort(earlier_.begin(), earlier_.end());
  earlier_.erase(std::unique(earlier_.begin(), earlier_.end()), earlier_.end());
}

bool PolicyOwnership::owns(std::uint32_t priority) const {
  return priority == protect_ || priority == bypass_ || std::binary_search(earlier_.begin(), earlier_.end(), priority);
}

std::vector<std::uint32_t> PolicyOwnership::adopt(const std::vector<std::uint32_t>& recorded) {
  std::vector<std::uint32_t> added;
  for (auto r : recorded)
    if (!owns(r)) {
      earlier_.push_back(r);
      added.push_back(r);
    }
  normalise();
  std::sort(added.begin(), added.end());
  added.erase(std::unique(added.begin(), added.end()), added.end());
  return added;
}

bool PolicyOwnership::moveTo(std::uint32_t protectPriority, std::uint32_t bypassPriority) {
  if (protectPriority == protect_ && bypassPriority == bypass_) return false;
  earlier_.push_back(protect_);
  earlier_.push_back(bypass_);
  protect_ = protectPriority;
  bypass_ = bypassPriority;
  normalise();
  return true;
}

void PolicyOwnership::forgetUnused(const std::vector<Policy>& kernel) {
  std::erase_if(earlier_, [&](std::uint32_t e) {
    return std::none_of(kernel.begin(), kernel.end(), [e](const Policy& p) { return p.priority == e; });
  });
}

std::vector<std::uint32_t> PolicyOwnership::toRecord(const std::vector<Policy>& kernel) const {
  std::vector<std::uint32_t> out{protect_, bypass_};
  for (const auto& p : kernel) out.push_back(p.priority);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

PolicyAction PolicyOwnership::neverInstalledAt(std::uint32_t priority) const {
  return priority == protect_ ? PolicyAction::bypass : PolicyAction::protect;
}

bool PolicyOwnership::isBackendDefault(std::uint32_t priority) {
  return std::any_of(std::begin(kBackendDefaults), std::end(kBackendDefaults),
                     [priority](const BackendDefaults& row) { return row.protectPriority == priority; });
}

}  // namespace ipopsec
