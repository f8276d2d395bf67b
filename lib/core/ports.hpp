#pragma once
// The daemon's side effects, each behind one small interface named after its intent.
// Exactly one real adapter each lives in lib/os/; fakes for unit tests live in
// tests/unit/fakes.hpp. No OS, Asio or systemd headers here.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "core/certs.hpp"
#include "core/net_state.hpp"
#include "core/policy.hpp"

namespace ipopsec {

// Observes the node's links and addresses (rtnetlink). Level-triggered: the callback
// only says "the picture may have changed"; the daemon then reads snapshot().
class LinkMonitor {
 public:
  virtual ~LinkMonitor() = default;
  // Dumps links and addresses, then follows changes. `onChange` runs on the daemon's
  // io_context after the initial dump, and then once per drained batch of messages
  // (and after every re-dump, e.g. after ENOBUFS).
  virtual void start(std::function<void()> onChange) = 0;
  virtual void stop() = 0;
  virtual const NetSnapshot& snapshot() const = 0;
};

// The kernel's security policy database, restricted to the policies the daemon owns
// (those carrying one of the configured priorities).
class PolicyTable {
 public:
  virtual ~PolicyTable() = default;
  // Owned policies currently in the kernel (re-read, never remembered).
  virtual std::error_code list(std::vector<Policy>& out) = 0;
  // Adds the policy, or replaces the one with the same id (dir + selector).
  virtual std::error_code install(const Policy& p) = 0;
  virtual std::error_code remove(const Policy& p) = 0;
  // Deletes larval (ACQUIRE-created, not yet keyed) states between addresses of
  // these ranges, so that a packet that raced the IKE daemon's start does not stall.
  virtual std::error_code flushLarval(const std::vector<Cidr>& ranges) = 0;
  // After install() failed with file_exists: the policy that holds the same id (dir +
  // selector) and is not the daemon's, as the kernel reported it; nullopt otherwise.
  virtual std::optional<Policy> lastConflict() const { return std::nullopt; }
  // Deletes every ESP SA (keyed or larval) between two addresses of one of these ranges:
  // a range that stops being protected leaves no stale SA behind. `removed`: how many.
  virtual std::error_code removeStates(const std::vector<Cidr>& ranges, std::size_t& removed) = 0;
};

// Files the daemon renders. write() is atomic (temp, fsync, rename, fsync dir).
class FileStore {
 public:
  virtual ~FileStore() = default;
  // Current content; error_code set (e.g. no_such_file_or_directory) when unreadable.
  virtual std::error_code read(const std::string& path, std::string& content) = 0;
  virtual std::error_code write(const std::string& path, const std::string& content, unsigned mode) = 0;
  // Removes the file; a file that is already absent is success.
  virtual std::error_code remove(const std::string& path) = 0;
};

// (Re)starts the IKE daemon. Asynchronous: `done` runs on the daemon's io_context when
// the restart finished (systemd job result "done") or failed, with a human detail.
class UnitManager {
 public:
  virtual ~UnitManager() = default;
  using Done = std::function<void(std::error_code, const std::string& detail)>;
  virtual void restart(Done done) = 0;
  // "active", "inactive", "failed", ... or "unknown"; for status output.
  virtual std::string state() = 0;
};

// Tells the service manager where the daemon stands (sd_notify).
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void ready() = 0;
  virtual void reloading() = 0;
  virtual void stopping() = 0;
  virtual void status(const std::string& line) = 0;
  virtual void watchdog() = 0;
};

// Reads and parses the certificate files (OpenSSL in the real adapter) and reports plain
// facts; every decision about them is judgeCertificates()'s (core/certs.hpp).
class CertificateInspector {
 public:
  virtual ~CertificateInspector() = default;
  // `ca`, `cert`, `key`: the CA file, the host certificate and its private key. Never
  // throws for bad files: every problem is a CertFileFacts::loadError.
  // `crl`: the revocation list's path, "" when none is configured (CertFacts::crl nullopt).
  virtual CertFacts inspect(const std::string& ca, const std::string& cert, const std::string& key,
                            const std::string& crl) = 0;
  // Every entry of `dir` named like an OpenSSL hash-directory file (<8 hex digits>.<n>):
  // symlinks (c_rehash's) are described and read through, never written; regular files
  // whose first line is kHashCopyMarker are the daemon's own copies (owned). The
  // certificates in each other entry are parsed, so that the core can tell whether it
  // holds the CA certificate (planHashFiles); only the entries of the subject hashes in
  // `hashes` are read (a shared directory may hold hundreds of them). Sorted by path;
  // empty when `dir` cannot be read.
  virtual std::vector<HashFileFacts> hashFiles(const std::string& dir, const std::vector<std::string>& hashes) {
    (void)dir;
    (void)hashes;
    return {};
  }
  // Paths of the files in `dir` that the daemon wrote as racoon's CA hash copies, so that
  // stale ones can be removed.
  std::vector<std::string> hashCopies(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : hashFiles(dir, {}))
      if (e.owned) out.push_back(e.path);
    return out;
  }
};

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

}  // namespace ipopsec
