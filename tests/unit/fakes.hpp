#pragma once
// Fakes of the ports (lib/core/ports.hpp) for unit tests of the pure core. Each records
// what was asked of it; failures can be injected.

#include <algorithm>
#include <map>
#include <system_error>

#include "core/ports.hpp"

namespace ipopsec::test {

class FakeClock final : public Clock {
 public:
  time_point now() const override { return now_; }
  void advance(std::chrono::steady_clock::duration d) { now_ += d; }
  time_point now_{std::chrono::seconds(1000)};
};

class FakePolicyTable final : public PolicyTable {
 public:
  std::error_code list(std::vector<Policy>& out) override {
    ++lists;
    if (failList) return failList;
    out.clear();
    for (const auto& [k, p] : installed) out.push_back(p);
    return {};
  }
  std::error_code install(const Policy& p) override {
    if (refuse && refuse(p)) return std::make_error_code(std::errc::invalid_argument);
    installed[keyOf(p)] = p;
    log.push_back("install " + p.str());
    minCount = std::min(minCount, protectCount());
    return {};
  }
  std::error_code remove(const Policy& p) override {
    installed.erase(keyOf(p));
    log.push_back("remove " + p.str());
    minCount = std::min(minCount, protectCount());
    return {};
  }
  std::error_code flushLarval(const std::vector<Cidr>& ranges) override {
    larvalFlushes.push_back(ranges);
    return {};
  }
  std::vector<Policy> all() const {
    std::vector<Policy> v;
    for (const auto& [k, p] : installed) v.push_back(p);
    return v;
  }
  std::size_t protectCount() const {
    return static_cast<std::size_t>(std::count_if(installed.begin(), installed.end(), [](const auto& kv) {
      return kv.second.action == PolicyAction::protect;
    }));
  }
  static std::string keyOf(const Policy& p) {
    return std::string(toString(p.dir)) + " " + p.sel.src.str() + " " + p.sel.dst.str() + " " +
           std::to_string(p.sel.proto) + " " + std::to_string(p.sel.hasIcmpType) + std::to_string(p.sel.icmpType);
  }

  std::map<std::string, Policy> installed;
  std::vector<std::string> log;
  std::vector<std::vector<Cidr>> larvalFlushes;
  std::function<bool(const Policy&)> refuse;
  std::error_code failList;
  std::size_t minCount = SIZE_MAX;  // lowest number of protect policies seen during changes
  int lists = 0;
};

class FakeFileStore final : public FileStore {
 public:
  std::error_code read(const std::string& path, std::string& content) override {
    auto it = files.find(path);
    if (it == files.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
    content = it->second;
    return {};
  }
  std::error_code write(const std::string& path, const std::string& content, unsigned mode) override {
    if (failWrite) return failWrite;
    files[path] = content;
    modes[path] = mode;
    ++writes;
    return {};
  }
  std::error_code remove(const std::string& path) override {
    files.erase(path);
    return {};
  }
  std::map<std::string, std::string> files;
  std::map<std::string, unsigned> modes;
  std::error_code failWrite;
  int writes = 0;
};

// Restarts complete only when the test says so (complete()), like a real systemd job.
class FakeUnitManager final : public UnitManager {
 public:
  void restart(Done done) override {
    ++restarts;
    pending.push_back(std::move(done));
  }
  std::string state() override { return "active"; }
  void complete(std::error_code ec = {}, const std::string& detail = "") {
    auto d = std::move(pending.front());
    pending.erase(pending.begin());
    d(ec, detail);
  }
  int restarts = 0;
  std::vector<Done> pending;
};

// Certificates as a well-issued set would look, read from a FakeFileStore: a file present
// there is loaded, a missing one "does not exist". `tweak` injects problems into the
// facts (expired, no SAN, key mismatch...) before the core judges them.
class FakeCertificateInspector final : public CertificateInspector {
 public:
  explicit FakeCertificateInspector(FakeFileStore& files) : files_(files) {}
  CertFacts inspect(const std::string& ca, const std::string& cert, const std::string& key) override {
    ++inspections;
    CertFacts f;
    auto load = [&](CertFileFacts& file, const std::string& path) {
      file.path = path;
      if (files_.read(path, file.content)) {
        file.loadError = "does not exist";
        return;
      }
      file.present = true;
      file.statKnown = true;
      file.mode = 0600;
      file.uid = 0;
      if (file.content.empty()) file.loadError = "is empty";
    };
    load(f.ca, ca);
    load(f.cert, cert);
    load(f.key, key);
    auto year = std::chrono::hours(24 * 365);
    auto now = std::chrono::system_clock::now();
    if (f.ca.loadError.empty()) {
      CertInfo c;
      c.subject = "CN=GroupVPN CA";
      c.notBefore = now - year;
      c.notAfter = now + 10 * year;
      c.keyType = KeyType::rsa;
      c.keyBits = 3072;
      c.isCa = true;
      c.subjectHash = caHash;
      c.pem = "-----BEGIN CERTIFICATE-----\n" + f.ca.content + "\n-----END CERTIFICATE-----\n";
      f.caCerts.push_back(c);
    }
    if (f.cert.loadError.empty()) {
      CertInfo c;
      c.subject = "CN=172.31.0.16";
      c.notBefore = now - year;
      c.notAfter = now + year;
      c.subjectAltNames = {"IP:172.31.0.16"};
      c.keyType = KeyType::rsa;
      c.keyBits = 3072;
      c.signatureAlgorithm = "sha256WithRSAEncryption";
      c.signatureDigest = "SHA256";
      f.hostCert = c;
    }
    if (f.key.loadError.empty()) {
      f.keyType = KeyType::rsa;
      f.keyBits = 3072;
    }
    if (f.hostCert && f.key.loadError.empty()) f.keyMatchesCert = true;
    if (f.hostCert && !f.caCerts.empty()) f.chainChecked = f.chainOk = true;
    f.fingerprint = f.ca.content + "|" + f.cert.content + "|" + f.key.content;
    if (tweak) tweak(f);
    return f;
  }
  std::vector<std::string> hashCopies(const std::string& dir) override {
    std::vector<std::string> out;
    for (const auto& [path, content] : files_.files)
      if (path.rfind(dir + "/", 0) == 0 && content.rfind(std::string(kHashCopyMarker), 0) == 0) out.push_back(path);
    return out;
  }
  std::function<void(CertFacts&)> tweak;
  std::string caHash = "1a2b3c4d";
  int inspections = 0;

 private:
  FakeFileStore& files_;
};

class FakeNotifier final : public Notifier {
 public:
  void ready() override { log.push_back("READY=1"); }
  void reloading() override { log.push_back("RELOADING=1"); }
  void stopping() override { log.push_back("STOPPING=1"); }
  void status(const std::string& line) override { log.push_back("STATUS=" + line); }
  void watchdog() override { ++watchdogs; }
  std::vector<std::string> log;
  int watchdogs = 0;
};

}  // namespace ipopsec::test
