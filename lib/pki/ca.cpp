// The CA directory of pki.hpp: `pki init-ca` makes it, loadCa reads and checks it, and
// `pki issue` makes a node's key and certificate from it.

#include "pki/pki.hpp"

#include <openssl/err.h>

#include <filesystem>

#include "pki/node_certificate.hpp"
#include "pki/pki_files.hpp"

namespace ipopsec {

using pki::checkDays;
using pki::checkNames;
using pki::checkOverwrite;
using pki::ensureDir;
using pki::exists;
using pki::issueNodeCertificate;
using pki::readAll;
using pki::writeFile;

std::vector<std::string> initCa(const CaRequest& req) {
  if (req.dir.empty()) throw PkiError("--dir is required: the directory for the CA's cacert.pem and ca-key.pem");
  if (req.name.empty()) throw PkiError("--name must not be empty");
  if (req.days < 1 || req.days > 36500) throw PkiError("--days must be from 1 to 36500");
  std::string certPath = req.dir + "/cacert.pem", keyPath = req.dir + "/ca-key.pem";
  if (!req.force)
    for (const auto& p : {keyPath, certPath})
      if (exists(p))
        throw PkiError(p + " already exists: refusing to overwrite a CA (every certificate it issued would stop "
                           "verifying); use --force to replace it");
  ensureDir(req.dir, 0700);
  auto key = generateKey(req.key);
  CertSpec spec;
  spec.commonName = req.name;
  spec.ca = true;
  auto now = std::chrono::system_clock::now();
  spec.notBefore = now - std::chrono::hours(1);  // tolerate a little clock skew between nodes
  spec.notAfter = now + std::chrono::hours(24) * req.days;
  auto cert = makeCertificate(spec, key.get(), nullptr, nullptr);
  writeFile(keyPath, privateKeyPem(key.get()), 0600);
  writeFile(certPath, certificatePem(cert.get()), 0644);
  return {certPath, keyPath};
}

LoadedCa loadCa(const std::string& caDir) {
  std::error_code ec;
  if (!std::filesystem::exists(caDir, ec))
    throw PkiError("CA directory " + caDir + " does not exist: create a CA first with 'ipop-ipsecd pki init-ca --dir " +
                   caDir + " --name \"GroupVPN CA\"'");
  if (!std::filesystem::is_directory(caDir, ec)) throw PkiError("--ca-dir " + caDir + " is not a directory");
  LoadedCa ca;
  ca.certPath = caDir + "/cacert.pem";
  std::string caKeyPath = caDir + "/ca-key.pem";
  for (const auto& p : {ca.certPath, caKeyPath})
    if (!exists(p))
      throw PkiError(caDir + " is not a CA directory: " + p +
                     " does not exist ('ipop-ipsecd pki init-ca' makes cacert.pem and ca-key.pem)");
  ca.pem = readAll(ca.certPath, "the CA certificate");
  try {
    ca.cert = parseCertificatePem(ca.pem);
  } catch (const PkiError& e) {
    throw PkiError(ca.certPath + " is " + e.what());
  }
  try {
    ca.key = parsePrivateKeyPem(readAll(caKeyPath, "the CA key"));
  } catch (const PkiError& e) {
    throw PkiError(caKeyPath + " is " + e.what());
  }
  ca.info = infoOf(ca.cert.get());
  if (!ca.info.isCa) throw PkiError(ca.certPath + " is not a CA certificate (no basicConstraints CA:TRUE)");
  if (EVP_PKEY_eq(X509_get0_pubkey(ca.cert.get()), ca.key.get()) != 1) {
    ERR_clear_error();
    throw PkiError(caKeyPath + " does not match " + ca.certPath + ": the CA directory is inconsistent");
  }
  if (std::chrono::system_clock::now() >= ca.info.notAfter)
    throw PkiError("the CA " + ca.certPath + " expired on " + formatUtc(ca.info.notAfter) + ": create a new CA");
  return ca;
}

std::vector<std::string> issueHost(const HostRequest& req) {
  if (req.caDir.empty()) throw PkiError("--ca-dir is required: the CA directory made by 'ipop-ipsecd pki init-ca'");
  if (req.outDir.empty()) throw PkiError("--out is required: where to write host-cert.pem, host-key.pem and cacert.pem");
  if (req.ips.empty() && req.dns.empty())
    throw PkiError("give the node's VPN address with --ip ADDRESS (and optionally --dns NAME): it goes into the "
                   "subjectAltName racoon needs");
  checkNames(req.ips, req.dns, "--ip", "--dns");
  checkDays(req.days);
  LoadedCa ca = loadCa(req.caDir);

  std::string keyPath = req.outDir + "/host-key.pem", certPath = req.outDir + "/host-cert.pem",
              outCa = req.outDir + "/cacert.pem";
  checkOverwrite({keyPath, certPath}, outCa, ca.pem, req.force);
  ensureDir(req.outDir, 0755);
  auto key = generateKey(req.key);
  auto cert = issueNodeCertificate(ca, key.get(), req.ips, req.dns, req.days);
  writeFile(keyPath, privateKeyPem(key.get()), 0600);
  writeFile(certPath, certificatePem(cert.get()), 0644);
  writeFile(outCa, ca.pem, 0644);
  return {certPath, keyPath, outCa};
}

}  // namespace ipopsec
