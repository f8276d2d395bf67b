#include "core/certs.hpp"

#include <algorithm>
#include <ctime>

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

  bool complete = f.ca.loadError.empty() && f.cert.loadError.empty() && f.key.loadError.empty() && f.hostCert &&
                  !f.caCerts.empty() && f.chainChecked && f.keyMatchesCert.has_value();
  if (errors.empty() && !complete)
    errors.push_back(f.cert.path + " could not be checked completely against " + f.ca.path + " and " + f.key.path);
  v.usable = errors.empty();
  return v;
}

}  // namespace ipopsec
