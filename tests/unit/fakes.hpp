#pragma once
// Fakes of the ports (lib/core/ports.hpp) for unit tests of the pure core. Each records
// what was asked of it; failures can be injected.

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>
#include <vector>

#include "core/ports.hpp"

namespace ipopsec::test {

// Virtual time: now() and wallNow() move only when the test says (advance(), advanceTo(), or
// now_ set directly, which fires nothing). advance() fires the due timers in the order of
// their instants (ties in the order they were set), each with the clock at its instant, and
// also those that a fired timer sets within the span.
class FakeClock final : public Clock {
 public:
  FakeClock() : state_(std::make_shared<State>()) {}
  time_point now() const override { return now_; }
  wall_time wallNow() const override { return wallAtStart_ + (now_ - start_); }
  std::unique_ptr<Timer> timer() override { return std::make_unique<FakeTimer>(state_); }
  void advance(std::chrono::steady_clock::duration d) { advanceTo(now_ + d); }
  void advanceTo(time_point end) {
    while (auto next = nextDue(end)) {
      if (next->when > now_) now_ = next->when;
      ++fired;
      firings.push_back(now_);
      next->f();
    }
    if (end > now_) now_ = end;
  }
  // The earliest pending timer's instant.
  std::optional<time_point> nextTimer() const {
    std::optional<time_point> r;
    for (const auto& [id, e] : state_->pending)
      if (!r || e.when < *r) r = e.when;
    return r;
  }
  // Every pending timer's instant, earliest first.
  std::vector<time_point> pendingTimers() const {
    std::vector<time_point> v;
    for (const auto& [id, e] : state_->pending) v.push_back(e.when);
    std::sort(v.begin(), v.end());
    return v;
  }
  time_point now_{std::chrono::seconds(1000)};
  const time_point start_{std::chrono::seconds(1000)};
  wall_time wallAtStart_ = std::chrono::system_clock::now();
  int fired = 0;  // timer functions run
  std::vector<time_point> firings;  // the instant of each
  int armed() const { return state_->armed; }  // Timer::at() calls

 private:
  struct Entry {
    time_point when;
    std::uint64_t seq;
    std::function<void()> f;
  };
  struct State {
    std::map<std::uint64_t, Entry> pending;  // by timer id
    std::uint64_t nextId = 0, nextSeq = 0;
    int armed = 0;
  };
  class FakeTimer final : public Timer {
   public:
    explicit FakeTimer(std::shared_ptr<State> s) : s_(std::move(s)), id_(s_->nextId++) {}
    ~FakeTimer() override { cancel(); }
    void at(time_point when, std::function<void()> f) override {
      ++s_->armed;
      s_->pending[id_] = Entry{when, s_->nextSeq++, std::move(f)};
    }
    void cancel() override { s_->pending.erase(id_); }
    std::optional<time_point> pending() const override {
      auto it = s_->pending.find(id_);
      if (it == s_->pending.end()) return std::nullopt;
      return it->second.when;
    }

