#include "os/unit_manager.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace ipopsec {

// --- error category --------------------------------------------------------------

namespace {

class UnitCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ipopsec.unit"; }
  std::string message(int ev) const override {
    switch (static_cast<UnitErrc>(ev)) {
      case UnitErrc::jobFailed: return "the unit's restart job failed";
      case UnitErrc::callFailed: return "the service manager refused the restart";
      case UnitErrc::commandFailed: return "the restart command failed";
    }
    return "unknown unit error";
  }
};

std::error_code errnoCode(int e) { return {e, std::generic_category()}; }

std::string errnoText(int e) { return std::generic_category().message(e); }

}  // namespace

const std::error_category& unitCategory() {
  static const UnitCategory category;
  return category;
}

std::error_code make_error_code(UnitErrc e) { return {static_cast<int>(e), unitCategory()}; }

// --- the details SystemdUnitManager reports ---------------------------------------

namespace unitdetail {
namespace {

constexpr const char* kNoSuchUnit = "org.freedesktop.systemd1.NoSuchUnit";
constexpr const char* kUnitMasked = "org.freedesktop.systemd1.UnitMasked";

// A detail is one log line: what came over the bus may not break it.
std::string oneLine(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return s;
}

// What systemd's job results mean (systemd's job_result_table; systemctl's wording).
const char* resultMeaning(const std::string& result) {
  if (result == "failed") return "the unit failed to (re)start";
  if (result == "dependency") return "a unit it requires failed to start";
  if (result == "timeout") return "the job timed out";
  if (result == "canceled") return "the job was canceled before it finished";
  if (result == "skipped") return "the job did not apply to the unit's state";
  if (result == "invalid") return "the job is not valid for the unit's state";
  if (result == "assert") return "an Assert condition of the unit failed";
  if (result == "unsupported") return "the operation or unit type is not supported on this system";
  if (result == "collected") return "the queued job was garbage-collected";
  if (result == "once") return "the unit may be started only once and already was";
  if (result == "frozen") return "the unit is frozen";
  return nullptr;
}

std::string journalHint(const std::string& unit) { return "see `journalctl -u " + unit + "`"; }

}  // namespace

std::string notInstalled(const std::string& unit) {
  std::string s = unit + " is not installed (no such unit)";
  if (unit == "racoon.service") s += "; on Debian 12 racoon is not packaged: use `ike.backend: strongswan`";
  return s;
}

std::string callFailed(const std::string& unit, const std::string& errorName, const std::string& errorMessage) {
  if (errorName == kNoSuchUnit) return notInstalled(unit);
  if (errorName == kUnitMasked) return unit + " is masked: `systemctl unmask " + unit + "` to let it be restarted";
  std::string s = "RestartUnit(" + unit + ") failed: " + oneLine(errorName.empty() ? "unknown error" : errorName);
  if (!errorMessage.empty()) s += ": " + oneLine(errorMessage);
  return s;
}

std::string jobFinished(const std::string& unit, const std::string& job, const std::string& result) {
  if (result == "done") return "restarted " + unit + " (job " + job + ": done)";
  std::string s = "restart of " + unit + " failed: job result '" + oneLine(result) + "' (";
  if (const char* meaning = resultMeaning(result)) s += std::string(meaning) + "; ";
  return s + "job " + oneLine(job) + "); " + journalHint(unit);
}

std::string unitState(const std::string& loadState, const std::string& activeState) {
  if (loadState == "not-found" || loadState == "masked") return loadState;
  return activeState;
}

}  // namespace unitdetail

// --- SystemdUnitManager ----------------------------------------------------------

namespace {

constexpr const char* kSystemd = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManagerIface = "org.freedesktop.systemd1.Manager";
constexpr std::size_t kMaxEarlyJobs = 16;

// Close without flushing: sd_bus_flush() blocks (for up to the 90 s authentication
// timeout on a bus that never answered), and nothing queued is worth that.
struct BusCloser {
  void operator()(sd_bus* b) const { sd_bus_close_unref(b); }
};
struct SlotUnref {
  void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using BusPtr = std::unique_ptr<sd_bus, BusCloser>;
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

class BusError {
 public:
  BusError() = default;
  BusError(const BusError&) = delete;
  BusError& operator=(const BusError&) = delete;
  ~BusError() { sd_bus_error_free(&e_); }
  sd_bus_error* get() { return &e_; }

