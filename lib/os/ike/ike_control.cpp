#include "os/ike/ike_control.hpp"

#include <boost/asio/post.hpp>

#include "os/ike/command_runner.hpp"
#include "core/render/quoting.hpp"
#include "os/netlink/sock_diag.hpp"
#include "os/systemd/systemd_unit.hpp"

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

}  // namespace

const std::error_category& unitCategory() {
  static const UnitCategory category;
  return category;
}

std::error_code make_error_code(UnitErrc e) { return {static_cast<int>(e), unitCategory()}; }


// --- IkeDaemonControl --------------------------------------------------------------

IkeDaemonControl::Settings IkeDaemonControl::Settings::of(const Config& cfg) {
  Settings s;
  s.control = cfg.ike.control;
  s.unit = cfg.ike.unit;
  s.restartCommand = cfg.ike.restartCommand;
  if (cfg.ike.backend == IkeBackend::strongswan) {
    s.loadCommand = cfg.strongswan.loadCommand;
    s.loadCredsCommand = cfg.strongswan.loadCredsCommand;
    s.cutCommand = cfg.strongswan.cutCommand;
  }
  s.timeout = cfg.ike.restartTimeout;
  return s;
}

bool IkeDaemonControl::Settings::sameRestarter(const Settings& o) const {
  if (control != o.control || timeout != o.timeout) return false;
  return control == IkeControl::command ? restartCommand == o.restartCommand : unit == o.unit;
}

bool IkeDaemonControl::Settings::sameReloader(const Settings& o) const {
  return loadCommand == o.loadCommand && loadCredsCommand == o.loadCredsCommand && timeout == o.timeout;
}

IkeDaemonControl::IkeDaemonControl(boost::asio::io_context& io, const Config& cfg)
    : io_(io), settings_(Settings::of(cfg)), listenTimer_(io) {
  restarter_ = makeRestarter();
  reloader_ = makeReloader();
  credsLoader_ = makeCredsLoader();
}

IkeDaemonControl::~IkeDaemonControl() = default;

std::unique_ptr<IkeRunner> IkeDaemonControl::makeRestarter() const {
  if (settings_.control == IkeControl::command)
    return std::make_unique<CommandRunner>(io_, settings_.restartCommand, settings_.timeout);
  return std::make_unique<SystemdUnit>(io_, settings_.unit, settings_.timeout);
}

std::unique_ptr<IkeRunner> IkeDaemonControl::makeReloader() const {
  if (settings_.loadCommand.empty()) return nullptr;
  return std::make_unique<CommandRunner>(io_, settings_.loadCommand, settings_.timeout);
}

std::unique_ptr<IkeRunner> IkeDaemonControl::makeCredsLoader() const {
  if (settings_.loadCommand.empty() || settings_.loadCredsCommand.empty()) return nullptr;
  return std::make_unique<CommandRunner>(io_, settings_.loadCredsCommand, settings_.timeout);
}

std::string IkeDaemonControl::name() const {
  if (settings_.control == IkeControl::command && !settings_.restartCommand.empty())
    return "the IKE daemon (ike.restart_command " + commandLine(settings_.restartCommand) + ")";
  return settings_.unit;
}

void IkeDaemonControl::run(IkeAction action, Done done) {
  if (inFlight_) {
    boost::asio::post(io_, [done = std::move(done)] {
      done(std::make_error_code(std::errc::operation_in_progress), "another IKE action is still running");
    });
    return;
  }
  IkeRunner* runner = action == IkeAction::loadCreds && credsLoader_ ? credsLoader_.get()
                      : action != IkeAction::restart && reloader_  ? reloader_.get()
                                                                    : restarter_.get();
  inFlight_ = std::move(done);
  inFlightOn_ = runner;
  const std::uint64_t gen = ++generation_;
  // The runner belongs to this object and drops its completion when destroyed.
  runner->run([this, gen](std::error_code ec, const std::string& detail) {
    if (gen != generation_ || !inFlight_) return;
    Done d = std::move(inFlight_);
    inFlight_ = nullptr;
    inFlightOn_ = nullptr;
    d(ec, detail);
  });
}