   private:
    std::shared_ptr<State> s_;
    std::uint64_t id_;
  };
  // Takes the earliest timer due by `end` off the pending set.
  std::optional<Entry> nextDue(time_point end) {
    auto best = state_->pending.end();
    for (auto it = state_->pending.begin(); it != state_->pending.end(); ++it)
      if (it->second.when <= end && (best == state_->pending.end() || it->second.when < best->second.when ||
                                     (it->second.when == best->second.when && it->second.seq < best->second.seq)))
        best = it;
    if (best == state_->pending.end()) return std::nullopt;
    Entry e = std::move(best->second);
    state_->pending.erase(best);
    return e;
  }
  std::shared_ptr<State> state_;
};

// By default list() returns exactly what install() and remove() acknowledged. Two kernels
// that differ from their acknowledgements: `dropAfterAck` (acknowledges the install of a
// policy it matches and then does not hold it) and `failReadBack` (a list() after an
// install or remove, the read-back, fails with it).
class FakePolicyTable final : public PolicyTable {
 public:
  std::error_code list(std::vector<Policy>& out) override {
    ++lists;
    if (failList) return failList;
    const bool readBack = writtenSinceList_;
    writtenSinceList_ = false;
    if (failReadBack && readBack) return failReadBack;
    out.clear();
    for (const auto& [k, p] : installed) out.push_back(p);
    return {};
  }
  std::error_code install(const Policy& p) override {
    if (refuse && refuse(p)) return std::make_error_code(std::errc::invalid_argument);
    writtenSinceList_ = true;
    log.push_back("install " + p.str());
    if (dropAfterAck && dropAfterAck(p)) {
      installed.erase(keyOf(p));  // acknowledged, not held (an update in place lost the old one too)
      return {};
    }
    installed[keyOf(p)] = p;
    minCount = std::min(minCount, protectCount());
    return {};
  }
  std::error_code remove(const Policy& p) override {
    writtenSinceList_ = true;
    installed.erase(keyOf(p));
    log.push_back("remove " + p.str());
    minCount = std::min(minCount, protectCount());
    return {};
  }
  std::error_code flushLarval(const std::vector<Cidr>& ranges) override {
    larvalFlushes.push_back(ranges);
    return {};
  }
  std::optional<Policy> lastConflict() const override { return conflict; }
  std::error_code removeStates(const std::vector<Cidr>& ranges, std::size_t& removed) override {
    stateRemovals.push_back(ranges);
    removed = ranges.size();
    return {};
  }
  std::vector<std::vector<Cidr>> stateRemovals;
  const PolicyOwnership& ownership() const override { return owned_; }
  void setOwnership(PolicyOwnership owned) override {
    owned_ = std::move(owned);
    priorities = {owned_.protectPriority(), owned_.bypassPriority()};
  }
  std::vector<std::uint32_t> earlierPriorities() const { return owned_.earlier(); }
  std::error_code listSas(std::vector<SaFact>& out) override {
    out = sas;
    return {};
  }
  std::vector<SaFact> sas;  // what the fake SAD holds
  // The kernel's policies that are not the daemon's (the IKE daemon's traps); nullopt: the
  // fake cannot tell (like the port's default), so no trap verdict.
  std::error_code listForeign(std::vector<Policy>& out) override {
    if (!foreign) return PolicyTable::listForeign(out);
    out = *foreign;
    return {};
  }
  std::optional<std::vector<Policy>> foreign;
  // What setOwnership() was given last: its configured pair (earlierPriorities(): the rest).
  std::pair<std::uint32_t, std::uint32_t> priorities{250000, 250001};
  PolicyOwnership owned_{250000, 250001};
  std::optional<Policy> conflict;  // reported for every refusal when set
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
  std::function<bool(const Policy&)> dropAfterAck;  // acknowledged, then not held
  std::error_code failList;
  std::error_code failReadBack;  // the list() after an install or remove fails
  std::size_t minCount = SIZE_MAX;  // lowest number of protect policies seen during changes
  int lists = 0;