 private:
  sd_bus_error e_ = SD_BUS_ERROR_NULL;
};

std::string errorText(const sd_bus_error* e) {
  if (!e || !e->name) return "unknown error";
  std::string s = e->name;
  if (e->message) s += std::string(": ") + e->message;
  return s;
}

bool isTimeoutError(const sd_bus_error* e) {
  return e && e->name &&
         (std::strcmp(e->name, SD_BUS_ERROR_TIMEOUT) == 0 || std::strcmp(e->name, SD_BUS_ERROR_NO_REPLY) == 0);
}

}  // namespace

class SystemdUnitManager::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(boost::asio::io_context& io, std::string unit, std::chrono::milliseconds timeout)
      : io_(io), unit_(std::move(unit)), timeout_(timeout), busFd_(io), busTimer_(io), deadline_(io) {}

  ~Impl() { closeBus(); }

  void shutdown() {
    done_ = nullptr;
    inFlight_ = false;
    deadline_.cancel();
    closeBus();
  }

  void restart(Done done) {
    if (inFlight_) {
      post(std::move(done), errnoCode(EINPROGRESS), "a restart of " + unit_ + " is already in progress");
      return;
    }
    inFlight_ = true;
    done_ = std::move(done);
    jobPath_.clear();
    earlyJobs_.clear();
    ++restartGen_;

    if (!bus_) {
      std::string detail;
      if (auto ec = openBus(detail)) {
        finish(ec, detail);
        return;
      }
    }

    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_.get(), &raw, kSystemd, kManagerPath, kManagerIface, "RestartUnit");
    MessagePtr msg(raw);
    if (r >= 0) r = sd_bus_message_append(msg.get(), "ss", unit_.c_str(), "replace");
    sd_bus_slot* slot = nullptr;
    if (r >= 0) r = sd_bus_call_async(bus_.get(), &slot, msg.get(), &Impl::onRestartReply, this, usec(timeout_));
    if (r < 0) {
      closeBus();  // a bus that can't take a call is reopened next time
      finish(errnoCode(-r), "cannot call RestartUnit(" + unit_ + "): " + errnoText(-r));
      return;
    }
    callSlot_.reset(slot);

