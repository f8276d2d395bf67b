#include "os/openssl/cert_inspector.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/reconcile/desired.hpp"  // fingerprint()
#include "os/openssl/crl_facts.hpp"
#include "os/openssl/openssl_support.hpp"
#include "os/unique_fd.hpp"

namespace ipopsec {
namespace {


// Reads one file: what is at the path, its mode and owner, its bytes.
CertFileFacts readFile(const std::string& path) {
  CertFileFacts f;
  f.path = path;
  struct stat lst{};
  if (::lstat(path.c_str(), &lst) != 0) {
    int e = errno;
    f.loadError = e == ENOENT ? "does not exist"
                  : e == ENOTDIR ? "does not exist (a part of the path is not a directory)"
                                 : std::string("cannot be examined: ") + std::strerror(e);
    return f;
  }
  f.present = true;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP)
      f.loadError = "is a symlink loop (the symlink leads back to itself)";
    else if (e == ENOENT && S_ISLNK(lst.st_mode))
      f.loadError = "is a dangling symlink (its target does not exist)";
    else
      f.loadError = std::string("cannot be opened: ") + std::strerror(e);
    return f;
  }
  UniqueFd guard(fd);
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    f.loadError = std::string("cannot be examined: ") + std::strerror(errno);
    return f;
  }
  if (S_ISDIR(st.st_mode)) {
    f.loadError = "is a directory, not a file";
    return f;
  }
  if (!S_ISREG(st.st_mode)) {
    f.loadError = "is not a regular file";
    return f;
  }
  f.statKnown = true;
  f.mode = st.st_mode & 07777;
  f.uid = st.st_uid;
  if (static_cast<std::size_t>(st.st_size) > kMaxPemFileSize) {
    f.loadError = "is too large (" + std::to_string(st.st_size) + " bytes) for a certificate file";
    return f;
  }
  std::string data;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      f.loadError = std::string("cannot be read: ") + std::strerror(errno);
      return f;
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > kMaxPemFileSize) {
      f.loadError = "is too large for a certificate file";
      return f;
    }
  }
  if (data.empty()) f.loadError = "is empty";
  f.content = std::move(data);
  return f;
}

bool isCertLabel(const std::string& l) { return l == "CERTIFICATE" || l == "TRUSTED CERTIFICATE" || l == "X509 CERTIFICATE"; }

// The PEM labels of a file read without error; nullopt (with f.loadError set) otherwise.
std::optional<std::vector<std::string>> labelsOf(CertFileFacts& f) {
  if (!f.loadError.empty()) return std::nullopt;
  std::string err;
  auto labels = pemLabels(f.content, err);
  if (!err.empty()) {
    f.loadError = err;
    return std::nullopt;
  }
  return labels;
}

// Every certificate of a loaded PEM file; sets f.loadError when there is none or one is damaged.
std::vector<X509Ptr> loadCertificates(CertFileFacts& f) {
  std::vector<X509Ptr> out;
  auto found = labelsOf(f);
  if (!found) return out;
  const auto& labels = *found;
  auto n = std::count_if(labels.begin(), labels.end(), isCertLabel);
  if (n == 0) {
    f.loadError = "holds no certificate (found " + describeLabels(labels) + ")";
    return out;
  }
  auto bio = memBio(f.content);
  for (long i = 0; i < n; ++i) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr);
    if (!x) {
      f.loadError = "holds a damaged certificate (PEM block " + std::to_string(i + 1) + "): " + opensslError();
      out.clear();
      return out;
    }
    out.emplace_back(x);
  }
  ERR_clear_error();
  return out;
}

EvpPkeyPtr loadKey(CertFileFacts& f) {
  auto found = labelsOf(f);
  if (!found) return nullptr;
  const auto& labels = *found;
  bool encrypted = f.content.find("Proc-Type: 4,ENCRYPTED") != std::string::npos ||
                   std::find(labels.begin(), labels.end(), "ENCRYPTED PRIVATE KEY") != labels.end();
  if (encrypted) {
    f.loadError = "is encrypted with a passphrase, which racoon cannot use: decrypt it (openssl pkey -in FILE -out "
                  "FILE) and keep it mode 0600";
    return nullptr;
  }
  if (std::none_of(labels.begin(), labels.end(),
                   [](const std::string& l) { return l.find("PRIVATE KEY") != std::string::npos; })) {
    f.loadError = "holds no private key (found " + describeLabels(labels) + ")";
    return nullptr;
  }
  auto bio = memBio(f.content);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr);
  if (!k) {
    f.loadError = "holds a damaged private key: " + opensslError();
    return nullptr;
  }
  ERR_clear_error();
  return EvpPkeyPtr(k);
}

}  // namespace

