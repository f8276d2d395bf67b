// Enrollment in pki.hpp: the node's private key never leaves the node. `pki request`
// makes the key and a PKCS#10 request on the node; `pki sign` checks the request on the
// CA machine and issues the certificate exactly as `pki issue` does.

#include "pki/pki.hpp"

#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "pki/node_certificate.hpp"
#include "pki/pki_files.hpp"

namespace ipopsec {

using pki::checkDays;
using pki::checkNames;
using pki::checkOverwrite;
using pki::ensureDir;
using pki::issueNodeCertificate;
using pki::readAll;
using pki::writeFile;

namespace {

using ReqPtr = CHandle<X509_REQ, X509_REQ_free>;

// The subjectAltName a request asks for (IP and DNS entries); throws for any other kind.
void requestedNames(X509_REQ* req, const std::string& path, std::vector<std::string>& ips,
                    std::vector<std::string>& dns) {
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  GeneralNamesPtr names(
      exts ? static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr)) : nullptr);
  if (exts) sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  ERR_clear_error();
  if (!names || sk_GENERAL_NAME_num(names.get()) == 0)
    throw PkiError(path + " has no subjectAltName: racoon and strongSwan identify a node by it; make the request with "
                          "'ipop-ipsecd pki request --ip ADDRESS'");
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names.get(), i);
    if (g->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = g->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {};
      int af = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : -1;
      if (af < 0 || !::inet_ntop(af, ip->data, buf, sizeof buf))
        throw PkiError(path + ": its subjectAltName has a malformed IP address");
      ips.emplace_back(buf);
    } else if (g->type == GEN_DNS) {
      const ASN1_IA5STRING* d = g->d.dNSName;
      dns.emplace_back(reinterpret_cast<const char*>(d->data), static_cast<std::size_t>(d->length));
    } else {
      throw PkiError(path + ": its subjectAltName asks for a name that is not an IP address or a DNS name: only "
                            "those are certified");
    }
  }
  checkNames(ips, dns, path + ": its subjectAltName IP", path + ": its subjectAltName DNS");
}

// Refuses a request key that is too weak, or not RSA for racoon. Returns its description.
std::string checkRequestKey(EVP_PKEY* key, const std::string& path, bool rsaOnly) {
  KeyType type = keyTypeOf(key);
  int bits = EVP_PKEY_get_bits(key);
  if (type == KeyType::rsa) {
    if (bits < 2048)
      throw PkiError(path + " has a weak key: RSA " + std::to_string(bits) +
                     " bits, at least 2048 are needed (ipop-ipsecd pki request makes RSA 3072)");
    return "RSA " + std::to_string(bits) + " bits";
  }
  if (type == KeyType::ec) {
    char group[80] = {};
    std::size_t len = 0;
    std::string curve = EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1 ? group : "unknown";
    ERR_clear_error();
    if (curve != "prime256v1" && curve != "secp384r1" && curve != "secp521r1")
      throw PkiError(path + " has a weak or unsupported key: EC on curve " + curve +
                     ", P-256, P-384 or P-521 is needed");
    if (rsaOnly)
      throw PkiError(path + " has an EC key: racoon signs with RSA only; make the request with --key rsa (or use the "
                            "strongswan backend)");
    return "EC " + curve;
  }
  throw PkiError(path + " has a " + std::string(toString(type)) + " key: RSA (2048 bits or more) or EC P-256 is needed");
}

}  // namespace

std::string makeRequestPem(EVP_PKEY* key, const std::vector<std::string>& ips, const std::vector<std::string>& dns) {
  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1)
    throw PkiError("cannot allocate a certificate request: " + opensslError());
  std::string cn = !dns.empty() ? dns.front() : !ips.empty() ? ips.front() : "";
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (!cn.empty() && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) != 1)
    throw PkiError("cannot set CN='" + cn + "': " + opensslError());
  if (X509_REQ_set_pubkey(req.get(), key) != 1) throw PkiError("cannot set the public key: " + opensslError());
  std::string san;
  for (const auto& ip : ips) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  for (const auto& d : dns) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  if (!san.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    bool ok = ext && exts && sk_X509_EXTENSION_push(exts, ext) > 0;
    if (!ok) X509_EXTENSION_free(ext);
    ok = ok && X509_REQ_add_extensions(req.get(), exts) == 1;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (!ok) throw PkiError("cannot add the subjectAltName '" + san + "': " + opensslError());
  }
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) throw PkiError("cannot sign the request: " + opensslError());
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1)
    throw PkiError("cannot encode the request: " + opensslError());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  ERR_clear_error();
  return std::string(data, static_cast<std::size_t>(n));
}

