#include "pki/crl.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <sstream>

#include "os/files/file_store.hpp"
#include "os/openssl/crl_facts.hpp"
#include "os/openssl/openssl_support.hpp"
#include "pki/pki.hpp"

namespace ipopsec {
namespace {

using CrlPtr = CHandle<X509_CRL, X509_CRL_free>;

const std::vector<std::pair<std::string, int>>& reasonCodes() {
  static const std::vector<std::pair<std::string, int>> codes = {
      {"unspecified", CRL_REASON_UNSPECIFIED},
      {"keyCompromise", CRL_REASON_KEY_COMPROMISE},
      {"cACompromise", CRL_REASON_CA_COMPROMISE},
      {"affiliationChanged", CRL_REASON_AFFILIATION_CHANGED},
      {"superseded", CRL_REASON_SUPERSEDED},
      {"cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION},
  };
  return codes;
}

std::string readOrEmpty(const std::string& path, bool& found) {
  std::string content;
  auto ec = AtomicFileStore().read(path, content);
  found = !ec;
  if (ec && ec != std::errc::no_such_file_or_directory) throw PkiError("cannot read " + path + ": " + ec.message());
  return content;
}

void writeAtomically(const std::string& path, const std::string& content, unsigned mode) {
  if (auto ec = AtomicFileStore().write(path, content, mode)) throw PkiError("cannot write " + path + ": " + ec.message());
}

// Upper-case hex without leading zeros but one ("0" for zero): what serialHex gives.
std::string normalSerial(std::string hex) {
  if (hex.rfind("0x", 0) == 0 || hex.rfind("0X", 0) == 0) hex = hex.substr(2);
  std::transform(hex.begin(), hex.end(), hex.begin(), [](unsigned char c) { return std::toupper(c); });
  BIGNUM* raw = nullptr;
  if (hex.empty() || !std::all_of(hex.begin(), hex.end(), [](unsigned char c) { return std::isxdigit(c); }) ||
      hex.size() > 40 || BN_hex2bn(&raw, hex.c_str()) == 0)
    throw PkiError("'" + hex + "' is not a certificate serial number (hexadecimal, as `openssl x509 -serial` shows it)");
  CHandle<BIGNUM, BN_free> bn(raw);
  CHandle<ASN1_INTEGER, ASN1_INTEGER_free> i(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  return serialHex(i.get());
}

}  // namespace

const std::vector<std::string>& revocationReasons() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [name, code] : reasonCodes()) v.push_back(name);
    return v;
  }();
  return names;
}

std::vector<Revocation> readRevocations(const std::string& caDir) {
  const std::string path = caDir + "/revoked.txt";
  bool found = false;
  std::string text = readOrEmpty(path, found);
  std::vector<Revocation> out;
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string serial, reason;
    long long when = -1;
    if (!(fields >> serial >> when >> reason) || when < 0 ||
        std::find(revocationReasons().begin(), revocationReasons().end(), reason) == revocationReasons().end())
      throw PkiError(path + ":" + std::to_string(n) + ": not a revocation ('SERIAL UNIXTIME REASON'): " + line);
    try {
      serial = normalSerial(serial);
    } catch (const PkiError& e) {
      throw PkiError(path + ":" + std::to_string(n) + ": " + e.what());
    }
    out.push_back({serial, std::chrono::system_clock::from_time_t(static_cast<std::time_t>(when)), reason});
  }
  return out;
}

Revocation revokeCertificate(const RevokeRequest& req) {
  LoadedCa ca = loadCa(req.caDir);
  if (req.certPath.empty() == req.serial.empty())
    throw PkiError("give exactly one of --cert FILE or --serial HEX");
  if (std::find(revocationReasons().begin(), revocationReasons().end(), req.reason) == revocationReasons().end()) {
    std::string list;
    for (const auto& r : revocationReasons()) list += (list.empty() ? "" : ", ") + r;
    throw PkiError("--reason '" + req.reason + "' is not one of: " + list);
  }
  Revocation r;
  r.reason = req.reason;
  r.when = std::chrono::system_clock::now();
  if (!req.certPath.empty()) {
    bool found = false;
    std::string pem = readOrEmpty(req.certPath, found);
    if (!found) throw PkiError(req.certPath + " does not exist");
    X509Ptr cert;
    try {
      cert = parseCertificatePem(pem);
    } catch (const PkiError& e) {
      throw PkiError(req.certPath + " is " + e.what());
    }
    // Only this CA's certificates: a serial of another CA's certificate means nothing here.
    if (X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca.cert.get())) != 0 ||
        X509_verify(cert.get(), ca.key.get()) != 1) {
      ERR_clear_error();
      throw PkiError(req.certPath + " was not issued by the CA in " + ca.certPath + ": nothing to revoke here");
    }
    r.serial = serialHex(X509_get0_serialNumber(cert.get()));
  } else {
    r.serial = normalSerial(req.serial);
  }
  auto existing = readRevocations(req.caDir);
  for (const auto& e : existing)
    if (e.serial == r.serial)
      throw PkiError("serial " + r.serial + " is already revoked (" + formatUtc(e.when) + ", " + e.reason +
                     "); run `ipop-ipsecd pki crl` to publish it");
  const std::string path = req.caDir + "/revoked.txt";
  bool found = false;
  std::string text = readOrEmpty(path, found);
  if (!found) text = "# ipop-ipsecd pki revoke: SERIAL UNIXTIME REASON; published by `ipop-ipsecd pki crl`\n";
  text += r.serial + " " + std::to_string(std::chrono::system_clock::to_time_t(r.when)) + " " + r.reason + "\n";
  writeAtomically(path, text, 0644);
  return r;
}