 private:
  bool writtenSinceList_ = false;
};

class FakeFileStore final : public FileStore {
 public:
  // Symlinks are followed for reading (one level; a target without a '/' is relative to
  // the link's directory) and refused for writing (ELOOP), as AtomicFileStore does.
  std::error_code read(const std::string& path, std::string& content) override {
    auto it = files.find(resolve(path));
    if (it == files.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
    content = it->second;
    return {};
  }
  std::error_code write(const std::string& path, const std::string& content, unsigned mode) override {
    if (failWrite) return failWrite;
    if (symlinks.count(path)) return std::make_error_code(std::errc::too_many_symbolic_link_levels);
    files[path] = content;
    modes[path] = mode;
    ++writes;
    written.push_back(path);
    if (onWrite) onWrite(path);
    return {};
  }
  std::error_code remove(const std::string& path) override {
    files.erase(path);
    symlinks.erase(path);
    removed.push_back(path);
    return {};
  }
  std::error_code prepareDir(const std::string& dir, bool create) override {
    prepared.push_back((create ? "create " : "clean ") + dir);
    return {};
  }
  std::string resolve(const std::string& path) const {
    auto l = symlinks.find(path);
    if (l == symlinks.end()) return path;
    if (l->second.find('/') == std::string::npos) return path.substr(0, path.rfind('/') + 1) + l->second;
    return l->second;
  }
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> symlinks;  // link path -> target as readlink gives it
  std::map<std::string, unsigned> modes;
  std::error_code failWrite;
  std::function<void(const std::string& path)> onWrite;  // after each successful write
  int writes = 0;
  std::vector<std::string> written, removed;
  std::vector<std::string> prepared;  // prepareDir: "create <dir>" or "clean <dir>"
};

// IKE actions complete only when the test says so (complete()), like a real systemd job.
// The IKE daemon listens at once unless `listening` is false; then listen() releases the
// waits.
class FakeIkeController final : public IkeController {
 public:
  std::string name() const override { return unitName; }
  bool canReload() const override { return reloadable; }
  bool canLoadCreds() const override { return credsLoadable; }
  void run(IkeAction action, Done done) override {
    ++(action == IkeAction::reload ? reloads : action == IkeAction::loadCreds ? credLoads : restarts);
    actions.push_back(action);
    pending.push_back(std::move(done));
  }
  std::string state() override { return unitState; }
  void whenListening(std::function<void(bool)> then) override {
    ++listenWaits;
    listenThen = std::move(then);
    if (listening) listen(true);
  }
  void watchState(std::function<void(const std::string&)> onState) override { onState_ = std::move(onState); }
  // systemd announced a new state of the unit.
  void announce(const std::string& state) {
    unitState = state;
    if (onState_) onState_(state);
  }
  std::function<void(const std::string&)> onState_;
  void reconfigure(const Config& cfg) override {
    ++reconfigures;
    unitName = cfg.ike.unit;
    reloadable = cfg.ike.backend == IkeBackend::strongswan && !cfg.strongswan.loadCommand.empty();
    credsLoadable = credsLoadable && reloadable;
    // Like the real one: an action in flight on a replaced runner is cut short.
    if (cancelOnReconfigure)
      while (!pending.empty()) complete(std::make_error_code(std::errc::operation_canceled), "reconfigured");
  }
  void complete(std::error_code ec = {}, const std::string& detail = "") {
    auto d = std::move(pending.front());
    pending.erase(pending.begin());
    d(ec, detail);
  }
  void listen(bool ok = true) {
    if (!listenThen) return;
    auto t = std::move(listenThen);
    listenThen = nullptr;
    t(ok);
  }
  bool canCut() const override { return cuttable; }
  void cut(const std::vector<std::string>& serials, Done done) override {
    cuts.push_back(serials);
    cutsPending.push_back(std::move(done));
  }
  void completeCut(std::error_code ec = {}, const std::string& detail = "") {
    auto d = std::move(cutsPending.front());
    cutsPending.erase(cutsPending.begin());
    d(ec, detail);
  }
  bool cuttable = false;
  std::vector<std::vector<std::string>> cuts;
  std::vector<Done> cutsPending;
  std::string unitName = "racoon.service";
  std::string unitState = "active";
  bool reloadable = false;
  bool credsLoadable = false;  // strongswan.load_creds_command
  int credLoads = 0;
  bool listening = true;
  bool cancelOnReconfigure = false;
  int restarts = 0, reloads = 0, listenWaits = 0, reconfigures = 0;
  std::vector<IkeAction> actions;
  std::vector<Done> pending;
  std::function<void(bool)> listenThen;
};

// Certificates as a well-issued set would look, read from a FakeFileStore: a file present
// there is loaded, a missing one "does not exist". `tweak` injects problems into the
// facts (expired, no SAN, key mismatch...) before the core judges them.
class FakeCertificateInspector final : public CertificateInspector {
 public:
  explicit FakeCertificateInspector(FakeFileStore& files) : files_(files) {}
  // A CRL file here is the CA's (signed, next update in 60 days); each of its lines
  // "revoked: SERIAL" revokes that serial. The host certificate's serial is 1000.
  CertFacts inspect(const std::string& ca, const std::string& cert, const std::string& key,
                    const std::string& crl) override {
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
      caContent_ = f.ca.content;
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
    if (f.hostCert) f.hostSerial = "1000";
    if (!crl.empty()) {
      CrlFacts c;
      load(c.file, crl);
      if (c.file.loadError.empty()) {
        c.issuer = "CN=GroupVPN CA";
        c.signatureChecked = c.signedByCa = true;
        // A CRL whose content says "no key id" lacks the authorityKeyIdentifier.
        c.hasAuthorityKeyId = c.authorityKeyIdIsCas = c.file.content.find("no key id") == std::string::npos;
        c.lastUpdate = now;
        c.nextUpdate = now + std::chrono::hours(24 * 60);
        std::istringstream in(c.file.content);
        for (std::string line; std::getline(in, line);)
          if (line.rfind("revoked: ", 0) == 0) c.revokedSerials.push_back(line.substr(9));
      }
      f.fingerprint += "|" + c.file.content;
      f.crl = c;
    }
    if (tweak) tweak(f);
    return f;
  }
  // The fake CA certificate of a file whose content is `body` (see inspect()).
  CertInfo caInfo(const std::string& body) const {
    CertInfo c;
    c.subject = body == caContent() ? "CN=GroupVPN CA" : "CN=" + body;
    c.isCa = true;
    c.subjectHash = caHash;
    c.pem = "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n";
    return c;
  }
  // <dir>/<8 hex>.<n> entries of the FakeFileStore, regular files and symlinks: a marked
  // file is owned; the others hold one fake certificate per "-----BEGIN CERTIFICATE-----"
  // block (its body as the CA file's content would be), or else their whole content as one
  // (as inspect() reads the CA file).
  std::vector<HashFileFacts> hashFiles(const std::string& dir, const std::vector<std::string>& hashes) override {
    ++hashFileScans;
    std::vector<std::string> paths;
    for (const auto& [path, content] : files_.files) paths.push_back(path);
    for (const auto& [path, target] : files_.symlinks) paths.push_back(path);
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
    std::vector<HashFileFacts> out;
    for (const auto& path : paths) {
      if (path.rfind(dir + "/", 0) != 0) continue;
      std::string name = path.substr(dir.size() + 1);
      if (name.size() < 10 || name[8] != '.' ||
          !std::all_of(name.begin(), name.begin() + 8, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }) ||
          !std::all_of(name.begin() + 9, name.end(), [](char c) { return c >= '0' && c <= '9'; }))
        continue;
      HashFileFacts h;
      h.path = path;
      h.hash = name.substr(0, 8);
      h.index = std::stoi(name.substr(9));
      h.symlink = files_.symlinks.count(path) > 0;
      if (h.symlink) h.target = files_.symlinks.at(path);
      std::string content;
      bool readable = !files_.read(path, content);
      h.owned = !h.symlink && readable && content.rfind(std::string(kHashCopyMarker), 0) == 0;
      if (h.owned || std::find(hashes.begin(), hashes.end(), h.hash) == hashes.end()) {
        out.push_back(h);
        continue;
      }
      if (!readable) {
        h.dangling = h.symlink;
        h.loadError = h.symlink ? "is a dangling symlink (its target does not exist)" : "does not exist";
      } else {
        const std::string begin = "-----BEGIN CERTIFICATE-----\n", end = "\n-----END CERTIFICATE-----\n";
        for (std::size_t at = content.find(begin); at != std::string::npos; at = content.find(begin, at)) {
          std::size_t stop = content.find(end, at);
          if (stop == std::string::npos) break;
          h.certs.push_back(caInfo(content.substr(at + begin.size(), stop - at - begin.size())));
          at = stop + end.size();
        }
        // Like inspect() reads the CA file: any other content is one certificate.
        if (h.certs.empty() && !content.empty()) h.certs.push_back(caInfo(content));
        if (h.certs.empty()) h.loadError = "is empty";
      }
      out.push_back(h);
    }
    return out;
  }
  const std::string& caContent() const { return caContent_; }
  std::function<void(CertFacts&)> tweak;
  std::string caHash = "1a2b3c4d";
  int inspections = 0;
  int hashFileScans = 0;