std::vector<std::string> makeRequest(const NodeRequest& req) {
  if (req.outDir.empty()) throw PkiError("--out is required: where to write host-key.pem and host.csr");
  if (req.ips.empty() && req.dns.empty())
    throw PkiError("give the node's VPN address with --ip ADDRESS (and optionally --dns NAME): it goes into the "
                   "subjectAltName racoon needs");
  checkNames(req.ips, req.dns, "--ip", "--dns");
  std::string keyPath = req.outDir + "/host-key.pem", csrPath = req.outDir + "/host.csr";
  checkOverwrite({keyPath, csrPath}, "", "", req.force);
  ensureDir(req.outDir, 0755);
  auto key = generateKey(req.key);
  std::string csr = makeRequestPem(key.get(), req.ips, req.dns);
  writeFile(keyPath, privateKeyPem(key.get()), 0600);
  writeFile(csrPath, csr, 0644);
  return {keyPath, csrPath};
}

SignResult signRequest(const SignRequest& req) {
  if (req.caDir.empty()) throw PkiError("--ca-dir is required: the CA directory made by 'ipop-ipsecd pki init-ca'");
  if (req.csrPath.empty()) throw PkiError("--csr is required: the node's host.csr ('ipop-ipsecd pki request')");
  if (req.outDir.empty()) throw PkiError("--out is required: where to write host-cert.pem and cacert.pem");
  checkDays(req.days);

  // The request: read, parsed, its signature, its names, its key.
  const std::string& path = req.csrPath;
  std::string text = readAll(path, "the certificate request");
  if (text.size() > kMaxPemFileSize) throw PkiError(path + " is too large for a certificate request");
  std::string pemError;
  auto labels = pemLabels(text, pemError);
  if (std::any_of(labels.begin(), labels.end(),
                  [](const std::string& l) { return l.find("PRIVATE KEY") != std::string::npos; }))
    throw PkiError(path + " holds a private key: send only the request (host.csr); a node's key never leaves it. "
                          "Make a new key and request on the node ('ipop-ipsecd pki request --force')");
  bool isReq = std::any_of(labels.begin(), labels.end(), [](const std::string& l) {
    return l == "CERTIFICATE REQUEST" || l == "NEW CERTIFICATE REQUEST";
  });
  if (!isReq)
    throw PkiError(path + " is not a certificate request: " +
                   (!labels.empty() ? "it holds " + describeLabels(labels) + ", not a CERTIFICATE REQUEST"
                    : pemError.rfind("is a truncated", 0) == 0
                        ? "it " + pemError
                        : std::string("it is not PEM (no '-----BEGIN CERTIFICATE REQUEST-----' line)")) +
                   " (ipop-ipsecd pki request makes host.csr)");
  auto bio = memBio(text);
  ReqPtr csr(PEM_read_bio_X509_REQ(bio.get(), nullptr, noPassphrase, nullptr));
  if (!csr) throw PkiError(path + " is not a certificate request: it is damaged (" + opensslError() + ")");
  EVP_PKEY* pub = X509_REQ_get0_pubkey(csr.get());
  if (!pub) throw PkiError(path + " is not a usable certificate request: its public key cannot be read (" + opensslError() + ")");
  if (X509_REQ_verify(csr.get(), pub) != 1) {
    ERR_clear_error();
    throw PkiError(path + " has a bad signature: the request does not verify with its own key (damaged or altered on "
                          "the way); make a new one on the node");
  }
  ERR_clear_error();
  SignResult result;
  requestedNames(csr.get(), path, result.ips, result.dns);
  result.key = checkRequestKey(pub, path, req.rsaOnly);

  LoadedCa ca = loadCa(req.caDir);
  std::string certPath = req.outDir + "/host-cert.pem", outCa = req.outDir + "/cacert.pem";
  checkOverwrite({certPath}, outCa, ca.pem, req.force);
  ensureDir(req.outDir, 0755);
  auto cert = issueNodeCertificate(ca, pub, result.ips, result.dns, req.days);
  writeFile(certPath, certificatePem(cert.get()), 0644);
  writeFile(outCa, ca.pem, 0644);
  result.files = {certPath, outCa};
  return result;
}

}  // namespace ipopsec
