#include "os/systemd/systemd_unit.hpp"

#include "os/c_handle.hpp"


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
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace ipopsec {

// --- the details SystemdUnit reports ---------------------------------------

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
  if (unit == "racoon.service") s += "; racoon is not packaged in Debian: use `ike.backend: strongswan`";
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

// --- SystemdUnit ----------------------------------------------------------

namespace {

constexpr const char* kSystemd = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManagerIface = "org.freedesktop.systemd1.Manager";
constexpr std::size_t kMaxEarlyJobs = 16;

// Close without flushing: sd_bus_flush() blocks (for up to the 90 s authentication
// timeout on a bus that never answered), and nothing queued is worth that.
using BusPtr = CHandle<sd_bus, sd_bus_close_unref>;
using SlotPtr = CHandle<sd_bus_slot, sd_bus_slot_unref>;
using MessagePtr = CHandle<sd_bus_message, sd_bus_message_unref>;

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

class SystemdUnit::Impl : public std::enable_shared_from_this<Impl> {
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

  void watch(std::function<void(const std::string&)> onState) {
    onState_ = std::move(onState);
    if (!bus_) {
      std::string detail;
      (void)openBus(detail);  // no bus yet (no systemd): the next state() or restart connects and watches
    } else {
      watchPath(namedPath());
    }
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
    // The unit's state by events: systemd sends PropertiesChanged for a unit object to
    // subscribed clients (Subscribe, above) whenever its ActiveState or LoadState changes.
    watchedPath_.clear();
    if (onState_) watchPath(namedPath());
    arm();
    return {};
  }

  // The object path of the unit by the name configured. systemd sends a unit's signals on the
  // path of its own name only: for an alias (strongswan-swanctl.service for strongswan.service)
  // that is another path, which LoadUnit returns (readUnitState moves the watch there).
  std::string namedPath() const {
    char* path = nullptr;
    if (sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit_.c_str(), &path) < 0 || !path) return {};
    std::string out = path;
    std::free(path);
    return out;
  }

  // Follows PropertiesChanged of the unit object at `path` (replacing an earlier watch).
  void watchPath(const std::string& path) {
    if (!bus_ || !onState_ || path.empty() || path == watchedPath_) return;
    sd_bus_slot* slot = nullptr;
    if (sd_bus_match_signal_async(bus_.get(), &slot, kSystemd, path.c_str(), "org.freedesktop.DBus.Properties",
                                  "PropertiesChanged", &Impl::onPropertiesChanged, &Impl::onWatchInstalled,
                                  this) < 0)
      return;
    stateSlot_.reset(slot);
    watchedPath_ = path;
  }

  // PropertiesChanged(s interface, a{sv} changed, as invalidated) of the unit's object.
  static int onPropertiesChanged(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    const char* iface = nullptr;
    if (sd_bus_message_read(m, "s", &iface) < 0 || !iface || std::strcmp(iface, "org.freedesktop.systemd1.Unit") != 0)
      return 0;
    if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0) return 0;
    bool changed = false;
    while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
      const char* name = nullptr;
      if (sd_bus_message_read(m, "s", &name) < 0 || !name) return 0;
      std::string* into = std::strcmp(name, "ActiveState") == 0 ? &self->activeState_
                          : std::strcmp(name, "LoadState") == 0 ? &self->loadState_
                                                                  : nullptr;
      if (into) {
        const char* v = nullptr;
        if (sd_bus_message_read(m, "v", "s", &v) < 0 || !v) return 0;
        changed = changed || *into != v;
        *into = v;
      } else if (sd_bus_message_skip(m, "v") < 0) {
        return 0;
      }
      if (sd_bus_message_exit_container(m) < 0) return 0;
    }
    if (!changed || self->activeState_.empty() || !self->onState_) return 0;
    boost::asio::post(self->io_, [weak = self->weak_from_this(),
                                  state = unitdetail::unitState(self->loadState_, self->activeState_)] {
      if (auto s = weak.lock(); s && s->onState_) s->onState_(state);
    });
    return 0;
  }

  static int onWatchInstalled(sd_bus_message*, void*, sd_bus_error*) {
    return 0;  // not watched: the resync's state() still reads it
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
    stateSlot_.reset();
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
    watchPath(unitPath);

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
    loadState_ = load;
    activeState_ = active;
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
  SlotPtr stateSlot_;
  std::string watchedPath_;  // the unit object stateSlot_ follows
  std::function<void(const std::string&)> onState_;
  std::string loadState_, activeState_;  // as last read or announced
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

SystemdUnit::SystemdUnit(boost::asio::io_context& io, std::string unit,
                                       std::chrono::milliseconds timeout)
    : impl_(std::make_shared<Impl>(io, std::move(unit), timeout)) {}

SystemdUnit::~SystemdUnit() { impl_->shutdown(); }

void SystemdUnit::run(Done done) { impl_->restart(std::move(done)); }

std::string SystemdUnit::state() { return impl_->state(); }

void SystemdUnit::watch(std::function<void(const std::string&)> onState) { impl_->watch(std::move(onState)); }

}  // namespace ipopsec
