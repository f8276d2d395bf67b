#pragma once
// The daemon's side effects, each behind one small interface named after its intent: ten
// ports (LinkMonitor, PolicyTable, PolicyWatch, DirectoryWatch, FileStore, ConfigSource,
// IkeController, Notifier, CertificateInspector, Clock). The real adapters live in lib/os/
// (IkeController's composes a systemd or command runner for restarts with a command for
// reloads); the fakes in tests/unit/fakes.hpp and daemon_fakes.hpp. The daemon (daemon/)
// reaches the kernel, its directories and files, the config file, the IKE daemon, systemd,
// the certificates and time through these ports, so that its wiring is unit-tested on the
// fakes, in memory and on virtual time. Not through them: it logs through spdlog
// (os/systemd/logging.hpp) and waits for signals on Asio directly. No OS, Asio or systemd
// headers here.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "core/certs/certs.hpp"
#include "core/config/config.hpp"
#include "core/policy/net_state.hpp"
#include "core/policy/ownership.hpp"
#include "core/policy/policy.hpp"
#include "core/reconcile/ike_scheduler.hpp"
#include "core/status/sa_summary.hpp"

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
  // Reads, without waiting, what the kernel has already queued, and calls `onChange` if it
  // changed the picture: the daemon's file step lets a batch that is already there have its
  // policies applied first. Nothing to do for a monitor that delivers everything at once.
  virtual void drain() {}
};

// The outcome of installing one policy; when refused because a foreign policy holds its id
// (dir + selector), that policy as the kernel reported it.
struct InstallResult {
  std::error_code ec;
  std::optional<Policy> conflict;
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
  // install() for each policy, in order; the real table hands the kernel all of them in one
  // batch (one system call on the reaction path instead of two round trips per policy).
  virtual std::vector<InstallResult> installAll(const std::vector<Policy>& ps) {
    std::vector<InstallResult> results;
    for (const auto& p : ps) {
      auto ec = install(p);
      results.push_back({ec, ec ? lastConflict() : std::nullopt});
    }
    return results;
  }
  virtual std::error_code remove(const Policy& p) = 0;
  // Deletes larval (ACQUIRE-created, not yet keyed) states between addresses of
  // these ranges, so that a packet that raced the IKE daemon's start does not stall;
  // not the one towards a peer the IKE daemon is making a CHILD_SA with (an inbound SPI
  // from that peer allocated, not keyed yet).
  virtual std::error_code flushLarval(const std::vector<Cidr>& ranges) = 0;
  // After install() failed with file_exists: the policy that holds the same id (dir +
  // selector) and is not the daemon's, as the kernel reported it; nullopt otherwise.
  virtual std::optional<Policy> lastConflict() const { return std::nullopt; }
  // Deletes every ESP SA (keyed or larval) between two addresses of one of these ranges:
  // a range that stops being protected leaves no stale SA behind. `removed`: how many.
  virtual std::error_code removeStates(const std::vector<Cidr>& ranges, std::size_t& removed) = 0;
  // Which kernel policies are the daemon's (core/policy/ownership.hpp): the configured
  // priorities and earlier ones, owned until their policies are gone. list() and remove()
  // keep to those. The daemon decides changes with PolicyOwnership (adopt at the start,
  // moveTo on a reload) and hands the result over whole.
  virtual const PolicyOwnership& ownership() const = 0;
  virtual void setOwnership(PolicyOwnership owned) = 0;
  // Every SA in the kernel's SAD, as plain facts (read-only; for status and metrics).
  virtual std::error_code listSas(std::vector<SaFact>& out) = 0;
  // The kernel's policies that are not the daemon's (the IKE daemon's traps and per-SA
  // policies, anyone else's), read-only, for the IKE side of health. Not supported (no
  // verdict) unless the table can tell.
  virtual std::error_code listForeign(std::vector<Policy>& out) {
    out.clear();
    return std::make_error_code(std::errc::not_supported);
  }
};

// Follows the kernel's policy changes made by anyone but the daemon's own PolicyTable (an
// operator's `ip xfrm policy flush`, another tool, expiry). `onChange(what)` runs on the
// daemon's io_context once per batch that held such a change and `concerns` accepted (it
// sees the changed policy's id and priority); a flush, a lost event or a change whose
// policy cannot be read always counts. The IKE daemon's own policies, added and removed
// with every SA, are no reason to re-read the kernel.
class PolicyWatch {
 public:
  using OnChange = std::function<void(const std::string& what)>;
  using Concerns = std::function<bool(const Policy& changed)>;
  using OnAcquire = std::function<void()>;
  virtual ~PolicyWatch() = default;
  // Throws std::system_error when it cannot follow the kernel's events. `onAcquire`, when
  // set, runs after the kernel announced ACQUIREs (packets that found no SA).
  virtual void start(OnChange onChange, Concerns concerns, OnAcquire onAcquire) = 0;
  virtual void stop() = 0;
  // Before start(): `f(what)` runs once per batch of events in which another process
  // removed every SA (`ip xfrm state flush`): the IKE daemon's keys are gone and it does
  // not know. A watch that cannot see it never calls it.
  virtual void onStatesFlushed(OnChange f) { (void)f; }
};