void IkeDaemonControl::cut(const std::vector<std::string>& serials, Done done) {
  std::vector<std::string> argv = settings_.cutCommand;
  argv.insert(argv.end(), serials.begin(), serials.end());
  cutter_ = std::make_unique<CommandRunner>(io_, std::move(argv), settings_.timeout);  // drops a previous one
  cutter_->run(std::move(done));
}

void IkeDaemonControl::cancelInFlight(const std::string& why) {
  if (!inFlight_) return;
  ++generation_;
  Done d = std::move(inFlight_);
  inFlight_ = nullptr;
  inFlightOn_ = nullptr;
  boost::asio::post(io_, [d = std::move(d), why] { d(std::make_error_code(std::errc::operation_canceled), why); });
}

void IkeDaemonControl::reconfigure(const Config& cfg) {
  Settings next = Settings::of(cfg);
  const bool restarterChanged = !settings_.sameRestarter(next);
  const bool reloaderChanged = !settings_.sameReloader(next);
  // The old runner is destroyed, which stops its command (or stops waiting for its job).
  if ((restarterChanged && inFlightOn_ == restarter_.get()) ||
      (reloaderChanged && (inFlightOn_ == reloader_.get() || inFlightOn_ == credsLoader_.get())))
    cancelInFlight("how the IKE daemon is controlled changed on reload");
  settings_ = std::move(next);
  if (restarterChanged) {
    restarter_ = makeRestarter();
    if (onState_) restarter_->watch(onState_);
  }
  if (reloaderChanged) {
    reloader_ = makeReloader();
    credsLoader_ = makeCredsLoader();
  }
}

std::string IkeDaemonControl::state() { return restarter_->state(); }

void IkeDaemonControl::watchState(std::function<void(const std::string&)> onState) {
  onState_ = std::move(onState);
  restarter_->watch(onState_);
}

void IkeDaemonControl::whenListening(std::function<void(bool listening)> then) {
  listenThen_ = std::move(then);
  listenUntil_ = std::chrono::steady_clock::now() + settings_.timeout;
  listenTimer_.cancel();
  // Asked at once (the IKE daemon usually listens before its unit's job finishes), then
  // every kListenPoll: the kernel announces no bind.
  // Posted, not called: `then` never runs inside whenListening(). The weak token keeps a
  // post that outlives this object from touching it.
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_), gen = ++listenGen_] {
    if (!alive.expired()) pollListening(gen);
  });
}

void IkeDaemonControl::pollListening(std::uint64_t gen) {
  if (gen != listenGen_ || !listenThen_) return;  // replaced by a later wait
  bool bound = false;
  std::error_code ec = probe_ ? probe_(kIkePort, bound) : udpPortBound(kIkePort, bound);
  if (ec) {
    // No answer is not "not listening": the action has finished, which is the best answer
    // left (waiting out the restart timeout would hold back the larval states' removal).
    if (!noAnswerSaid_ && log_)
      log_("cannot ask the kernel whether " + name() + " listens on UDP port " + std::to_string(kIkePort) + " (" +
           (ec == std::errc::no_such_file_or_directory ? std::string("no UDP socket diagnostics: module udp_diag")
                                                        : "sock_diag: " + ec.message()) +
           "): taking its finished restart or reload as the answer");
    noAnswerSaid_ = true;
    bound = true;
  } else {
    noAnswerSaid_ = false;
  }
  if (bound || std::chrono::steady_clock::now() >= listenUntil_) {
    auto then = std::move(listenThen_);
    listenThen_ = nullptr;
    then(bound);
    return;
  }
  listenTimer_.expires_after(kListenPoll);
  listenTimer_.async_wait([this, gen](boost::system::error_code e) {
    if (!e) pollListening(gen);
  });
}

}  // namespace ipopsec
