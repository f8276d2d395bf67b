#include "core/reconciler.hpp"

#include <algorithm>
#include <ctime>

namespace ipopsec {
namespace {

std::string join(const std::vector<Cidr>& ranges) {
  std::string s;
  for (const auto& r : ranges) s += (s.empty() ? "" : ",") + r.str();
  return s;
}

std::string certPath(const Config& cfg, const std::string& name) {
  if (!name.empty() && name.front() == '/') return name;
  return cfg.racoon.certificateDir + "/" + name;
}

}  // namespace

bool NodeStatus::healthy() const {
  return desired.ipopUp && policiesExact && desired.refused.empty() && lastError.empty() &&
         restartFailures == 0 && desired.certsUsable;
}

Reconciler::Reconciler(Config cfg, PolicyTable& policies, FileStore& files, CertificateInspector& certs,
                       UnitManager& unit, Clock& clock, EventSink events, WallClock wall)
    : cfg_(std::move(cfg)),
      policies_(policies),
      files_(files),
      certs_(certs),
      unit_(unit),
      clock_(clock),
      events_(std::move(events)),
      wall_(std::move(wall)),
      scheduler_(cfg_.ike.quietPeriod, cfg_.ike.minInterval) {}

void Reconciler::setConfig(Config cfg) {
  cfg_ = std::move(cfg);
  certsStale_ = true;
  scheduler_.setTiming(cfg_.ike.quietPeriod, cfg_.ike.minInterval);
}

void Reconciler::emit(Severity s, std::string action, std::string range, std::string message) {
  if (events_) events_(Event{s, std::move(action), std::move(range), std::move(message)});
}

void Reconciler::changed() {
  if (onChange_) onChange_();
}

CertFiles Reconciler::readCerts() {
  // One read of the three files: what is judged is exactly what the IKE inputs
  // fingerprint and what the backends copy.
  if (certsStale_) {
    certFacts_ = certs_.inspect(certPath(cfg_, cfg_.racoon.caCert), certPath(cfg_, cfg_.racoon.hostCert),
                                certPath(cfg_, cfg_.racoon.hostKey));
    certHashCopies_ = cfg_.ike.backend == IkeBackend::racoon ? certs_.hashCopies(cfg_.racoon.certificateDir)
                                                              : std::vector<std::string>{};
    certsStale_ = false;
  }
  const CertFacts& facts = certFacts_;
  CertVerdict verdict = judgeCertificates(facts, certPolicyFor(cfg_), wall_());
  CertFiles c;
  if (facts.ca.loadError.empty()) c.ca = facts.ca.content;
  if (facts.cert.loadError.empty()) c.cert = facts.cert.content;
  if (facts.key.loadError.empty()) c.key = facts.key.content;
  c.problems = std::move(verdict.errors);
  c.warnings = std::move(verdict.warnings);
  c.expiry = verdict.expiry;
  if (facts.ca.loadError.empty())
    for (const auto& ca : facts.caCerts)
      if (!ca.subjectHash.empty()) c.caByHash.emplace_back(ca.subjectHash, ca.pem);
  c.ownedHashCopies = certHashCopies_;
  return c;
}

bool Reconciler::applyPolicies(const Desired& d, const std::vector<Policy>& current) {
  PolicyDiff diff = diffPolicies(current, d.policies);
  bool ok = true;
  // Make before break: every new policy goes in before any old one goes out.
  for (const auto& p : diff.add) {
    if (auto ec = policies_.install(p)) {
      ok = false;
      status_.lastError = "kernel refused policy " + p.str() + ": " + ec.message();
      emit(Severity::error, "install", p.sel.src.str(), status_.lastError);
    } else {
      emit(Severity::debug, "install", p.sel.src.str(), "installed " + p.str());
    }
  }
  if (ok) {
    for (const auto& p : diff.remove) {
      if (auto ec = policies_.remove(p)) {
        ok = false;
        status_.lastError = "cannot remove policy " + p.str() + ": " + ec.message();
        emit(Severity::error, "remove", p.sel.src.str(), status_.lastError);
      } else {
        emit(Severity::debug, "remove", p.sel.src.str(), "removed " + p.str());
      }
    }
  } else if (!diff.remove.empty()) {
    emit(Severity::warning, "remove", "",
         "keeping " + std::to_string(diff.remove.size()) + " old policies until the new ones are in (fail closed)");
  }
  if (!diff.empty()) {
    std::vector<Cidr> added, removed;
    for (const auto& p : diff.add)
      if (p.action == PolicyAction::protect && p.dir == Direction::out) added.push_back(p.sel.src);
    for (const auto& p : diff.remove)
      if (p.action == PolicyAction::protect && p.dir == Direction::out) removed.push_back(p.sel.src);
    std::string msg = "policies: " + std::to_string(diff.add.size()) + " installed, " +
                      (ok ? std::to_string(diff.remove.size()) : std::string("0")) + " removed";
    if (!added.empty()) msg += "; now protecting " + join(added);
    if (!removed.empty() && ok) msg += "; no longer protecting " + join(removed);
    emit(ok ? Severity::info : Severity::error, "policies", join(d.ranges), msg);
  }
  // Read back: the status reflects the kernel, not what we believe we did.
  status_.kernelPolicies.clear();
  if (auto ec = policies_.list(status_.kernelPolicies)) {
    status_.lastError = "cannot read back the kernel's policies: " + ec.message();
    ok = false;
  }
  std::vector<Policy> want = d.policies;
  std::sort(want.begin(), want.end());
  std::vector<Policy> have = status_.kernelPolicies;
  std::sort(have.begin(), have.end());
  status_.policiesExact = (want == have);
  return ok && status_.policiesExact;
}

bool Reconciler::applyFiles(const Desired& d) {
  bool ok = true;
  for (const auto& f : d.files) {
    std::string current;
    if (!files_.read(f.path, current) && current == f.content) continue;  // only when bytes change
    if (auto ec = files_.write(f.path, f.content, f.mode)) {
      ok = false;
      status_.lastError = "cannot write " + f.path + ": " + ec.message() + " (previous file kept)";
      emit(Severity::error, "write", join(d.ranges), status_.lastError);
    } else {
      emit(Severity::info, "write", join(d.ranges), "wrote " + f.path);
    }
  }
  for (const auto& path : d.staleFiles) {
    if (auto ec = files_.remove(path)) {
      ok = false;
      status_.lastError = "cannot remove " + path + ": " + ec.message();
      emit(Severity::error, "write", join(d.ranges), status_.lastError);
    } else {
      emit(Severity::info, "write", join(d.ranges), "removed stale " + path);
    }
  }
  return ok;
}

bool Reconciler::applyIpopUpFlag(const Desired& d) {
  std::string path = cfg_.daemon.stateDir + "/ipop-up";
  if (d.ipopUp) {
    std::string want = d.localAddress->str() + "\n", have;
    if (!files_.read(path, have) && have == want) return true;
    if (auto ec = files_.write(path, want, 0644)) {
      status_.lastError = "cannot write " + path + ": " + ec.message();
      emit(Severity::error, "write", "", status_.lastError);
      return false;
    }
    return true;
  }
  if (auto ec = files_.remove(path)) {
    status_.lastError = "cannot remove " + path + ": " + ec.message();
    emit(Severity::error, "write", "", status_.lastError);
    return false;
  }
  return true;
}

void Reconciler::reconcile(const NetSnapshot& net) {
  status_.lastError.clear();
  std::vector<Policy> current;
  if (auto ec = policies_.list(current)) {
    // Without the kernel's picture nothing is decided; nothing is removed.
    status_.lastError = "cannot read the kernel's policies: " + ec.message();
    emit(Severity::error, "list", "", status_.lastError);
  } else {
    CertFiles certs = readCerts();
    Desired d;
    try {
      d = computeDesired(cfg_, net, certs, rangesOf(current));
    } catch (const std::exception& e) {
      // Validation should make this impossible; if it happens, change nothing.
      status_.lastError = std::string("cannot compute the desired state: ") + e.what();
      emit(Severity::error, "render", "", status_.lastError);
      changed();
      return;
    }
    if (certs.problems != lastCertProblems_) {
      for (const auto& p : certs.problems) emit(Severity::error, "certificates", "", p);
      if (certs.problems.empty() && !lastCertProblems_.empty())
        emit(Severity::info, "certificates", "", "certificates are usable again");
      lastCertProblems_ = certs.problems;
    }
    if (certs.warnings != lastCertWarnings_) {
      for (const auto& w : certs.warnings) emit(Severity::warning, "certificates", "", w);
      lastCertWarnings_ = certs.warnings;
    }
    if (d.refused != lastRefused_) {
      for (const auto& r : d.refused) emit(Severity::error, "refuse", "", r);
      lastRefused_ = d.refused;
    }
    bool policiesOk = applyPolicies(d, current);
    bool filesOk = applyFiles(d);
    std::string waiting;
    if (d.ipopUp && !d.certsUsable)
      waiting = "not starting " + cfg_.ike.unit + ": " + (certs.problems.empty() ? "certificates unusable" : certs.problems.front());
    if (waiting != lastWaiting_ && !waiting.empty()) emit(Severity::warning, "certificates", join(d.ranges), waiting);
    lastWaiting_ = waiting;
    // The IKE daemon's unit drop-in has ConditionPathExists on this flag: racoon or charon
    // started by anyone else (boot, an operator) before IPOP is up is skipped.
    bool flagOk = applyIpopUpFlag(d);
    status_.desired = std::move(d);
    bool ready = status_.desired.ipopUp && policiesOk && filesOk && flagOk && status_.desired.certsUsable;
    if (status_.desired.ikeRestartInputs && reloader_)
      scheduler_.observe(ready, status_.desired.ikeInputs, *status_.desired.ikeRestartInputs, clock_.now());
    else
      scheduler_.observe(ready, status_.desired.ikeInputs, clock_.now());
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
  if (retryAt_ && (!r || *retryAt_ < *r)) r = retryAt_;
  return r;
}

void Reconciler::onTimer(const NetSnapshot& net) {
  auto now = clock_.now();
  if (retryAt_ && now >= *retryAt_) {
    retryAt_.reset();
    reconcile(net);
    now = clock_.now();
  }
  if (scheduler_.due(now)) startRestart();
}

void Reconciler::startRestart() {
  if (scheduler_.pendingAction() == IkeAction::reload && reloader_) {
    startReload();
    return;
  }
  scheduler_.begin(clock_.now());
  std::string ranges = join(status_.desired.ranges);
  emit(Severity::info, "restart", ranges, "restarting " + cfg_.ike.unit);
  unit_.restart([this, ranges](std::error_code ec, const std::string& detail) {
    scheduler_.finished(!ec, clock_.now());
    status_.restartFailures = scheduler_.consecutiveFailures();
    if (ec) {
      status_.lastRestartResult = "failed: " + (detail.empty() ? ec.message() : detail);
      emit(Severity::error, "restart", ranges,
           cfg_.ike.unit + " restart failed: " + (detail.empty() ? ec.message() : detail) + "; retrying with backoff");
    } else {
      status_.lastRestart = wall_();
      status_.lastRestartResult = "done";
      emit(Severity::info, "restart", ranges, cfg_.ike.unit + " restarted");
      // A packet that raced the restart left a larval state that would stall its
      // peer for ~30 s: drop those so the next packet triggers a fresh ACQUIRE.
      if (auto fe = policies_.flushLarval(status_.desired.ranges))
        emit(Severity::warning, "flush-larval", ranges, "cannot remove stale larval states: " + fe.message());
    }
    changed();
  });
}

void Reconciler::startReload() {
  scheduler_.begin(clock_.now());
  std::string ranges = join(status_.desired.ranges);
  emit(Severity::info, "reload", ranges, "loading the changed IKE configuration (" + cfg_.ike.unit + " keeps running)");
  reloader_->restart([this, ranges](std::error_code ec, const std::string& detail) {
    scheduler_.finished(!ec, clock_.now());
    status_.restartFailures = scheduler_.consecutiveFailures();
    if (ec) {
      status_.lastRestartResult = "reload failed: " + (detail.empty() ? ec.message() : detail);
      emit(Severity::error, "reload", ranges,
           "loading the IKE configuration failed: " + (detail.empty() ? ec.message() : detail) + "; restarting " +
               cfg_.ike.unit + " instead");
    } else {
      ++status_.reloads;
      emit(Severity::info, "reload", ranges, "IKE configuration loaded");
      if (auto fe = policies_.flushLarval(status_.desired.ranges))
        emit(Severity::warning, "flush-larval", ranges, "cannot remove stale larval states: " + fe.message());
    }
    changed();
  });
}

std::string Reconciler::statusLine() const {
  std::string s = describe(cfg_, status_.desired);
  if (status_.lastRestart) {
    auto t = std::chrono::system_clock::to_time_t(*status_.lastRestart);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    s += ", " + cfg_.ike.unit + " restarted " + buf + " UTC";
  } else if (scheduler_.inFlight()) {
    s += ", restarting " + cfg_.ike.unit;
  } else if (status_.desired.ipopUp && scheduler_.pending()) {
    s += ", " + cfg_.ike.unit + " restart pending";
  }
  if (status_.restartFailures) s += "; restart failing (" + status_.lastRestartResult + ")";
  if (!lastWaiting_.empty())
    s += "; " + lastWaiting_;
  else if (!status_.desired.certProblems.empty())
    s += "; certificate problem: " + status_.desired.certProblems.front();
  if (!status_.desired.certWarnings.empty()) {
    // The short form ("host-cert.pem expires on ... (in 12 days)"); the log has the fix.
    const std::string& w = status_.desired.certWarnings.front();
    s += "; certificate warning: " + w.substr(0, w.find(": "));
  }
  if (!status_.lastError.empty()) s += "; ERROR " + status_.lastError;
  return s;
}

}  // namespace ipopsec