// Says "something in these directories changed" (the certificate files), after a burst of
// changes is over. A directory that does not exist yet is watched through its nearest
// existing ancestor.
class DirectoryWatch {
 public:
  virtual ~DirectoryWatch() = default;
  // Replaces the watched set. An error only when nothing can be watched at all.
  virtual std::error_code watch(std::vector<std::string> dirs, std::function<void()> onChange) = 0;
  // Tries again the directories that were missing.
  virtual void rearm() = 0;
  // The path actually watched for each directory ("" when none).
  virtual std::vector<std::string> watchedPaths() const = 0;
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
  // A directory the daemon keeps files in (daemon.state_dir, remember_dir, the metrics
  // file's): created when `create` and it is missing (mode 0755; its parent must exist),
  // then cleared of the temp files a writer killed mid-write left there (nothing else is
  // touched). The error is the creation's; a failed clean-up is not one.
  virtual std::error_code prepareDir(const std::string& dir, bool create) = 0;
};

// The config file, read at start and again at SIGHUP: the parsed and validated Config, or
// ConfigError naming every issue (an unreadable file included).
class ConfigSource {
 public:
  virtual ~ConfigSource() = default;
  virtual Config load(const std::string& path) = 0;
};

// The IKE daemon (racoon or strongSwan's charon), as the node controls it: restart it,
// make it re-read its configuration (strongSwan's `swanctl --load-all`), ask its state,
// and wait until it really listens for IKE. One stable object for the daemon's lifetime: a
// reload that changes how the IKE daemon is controlled reconfigures it in place.
class IkeController {
 public:
  using Done = std::function<void(std::error_code, const std::string& detail)>;
  virtual ~IkeController() = default;
  // What is run, as the operator configured it, for logs and status: the unit
  // ("racoon.service") or the command ("ike.restart_command /usr/local/sbin/ike-restart").
  virtual std::string name() const = 0;
  // Whether the reload action exists; without it every change is a restart.
  virtual bool canReload() const = 0;
  // Whether IkeAction::loadCreds exists (strongSwan: strongswan.load_creds_command); without
  // it a change of credentials alone is a reload.
  virtual bool canLoadCreds() const { return false; }
  // Runs `action`. Asynchronous: `done` runs on the daemon's io_context (never inside
  // run()) when it finished or failed, with a human detail. At most one action in flight:
  // a second run() completes with std::errc::operation_in_progress. An action cut short by
  // reconfigure() completes with std::errc::operation_canceled.
  virtual void run(IkeAction action, Done done) = 0;
  // "active", "inactive", "failed", "not-found", ... or "unknown"; for status output.
  virtual std::string state() = 0;
  // Calls `then(true)` once the IKE daemon listens for IKE (UDP port 500 bound in this
  // network namespace; at once when the kernel cannot tell, the finished action being the
  // best answer then), or `then(false)` when it did not within the restart timeout. On
  // the io_context; a later call replaces an earlier wait (which is then not called).
  virtual void whenListening(std::function<void(bool listening)> then) = 0;
  // A reload changed how the IKE daemon is controlled (ike.control, ike.unit,
  // ike.restart_command, ike.restart_timeout, strongswan.load_command): applied in place.
  virtual void reconfigure(const Config& cfg) = 0;
  // Follows the IKE daemon's state by events (systemd's PropertiesChanged for the unit):
  // `onState(state())` on the io_context after each change, also across reconfigure().
  // A controller without events (ike.control: command) never calls it.
  virtual void watchState(std::function<void(const std::string& state)> onState) { (void)onState; }
  // Whether cut() exists (strongSwan with strongswan.cut_command); without it a revocation
  // restarts the IKE daemon.
  virtual bool canCut() const { return false; }
  // Ends the SAs with the peers whose certificates carry these serials (upper-case hex), the
  // IKE daemon having loaded the CRL that revokes them; `done` like run()'s, on the
  // io_context, its detail naming the peers cut. Independent of run()'s action in flight.
  virtual void cut(const std::vector<std::string>& serials, Done done) {
    (void)serials;
    done(std::make_error_code(std::errc::operation_not_supported), "this IKE control cannot cut single peers");
  }
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
  // The service manager's watchdog period (ping at half of it), or nullopt when it is off.
  virtual std::optional<std::chrono::microseconds> watchdogInterval() const = 0;
};

// Reads and parses the certificate files (OpenSSL in the real adapter) and reports plain
// facts; every decision about them is judgeCertificates()'s (core/certs/certs.hpp).
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

// One timer of the daemon: a function to run once at an instant of the Clock it came from.
class Timer {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Timer() = default;  // cancels
  // Runs `f` on the daemon's io_context once the Clock reaches `when` (soon, when it is
  // past), never inside at(). Replaces what was pending: one instant per timer.
  virtual void at(time_point when, std::function<void()> f) = 0;
  // The pending function never runs (also one whose instant has just passed).
  virtual void cancel() = 0;
  // Whether a function is pending, and for when.
  virtual std::optional<time_point> pending() const = 0;
};

// The daemon's time: the monotonic clock its timers run on (steady_clock in the real one,
// virtual time the test advances in the fake), and the wall clock certificates are judged by.
class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using wall_time = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
  // The wall clock (notAfter, nextUpdate, the metrics' timestamps).
  virtual wall_time wallNow() const { return std::chrono::system_clock::now(); }
  // A timer on this clock, cancelled when destroyed.
  virtual std::unique_ptr<Timer> timer() = 0;
};

}  // namespace ipopsec
