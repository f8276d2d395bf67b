// The X.509 building blocks of pki.hpp: keys, a certificate made and signed from a
// CertSpec, and their PEM encoding and parsing.

#include "pki/pki.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

namespace ipopsec {
namespace {

void addExt(X509* x, X509V3_CTX* ctx, int nid, const std::string& value) {
  CHandle<X509_EXTENSION, X509_EXTENSION_free> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(x, ext.get(), -1) != 1)
    throw PkiError(std::string("cannot add the ") + OBJ_nid2sn(nid) + " extension '" + value + "': " + opensslError());
}

void setTime(ASN1_TIME* field, std::chrono::system_clock::time_point t) {
  if (!ASN1_TIME_set(field, std::chrono::system_clock::to_time_t(t)))
    throw PkiError("cannot set a validity date: " + opensslError());
}

}  // namespace

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

}  // namespace ipopsec
