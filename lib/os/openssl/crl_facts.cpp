#include "os/openssl/crl_facts.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "os/openssl/openssl_support.hpp"

namespace ipopsec {

using CrlPtr = CHandle<X509_CRL, X509_CRL_free>;

// The key identifier strongSwan matches a CRL's authorityKeyIdentifier against: the SHA-1 of
// the CA's public key (RFC 5280 4.2.1.2 method 1, what `pki init-ca` puts in the CA's
// subjectKeyIdentifier). "" when it cannot be computed.
std::string keyId(X509* ca) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdLen = 0;
  if (X509_pubkey_digest(ca, EVP_sha1(), md, &mdLen) != 1) return "";
  return std::string(reinterpret_cast<const char*>(md), mdLen);
}

std::string serialHex(const ASN1_INTEGER* serial) {
  if (!serial) return "";
  CHandle<BIGNUM, BN_free> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return "";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  return out;
}

CrlFacts describeCrl(CertFileFacts file, const std::vector<X509*>& caCerts) {
  CrlFacts f;
  f.file = std::move(file);
  if (!f.file.loadError.empty()) return f;
  std::string labelError;
  auto labels = pemLabels(f.file.content, labelError);
  if (!labelError.empty()) {
    f.file.loadError = labelError;
    return f;
  }
  BioPtr bio = memBio(f.file.content);
  CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, noPassphrase, nullptr));
  if (!crl) {
    f.file.loadError = "holds no CRL (found " + (labels.empty() ? std::string("nothing") : describeLabels(labels)) +
                       "): " + opensslError("not a PEM X509 CRL");
    return f;
  }
  f.issuer = nameLine(X509_CRL_get_issuer(crl.get()));
  f.lastUpdate = toWall(X509_CRL_get0_lastUpdate(crl.get()));
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get())) f.nextUpdate = toWall(next);
  // authorityKeyIdentifier: strongSwan finds a certificate's CRL by it only (the SHA-1 of the
  // issuer's public key); without it, or with another key's, the CRL is never consulted.
  int critical = 0;
  CHandle<AUTHORITY_KEYID, AUTHORITY_KEYID_free> akid(static_cast<AUTHORITY_KEYID*>(
      X509_CRL_get_ext_d2i(crl.get(), NID_authority_key_identifier, &critical, nullptr)));
  f.hasAuthorityKeyId = akid && akid->keyid && ASN1_STRING_length(akid->keyid) > 0;
  for (X509* ca : caCerts)
    if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl.get())) == 0) {
      f.signatureChecked = true;
      if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca)) == 1) {
        f.signedByCa = true;
        const std::string id = keyId(ca);
        f.authorityKeyIdIsCas =
            f.hasAuthorityKeyId && !id.empty() &&
            id == std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(akid->keyid)),
                              static_cast<std::size_t>(ASN1_STRING_length(akid->keyid)));
        break;
      }
    }
  ERR_clear_error();
  const STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; revoked && i < sk_X509_REVOKED_num(revoked); ++i)
    f.revokedSerials.push_back(serialHex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))));
  return f;
}

}  // namespace ipopsec