 private:
  FakeFileStore& files_;
  std::string caContent_;
};

class FakeNotifier final : public Notifier {
 public:
  void ready() override { log.push_back("READY=1"); }
  void reloading() override { log.push_back("RELOADING=1"); }
  void stopping() override { log.push_back("STOPPING=1"); }
  void status(const std::string& line) override { log.push_back("STATUS=" + line); }
  void watchdog() override { ++watchdogs; }
  std::optional<std::chrono::microseconds> watchdogInterval() const override { return watchdogPeriod; }
  std::optional<std::chrono::microseconds> watchdogPeriod;
  std::vector<std::string> log;
  int watchdogs = 0;
};

// Links and addresses as the test sets them; change() tells the daemon, like a drained
// batch of rtnetlink messages.
class FakeLinkMonitor final : public LinkMonitor {
 public:
  void start(std::function<void()> onChange) override {
    started = true;
    onChange_ = std::move(onChange);
    onChange_();  // after the initial dump
  }
  void stop() override { started = false; }
  const NetSnapshot& snapshot() const override { return net; }
  void change() {
    if (started && onChange_) onChange_();
  }
  // A batch the kernel has queued and nobody has read yet: it becomes the snapshot at the
  // next drain() (or deliverQueued(), as the socket's wakeup would).
  void queue(NetSnapshot next) { queued = std::move(next); }
  void drain() override {
    ++drains;
    deliverQueued();
  }
  void deliverQueued() {
    if (!queued) return;
    net = std::move(*queued);
    queued.reset();
    change();
  }
  NetSnapshot net;
  std::optional<NetSnapshot> queued;
  int drains = 0;
  bool started = false;