CertFacts OpenSslInspector::inspect(const std::string& ca, const std::string& cert, const std::string& key,
                                     const std::string& crl) {
  CertFacts f;
  f.ca = readFile(ca);
  f.cert = readFile(cert);
  f.key = readFile(key);
  f.fingerprint = fingerprint(f.ca.content) + fingerprint(f.cert.content) + fingerprint(f.key.content);

  auto caCerts = loadCertificates(f.ca);
  for (auto& c : caCerts) f.caCerts.push_back(infoOf(c.get()));
  auto hostCerts = loadCertificates(f.cert);
  if (!hostCerts.empty()) {
    f.hostCert = infoOf(hostCerts.front().get());
    f.hostSerial = serialHex(X509_get0_serialNumber(hostCerts.front().get()));
  }
  if (!crl.empty()) {
    std::vector<X509*> cas;
    for (auto& c : caCerts) cas.push_back(c.get());
    f.crl = describeCrl(readFile(crl), cas);
    f.fingerprint += fingerprint(f.crl->file.content);
  }
  auto pkey = loadKey(f.key);
  if (pkey) {
    f.keyType = keyTypeOf(pkey.get());
    f.keyBits = EVP_PKEY_get_bits(pkey.get());
  }
  if (pkey && !hostCerts.empty()) {
    f.keyMatchesCert = EVP_PKEY_eq(X509_get0_pubkey(hostCerts.front().get()), pkey.get()) == 1;
    ERR_clear_error();
  }

  if (!caCerts.empty() && !hostCerts.empty()) {
    // Time validity is decided in core (judgeCertificates, with the daemon's clock), so
    // the chain is verified without time checks. No purpose is imposed: IKE has no
    // OpenSSL purpose, and the certificate's keyUsage/extendedKeyUsage are judged in core.
    CHandle<X509_STORE, X509_STORE_free> store(X509_STORE_new());
    CHandle<X509_STORE_CTX, X509_STORE_CTX_free> ctx(X509_STORE_CTX_new());
    if (store && ctx) {
      for (auto& c : caCerts) X509_STORE_add_cert(store.get(), c.get());
      // Further certificates in host-cert.pem (intermediates) may help build the chain.
      STACK_OF(X509)* untrusted = sk_X509_new_null();
      for (std::size_t i = 1; i < hostCerts.size(); ++i) sk_X509_push(untrusted, hostCerts[i].get());
      if (X509_STORE_CTX_init(ctx.get(), store.get(), hostCerts.front().get(), untrusted) == 1) {
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx.get()), X509_V_FLAG_NO_CHECK_TIME);
        f.chainChecked = true;
        f.chainOk = X509_verify_cert(ctx.get()) == 1;
        if (!f.chainOk) f.chainError = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
      }
      sk_X509_free(untrusted);
    }
    ERR_clear_error();
  }
  return f;
}

std::vector<HashFileFacts> OpenSslInspector::hashFiles(const std::string& dir, const std::vector<std::string>& hashes) {
  std::vector<HashFileFacts> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    auto dot = name.find('.');
    if (dot != 8 || name.size() < 10) continue;
    bool ok = std::all_of(name.begin(), name.begin() + 8, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }) &&
              std::all_of(name.begin() + 9, name.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!ok) continue;
    HashFileFacts h;
    h.path = dir + "/" + name;
    h.hash = name.substr(0, 8);
    std::string digits = name.substr(9);
    // OpenSSL looks up "<hash>.%d": a leading zero or a huge number is never one of its slots.
    if (digits.size() <= 6 && (digits.size() == 1 || digits[0] != '0')) h.index = std::stoi(digits);
    struct stat lst{};
    if (::lstat(h.path.c_str(), &lst) != 0) continue;  // gone since readdir
    h.symlink = S_ISLNK(lst.st_mode);
    if (h.symlink) {
      char buf[4096];
      ssize_t n = ::readlink(h.path.c_str(), buf, sizeof buf - 1);
      h.target = n >= 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("?");
    } else if (S_ISREG(lst.st_mode)) {
      // The daemon's own copy: a regular file (never a symlink's target) with the marker.
      int fd = ::open(h.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
      if (fd >= 0) {
        UniqueFd guard(fd);
        std::string head(kHashCopyMarker.size(), '\0');
        h.owned = ::read(fd, head.data(), head.size()) == static_cast<ssize_t>(head.size()) && head == kHashCopyMarker;
      }
    }
    if (!h.owned && std::find(hashes.begin(), hashes.end(), h.hash) != hashes.end()) {
      // Read through a symlink (only ever read): what racoon would find there.
      CertFileFacts f = readFile(h.path);
      struct stat st{};
      h.dangling = h.symlink && ::stat(h.path.c_str(), &st) != 0 && errno == ENOENT;
      auto certs = loadCertificates(f);
      h.loadError = f.loadError;
      for (auto& c : certs) h.certs.push_back(infoOf(c.get()));
    }
    out.push_back(std::move(h));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const HashFileFacts& a, const HashFileFacts& b) { return a.path < b.path; });
  return out;
}

}  // namespace ipopsec
