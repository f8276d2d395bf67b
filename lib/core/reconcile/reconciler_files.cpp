// The file step: the certificates judged, the IKE daemon's files rendered and written (only
// those whose bytes change; fsync'ed by the FileStore), the ipop-up flag, the remembered
// auto ranges, and the IKE scheduler told whether the IKE daemon may run on those files.
// It follows the policy step (reconciler_policies.cpp) for the state that step applied
// last: the daemon runs it once no event is pending, so a burst of changes writes the files
// once, for its last state, and no change's policies wait behind another's file writes.
// Fail closed: the scheduler hears of inputs only once their files are written.

#include <algorithm>

#include "core/reconcile/reconciler.hpp"
#include "core/render/render_swanctl.hpp"

namespace ipopsec {

void Reconciler::reconcile(const NetSnapshot& net) {
  kernelChanged();  // read the kernel whole
  reconcilePolicies(net);
  reconcileFiles();
}

void Reconciler::reconcileFiles() {
  if (!filesPending_) return;
  filesPending_ = false;
  if (policyStep_ == PolicyStep::undecided) {  // the desired state could not be computed: change nothing
    changed();
    return;
  }
  if (policyStep_ == PolicyStep::applied) {
    Desired d = policyPart_;
    CertFiles certs = certCache_.read(cfg_, wall_);
    try {
      addDesiredFiles(d, cfg_, certs);
    } catch (const std::exception& e) {
      // Validation should make this impossible; if it happens, no file is touched.
      status_.lastError = std::string("cannot compute the desired files: ") + e.what();
      emit(Severity::error, EventKind::renderFailed, "", status_.lastError);
      changed();
      return;
    }
    if (certs.problems != lastCertProblems_) {
      for (const auto& p : certs.problems) emit(Severity::error, EventKind::certificateProblem, "", p);
      if (certs.problems.empty() && !lastCertProblems_.empty())
        emit(Severity::info, EventKind::certificatesUsable, "", "certificates are usable again");
      lastCertProblems_ = certs.problems;
    }
    if (certs.warnings != lastCertWarnings_) {
      for (const auto& w : certs.warnings) emit(Severity::warning, EventKind::certificateProblem, "", w);
      lastCertWarnings_ = certs.warnings;
    }
    bool filesOk = applyFiles(d);
    std::string waiting;
    if (d.ipopUp && !d.certsUsable)
      waiting = "not starting " + ike_.name() + ": " + (certs.problems.empty() ? "certificates unusable" : certs.problems.front());
    if (waiting != lastWaiting_ && !waiting.empty()) emit(Severity::warning, EventKind::certificateProblem, joinRanges(d.ranges), waiting);
    lastWaiting_ = waiting;
    // The IKE daemon's unit drop-in has ConditionPathExists on this flag: racoon or charon
    // started by anyone else (boot, an operator) before IPOP is up is skipped.
    bool flagOk = applyIpopUpFlag(d);
    // IPOP coming up (the tap appears, or comes back up, with its address: noteTap) is a
    // reason of its own to (re)start the IKE daemon: the classic procedure's order. A change
    // of the address or range on a tap that stays up is not; only the files the IKE daemon
    // reads (ikeInputs) say whether it must restart then.
    {
      if (tapCameUp_ && d.ipopUp) {
        scheduler_.ipopCameUp();
        pendingReason_ = "IPOP came up at " + (d.localAddress ? d.localAddress->str() : std::string("?"));
        tapCameUp_ = false;
      }
    }
    status_.desired = std::move(d);
    remember();
    bool ready = status_.desired.ipopUp && policiesOk_ && filesOk && flagOk && status_.desired.certsUsable;
    if (status_.desired.ikeRestartInputs && ike_.canReload())
      scheduler_.observe(ready, status_.desired.ikeInputs, *status_.desired.ikeRestartInputs, clock_.now(),
                         status_.desired.ikeInitiating, status_.desired.ikeReloadInputs);
    else
      scheduler_.observe(ready, status_.desired.ikeInputs, clock_.now());
    if (!scheduler_.pending()) pendingReason_.clear();  // what it was asked for is done or void
    // racoon reads <CA hash>.r0 at every verification of a peer: a new CRL with the revoked
    // set racoon runs with is in force once written, nothing to restart (desired.cpp).
    if (cfg_.ike.backend == IkeBackend::racoon && ready && crlRunning_ &&
        scheduler_.startedInputs() == status_.desired.ikeInputs && !scheduler_.inFlight() &&
        crlRunning_->first != status_.desired.ikeCrl && crlRunning_->second == status_.desired.ikeRevoked) {
      const bool removed = status_.desired.ikeCrl.empty();
      crlRunning_->first = status_.desired.ikeCrl;
      crlLoadedAt_ = wall_();
      emit(Severity::info, EventKind::ikeReloaded, joinRanges(status_.desired.ranges),
           removed ? "the CRL was removed from the configuration (it revoked nothing): " + ike_.name() +
                         " verifies peers without it, nothing restarted"
                   : "the new CRL is in force for " + ike_.name() +
                         " (revoked set unchanged): it reads it at its next verification of a peer, nothing restarted");
    }
    checkIke();
  }
  if (!status_.lastError.empty()) {
    ++applyFailures_;
    auto backoff = std::chrono::milliseconds(100) * (1 << std::min(applyFailures_, 9));  // 0.2 s .. ~51 s
    retryAt_ = clock_.now() + backoff;
  } else {
    applyFailures_ = 0;
    retryAt_.reset();
  }
  changed();
}

bool Reconciler::applyFiles(const Desired& d) {
  bool ok = true;
  for (const auto& f : d.files) {
    std::string current;
    const std::error_code readEc = files_.read(f.path, current);
    if (!readEc && current == f.content) continue;  // only when bytes change
    if (auto ec = files_.write(f.path, f.content, f.mode)) {
      ok = false;
      // A failed atomic write never touches what is there: say whether anything was.
      const bool hadFile = readEc != std::errc::no_such_file_or_directory && readEc != std::errc::not_a_directory;
      status_.lastError = "cannot write " + f.path + ": " + ec.message() +
                          (hadFile ? " (previous file kept)" : " (no previous file; nothing written)");
      if (ec == std::errc::too_many_symbolic_link_levels) {
        // A symlink appeared there since the certificate directory was read (c_rehash run
        // just now): never written through; the retry reads the directory again and uses
        // the link if it holds the CA certificate.
        status_.lastError = "cannot write " + f.path + ": it is a symlink now, which ipop-ipsecd never writes through";
        certCache_.stale();
      }
      emit(Severity::error, EventKind::fileWritten, joinRanges(d.ranges), status_.lastError);
    } else {
      emit(Severity::info, EventKind::fileWritten, joinRanges(d.ranges), "wrote " + f.path);
    }
  }
  for (const auto& path : d.staleOwnFiles) {
    std::string current;
    if (files_.read(path, current)) continue;  // already absent (or unreadable: left alone)
    if (auto ec = files_.remove(path)) {
      ok = false;
      status_.lastError = "cannot remove " + path + ": " + ec.message();
      emit(Severity::error, EventKind::fileWritten, joinRanges(d.ranges), status_.lastError);
    } else {
      emit(Severity::info, EventKind::fileWritten, joinRanges(d.ranges), "removed " + path + " (no longer wanted)");
    }
  }
  for (const auto& path : d.staleFiles) {
    // Only the daemon's own copy is removed: if an operator put something else there since
    // the directory was read (c_rehash's symlink), it is theirs; read again next time.
    std::string current;
    if (!files_.read(path, current) && current.rfind(std::string(kHashCopyMarker), 0) != 0) {
      certCache_.stale();
      continue;
    }
    if (auto ec = files_.remove(path)) {
      ok = false;
      status_.lastError = "cannot remove " + path + ": " + ec.message();
      emit(Severity::error, EventKind::fileWritten, joinRanges(d.ranges), status_.lastError);
    } else {
      emit(Severity::info, EventKind::fileWritten, joinRanges(d.ranges), "removed stale " + path);
    }
  }
  return ok;
}

bool Reconciler::applyIpopUpFlag(const Desired& d) {
  std::string path = cfg_.daemon.ipopUpPath();
  if (d.ipopUp) {
    std::string want = d.localAddress->str() + "\n", have;
    if (!files_.read(path, have) && have == want) return true;
    if (auto ec = files_.write(path, want, 0644)) {
      status_.lastError = "cannot write " + path + ": " + ec.message();
      emit(Severity::error, EventKind::fileWritten, "", status_.lastError);
      return false;
    }
    return true;
  }
  if (auto ec = files_.remove(path)) {
    status_.lastError = "cannot remove " + path + ": " + ec.message();
    emit(Severity::error, EventKind::fileWritten, "", status_.lastError);
    return false;
  }
  return true;
}

// Persists what the tap's addresses give (auto), so that the next start holds it from the
// beginning. Only confirmed ranges: the tap is up with an address, nothing is held.
void Reconciler::remember() {
  const Desired& d = status_.desired;
  if (!cfg_.protect.autoRanges || cfg_.daemon.rememberDir.empty() || d.heldRanges || !d.ipopUp) return;
  const std::vector<Cidr> confirmed = RangeMemory::toRemember(d.ranges, status_.protectedRanges);
  if (confirmed.empty()) return;
  const std::string want = renderRememberedRanges(confirmed);
  const std::string path = cfg_.daemon.rememberPath();
  if (!remembered_ || rememberedPath_ != path) {
    std::string have;
    remembered_ = files_.read(path, have) ? std::string() : have;
    rememberedPath_ = path;
  }
  if (*remembered_ == want) {
    rememberAt_.reset();
    return;
  }
  // A persistent, fsync'ed file that only the next start reads: written once the ranges
  // have been stable for a moment, not at every change of a flapping tap (which would put
  // an fsync between two reactions). Coalesce the expensive, not the cheap.
  if (pendingRemember_ != want) {
    pendingRemember_ = want;
    rememberAt_ = clock_.now() + kRememberDelay;
  }
}

void Reconciler::flushRemembered() {
  if (!rememberAt_) return;
  rememberAt_.reset();
  // Not an error of the node's protection: only the next start's head start is at stake.
  if (auto ec = files_.write(rememberedPath_, pendingRemember_, 0644)) {
    emit(Severity::warning, EventKind::fileWritten, "", "cannot remember the auto ranges in " + rememberedPath_ + ": " + ec.message());
    return;
  }
  remembered_ = pendingRemember_;
}

}  // namespace ipopsec