    deadline_.expires_after(timeout_);
    deadline_.async_wait([weak = weak_from_this(), gen = restartGen_](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec || !self->inFlight_ || gen != self->restartGen_) return;
      // A connection that never got through authentication is not worth keeping: the
      // next restart connects afresh.
      if (self->bus_ && sd_bus_is_ready(self->bus_.get()) <= 0) self->closeBus();
      self->finish(errnoCode(ETIMEDOUT), "no result for the restart of " + self->unit_ + " within " +
                                             std::to_string(self->timeout_.count()) + " ms" +
                                             (self->jobPath_.empty() ? "" : " (job " + self->jobPath_ + ")"));
    });
    arm();
  }

  std::string state() {
    if (!bus_) {
      std::string detail;
      if (openBus(detail)) return "unknown";
    }
    std::string result = readUnitState();
    // A synchronous call may have queued other messages (signals, replies): dispatch
    // them, since the socket won't become readable for them again.
    boost::asio::post(io_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->process();
    });
    return result.empty() ? "unknown" : result;
  }

 private:
  static std::uint64_t usec(std::chrono::milliseconds d) {
    return static_cast<std::uint64_t>(std::max<std::chrono::milliseconds::rep>(d.count(), 1)) * 1000U;
  }

  // Calls done on the io_context (never re-entrantly), unless the manager is gone by then.
  void post(Done done, std::error_code ec, std::string detail) {
    if (!done) return;
    boost::asio::post(io_, [weak = weak_from_this(), done = std::move(done), ec, detail = std::move(detail)] {
      if (weak.lock()) done(ec, detail);
    });
  }

  void finish(std::error_code ec, std::string detail) {
    if (!inFlight_) return;
    inFlight_ = false;
    deadline_.cancel();
    callSlot_.reset();  // cancels the call if it is still pending (timeout)
    jobPath_.clear();
    earlyJobs_.clear();
    post(std::exchange(done_, nullptr), ec, std::move(detail));
  }

  std::error_code openBus(std::string& detail) {
    sd_bus* raw = nullptr;
    int r = sd_bus_open_system(&raw);
    if (r < 0) {
      detail = "cannot connect to the system bus: " + errnoText(-r);
      return errnoCode(-r);
    }
    bus_.reset(raw);
    int fd = sd_bus_get_fd(bus_.get());
    boost::system::error_code aec;
    if (fd >= 0) busFd_.assign(fd, aec);
    if (fd < 0 || aec) {
      int e = fd < 0 ? -fd : EIO;
      closeBus();
      detail = "cannot use the system bus connection: " + errnoText(e);
      return errnoCode(e);
    }
    ++busGen_;

    sd_bus_slot* slot = nullptr;
    r = sd_bus_match_signal_async(bus_.get(), &slot, kSystemd, kManagerPath, kManagerIface, "JobRemoved",
                                  &Impl::onJobRemoved, &Impl::onMatchInstalled, this);
    if (r >= 0) {
      matchSlot_.reset(slot);
      slot = nullptr;
      // Without Subscribe, systemd emits no job signals at all.
      r = sd_bus_call_method_async(bus_.get(), &slot, kSystemd, kManagerPath, kManagerIface, "Subscribe",
                                   &Impl::onSubscribeReply, this, nullptr);
    }
    if (r < 0) {
      closeBus();
      detail = "cannot subscribe to systemd's job signals: " + errnoText(-r);
      return errnoCode(-r);
    }
    subscribeSlot_.reset(slot);
    return {};
  }

  void closeBus() {
    ++busGen_;
    readArmed_ = writeArmed_ = false;
    boost::system::error_code ignored;
    busTimer_.cancel();
    if (busFd_.is_open()) {
      busFd_.cancel(ignored);
      busFd_.release();  // sd-bus owns the descriptor and closes it itself
    }
    // Slots hold references to the bus: drop them first.
    callSlot_.reset();
    subscribeSlot_.reset();
    matchSlot_.reset();
    bus_.reset();
  }

  // The bus broke (connection reset, protocol error): forget it, fail what was waiting.
  void failBus(int r) {
    closeBus();
    finish(errnoCode(r < 0 ? -r : EIO), "lost the connection to the system bus: " + errnoText(r < 0 ? -r : EIO));
  }

  // Waits for what sd-bus wants next: readable, writable, or its own timeout.
  void arm() {
    if (!bus_) return;
    int events = sd_bus_get_events(bus_.get());
    if (events < 0) {
      failBus(events);
      return;
    }
    auto handler = [weak = weak_from_this(), gen = busGen_](bool* armed) {
      return [weak, gen, armed](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self || gen != self->busGen_) return;
        *armed = false;
        if (!ec) self->process();
      };
    };
    if ((events & POLLIN) && !readArmed_) {
      readArmed_ = true;
      busFd_.async_wait(boost::asio::posix::descriptor_base::wait_read, handler(&readArmed_));
    }
    if ((events & POLLOUT) && !writeArmed_) {
      writeArmed_ = true;
      busFd_.async_wait(boost::asio::posix::descriptor_base::wait_write, handler(&writeArmed_));
    }
    std::uint64_t until = 0;
    if (sd_bus_get_timeout(bus_.get(), &until) >= 0 && until != UINT64_MAX) {
      // sd-bus answers in CLOCK_MONOTONIC microseconds, which is steady_clock's epoch.
      busTimer_.expires_at(std::chrono::steady_clock::time_point(
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
              std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(until)))));
      busTimer_.async_wait([weak = weak_from_this(), gen = busGen_](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self || ec || gen != self->busGen_) return;
        self->process();
      });
    } else {
      busTimer_.cancel();
    }
  }

  void process() {
    if (!bus_) return;
    for (;;) {
      int r = sd_bus_process(bus_.get(), nullptr);
      if (r < 0) {
        failBus(r);
        return;
      }
      if (r == 0) break;
    }
    arm();
  }

  void jobFinished(const std::string& job, const std::string& result) {
    finish(result == "done" ? std::error_code{} : make_error_code(UnitErrc::jobFailed),
           unitdetail::jobFinished(unit_, job, result));
  }

  static int onRestartReply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    if (!self->inFlight_) return 0;
    if (sd_bus_message_is_method_error(m, nullptr)) {
      const sd_bus_error* e = sd_bus_message_get_error(m);
      if (isTimeoutError(e)) {
        self->finish(errnoCode(ETIMEDOUT), "RestartUnit(" + self->unit_ + ") failed: " + errorText(e));
      } else {
        self->finish(UnitErrc::callFailed, unitdetail::callFailed(self->unit_, e && e->name ? e->name : "",
                                                                  e && e->message ? e->message : ""));
      }
      return 0;
    }
    const char* job = nullptr;
    int r = sd_bus_message_read(m, "o", &job);
    if (r < 0 || !job) {
      self->finish(UnitErrc::callFailed, "RestartUnit(" + self->unit_ + "): malformed reply: " + errnoText(r < 0 ? -r : EBADMSG));
      return 0;
    }
    self->jobPath_ = job;
    for (const auto& [path, result] : self->earlyJobs_) {
      if (path == self->jobPath_) {
        self->jobFinished(path, result);
        break;
      }
    }
    self->earlyJobs_.clear();
    return 0;
  }

  static int onJobRemoved(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    std::uint32_t id = 0;
    const char* job = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0 || !job || !result) return 0;  // ignore garbage
    if (!self->inFlight_) return 0;
    if (self->jobPath_.empty()) {
      // The signal overtook the reply to RestartUnit: keep it until the reply names our job.
      if (unit && self->unit_ == unit && self->earlyJobs_.size() < kMaxEarlyJobs) {
        self->earlyJobs_.emplace_back(job, result);
      }
      return 0;
    }
    if (self->jobPath_ == job) self->jobFinished(job, result);
    return 0;
  }

  static int onMatchInstalled(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    if (sd_bus_message_is_method_error(m, nullptr)) {
      self->finish(UnitErrc::callFailed,
                   "cannot watch systemd's JobRemoved signal: " + errorText(sd_bus_message_get_error(m)));
    }
    return 0;
  }

  static int onSubscribeReply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    if (sd_bus_message_is_method_error(m, nullptr)) {
      const sd_bus_error* e = sd_bus_message_get_error(m);
      // Already subscribed on this connection: fine, the signals come.
      if (e && e->name && std::strstr(e->name, "AlreadySubscribed")) return 0;
      self->finish(isTimeoutError(e) ? errnoCode(ETIMEDOUT) : make_error_code(UnitErrc::callFailed),
                   "systemd Subscribe failed: " + errorText(e));
    }
    return 0;
  }

  // Blocks until the connection is authenticated and running, at most until `deadline`.
  // (sd_bus_call() alone would wait for the bus's own 90 s authentication timeout.)
  bool waitReady(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      int r = sd_bus_is_ready(bus_.get());
      if (r > 0) return true;
      if (r < 0) return false;
      r = sd_bus_process(bus_.get(), nullptr);
      if (r < 0) return false;
      if (r > 0) continue;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count();
      if (sd_bus_wait(bus_.get(), static_cast<std::uint64_t>(std::max<decltype(left)>(left, 1))) < 0) return false;
    }
  }

  // unitdetail::unitState() of the unit's LoadState and ActiveState; "not-found" when
  // LoadUnit answers NoSuchUnit; empty when they can't be read.
  std::string readUnitState() {
    const auto bound = std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(2));
    if (!waitReady(std::chrono::steady_clock::now() + bound)) return {};
    const std::uint64_t t = usec(bound);
    BusError err;
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_.get(), &raw, kSystemd, kManagerPath, kManagerIface, "LoadUnit");
    MessagePtr call(raw);
    if (r < 0 || sd_bus_message_append(call.get(), "s", unit_.c_str()) < 0) return {};
    raw = nullptr;
    if (sd_bus_call(bus_.get(), call.get(), t, err.get(), &raw) < 0) {
      // Real systemd loads a missing unit as LoadState "not-found"; say the same if it
      // refuses to load it at all.
      if (sd_bus_error_has_name(err.get(), "org.freedesktop.systemd1.NoSuchUnit")) return "not-found";
      return {};
    }
    MessagePtr reply(raw);
    const char* path = nullptr;
    if (sd_bus_message_read(reply.get(), "o", &path) < 0 || !path) return {};
    std::string unitPath = path;

    auto property = [&](const char* name) -> std::string {
      sd_bus_message* m = nullptr;
      int rr = sd_bus_message_new_method_call(bus_.get(), &m, kSystemd, unitPath.c_str(),
                                              "org.freedesktop.DBus.Properties", "Get");
      MessagePtr get(m);
      if (rr < 0 || sd_bus_message_append(get.get(), "ss", "org.freedesktop.systemd1.Unit", name) < 0) return {};
      BusError e;
      m = nullptr;
      if (sd_bus_call(bus_.get(), get.get(), t, e.get(), &m) < 0) return {};
      MessagePtr value(m);
      const char* v = nullptr;
      if (sd_bus_message_read(value.get(), "v", "s", &v) < 0 || !v) return {};
      return v;
    };
    std::string load = property("LoadState");  // empty if unreadable: the ActiveState still counts
    std::string active = property("ActiveState");
    std::string state = unitdetail::unitState(load, active);
    return state;
  }

  boost::asio::io_context& io_;
  std::string unit_;
  std::chrono::milliseconds timeout_;

  BusPtr bus_;
  SlotPtr matchSlot_;
  SlotPtr subscribeSlot_;
  SlotPtr callSlot_;
  boost::asio::posix::stream_descriptor busFd_;
  bool readArmed_ = false;
  bool writeArmed_ = false;
  unsigned busGen_ = 0;  // handlers of a closed bus connection are ignored
  boost::asio::steady_timer busTimer_;

  boost::asio::steady_timer deadline_;
  bool inFlight_ = false;
  unsigned restartGen_ = 0;
  Done done_;
  std::string jobPath_;
  std::vector<std::pair<std::string, std::string>> earlyJobs_;  // JobRemoved seen before the reply
};

