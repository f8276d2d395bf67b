#include "core/reconcile/reconciler.hpp"

#include <algorithm>

#include "core/policy/ownership.hpp"
#include "core/render/render_swanctl.hpp"

namespace ipopsec {

std::string joinRanges(const std::vector<Cidr>& ranges) {
  std::string s;
  for (const auto& r : ranges) s += (s.empty() ? "" : ",") + r.str();
  return s;
}

Reconciler::Reconciler(Config cfg, PolicyTable& policies, FileStore& files, CertificateInspector& certs,
                       IkeController& ike, Clock& clock, EventSink events, WallClock wall)
    : cfg_(std::move(cfg)),
      policies_(policies),
      files_(files),
      certs_(certs),
      ike_(ike),
      clock_(clock),
      events_(std::move(events)),
      wall_(std::move(wall)),
      scheduler_(cfg_.ike.quietPeriod, cfg_.ike.minInterval) {}

void Reconciler::setConfig(Config cfg) {
  cfg_ = std::move(cfg);
  certsStale_ = true;
  scheduler_.setTiming(cfg_.ike.quietPeriod, cfg_.ike.minInterval);
}

void Reconciler::assumeProtected(std::vector<Cidr> ranges) {
  std::sort(ranges.begin(), ranges.end());
  ranges.erase(std::unique(ranges.begin(), ranges.end()), ranges.end());
  committed_ = std::move(ranges);
}

void Reconciler::assumeRemembered(std::vector<Cidr> ranges) {
  std::sort(ranges.begin(), ranges.end());
  ranges.erase(std::unique(ranges.begin(), ranges.end()), ranges.end());
  provisional_ = std::move(ranges);
}

// Persists what the tap's addresses give (auto), so that the next start holds it from the
// beginning. Only confirmed ranges: the tap is up with an address, nothing is held.
void Reconciler::remember() {
  const Desired& d = status_.desired;
  if (!cfg_.protect.autoRanges || cfg_.daemon.rememberDir.empty() || d.heldRanges || !d.ipopUp) return;
  std::string want = "# ipop-ipsecd: the ranges the tap's addresses gave last (ranges: auto); held from the next start\n";
  bool any = false;
  for (const auto& r : status_.protectedRanges)
    if (std::binary_search(d.ranges.begin(), d.ranges.end(), r)) {
      want += r.str() + "\n";
      any = true;
    }
  if (!any) return;
  const std::string path = cfg_.daemon.rememberDir + "/" + Config::Daemon::kRememberFile;
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

void Reconciler::emit(Severity s, EventKind kind, std::string range, std::string message) {
  if (events_) events_(Event{s, kind, std::move(range), std::move(message)});
}

void Reconciler::changed() {
  judgeIke();
  if (onChange_) onChange_();
}

CertFiles Reconciler::readCerts() {
  // One read of the files: what is judged is exactly what the IKE inputs
  // fingerprint and what the backends copy.
  if (certsStale_) {
    certFacts_ = certs_.inspect(certificatePath(cfg_, cfg_.racoon.caCert),
                                certificatePath(cfg_, cfg_.racoon.hostCert),
                                certificatePath(cfg_, cfg_.racoon.hostKey),
                                cfg_.racoon.crl.empty() ? "" : certificatePath(cfg_, cfg_.racoon.crl));
    certHashFiles_.clear();
    // The daemon's own CRL copies now on disk, removed once no CRL is handed over: looked
    // for here, when the certificates are read again (a reload, an inotify event), not at
    // every reconcile. racoon: <CA hash>.r0 with the daemon's marker line; strongSwan: its
    // file in x509crl/ (a name only the daemon writes).
    crlCopies_.clear();
    std::string content;
    if (cfg_.ike.backend == IkeBackend::strongswan) {
      std::string path = cfg_.strongswan.swanctlDir + "/" + kSwanctlCrlFile;
      if (!files_.read(path, content)) crlCopies_.push_back(path);
    }
    if (cfg_.ike.backend == IkeBackend::racoon) {
      std::vector<std::string> hashes;
      for (const auto& ca : certFacts_.caCerts) {
        if (ca.subjectHash.empty()) continue;
        hashes.push_back(ca.subjectHash);
        std::string path = cfg_.racoon.certificateDir + "/" + ca.subjectHash + ".r0";
        if (!files_.read(path, content) && content.rfind(std::string(kHashCopyMarker), 0) == 0)
          crlCopies_.push_back(path);
      }
      certHashFiles_ = certs_.hashFiles(cfg_.racoon.certificateDir, hashes);
    }
    certsStale_ = false;
  }
  const CertFacts& facts = certFacts_;
  CertVerdict verdict = judgeCertificates(facts, certPolicyFor(cfg_), wall_());
  CertFiles c;
  if (facts.ca.loadError.empty()) c.ca = facts.ca.content;
  if (facts.cert.loadError.empty()) c.cert = facts.cert.content;
  if (facts.key.loadError.empty()) c.key = facts.key.content;
  if (facts.crl && facts.crl->file.loadError.empty()) {
    c.crl = facts.crl->file.content;
    c.crlRevoked = facts.crl->revokedSerials;
    // racoon looks a CRL up by its issuer's subject hash: the CA's.
    for (const auto& ca : facts.caCerts)
      if (!ca.subjectHash.empty() && ca.subject == facts.crl->issuer) {
        c.crlHashPath = cfg_.racoon.certificateDir + "/" + ca.subjectHash + ".r0";
        break;
      }
  }
  c.problems = std::move(verdict.errors);
  c.warnings = std::move(verdict.warnings);
  c.expiry = verdict.expiry;
  if (facts.ca.loadError.empty() && cfg_.ike.backend == IkeBackend::racoon) {
    // racoon's CA lookup: c_rehash's symlink (or an operator's copy) holding the CA is used
    // as it is; an entry for another CA blocks the IKE daemon like any certificate problem.
    HashFilePlan plan = planHashFiles(facts.caCerts, certHashFiles_, cfg_.racoon.certificateDir,
                                      certificatePath(cfg_, cfg_.racoon.caCert));
    c.caHashCopies = std::move(plan.copies);
    c.problems.insert(c.problems.end(), plan.problems.begin(), plan.problems.end());
  }
  for (const auto& e : certHashFiles_)
    if (e.owned) c.ownedHashCopies.push_back(e.path);
  c.ownedCrlCopies = crlCopies_;
  return c;
}

std::string Reconciler::conflictAdvice(const Policy& wanted, const std::optional<Policy>& other) const {
  if (!other) return "";
  std::string s = "; the kernel already holds " + other->str() + " with the same selector, which is not this daemon's";
  if (PolicyOwnership::isBackendDefault(other->priority))
    s += " (its priority is a default of ipop-ipsecd: probably left by this daemon under another configuration "
         "whose state is lost)";
  s += "; if nothing else needs it, remove it with: ip xfrm policy delete dir " + std::string(toString(wanted.dir)) +
       " src " + wanted.sel.src.str() + " dst " + wanted.sel.dst.str();
  return s;
}

bool Reconciler::applyPolicies(const Desired& d, const std::vector<Policy>& current) {
  PolicyDiff diff = diffPolicies(current, d.policies);
  // What stops plaintext first: protect out (the node's own sends), then protect in, then
  // the rest (bypasses, fwd). Every one of them still goes in before anything goes out.
  auto rank = [](const Policy& p) {
    if (p.action != PolicyAction::protect) return 3;
    return p.dir == Direction::out ? 0 : p.dir == Direction::in ? 1 : 2;
  };
  std::stable_sort(diff.add.begin(), diff.add.end(),
                   [&](const Policy& a, const Policy& b) { return rank(a) < rank(b); });
  bool ok = true;
  std::size_t installed = 0, removed = 0;
  // Make before break: every new policy goes in before any old one goes out. One batch:
  // the kernel takes them in this order.
  const std::vector<InstallResult> results = policies_.installAll(diff.add);
  for (std::size_t i = 0; i < diff.add.size(); ++i) {
    const Policy& p = diff.add[i];
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
    for (const auto& p : diff.remove) {
      if (auto ec = policies_.remove(p)) {
        ok = false;
        status_.lastError = "cannot remove policy " + p.str() + ": " + ec.message();
        emit(Severity::error, EventKind::policyRemoved, p.sel.dst.str(), status_.lastError);
      } else {
        ++removed;
        emit(Severity::debug, EventKind::policyRemoved, p.sel.dst.str(), "removed " + p.str());
      }
    }
  } else if (!diff.remove.empty()) {
    emit(Severity::warning, EventKind::policyRemoved, "",
         "keeping " + std::to_string(diff.remove.size()) + " old policies until the new ones are in (fail closed)");
  }
  // Read back: the status and the log say what the kernel holds, not what was attempted.
  std::vector<Policy> after;
  if (auto ec = policies_.list(after)) {
    status_.lastError = "cannot read back the kernel's policies: " + ec.message();
    emit(Severity::error, EventKind::kernelUnreadable, "", status_.lastError);
    ok = false;
    // Unknown: claim only what was read before and not touched since (not what was just
    // installed, nor what was just removed).
    after.clear();
    for (const auto& p : current) {
      auto touched = [&](const Policy& q) { return q.key() == p.key(); };
      if (std::none_of(diff.add.begin(), diff.add.end(), touched) &&
          std::none_of(diff.remove.begin(), diff.remove.end(), touched))
        after.push_back(p);
    }
  }
  status_.kernelPolicies = after;
  if (installed + removed > 0) {
    status_.lastChangeReaction = clock_.now() - reconcileStart_;
    status_.lastChange = wall_();
  }
  std::vector<Cidr> before = protectedRanges(current), now = protectedRanges(after);
  if (!diff.empty()) {
    std::vector<Cidr> gained, lost;
    std::set_difference(now.begin(), now.end(), before.begin(), before.end(), std::back_inserter(gained));
    std::set_difference(before.begin(), before.end(), now.begin(), now.end(), std::back_inserter(lost));
    std::string msg = "policies: " + std::to_string(installed) + " of " + std::to_string(diff.add.size()) +
                      " installed, " + std::to_string(removed) + " of " + std::to_string(diff.remove.size()) +
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
  {
    // Still in force: what was, and what the kernel protects now, as long as it is wanted.
    std::vector<Cidr> next;
    for (const auto& r : d.ranges)
      if ((std::binary_search(committed_.begin(), committed_.end(), r) || std::binary_search(now.begin(), now.end(), r)) &&
          !std::binary_search(provisional_.begin(), provisional_.end(), r))
        next.push_back(r);
    std::sort(next.begin(), next.end());
    committed_ = std::move(next);
  }
  std::vector<Policy> want = d.policies;
  std::sort(want.begin(), want.end());
  std::vector<Policy> have = after;
  std::sort(have.begin(), have.end());
  status_.policiesExact = (want == have);
  lastKernel_ = after;
  return ok && status_.policiesExact;
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
        certsStale_ = true;
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
      certsStale_ = true;
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
  std::string path = cfg_.daemon.stateDir + "/" + Config::Daemon::kIpopUpFile;
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

void Reconciler::reconcile(const NetSnapshot& net) {
  reconcileStart_ = clock_.now();
  status_.lastError.clear();
  std::vector<Policy> current;
  if (auto ec = policies_.list(current)) {
    // Without the kernel's picture nothing is decided; nothing is removed.
    status_.lastError = "cannot read the kernel's policies: " + ec.message();
    emit(Severity::error, EventKind::kernelUnreadable, "", status_.lastError);
  } else {
    // Policies the kernel held after the last apply and no longer holds: removed behind the
    // daemon's back (an operator's `ip xfrm policy flush`, another tool). Reinstalled below.
    std::vector<Policy> gone;
    {
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
      // The tap confirms a remembered range once it has an address in it.
      if (const LinkState* tap = net.byName(cfg_.ipop.interface))
        for (const auto& a : tap->addresses)
          std::erase_if(provisional_, [&](const Cidr& r) { return r.contains(a.address); });
      if (!cfg_.protect.autoRanges) provisional_.clear();
      // In force: what the kernel protects and what this daemon committed to. A remembered
      // range whose policies were already in the kernel when this run began is in force (a
      // daemon restart, not a reboot); one this run installed from the file stays provisional
      // until the tap confirms it.
      std::vector<Cidr> inForce = rangesOf(current);
      if (!provisionalChecked_) {
        std::erase_if(provisional_, [&](const Cidr& r) {
          return std::binary_search(inForce.begin(), inForce.end(), r);
        });
        provisionalChecked_ = true;
      }
      inForce.insert(inForce.end(), committed_.begin(), committed_.end());
      std::sort(inForce.begin(), inForce.end());
      inForce.erase(std::unique(inForce.begin(), inForce.end()), inForce.end());
      std::erase_if(inForce, [&](const Cidr& r) {
        return std::binary_search(provisional_.begin(), provisional_.end(), r);
      });
      // The policies first: the reaction to an address change is their installation, before
      // any certificate is judged or file rendered (those follow, below).
      d = desiredPolicies(cfg_, net, inForce, provisional_);
      // Remembered ranges stand in only until the tap gives ranges of its own: from then on
      // the tap's addresses decide (a remembered range it did not confirm goes, make before
      // break, like any range the tap no longer has).
      if (!d.heldRanges && !d.ranges.empty()) provisional_.clear();
    } catch (const std::exception& e) {
      // Validation should make this impossible; if it happens, change nothing.
      status_.lastError = std::string("cannot compute the desired state: ") + e.what();
      emit(Severity::error, EventKind::renderFailed, "", status_.lastError);
      changed();
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
    bool policiesOk = applyPolicies(d, current);
    CertFiles certs = readCerts();
    try {
      addDesiredFiles(d, cfg_, net, certs);
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
    // IPOP coming up (the tap appears, or comes back up, with its address) is a reason of
    // its own to (re)start the IKE daemon: the classic procedure's order. A change of the
    // address or range on a tap that stays up is not; only the files the IKE daemon reads
    // (ikeInputs) say whether it must restart then. The first observation after the daemon
    // itself started is not a transition (a running IKE daemon is adopted).
    // "Comes up" is the link: the tap appearing (a new ifindex) or going from down, or from
    // no carrier, to up with carrier. A DHCP renewal that drops the address and adds another
    // on a tap that stays up is an address change, applied by a reload or not at all.
    {
      const LinkState* tap = net.byName(cfg_.ipop.interface);
      bool linkUp = tap && tap->upWithCarrier();
      int index = tap ? tap->index : 0;
      std::uint64_t ups = tap ? tap->upCount : 0;
      if (ipopSeen_ && linkUp && (!tapLinkUp_ || index != tapIndex_ || ups != tapUpCount_)) tapCameUp_ = true;
      ipopSeen_ = true;
      tapLinkUp_ = linkUp;
      tapIndex_ = index;
      tapUpCount_ = ups;
      if (tapCameUp_ && d.ipopUp) {
        scheduler_.ipopCameUp();
        pendingReason_ = "IPOP came up at " + (d.localAddress ? d.localAddress->str() : std::string("?"));
        tapCameUp_ = false;
      }
    }
    status_.desired = std::move(d);
    remember();
    bool ready = status_.desired.ipopUp && policiesOk && filesOk && flagOk && status_.desired.certsUsable;
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

std::optional<Clock::time_point> Reconciler::deadline() const {
  auto r = scheduler_.deadline();
  for (const auto& at : {retryAt_, rememberAt_, larvalRetryAt_})
    if (at && (!r || *at < *r)) r = at;
  return r;
}

void Reconciler::acquired() {
  if (cfg_.ike.acquireRetry.count() <= 0 || larvalRetryAt_ || ikeActionUnderWay_) return;
  larvalRetryAt_ = clock_.now() + cfg_.ike.acquireRetry;
}

void Reconciler::removeLarval(EventKind kind, const std::string& what, const std::string& done) {
  const std::string ranges = joinRanges(status_.desired.ranges);
  if (auto ec = policies_.flushLarval(status_.desired.ranges))
    emit(Severity::warning, kind, ranges, "cannot remove " + what + ": " + ec.message());
  else
    emit(Severity::debug, kind, ranges, done);
}

void Reconciler::onTimer(const NetSnapshot& net) {
  auto now = clock_.now();
  if (rememberAt_ && now >= *rememberAt_) flushRemembered();
  if (larvalRetryAt_ && now >= *larvalRetryAt_) {
    larvalRetryAt_.reset();
    if (!ikeActionUnderWay_ && !status_.desired.ranges.empty())
      removeLarval(EventKind::acquireRetried, "larval states",
                   "removed the larval states of unanswered ACQUIREs: the next packet asks " + ike_.name() + " again");
  }
  if (retryAt_ && now >= *retryAt_) {
    retryAt_.reset();
    reconcile(net);
    now = clock_.now();
  }
  if (scheduler_.due(now)) startIkeAction();
}

}  // namespace ipopsec
