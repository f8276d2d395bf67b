#include "pki/pki.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <filesystem>

#include "os/files/file_store.hpp"

namespace ipopsec {
namespace {


std::string readAll(const std::string& path, const std::string& what) {
  AtomicFileStore fs;
  std::string content;
  if (auto ec = fs.read(path, content)) throw PkiError(path + " (" + what + "): " + ec.message());
  return content;
}

void ensureDir(const std::string& dir, unsigned mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return;
  if (std::filesystem::exists(dir, ec)) throw PkiError(dir + " exists and is not a directory");
  std::filesystem::create_directories(dir, ec);
  if (ec) throw PkiError("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), mode);
}

void writeFile(const std::string& path, const std::string& content, unsigned mode) {
  AtomicFileStore fs;
  if (auto ec = fs.write(path, content, mode)) throw PkiError("cannot write " + path + ": " + ec.message());
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

void addExt(X509* x, X509V3_CTX* ctx, int nid, const std::string& value) {
  CHandle<X509_EXTENSION, X509_EXTENSION_free> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(x, ext.get(), -1) != 1)
    throw PkiError(std::string("cannot add the ") + OBJ_nid2sn(nid) + " extension '" + value + "': " + opensslError());
}

void setTime(ASN1_TIME* field, std::chrono::system_clock::time_point t) {
  if (!ASN1_TIME_set(field, std::chrono::system_clock::to_time_t(t)))
    throw PkiError("cannot set a validity date: " + opensslError());
}

bool isIp(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

// --- issuance ---------------------------------------------------------------------------

EvpPkeyPtr generateKey(KeyKind kind, int rsaBits) {
  EVP_PKEY* k = kind == KeyKind::rsa ? EVP_RSA_gen(static_cast<unsigned>(rsaBits)) : EVP_EC_gen("P-256");
  if (!k) throw PkiError("cannot generate the key: " + opensslError());
  return EvpPkeyPtr(k);
}

X509Ptr makeCertificate(const CertSpec& spec, EVP_PKEY* subjectKey, X509* issuer, EVP_PKEY* issuerKey) {
  X509Ptr x(X509_new());
  if (!x) throw PkiError("cannot allocate a certificate: " + opensslError());
  if (!issuer) issuerKey = subjectKey;
  X509_set_version(x.get(), X509_VERSION_3);
  CHandle<BIGNUM, BN_free> serial(BN_new());
  if (!serial || BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get())))
    throw PkiError("cannot make a random serial number: " + opensslError());
  setTime(X509_getm_notBefore(x.get()), spec.notBefore);
  setTime(X509_getm_notAfter(x.get()), spec.notAfter);
  X509_NAME* name = X509_get_subject_name(x.get());
  auto add = [&](const char* field, const std::string& value) {
    if (!value.empty() &&
        X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()),
                                   -1, -1, 0) != 1)
      throw PkiError(std::string("cannot set ") + field + "='" + value + "': " + opensslError());
  };
  add("O", spec.organization);
  add("CN", spec.commonName);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);
  if (X509_set_pubkey(x.get(), subjectKey) != 1) throw PkiError("cannot set the public key: " + opensslError());

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
  bool rsa = keyTypeOf(subjectKey) == KeyType::rsa;
  if (spec.ca) {
    addExt(x.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    addExt(x.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExt(x.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    if (spec.hostUsages) {
      addExt(x.get(), &ctx, NID_key_usage, rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
      addExt(x.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    }
  }
  std::string san;
  for (const auto& ip : spec.ips) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  for (const auto& d : spec.dns) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  if (!san.empty()) addExt(x.get(), &ctx, NID_subject_alt_name, san);
  addExt(x.get(), &ctx, NID_subject_key_identifier, "hash");
  addExt(x.get(), &ctx, NID_authority_key_identifier, issuer ? "keyid:always" : "keyid");

  const EVP_MD* md = EVP_get_digestbyname(spec.digest.c_str());
  if (!md) throw PkiError("unknown digest '" + spec.digest + "'");
  if (X509_sign(x.get(), issuerKey, md) <= 0) throw PkiError("cannot sign the certificate: " + opensslError());
  ERR_clear_error();
  return x;
}


std::string privateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw PkiError("cannot encode the private key: " + opensslError());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

X509Ptr parseCertificatePem(const std::string& pem) {
  auto bio = memBio(pem);
  X509* x = PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr);
  if (!x) throw PkiError("not a PEM certificate: " + opensslError());
  return X509Ptr(x);
}

EvpPkeyPtr parsePrivateKeyPem(const std::string& pem) {
  auto bio = memBio(pem);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr);
  if (!k) throw PkiError("not an unencrypted PEM private key: " + opensslError());
  return EvpPkeyPtr(k);
}

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

namespace {

// The checks on a node's names, wherever they come from (`issue`'s --ip/--dns, or a
// request's subjectAltName): `what` says which ("--ip", "host.csr: its subjectAltName IP").
void checkNames(const std::vector<std::string>& ips, const std::vector<std::string>& dns, const std::string& ipWhat,
                const std::string& dnsWhat) {
  for (const auto& ip : ips)
    if (!isIp(ip)) throw PkiError(ipWhat + " '" + ip + "' is not an IPv4 or IPv6 address");
  for (const auto& d : dns)
    if (d.empty() || d.find_first_of(" ,/\\\"'") != std::string::npos ||
        std::any_of(d.begin(), d.end(), [](unsigned char c) { return c < 0x21 || c > 0x7e; }))
      throw PkiError(dnsWhat + " '" + d + "' is not a DNS name");
}

void checkDays(int days) {
  if (days < 1 || days > 36500) throw PkiError("--days must be from 1 to 36500");
}

}  // namespace

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

namespace {

// Refuses to overwrite `files` (unless force) and a cacert.pem that is not this CA's.
void checkOverwrite(const std::vector<std::string>& files, const std::string& outCa, const std::string& caPem,
                    bool force) {
  if (force) return;
  for (const auto& p : files)
    if (exists(p)) throw PkiError(p + " already exists: refusing to overwrite it; use --force to replace it");
  if (!outCa.empty() && exists(outCa)) {
    AtomicFileStore fs;
    std::string have;
    if (fs.read(outCa, have) || have != caPem)
      throw PkiError(outCa + " already exists and is not this CA's certificate: refusing to overwrite it; use --force");
  }
}

// The one issuing path (`pki issue` and `pki sign`): a node certificate for `subjectKey`
// with the names as subjectAltName, the first DNS name (else the first IP) as CN, valid
// from an hour ago for `days` days but never past the CA.
X509Ptr issueNodeCertificate(const LoadedCa& ca, EVP_PKEY* subjectKey, const std::vector<std::string>& ips,
                             const std::vector<std::string>& dns, int days) {
  auto now = std::chrono::system_clock::now();
  CertSpec spec;
  spec.commonName = !dns.empty() ? dns.front() : ips.front();
  spec.ips = ips;
  spec.dns = dns;
  spec.notBefore = now - std::chrono::hours(1);                                   // tolerate clock skew
  spec.notAfter = std::min(now + std::chrono::hours(24) * days, ca.info.notAfter);  // never outlive the CA
  return makeCertificate(spec, subjectKey, ca.cert.get(), ca.key.get());
}

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

// --- enrollment -------------------------------------------------------------------------

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