SystemdUnitManager::SystemdUnitManager(boost::asio::io_context& io, std::string unit,
                                       std::chrono::milliseconds timeout)
    : impl_(std::make_shared<Impl>(io, std::move(unit), timeout)) {}

SystemdUnitManager::~SystemdUnitManager() { impl_->shutdown(); }

void SystemdUnitManager::restart(Done done) { impl_->restart(std::move(done)); }

std::string SystemdUnitManager::state() { return impl_->state(); }

// --- CommandUnitManager ----------------------------------------------------------

namespace {

// The last non-empty line of the output, without trailing whitespace.
std::string lastLine(const std::string& out) {
  auto end = out.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return {};
  auto start = out.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  return out.substr(start, end - start + 1);
}

class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&fa_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&fa_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &fa_; }

 private:
  posix_spawn_file_actions_t fa_;
};

class SpawnAttr {
 public:
  SpawnAttr() { posix_spawnattr_init(&attr_); }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr_); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

class CommandUnitManager::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(boost::asio::io_context& io, std::vector<std::string> argv, std::chrono::milliseconds timeout,
       std::chrono::milliseconds killGrace)
      : io_(io), argv_(std::move(argv)), timeout_(timeout), killGrace_(killGrace), pidfd_(io), out_(io),
        deadline_(io), killTimer_(io) {}

  ~Impl() { shutdown(); }

  // Kills and reaps a running command; its done is dropped.
  void shutdown() {
    done_ = nullptr;
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
    }
    cleanup();
  }

  std::string state() const { return state_; }

  void restart(Done done) {
    if (pid_ > 0) {
      post(std::move(done), errnoCode(EINPROGRESS), "the restart command is already running");
      return;
    }
    ++gen_;
    output_.clear();
    timedOut_ = false;

    int pipeFds[2] = {-1, -1};
    if (::pipe2(pipeFds, O_CLOEXEC) != 0) {
      int e = errno;
      complete(std::move(done), errnoCode(e), "cannot create a pipe: " + errnoText(e));
      return;
    }
    int readEnd = pipeFds[0];
    int writeEnd = pipeFds[1];
    // Only our end is non-blocking; the command's stdout stays an ordinary blocking pipe.
    ::fcntl(readEnd, F_SETFL, ::fcntl(readEnd, F_GETFL) | O_NONBLOCK);

    SpawnActions actions;
    SpawnAttr attr;
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    int r = posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (r == 0) r = posix_spawn_file_actions_adddup2(actions.get(), writeEnd, STDOUT_FILENO);
    if (r == 0) r = posix_spawn_file_actions_adddup2(actions.get(), writeEnd, STDERR_FILENO);
    if (r == 0) r = posix_spawn_file_actions_addclosefrom_np(actions.get(), 3);
    // The daemon's blocked signals and ignored dispositions must not leak into the
    // command; its own process group lets a timeout stop the whole command.
    if (r == 0) r = posix_spawnattr_setsigmask(attr.get(), &none);
    if (r == 0) r = posix_spawnattr_setsigdefault(attr.get(), &all);
    if (r == 0) r = posix_spawnattr_setpgroup(attr.get(), 0);
    if (r == 0) {
      r = posix_spawnattr_setflags(attr.get(),
                                   POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    }
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = -1;
    if (r == 0) r = posix_spawnp(&pid, argv_[0].c_str(), actions.get(), attr.get(), args.data(), environ);
    closeFd(writeEnd);
    if (r != 0) {
      closeFd(readEnd);
      complete(std::move(done), errnoCode(r), "cannot run '" + argv_[0] + "': " + errnoText(r));
      return;
    }

    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      int e = errno;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      closeFd(readEnd);
      complete(std::move(done), errnoCode(e), "cannot watch the restart command (pidfd_open): " + errnoText(e));
      return;
    }
    boost::system::error_code ec1;
    boost::system::error_code ec2;
    pidfd_.assign(pidfd, ec1);
    out_.assign(readEnd, ec2);
    if (ec1) ::close(pidfd);
    if (ec2) ::close(readEnd);

    pid_ = pid;
    done_ = std::move(done);
    state_ = "activating";
    if (ec1) {  // can't wait for it without blocking: stop it now
      timedOut_ = false;
      shutdownChild();
      complete(std::exchange(done_, nullptr), errnoCode(ec1.value()), "cannot watch the restart command: " + ec1.message());
      return;
    }
    if (!ec2) readMore();
    pidfd_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                      [weak = weak_from_this(), gen = gen_](const boost::system::error_code& ec) {
                        auto self = weak.lock();
                        if (!self || ec || gen != self->gen_) return;
                        self->onExit();
                      });
    deadline_.expires_after(timeout_);
    deadline_.async_wait([weak = weak_from_this(), gen = gen_](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec || gen != self->gen_ || self->pid_ <= 0) return;
      self->onTimeout();
    });
  }

 private:
  void post(Done done, std::error_code ec, std::string detail) {
    if (!done) return;
    boost::asio::post(io_, [weak = weak_from_this(), done = std::move(done), ec, detail = std::move(detail)] {
      if (weak.lock()) done(ec, detail);
    });
  }

  void complete(Done done, std::error_code ec, std::string detail) {
    state_ = ec ? "failed" : "active";
    post(std::move(done), ec, std::move(detail));
  }

  // Waits for output and reads it ourselves (not async_read_some), so that no data can
  // sit in a completed-but-not-yet-run handler when the exit is handled.
  void readMore() {
    out_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                    [weak = weak_from_this(), gen = gen_](const boost::system::error_code& ec) {
                      auto self = weak.lock();
                      if (!self || ec || gen != self->gen_) return;
                      if (self->readAvailable(16)) self->readMore();
                    });
  }

  // Reads at most `rounds` chunks; false at EOF or on an error (stop watching the pipe).
  bool readAvailable(int rounds) {
    int fd = out_.native_handle();
    for (int i = 0; i < rounds; ++i) {
      ssize_t n = ::read(fd, buf_.data(), buf_.size());
      if (n > 0) {
        append(buf_.data(), static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
    return true;
  }

  void append(const char* data, std::size_t n) {
    output_.append(data, n);
    if (output_.size() > kMaxOutput) output_.erase(0, output_.size() - kMaxOutput);
  }

  // After the command exited: take what is left in the pipe without waiting for EOF
  // (a daemon the command started may keep the pipe open for ever).
  void drainOutput() {
    if (!out_.is_open()) return;
    // Bounded: a grandchild could keep writing for ever.
    readAvailable(static_cast<int>(2 * kMaxOutput / buf_.size()));
  }

  void onTimeout() {
    timedOut_ = true;
    if (::kill(-pid_, SIGTERM) != 0) ::kill(pid_, SIGTERM);
    killTimer_.expires_after(killGrace_);
    killTimer_.async_wait([weak = weak_from_this(), gen = gen_](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec || gen != self->gen_ || self->pid_ <= 0) return;
      if (::kill(-self->pid_, SIGKILL) != 0) ::kill(self->pid_, SIGKILL);
    });
  }

  void onExit() {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {  // not reapable yet (should not happen once the pidfd is readable): wait again
      pidfd_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                        [weak = weak_from_this(), gen = gen_](const boost::system::error_code& ec) {
                          auto self = weak.lock();
                          if (!self || ec || gen != self->gen_) return;
                          self->onExit();
                        });
      return;
    }
    pid_ = -1;
    drainOutput();
    std::string line = lastLine(output_);
    std::string suffix = line.empty() ? "" : ": " + line;
    std::error_code ec;
    std::string detail;
    if (r < 0) {
      ec = errnoCode(errno);
      detail = "cannot collect the restart command's status: " + ec.message();
    } else if (timedOut_) {
      ec = errnoCode(ETIMEDOUT);
      detail = "timed out after " + std::to_string(timeout_.count()) + " ms and was killed" +
               (WIFSIGNALED(status) ? " (signal " + std::to_string(WTERMSIG(status)) + ")" : "") + suffix;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      detail = line.empty() ? "exited with status 0" : line;
    } else if (WIFEXITED(status)) {
      ec = UnitErrc::commandFailed;
      detail = "exited with status " + std::to_string(WEXITSTATUS(status)) + suffix;
    } else {
      ec = UnitErrc::commandFailed;
      int sig = WTERMSIG(status);
      const char* name = ::sigdescr_np(sig);
      detail = "killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "") + suffix;
    }
    cleanup();
    complete(std::exchange(done_, nullptr), ec, std::move(detail));
  }

  void shutdownChild() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    cleanup();
  }

  void cleanup() {
    ++gen_;  // outstanding handlers of this run are now stale
    boost::system::error_code ignored;
    deadline_.cancel();
    killTimer_.cancel();
    if (pidfd_.is_open()) pidfd_.close(ignored);
    if (out_.is_open()) out_.close(ignored);
  }

  boost::asio::io_context& io_;
  std::vector<std::string> argv_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds killGrace_;
  boost::asio::posix::stream_descriptor pidfd_;
  boost::asio::posix::stream_descriptor out_;
  boost::asio::steady_timer deadline_;
  boost::asio::steady_timer killTimer_;
  pid_t pid_ = -1;
  unsigned gen_ = 0;
  bool timedOut_ = false;
  Done done_;
  std::string output_;
  std::array<char, 4096> buf_{};
  std::string state_ = "unknown";
};

CommandUnitManager::CommandUnitManager(boost::asio::io_context& io, std::vector<std::string> argv,
                                       std::chrono::milliseconds timeout, std::chrono::milliseconds killGrace) {
  if (argv.empty() || argv[0].empty()) throw std::invalid_argument("the restart command is empty");
  impl_ = std::make_shared<Impl>(io, std::move(argv), timeout, killGrace);
}

CommandUnitManager::~CommandUnitManager() { impl_->shutdown(); }

void CommandUnitManager::restart(Done done) { impl_->restart(std::move(done)); }

std::string CommandUnitManager::state() { return impl_->state(); }

}  // namespace ipopsec
