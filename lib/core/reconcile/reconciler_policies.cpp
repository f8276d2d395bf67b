// The policy step: what the kernel must hold for the network as observed now, planned
// (core/reconcile/plan.hpp) against what it holds, applied through the PolicyTable port and
// read back. No file is read or written here: that is the file step (reconciler_files.cpp),
// which the daemon runs once no event is pending.

#include <algorithm>

#include "core/reconcile/plan.hpp"
#include "core/reconcile/reconciler.hpp"

namespace ipopsec {

void Reconciler::reconcilePolicies(const NetSnapshot& net) {
  reconcileStart_ = clock_.now();
  // The tap as this step sees it: looked up once; the ranges it confirms, the desired state
  // (its state, its addresses) and its transitions all read this one.
  const LinkState* tap = net.byName(cfg_.ipop.interface);
  status_.lastError.clear();
  filesPending_ = true;
  policyStep_ = PolicyStep::unread;
  std::vector<Policy> current;
  const bool known = kernelKnown_;  // nothing changed the kernel since the last read-back
  if (known) {
    current = lastKernel_;
  } else if (auto ec = policies_.list(current)) {
    // Without the kernel's picture nothing is decided; nothing is removed.
    status_.lastError = "cannot read the kernel's policies: " + ec.message();
    emit(Severity::error, EventKind::kernelUnreadable, "", status_.lastError);
    return;
  } else {
    forgetGonePriorities(current);
  }
  {
    // Policies the kernel held after the last apply and no longer holds: removed behind the
    // daemon's back (an operator's `ip xfrm policy flush`, another tool). Reinstalled below.
    // None when the kernel is known unchanged: not looked for on the reaction's path.
    std::vector<Policy> gone;
    if (!known) {
      std::vector<Policy> cur = current;
      std::sort(cur.begin(), cur.end());
      for (const auto& p : lastKernel_)
        if (!std::binary_search(cur.begin(), cur.end(), p)) gone.push_back(p);
    }
    if (!gone.empty()) {
      std::string list;
      for (std::size_t i = 0; i < gone.size() && i < 4; ++i) list += (i ? "; " : "") + gone[i].str();
      if (gone.size() > 4) list += "; and " + std::to_string(gone.size() - 4) + " more";
      emit(Severity::warning, EventKind::policiesObserved, joinRanges(rangesOf(gone)),
           std::to_string(gone.size()) + " of this daemon's policies were removed from the kernel by another process (" +
               list + "); putting back what is still wanted");
    }
    Desired d;
    try {
      // The tap confirms a remembered range once it has an address in it; in force: what the
      // kernel protects and what this daemon committed to, less what is still provisional
      // (core/reconcile/range_memory.hpp).
      if (tap) ranges_.confirm(tap->addresses);
      if (!cfg_.protect.autoRanges) ranges_.dropProvisional();
      const std::vector<Cidr> inForce = ranges_.inForce(rangesOf(current));
      // The policies only: the reaction to an address change is their installation; the
      // certificates, the files and the IKE daemon follow in the file step.
      d = desiredPolicies(cfg_, net, tap, inForce, ranges_.provisional());
      // Remembered ranges stand in only until the tap gives ranges of its own: from then on
      // the tap's addresses decide (a remembered range it did not confirm goes, make before
      // break, like any range the tap no longer has).
      if (!d.heldRanges && !d.ranges.empty()) ranges_.dropProvisional();
    } catch (const std::exception& e) {
      // Validation should make this impossible; if it happens, change nothing.
      status_.lastError = std::string("cannot compute the desired state: ") + e.what();
      emit(Severity::error, EventKind::renderFailed, "", status_.lastError);
      policyStep_ = PolicyStep::undecided;
      return;
    }
    if (d.refused != lastRefused_) {
      for (const auto& r : d.refused) emit(Severity::error, EventKind::rangeRefused, "", r);
      lastRefused_ = d.refused;
    }
    if (d.conflicts != lastConflicts_) {
      for (const auto& c : d.conflicts) emit(Severity::warning, EventKind::conflictHeld, "", c);
      lastConflicts_ = d.conflicts;
    }
    policiesOk_ = applyPlan(d, planPolicies(current, d.policies), current);
    noteTap(tap);
    // The status shows the policy side of what is wanted now and the file side of what was
    // last written (the file step replaces both).
    takePolicySide(status_.desired, d);
    policyPart_ = std::move(d);
    policyStep_ = PolicyStep::applied;
  }
}

void Reconciler::forgetGonePriorities(const std::vector<Policy>& kernel) {
  PolicyOwnership owned = policies_.ownership();
  const std::vector<std::uint32_t> before = owned.earlier();
  owned.forgetUnused(kernel);
  if (owned.earlier() == before) return;
  std::string gone;
  for (auto p : before)
    if (!owned.owns(p)) gone += (gone.empty() ? "" : ", ") + std::to_string(p);
  policies_.setOwnership(std::move(owned));
  emit(Severity::info, EventKind::policiesObserved, "",
       "priority " + gone + " no longer carries any of this daemon's policies: it is no longer the daemon's");
}

// The tap's transitions, seen at every policy step (a flap within one burst of events is
// still a coming up); the file step acts on tapCameUp_ once IPOP is up.
// "Comes up" is the link: the tap appearing (a new ifindex) or going from down, or from no
// carrier, to up with carrier. A DHCP renewal that drops the address and adds another on a
// tap that stays up is an address change, applied by a reload or not at all. The first
// observation after the daemon itself started is not a transition (a running IKE daemon is
// adopted).
void Reconciler::noteTap(const LinkState* tap) {
  bool linkUp = tap && tap->upWithCarrier();
  int index = tap ? tap->index : 0;
  std::uint64_t ups = tap ? tap->upCount : 0;
  if (ipopSeen_ && linkUp && (!tapLinkUp_ || index != tapIndex_ || ups != tapUpCount_)) tapCameUp_ = true;
  ipopSeen_ = true;
  tapLinkUp_ = linkUp;
  tapIndex_ = index;
  tapUpCount_ = ups;
}

bool Reconciler::applyPlan(const Desired& d, const PolicyPlan& plan, const std::vector<Policy>& current) {
  bool ok = true;
  std::size_t installed = 0, removed = 0;
  // Make before break: every new policy goes in before any old one goes out. One batch:
  // the kernel takes them in the plan's order.
  const std::vector<InstallResult> results = policies_.installAll(plan.add);
  for (std::size_t i = 0; i < plan.add.size(); ++i) {
    const Policy& p = plan.add[i];
    const std::error_code ec = i < results.size() ? results[i].ec : std::make_error_code(std::errc::io_error);
    if (ec) {
      ok = false;
      status_.lastError = "kernel refused policy " + p.str() + ": " + ec.message() +
                          conflictAdvice(p, i < results.size() ? results[i].conflict : std::nullopt);
      emit(Severity::error, EventKind::policyInstalled, p.sel.dst.str(), status_.lastError);
    } else {
      ++installed;
      emit(Severity::debug, EventKind::policyInstalled, p.sel.dst.str(), "installed " + p.str());
    }
  }
  if (ok) {
    for (const auto& p : plan.remove) {
      if (auto ec = policies_.remove(p)) {
        ok = false;
        status_.lastError = "cannot remove policy " + p.str() + ": " + ec.message();
        emit(Severity::error, EventKind::policyRemoved, p.sel.dst.str(), status_.lastError);
      } else {
        ++removed;
        emit(Severity::debug, EventKind::policyRemoved, p.sel.dst.str(), "removed " + p.str());
      }
    }
  } else if (!plan.remove.empty()) {
    emit(Severity::warning, EventKind::policyRemoved, "",
         "keeping " + std::to_string(plan.remove.size()) + " old policies until the new ones are in (fail closed)");
  }
  // Read back: the status and the log say what the kernel holds, not what was attempted.
  std::vector<Policy> after;
  kernelKnown_ = false;
  if (plan.empty()) {
    after = current;  // nothing changed by this step: what was read (or known) is the answer
    kernelKnown_ = true;
  } else if (auto ec = policies_.list(after)) {
    status_.lastError = "cannot read back the kernel's policies: " + ec.message();
    emit(Severity::error, EventKind::kernelUnreadable, "", status_.lastError);
    ok = false;
    // Unknown: claim only what was read before and not touched since (not what was just
    // installed, nor what was just removed).
    after.clear();
    for (const auto& p : current) {
      auto touched = [&](const Policy& q) { return q.key() == p.key(); };
      if (std::none_of(plan.add.begin(), plan.add.end(), touched) &&
          std::none_of(plan.remove.begin(), plan.remove.end(), touched))
        after.push_back(p);
    }
  } else {
    kernelKnown_ = true;
  }
  status_.kernelPolicies = after;
  if (installed + removed > 0) {
    status_.lastChangeReaction = clock_.now() - reconcileStart_;
    status_.lastChange = wall_();
  }
  std::vector<Cidr> before = protectedRanges(current), now = protectedRanges(after);
  if (!plan.empty()) {
    std::vector<Cidr> gained, lost;
    std::set_difference(now.begin(), now.end(), before.begin(), before.end(), std::back_inserter(gained));
    std::set_difference(before.begin(), before.end(), now.begin(), now.end(), std::back_inserter(lost));
    std::string msg = "policies: " + std::to_string(installed) + " of " + std::to_string(plan.add.size()) +
                      " installed, " + std::to_string(removed) + " of " + std::to_string(plan.remove.size()) +
                      " removed";
    if (!gained.empty()) msg += "; now protecting " + joinRanges(gained);
    if (!lost.empty()) msg += "; no longer protecting " + joinRanges(lost);
    // The SAs of a range no longer protected go too (never those of a range that stays,
    // nor of one nested in a range still protected).
    std::erase_if(lost, [&](const Cidr& r) {
      return std::any_of(now.begin(), now.end(), [&](const Cidr& k) { return k.contains(r); });
    });
    if (!lost.empty()) {
      std::size_t n = 0;
      if (auto ec = policies_.removeStates(lost, n))
        emit(Severity::warning, EventKind::policyRemoved, joinRanges(lost), "cannot remove the SAs of " + joinRanges(lost) + ": " + ec.message());
      else if (n)
        msg += "; removed " + std::to_string(n) + " SA(s) of it";
    }
    std::vector<Cidr> missing;
    for (const auto& r : d.ranges)
      if (!std::binary_search(now.begin(), now.end(), r)) missing.push_back(r);
    if (!missing.empty()) msg += "; NOT protecting " + joinRanges(missing) + " (the kernel does not hold its policies)";
    emit(ok ? Severity::info : Severity::error, EventKind::policiesChanged, joinRanges(d.ranges), msg);
  }
  status_.protectedRanges = now;
  ranges_.commit(d.ranges, now);  // still in force: what was, and what the kernel protects now, if wanted
  std::vector<Policy> want = d.policies;
  std::sort(want.begin(), want.end());
  std::vector<Policy> have = after;
  std::sort(have.begin(), have.end());
  status_.policiesExact = (want == have);
  lastKernel_ = after;
  return ok && status_.policiesExact;
}

}  // namespace ipopsec
