#include "os/openssl/openssl_support.hpp"

#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace ipopsec {
namespace {


std::vector<std::string> subjectAltNames(X509* x) {
  std::vector<std::string> out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names.get(), i);
    if (g->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = g->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {};
      int len = ASN1_STRING_length(ip);
      const unsigned char* data = ASN1_STRING_get0_data(ip);
      if (len == 4 && ::inet_ntop(AF_INET, data, buf, sizeof buf))
        out.push_back(std::string("IP:") + buf);
      else if (len == 16 && ::inet_ntop(AF_INET6, data, buf, sizeof buf))
        out.push_back(std::string("IP:") + buf);
      else
        out.push_back("IP:(malformed)");
    } else if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
      const ASN1_IA5STRING* s = g->type == GEN_DNS ? g->d.dNSName : g->type == GEN_EMAIL ? g->d.rfc822Name : g->d.uniformResourceIdentifier;
      std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s)));
      out.push_back((g->type == GEN_DNS ? "DNS:" : g->type == GEN_EMAIL ? "email:" : "URI:") + v);
    } else if (g->type == GEN_DIRNAME) {
      out.push_back("DirName:" + nameLine(g->d.directoryName));
    } else {
      out.push_back("other");
    }
  }
  return out;
}

}  // namespace

WallTime toWall(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

std::string nameLine(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}


std::string opensslError(const std::string& fallback) {
  unsigned long last = 0, e;
  while ((e = ERR_get_error()) != 0) last = e;
  if (!last) return fallback;
  const char* reason = ERR_reason_error_string(last);
  if (reason) return reason;
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

BioPtr memBio(const std::string& s) {
  return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

int noPassphrase(char*, int, int, void*) { return -1; }

KeyType keyTypeOf(const EVP_PKEY* k) {
  if (!k) return KeyType::none;
  switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS: return KeyType::rsa;
    case EVP_PKEY_EC: return KeyType::ec;
    case EVP_PKEY_ED25519: return KeyType::ed25519;
    case EVP_PKEY_ED448: return KeyType::ed448;
    case EVP_PKEY_DSA: return KeyType::dsa;
    default: return KeyType::other;
  }
}

CertInfo infoOf(X509* x) {
  CertInfo c;
  c.subject = nameLine(X509_get_subject_name(x));
  c.issuer = nameLine(X509_get_issuer_name(x));
  c.notBefore = toWall(X509_get0_notBefore(x));
  c.notAfter = toWall(X509_get0_notAfter(x));
  c.subjectAltNames = subjectAltNames(x);
  const EVP_PKEY* pub = X509_get0_pubkey(x);
  c.keyType = keyTypeOf(pub);
  c.keyBits = pub ? EVP_PKEY_get_bits(pub) : 0;
  int sigNid = X509_get_signature_nid(x);
  c.signatureAlgorithm = sigNid != NID_undef ? OBJ_nid2ln(sigNid) : "unknown";
  int mdNid = NID_undef, pkNid = NID_undef;
  if (OBJ_find_sigid_algs(sigNid, &mdNid, &pkNid) && mdNid != NID_undef) {
    const char* sn = OBJ_nid2sn(mdNid);
    c.signatureDigest = sn ? sn : "";
  }
  std::uint32_t flags = X509_get_extension_flags(x);  // also caches the extensions
  c.isCa = (flags & EXFLAG_CA) != 0;
  c.hasKeyUsage = (flags & EXFLAG_KUSAGE) != 0;
  c.keyUsageDigitalSignature = (X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE) != 0;
  CHandle<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free> eku(
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(x, NID_ext_key_usage, nullptr, nullptr)));
  if (eku)
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
      int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i));
      c.extendedKeyUsage.push_back(nid != NID_undef ? OBJ_nid2sn(nid) : "unknown");
    }
  char hash[16];
  std::snprintf(hash, sizeof hash, "%08lx", X509_subject_name_hash(x));
  c.subjectHash = hash;
  c.pem = certificatePem(x);
  ERR_clear_error();
  return c;
}

std::string certificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) throw PkiError("cannot encode the certificate: " + opensslError());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::vector<std::string> pemLabels(const std::string& text, std::string& error) {
  std::vector<std::string> labels;
  std::size_t pos = 0;
  const std::string begin = "-----BEGIN ", dashes = "-----";
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    pos = eol == std::string::npos ? text.size() : eol + 1;
    if (line.rfind(begin, 0) != 0 || line.size() < begin.size() + dashes.size() ||
        line.compare(line.size() - dashes.size(), dashes.size(), dashes) != 0)
      continue;
    std::string label = line.substr(begin.size(), line.size() - begin.size() - dashes.size());
    std::string end = "-----END " + label + "-----";
    std::size_t at = text.find(end, pos);
    if (at == std::string::npos) {
      error = "is a truncated PEM file: '" + line + "' has no END line";
      return labels;
    }
    labels.push_back(label);
    pos = at + end.size();
  }
  if (labels.empty())
    error = "is not a PEM file (no '-----BEGIN' line): garbage, or a DER file (convert it: openssl x509 -inform DER "
            "-outform PEM)";
  return labels;
}

std::string describeLabels(const std::vector<std::string>& labels) {
  std::string s;
  for (const auto& l : labels) s += (s.empty() ? "" : ", ") + l;
  return s;
}

}  // namespace ipopsec