CrlResult makeCrl(const CrlRequest& req) {
  if (req.days < 1 || req.days > 3650) throw PkiError("--days must be between 1 and 3650");
  if (req.outPath.empty()) throw PkiError("--out is required: the CRL file to write");
  LoadedCa ca = loadCa(req.caDir);
  auto revocations = readRevocations(req.caDir);
  CrlResult result;
  // The CRL number: one more than the last one this CA directory published.
  const std::string numberPath = req.caDir + "/crlnumber";
  bool found = false;
  std::string numberText = readOrEmpty(numberPath, found);
  long last = 0;
  if (found) {
    try {
      last = std::stol(numberText);
    } catch (const std::exception&) {
      throw PkiError(numberPath + ": not a number ('" + numberText + "'); it holds the last CRL number published");
    }
  }
  result.number = last + 1;
  auto now = std::chrono::system_clock::now();
  result.nextUpdate = now + std::chrono::hours(24) * req.days;

  CrlPtr crl(X509_CRL_new());
  CHandle<ASN1_TIME, ASN1_TIME_free> lastUpdate(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(now)));
  CHandle<ASN1_TIME, ASN1_TIME_free> nextUpdate(
      ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(result.nextUpdate)));
  if (!crl || !lastUpdate || !nextUpdate || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), lastUpdate.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), nextUpdate.get()) != 1)
    throw PkiError("cannot make the CRL: " + opensslError());
  for (const auto& r : revocations) {
    X509_REVOKED* entry = X509_REVOKED_new();
    BIGNUM* raw = nullptr;
    BN_hex2bn(&raw, r.serial.c_str());
    CHandle<BIGNUM, BN_free> bn(raw);
    CHandle<ASN1_INTEGER, ASN1_INTEGER_free> serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
    CHandle<ASN1_TIME, ASN1_TIME_free> when(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(r.when)));
    CHandle<ASN1_ENUMERATED, ASN1_ENUMERATED_free> reason(ASN1_ENUMERATED_new());
    int code = CRL_REASON_UNSPECIFIED;
    for (const auto& [name, c] : reasonCodes())
      if (name == r.reason) code = c;
    if (!entry || !serial || !when || !reason || X509_REVOKED_set_serialNumber(entry, serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry, when.get()) != 1 || ASN1_ENUMERATED_set(reason.get(), code) != 1 ||
        X509_REVOKED_add1_ext_i2d(entry, NID_crl_reason, reason.get(), 0, 0) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry) != 1) {
      X509_REVOKED_free(entry);
      throw PkiError("cannot add serial " + r.serial + " to the CRL: " + opensslError());
    }
    ++result.entries;
  }
  X509_CRL_sort(crl.get());
  // authorityKeyIdentifier (RFC 5280 5.2.1: a CRL issuer MUST include it). strongSwan looks a
  // certificate's CRL up only by it (keyId: the SHA-1 of the issuer's public key): a CRL
  // without it is never used, charon logs "certificate status is not available" and accepts
  // a revoked peer. The same keyId the inspector checks it against.
  const std::string id = keyId(ca.cert.get());
  CHandle<AUTHORITY_KEYID, AUTHORITY_KEYID_free> akid(AUTHORITY_KEYID_new());
  if (!akid || id.empty()) throw PkiError("cannot make the CRL: " + opensslError());
  akid->keyid = ASN1_OCTET_STRING_new();
  if (!akid->keyid ||
      ASN1_OCTET_STRING_set(akid->keyid, reinterpret_cast<const unsigned char*>(id.data()), static_cast<int>(id.size())) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_authority_key_identifier, akid.get(), 0, 0) != 1)
    throw PkiError("cannot add the authorityKeyIdentifier to the CRL: " + opensslError());
  CHandle<ASN1_INTEGER, ASN1_INTEGER_free> number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set(number.get(), result.number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1 ||
      X509_CRL_sign(crl.get(), ca.key.get(), EVP_sha256()) <= 0)
    throw PkiError("cannot sign the CRL with " + req.caDir + "/ca-key.pem: " + opensslError());
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509_CRL(out.get(), crl.get()) != 1) throw PkiError("cannot write the CRL: " + opensslError());
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  writeAtomically(req.outPath, std::string(data, static_cast<std::size_t>(n)), 0644);
  writeAtomically(numberPath, std::to_string(result.number) + "\n", 0644);
  return result;
}

}  // namespace ipopsec
