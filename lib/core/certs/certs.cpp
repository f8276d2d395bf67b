#include "core/certs/certs.hpp"

#include <algorithm>
#include <ctime>
#include <map>

namespace ipopsec {
namespace {

std::string baseName(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string octal(unsigned mode) {
  std::string s;
  for (int shift = 9; shift >= 0; shift -= 3) s += static_cast<char>('0' + ((mode >> shift) & 7));
  return s;
}

long long daysBetween(WallTime from, WallTime to) {
  return std::chrono::duration_cast<std::chrono::hours>(to - from).count() / 24;
}

// Keeps in `next` the earliest instant after `now` at which a verdict that reads `t` may
// change: `t` itself (valid from, expired at, out of date at), and, for a `t` with a warning
// window, the instant just after t - k days (k = warningDays .. 1) where daysBetween(now, t)
// drops from k to k - 1 (the window opens at k = warningDays, the message's "in N days").
void keepNextChange(std::optional<WallTime>& next, WallTime now, WallTime t, int warningDays) {
  if (now >= t) return;
  WallTime c = t;
  const auto day = std::chrono::duration_cast<WallTime::duration>(std::chrono::hours(24));
  if (warningDays > 0) {
    // The largest k <= warningDays with t - k days + 1 tick > now, i.e. k days <= t - now.
    const auto k = std::min<long long>(warningDays, (t - now) / day);
    if (k >= 1) c = t - k * day + WallTime::duration(1);
  }
  if (!next || c < *next) next = c;
}

bool isWeakDigest(const std::string& d) { return d == "SHA1" || d == "MD5" || d == "MD4" || d == "MD2"; }

// The fix to name for a file that could not be loaded.
std::string loadFix(const std::string& which) {
  if (which == "ca") return "put the GroupVPN CA's certificate there (ipop-ipsecd pki issue copies it as cacert.pem)";
  if (which == "cert") return "put this node's certificate there (ipop-ipsecd pki issue --ca-dir DIR --ip ADDRESS --out DIR)";
  return "put this node's private key there (ipop-ipsecd pki issue writes it as host-key.pem, mode 0600)";
}

}  // namespace

std::string_view toString(KeyType t) {
  switch (t) {
    case KeyType::none: return "none";
    case KeyType::rsa: return "RSA";
    case KeyType::ec: return "EC";
    case KeyType::ed25519: return "Ed25519";
    case KeyType::ed448: return "Ed448";
    case KeyType::dsa: return "DSA";
    case KeyType::other: return "other";
  }
  return "other";
}

std::string formatUtc(WallTime t) {
  auto tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

CertPolicy certPolicyFor(const Config& cfg) {
  CertPolicy p;
  p.expiryWarningDays = cfg.certificates.expiryWarningDays;
  p.weak = cfg.certificates.weak;
  p.checkKeyOwner = cfg.certificates.checkKeyOwner;
  // ipsec-tools' racoon authenticates with rsasig only: an EC key cannot sign its IKE messages.
  p.rsaOnly = cfg.ike.backend == IkeBackend::racoon;
  p.crlNeedsKeyId = cfg.ike.backend == IkeBackend::strongswan;
  return p;
}

CertVerdict judgeCertificates(const CertFacts& f, const CertPolicy& policy, WallTime now) {
  CertVerdict v;
  auto& errors = v.errors;
  auto& warnings = v.warnings;
  const std::string caName = baseName(f.ca.path), certName = baseName(f.cert.path), keyName = baseName(f.key.path);

  auto weak = [&](const std::string& message) {
    if (policy.weak == WeakCertPolicy::refuse)
      errors.push_back(message + " (refused: certificates.weak is refuse)");
    else
      warnings.push_back(message);
  };

  // 1. Each file loads.
  const std::pair<const CertFileFacts*, const char*> files[] = {{&f.ca, "ca"}, {&f.cert, "cert"}, {&f.key, "key"}};
  for (const auto& [file, which] : files)
    if (!file->loadError.empty()) errors.push_back(file->path + " " + file->loadError + ": " + loadFix(which));

  // 2. The private key file: private, and root's (racoon refuses a key file owned by anyone else).
  if (f.key.statKnown) {
    if (f.key.mode & 0077)
      errors.push_back(keyName + " is readable by group/other (mode " + octal(f.key.mode) + "): chmod 600 " + f.key.path);
    if (policy.checkKeyOwner && f.key.uid != 0)
      errors.push_back(keyName + " is owned by uid " + std::to_string(f.key.uid) +
                       ", not root: racoon refuses a private key that root does not own; chown root:root " + f.key.path);
  }

  // 3. The host certificate itself.
  if (f.hostCert) {
    const CertInfo& c = *f.hostCert;
    v.expiry = c.notAfter;
    if (now < c.notBefore) {
      errors.push_back(certName + " is not valid before " + formatUtc(c.notBefore) +
                       " (not yet valid): check this node's clock, or issue a certificate that is valid now");
    } else if (now >= c.notAfter) {
      errors.push_back(certName + " expired on " + formatUtc(c.notAfter) +
                       ": issue a new one (ipop-ipsecd pki issue) and copy it to " + f.cert.path);
    } else if (daysBetween(now, c.notAfter) < policy.expiryWarningDays) {
      auto days = daysBetween(now, c.notAfter);
      warnings.push_back(certName + " expires on " + formatUtc(c.notAfter) + " (in " + std::to_string(days) +
                         (days == 1 ? " day" : " days") + "): issue a new one (ipop-ipsecd pki issue) and copy it to " +
                         f.cert.path);
    }
    if (c.subjectAltNames.empty())
      errors.push_back(certName + " has no subjectAltName: racoon needs it to match a peer's identity; issue one "
                                  "with the node's VPN address (ipop-ipsecd pki issue --ip ADDRESS)");
    if (c.hasKeyUsage && !c.keyUsageDigitalSignature)
      errors.push_back(certName + " has a keyUsage without digitalSignature, so its key may not sign IKE messages; "
                                  "issue one with digitalSignature (ipop-ipsecd pki issue)");
    if (!c.extendedKeyUsage.empty()) {
      static const std::vector<std::string> ok{"serverAuth", "clientAuth", "ipsecIKE", "anyExtendedKeyUsage",
                                               "ipsecEndSystem", "ipsecUser"};
      bool any = std::any_of(c.extendedKeyUsage.begin(), c.extendedKeyUsage.end(), [&](const std::string& e) {
        return std::find(ok.begin(), ok.end(), e) != ok.end();
      });
      if (!any)
        warnings.push_back(certName + " has an extendedKeyUsage without serverAuth, clientAuth or ipsecIKE: some "
                                      "IKE peers will reject it");
    }
    if (policy.rsaOnly && c.keyType != KeyType::rsa)
      errors.push_back(certName + " has a" + (c.keyType == KeyType::ec ? "n " : " ") + std::string(toString(c.keyType)) +
                       " key: racoon signs with RSA only; issue an RSA certificate (ipop-ipsecd pki issue --key rsa)");
    if (c.keyType == KeyType::rsa && c.keyBits > 0 && c.keyBits < 2048)
      weak(certName + " has a weak " + std::to_string(c.keyBits) + "-bit RSA key: issue one with at least 2048 bits");
    if (isWeakDigest(c.signatureDigest))
      weak(certName + " is signed with " + c.signatureDigest + " (" + c.signatureAlgorithm +
           "), which is broken: issue one signed with SHA-256");
  }

  // 4. The CA certificates.
  for (const auto& ca : f.caCerts) {
    std::string who = caName + " (" + ca.subject + ")";
    if (now >= ca.notAfter)
      errors.push_back(who + " expired on " + formatUtc(ca.notAfter) +
                       ": every certificate it signed is invalid; create a new CA (ipop-ipsecd pki init-ca) and "
                       "re-issue the nodes' certificates");
    else if (now < ca.notBefore)
      errors.push_back(who + " is not valid before " + formatUtc(ca.notBefore) +
                       " (not yet valid): check this node's clock");
    else if (daysBetween(now, ca.notAfter) < policy.expiryWarningDays)
      warnings.push_back(who + " expires on " + formatUtc(ca.notAfter) +
                         ": create a new CA and re-issue the nodes' certificates before then");
    if (ca.keyType == KeyType::rsa && ca.keyBits > 0 && ca.keyBits < 2048)
      weak(who + " has a weak " + std::to_string(ca.keyBits) + "-bit RSA key: create a CA with at least 2048 bits");
  }

  // 5. The chain and the key.
  if (f.chainChecked && !f.chainOk) {
    if (f.chainError.find("issuer") != std::string::npos)
      errors.push_back(certName + " is not signed by " + caName + ": " + f.chainError +
                       "; install the CA that issued it as " + f.ca.path + ", or issue it with this CA");
    else
      errors.push_back(certName + " does not verify against " + caName + ": " + f.chainError);
  }
  if (f.keyMatchesCert && !*f.keyMatchesCert)
    errors.push_back(keyName + " does not match " + certName +
                     ": the key belongs to another certificate; install the key issued with this certificate");

  // 6. The CRL: the IKE daemon enforces it, so it must be the CA's, current, and must not
  // revoke this node itself (an IKE daemon restarted onto it could reach no peer).
  if (f.crl) {
    const CrlFacts& crl = *f.crl;
    const std::string crlName = baseName(crl.file.path);
    if (!crl.file.loadError.empty()) {
      errors.push_back(crl.file.path + " " + crl.file.loadError +
                       ": install the CRL made with `ipop-ipsecd pki crl`, or remove racoon.crl from the config");
    } else {
      if (!crl.signatureChecked)
        errors.push_back(crlName + " is issued by " + crl.issuer + ", not by the CA in " + caName +
                         ": install the CRL of this GroupVPN's CA (ipop-ipsecd pki crl)");
      else if (!crl.signedByCa)
        errors.push_back(crlName + "'s signature does not verify with the key of " + caName +
                         ": it is forged or damaged; make it again with `ipop-ipsecd pki crl`");
      else if (policy.crlNeedsKeyId && !crl.authorityKeyIdIsCas)
        // Fail closed: an operator who distributed this CRL believes the nodes in it are shut
        // out, and strongSwan would accept them.
        errors.push_back(crlName + (crl.hasAuthorityKeyId ? " names another key than " + caName + "'s in its authorityKeyIdentifier"
                                                          : " has no authorityKeyIdentifier") +
                         ": strongSwan looks a CRL up by it only, so it would load this one and never consult it "
                         "(revoked nodes accepted); make it again with `ipop-ipsecd pki crl` (or `openssl ca -gencrl` with "
                         "authorityKeyIdentifier=keyid:always in its crl_extensions)");
      if (crl.nextUpdate && now >= *crl.nextUpdate)
        errors.push_back(crlName + " is out of date since " + formatUtc(*crl.nextUpdate) +
                         " (its nextUpdate): make a new one (ipop-ipsecd pki crl) and copy it to " + crl.file.path);
      else if (crl.nextUpdate && daysBetween(now, *crl.nextUpdate) < policy.expiryWarningDays) {
        auto days = daysBetween(now, *crl.nextUpdate);
        warnings.push_back(crlName + " must be renewed by " + formatUtc(*crl.nextUpdate) + " (in " +
                           std::to_string(days) + (days == 1 ? " day" : " days") +
                           "): make a new one (ipop-ipsecd pki crl) and copy it to " + crl.file.path);
      }
      if (!f.hostSerial.empty() &&
          std::find(crl.revokedSerials.begin(), crl.revokedSerials.end(), f.hostSerial) != crl.revokedSerials.end())
        errors.push_back("this node's certificate " + certName + " (serial " + f.hostSerial + ") is REVOKED by " +
                         crlName + ": no peer will accept it; the IKE daemon is not restarted onto it. Enroll this "
                         "node again (ipop-ipsecd pki request / pki sign) if it should stay in the GroupVPN");
    }
  }

  bool complete = f.ca.loadError.empty() && f.cert.loadError.empty() && f.key.loadError.empty() && f.hostCert &&
                  !f.caCerts.empty() && f.chainChecked && f.keyMatchesCert.has_value();
  if (errors.empty() && !complete)
    errors.push_back(f.cert.path + " could not be checked completely against " + f.ca.path + " and " + f.key.path);
  v.usable = errors.empty();
  // Every instant the judgement above reads (3., 4. and the CRL's nextUpdate).
  if (f.hostCert) {
    keepNextChange(v.nextChange, now, f.hostCert->notBefore, 0);
    keepNextChange(v.nextChange, now, f.hostCert->notAfter, policy.expiryWarningDays);
  }
  for (const auto& ca : f.caCerts) {
    keepNextChange(v.nextChange, now, ca.notBefore, 0);
    keepNextChange(v.nextChange, now, ca.notAfter, policy.expiryWarningDays);
  }
  if (f.crl && f.crl->nextUpdate) keepNextChange(v.nextChange, now, *f.crl->nextUpdate, policy.expiryWarningDays);
  return v;
}

namespace {

std::string subjectsOf(const std::vector<CertInfo>& certs) {
  std::string s;
  for (std::size_t i = 0; i < certs.size() && i < 3; ++i)
    s += (s.empty() ? "" : "; ") + (certs[i].subject.empty() ? std::string("no subject") : certs[i].subject);
  if (certs.size() > 3) s += "; and " + std::to_string(certs.size() - 3) + " more";
  return s;
}

// The problem with an operator's hash entry that does not hold the CA certificate: the
// file, what it holds, and how to fix it (the daemon never writes through nor removes it).
std::string foreignHashEntry(const HashFileFacts& e, const CertInfo& want, const std::string& dir,
                             const std::string& caPath) {
  const std::string rehash = "`openssl rehash " + dir + "`";
  if (e.symlink && e.dangling)
    return e.path + " is a dangling symlink (to " + e.target +
           ", which does not exist): racoon's CA lookup stops there; remove it, or run " + rehash;
  std::string who = e.symlink ? e.path + " is a symlink to " + e.target + ", which" : e.path;
  if (!e.loadError.empty() || e.certs.empty())
    return who + " is not a certificate (it " + (e.loadError.empty() ? std::string("holds none") : e.loadError) +
           "): racoon's CA lookup stops there; " +
           (e.symlink ? "remove the link, or run " + rehash : std::string("remove it")) +
           " (ipop-ipsecd then writes its own copy of " + caPath + ")";
  return who + " holds another CA's certificate (" + subjectsOf(e.certs) + "), not the one in " + caPath + " (" +
         want.subject + "): racoon would look its CA up there; " +
         (e.symlink ? "remove the link, or point it at the current CA certificate (" + rehash +
                          " remakes the links once the old CA's file is gone)"
                    : std::string("remove it (ipop-ipsecd then writes its own copy of ") + caPath +
                          "), or replace it with the current CA certificate");
}

}  // namespace

HashFilePlan planHashFiles(const std::vector<CertInfo>& caCerts, const std::vector<HashFileFacts>& entries,
                           const std::string& dir, const std::string& caPath) {
  HashFilePlan plan;
  // The CA file's certificates by subject hash, in file order, each once.
  std::vector<std::string> hashes;
  std::map<std::string, std::vector<const CertInfo*>> wanted;
  for (const auto& c : caCerts) {
    if (c.subjectHash.empty() || c.pem.empty()) continue;
    auto& w = wanted[c.subjectHash];
    if (w.empty()) hashes.push_back(c.subjectHash);
    if (std::none_of(w.begin(), w.end(), [&](const CertInfo* x) { return x->pem == c.pem; })) w.push_back(&c);
  }
  for (const auto& hash : hashes) {
    const auto& want = wanted[hash];
    std::map<int, const HashFileFacts*> slots;
    for (const auto& e : entries)
      if (e.hash == hash && e.index >= 0) slots[e.index] = &e;
    // An operator's entry (c_rehash's symlink to cacert.pem, a bundle, a copy) that holds
    // a CA certificate serves racoon as it is; any other one is a problem.
    std::vector<bool> found(want.size(), false);
    int lastOperator = -1;
    for (const auto& [n, e] : slots) {
      if (e->owned) continue;
      lastOperator = n;
      bool holds = false;
      if (e->loadError.empty() && !e->dangling)
        for (const auto& c : e->certs)
          for (std::size_t i = 0; i < want.size(); ++i)
            if (c.pem == want[i]->pem) found[i] = holds = true;
      if (!holds) plan.problems.push_back(foreignHashEntry(*e, *want.front(), dir, caPath));
    }
    std::vector<const CertInfo*> missing;
    for (std::size_t i = 0; i < want.size(); ++i)
      if (!found[i]) missing.push_back(want[i]);
    // The daemon's copies go into the free slots and its own, from .0 on; the lookup stops
    // at the first missing slot, so a slot below an operator's entry is kept filled (with a
    // copy of the first CA certificate) even when nothing is missing.
    std::size_t next = 0;
    for (int n = 0;; ++n) {
      auto it = slots.find(n);
      if (it != slots.end() && !it->second->owned) continue;
      const CertInfo* c = nullptr;
      if (next < missing.size())
        c = missing[next++];
      else if (n < lastOperator)
        c = want.front();
      else
        break;
      plan.copies.emplace_back(dir + "/" + hash + "." + std::to_string(n), c->pem);
    }
  }
  return plan;
}

}  // namespace ipopsec