 private:
  std::function<void()> onChange_;
};

class FakePolicyWatch final : public PolicyWatch {
 public:
  void start(OnChange onChange, Concerns concerns, OnAcquire onAcquire) override {
    onChange_ = std::move(onChange);
    concerns_ = std::move(concerns);
    onAcquire_ = std::move(onAcquire);
  }
  void stop() override {
    onChange_ = nullptr;
    onAcquire_ = nullptr;
  }
  void onStatesFlushed(OnChange f) override { onFlush_ = std::move(f); }
  // Another process flushed the SAs.
  void statesFlushed(const std::string& what) {
    if (onFlush_) onFlush_(what);
  }
  OnChange onFlush_;
  // The kernel announced an ACQUIRE (a packet found no SA).
  void acquire() {
    if (onAcquire_) onAcquire_();
  }
  // Another process changed the kernel's policies.
  void foreignChange(const std::string& what) {
    if (onChange_) onChange_(what);
  }
  // Another process changed this policy: reported only when the daemon says it concerns it
  // (as the real watch does). Returns whether it was reported.
  bool foreignChange(const std::string& what, const Policy& changed) {
    if (concerns_ && !concerns_(changed)) return false;
    foreignChange(what);
    return true;
  }

 private:
  OnAcquire onAcquire_;
  OnChange onChange_;
  Concerns concerns_;
};

class FakeDirectoryWatch final : public DirectoryWatch {
 public:
  std::error_code watch(std::vector<std::string> d, std::function<void()> onChange) override {
    dirs = std::move(d);
    onChange_ = std::move(onChange);
    ++watches;
    return {};
  }
  void rearm() override {}
  std::vector<std::string> watchedPaths() const override { return dirs; }
  void changed() {
    if (onChange_) onChange_();
  }
  std::vector<std::string> dirs;
  int watches = 0;

 private:
  std::function<void()> onChange_;
};

}  // namespace ipopsec::test
