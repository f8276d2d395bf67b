#include "os/systemd/systemd_unit.hpp"

#include <systemd/sd-bus.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "os/systemd/asio_bus.hpp"

namespace ipopsec {

// --- SystemdUnit ----------------------------------------------------------

namespace {

constexpr const char* kSystemd = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManagerIface = "org.freedesktop.systemd1.Manager";
constexpr std::size_t kMaxEarlyJobs = 16;

}  // namespace

class SystemdUnit::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(boost::asio::io_context& io, std::string unit, std::chrono::milliseconds timeout)
      : io_(io), unit_(std::move(unit)), timeout_(timeout), bus_(io), deadline_(io) {
    bus_.onBroken([this](int r) { failBus(r); });
  }

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
    if (r >= 0) r = sd_bus_call_async(bus_.get(), &slot, msg.get(), &Impl::onRestartReply, this, busUsec(timeout_));
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
    if (auto ec = bus_.open(detail)) return ec;

    sd_bus_slot* slot = nullptr;
    int r = sd_bus_match_signal_async(bus_.get(), &slot, kSystemd, kManagerPath, kManagerIface, "JobRemoved",
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
    // Slots hold references to the bus: drop them first.
    callSlot_.reset();
    subscribeSlot_.reset();
    matchSlot_.reset();
    stateSlot_.reset();
    bus_.close();
  }

  // The bus broke (connection reset, protocol error): forget it, fail what was waiting.
  void failBus(int r) {
    closeBus();
    finish(errnoCode(r < 0 ? -r : EIO), "lost the connection to the system bus: " + errnoText(r < 0 ? -r : EIO));
  }

  void arm() { bus_.arm(); }
  void process() { bus_.process(); }

  void jobFinished(const std::string& job, const std::string& result) {
    finish(result == "done" ? std::error_code{} : make_error_code(UnitErrc::jobFailed),
           unitdetail::jobFinished(unit_, job, result));
  }

  static int onRestartReply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    if (!self->inFlight_) return 0;
    if (sd_bus_message_is_method_error(m, nullptr)) {
      const sd_bus_error* e = sd_bus_message_get_error(m);
      if (isBusTimeout(e)) {
        self->finish(errnoCode(ETIMEDOUT), "RestartUnit(" + self->unit_ + ") failed: " + busErrorText(e));
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
                   "cannot watch systemd's JobRemoved signal: " + busErrorText(sd_bus_message_get_error(m)));
    }
    return 0;
  }

  static int onSubscribeReply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    if (sd_bus_message_is_method_error(m, nullptr)) {
      const sd_bus_error* e = sd_bus_message_get_error(m);
      // Already subscribed on this connection: fine, the signals come.
      if (e && e->name && std::strstr(e->name, "AlreadySubscribed")) return 0;
      self->finish(isBusTimeout(e) ? errnoCode(ETIMEDOUT) : make_error_code(UnitErrc::callFailed),
                   "systemd Subscribe failed: " + busErrorText(e));
    }
    return 0;
  }

  // unitdetail::unitState() of the unit's LoadState and ActiveState; "not-found" when
  // LoadUnit answers NoSuchUnit; empty when they can't be read.
  std::string readUnitState() {
    const auto bound = std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(2));
    if (!bus_.waitReady(std::chrono::steady_clock::now() + bound)) return {};
    const std::uint64_t t = busUsec(bound);
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

  AsioBus bus_;
  SlotPtr matchSlot_;
  SlotPtr subscribeSlot_;
  SlotPtr callSlot_;
  SlotPtr stateSlot_;
  std::string watchedPath_;  // the unit object stateSlot_ follows
  std::function<void(const std::string&)> onState_;
  std::string loadState_, activeState_;  // as last read or announced

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
