// Daemon::adoptRunningState: what a predecessor left (remembered ranges, owned priorities, the IKE
// daemon it started).

#include "daemon/daemon.hpp"

#include <spdlog/spdlog.h>

#include "core/policy/ownership.hpp"
#include "core/reconcile/range_memory.hpp"
#include "daemon/state_file.hpp"

namespace ipopsec {

// What this daemon's predecessor left: the auto ranges it remembered, the priorities its
// policies carry, and the inputs the IKE daemon still runs with.
void Daemon::adoptRunningState() {
  std::string text, err;
  if (cfg_.protect.autoRanges && !cfg_.daemon.rememberDir.empty()) {
    // The ranges the tap gave before (persistent, also across a reboot): their policies go
    // in at the first reconcile, before the tap has its address. A bad line is named and
    // skipped (core/reconcile/range_memory.hpp reads the file, as it writes it); the file is
    // rewritten once the tap confirms a range.
    std::string path = cfg_.daemon.rememberPath(), saved;
    if (!ports_.files->read(path, saved)) {
      RememberedRanges remembered = parseRememberedRanges(saved, path, cfg_.protect.ipv6);
      for (const auto& p : remembered.problems) spdlog::warn("{}", p);
      if (!remembered.ranges.empty()) {
        std::string list;
        for (const auto& r : remembered.ranges) list += (list.empty() ? "" : ", ") + r.str();
        spdlog::info("holding {} from the last run ({}) until the tap has its address", list, path);
        reconciler_->assumeRemembered(std::move(remembered.ranges));
      }
    }
  }
  // Which policies are this daemon's (core/policy/ownership.hpp): the configured pair, and
  // the priorities a predecessor recorded in the state file's owned_priorities. Policies an
  // earlier configuration installed at other priorities are still this daemon's: owned, so
  // that they are migrated (replaced in place) and not refused as foreign.
  PolicyOwnership owned = PolicyOwnership::configured(cfg_);
  if (!ports_.files->read(cfg_.daemon.statePath(), text))
    if (auto saved = parseState(text, &err); saved && !saved->ownedPriorities.empty()) {
      // (The state file's protected_ranges are not taken as in force: a predecessor killed
      // between moving its policies and writing the state file leaves a range there that it
      // had already given up; what is in force at start is what the kernel holds.)
      if (const auto earlier = owned.adopt(saved->ownedPriorities); !earlier.empty()) {
        std::string list;
        for (auto e : earlier) list += (list.empty() ? "" : ", ") + std::to_string(e);
        spdlog::info("policies at priority {} are this daemon's from an earlier configuration: they are moved to "
                     "{}/{}", list, owned.protectPriority(), owned.bypassPriority());
      }
    }
  ports_.policies->setOwnership(std::move(owned));
  // The IKE daemon may still be running from before a daemon restart: if the inputs it
  // was started with are remembered, don't restart it for nothing...
  if (!ports_.files->read(cfg_.daemon.statePath(), text))
    if (auto saved = parseState(text, &err); saved && !saved->ikeInputs.empty()) {
      reconciler_->assumeLastRestart(parseRfc3339(saved->lastRestart), saved->lastRestartResult,
                                     saved->lastActionReason);
      // ... but only if it IS running: its lifetime is not tied to ours (a crash, restart or
      // stop of ipop-ipsecd leaves it running), but it may have been stopped or died while no
      // ipop-ipsecd watched; then it is started again once IPOP is up. With control: command
      // there is nothing to ask.
      std::string ike = cfg_.ike.control == IkeControl::systemd ? ports_.ike->state() : std::string("active");
      if (cfg_.ike.control == IkeControl::systemd) reconciler_->ikeStateChanged(ike);
      if (ike == "active" || ike == "reloading") {
        // With what it runs: the restart and reload parts and the CRL, so that a new CRL is
        // loaded (not a restart) and judged against the one it really loaded.
        auto known = [](const std::string& s) { return s.empty() ? std::nullopt : std::optional<std::string>(s); };
        reconciler_->assumeIkeStarted(saved->ikeInputs, known(saved->ikeRestartInputs), known(saved->ikeReloadInputs));
        if (saved->ikeCrl)
          reconciler_->assumeCrlRunning(saved->ikeCrl->fingerprint, saved->ikeCrl->revoked,
                                        parseRfc3339(saved->ikeCrl->loadedAt));
      } else
        spdlog::info("{} is {}: it will be (re)started once IPOP is up", ports_.ike->name(), ike);
    }
}

}  // namespace ipopsec
