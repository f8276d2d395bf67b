#include "core/reconcile/cert_cache.hpp"

#include "core/render/render_swanctl.hpp"

namespace ipopsec {

CertFiles CertCache::read(const Config& cfg, const std::function<std::chrono::system_clock::time_point()>& wall) {
  // One read of the files: what is judged is exactly what the IKE inputs
  // fingerprint and what the backends copy.
  if (stale_) {
    facts_ = certs_.inspect(certificatePath(cfg, cfg.racoon.caCert),
                                certificatePath(cfg, cfg.racoon.hostCert),
                                certificatePath(cfg, cfg.racoon.hostKey),
                                cfg.racoon.crl.empty() ? "" : certificatePath(cfg, cfg.racoon.crl));
    hashFiles_.clear();
    // The daemon's own CRL copies now on disk, removed once no CRL is handed over: looked
    // for here, when the certificates are read again (a reload, an inotify event), not at
    // every reconcile. racoon: <CA hash>.r0 with the daemon's marker line; strongSwan: its
    // file in x509crl/ (a name only the daemon writes).
    crlCopies_.clear();
    std::string content;
    if (cfg.ike.backend == IkeBackend::strongswan) {
      std::string path = cfg.strongswan.swanctlDir + "/" + kSwanctlCrlFile;
      if (!files_.read(path, content)) crlCopies_.push_back(path);
    }
    if (cfg.ike.backend == IkeBackend::racoon) {
      std::vector<std::string> hashes;
      for (const auto& ca : facts_.caCerts) {
        if (ca.subjectHash.empty()) continue;
        hashes.push_back(ca.subjectHash);
        std::string path = cfg.racoon.certificateDir + "/" + ca.subjectHash + ".r0";
        if (!files_.read(path, content) && content.rfind(std::string(kHashCopyMarker), 0) == 0)
          crlCopies_.push_back(path);
      }
      hashFiles_ = certs_.hashFiles(cfg.racoon.certificateDir, hashes);
    }
    stale_ = false;
  }
  const CertFacts& facts = facts_;
  CertVerdict verdict = judgeCertificates(facts, certPolicyFor(cfg), wall());
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
        c.crlHashPath = cfg.racoon.certificateDir + "/" + ca.subjectHash + ".r0";
        break;
      }
  }
  c.problems = std::move(verdict.errors);
  c.warnings = std::move(verdict.warnings);
  c.expiry = verdict.expiry;
  c.recheckAt = verdict.nextChange;
  if (facts.ca.loadError.empty() && cfg.ike.backend == IkeBackend::racoon) {
    // racoon's CA lookup: c_rehash's symlink (or an operator's copy) holding the CA is used
    // as it is; an entry for another CA blocks the IKE daemon like any certificate problem.
    HashFilePlan plan = planHashFiles(facts.caCerts, hashFiles_, cfg.racoon.certificateDir,
                                      certificatePath(cfg, cfg.racoon.caCert));
    c.caHashCopies = std::move(plan.copies);
    c.problems.insert(c.problems.end(), plan.problems.begin(), plan.problems.end());
  }
  for (const auto& e : hashFiles_)
    if (e.owned) c.ownedHashCopies.push_back(e.path);
  c.ownedCrlCopies = crlCopies_;
  return c;
}

}  // namespace ipopsec
