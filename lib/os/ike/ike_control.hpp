#pragma once
// The real IkeController: restarts the IKE daemon through systemd (SystemdUnit) or a
// command (CommandRunner), reloads strongSwan's configuration with
// strongswan.load_command (CommandRunner), and tells when the IKE daemon listens (UDP
// port 500 bound in this network namespace, asked over sock_diag; where the kernel cannot
// tell, the finished restart or reload is taken as the answer).
//
// One object for the daemon's lifetime: reconfigure() swaps only the runners whose
// settings changed; an action in flight on a swapped runner completes with
// std::errc::operation_canceled (the Reconciler then runs it again on the new one).

#include <utility>  // before any boost/asio header (Boost 1.74 + g++12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "core/ports.hpp"
#include "os/ike/ike_runner.hpp"

namespace ipopsec {

class IkeDaemonControl final : public IkeController {
 public:
  // The UDP port an IKE daemon listens on.
  static constexpr std::uint16_t kIkePort = 500;
  // How often whenListening() asks the kernel (a bind sends no event).
  static constexpr std::chrono::milliseconds kListenPoll{10};

  IkeDaemonControl(boost::asio::io_context& io, const Config& cfg);
  ~IkeDaemonControl() override;
  IkeDaemonControl(const IkeDaemonControl&) = delete;
  IkeDaemonControl& operator=(const IkeDaemonControl&) = delete;

  std::string name() const override;
  bool canReload() const override { return reloader_ != nullptr; }
  bool canLoadCreds() const override { return credsLoader_ != nullptr; }
  bool canCut() const override { return !settings_.cutCommand.empty(); }
  // Runs strongswan.cut_command with the serials appended (CommandRunner: its last output
  // line is the detail). A cut still running is cancelled by the next one (no completion).
  void cut(const std::vector<std::string>& serials, Done done) override;
  void run(IkeAction action, Done done) override;
  std::string state() override;
  void whenListening(std::function<void(bool listening)> then) override;
  void reconfigure(const Config& cfg) override;
  void watchState(std::function<void(const std::string& state)> onState) override;

  // The question whenListening() asks the kernel: udpPortBound (os/netlink/sock_diag.hpp) unless
  // set. An error is no answer: whenListening() then calls then(true) at once, since the
  // restart or reload it waits after has finished, and waiting out the restart timeout
  // would only delay what follows (the larval states' removal).
  using ListenProbe = std::function<std::error_code(std::uint16_t port, bool& bound)>;
  void setListenProbe(ListenProbe probe) { probe_ = std::move(probe); }
  // Where a line for the log goes (library code does not log): why whenListening() did not
  // wait, said when the kernel first cannot answer, again only after it answered meanwhile.
  void setLogger(std::function<void(const std::string&)> log) { log_ = std::move(log); }

  // The settings that decide the runners, as a config gives them.
  struct Settings {
    IkeControl control = IkeControl::systemd;
    std::string unit;
    std::vector<std::string> restartCommand, loadCommand;  // loadCommand empty: no reload
    std::vector<std::string> loadCredsCommand;             // empty: no loadCreds (a reload instead)
    std::vector<std::string> cutCommand;                   // empty: no cut (strongSwan only)
    std::chrono::milliseconds timeout{0};
    static Settings of(const Config& cfg);
    bool sameRestarter(const Settings& o) const;
    bool sameReloader(const Settings& o) const;
  };

 private:
  std::unique_ptr<IkeRunner> makeRestarter() const;
  std::unique_ptr<IkeRunner> makeReloader() const;
  std::unique_ptr<IkeRunner> makeCredsLoader() const;
  void cancelInFlight(const std::string& why);
  void pollListening(std::uint64_t gen);

  boost::asio::io_context& io_;
  Settings settings_;
  std::unique_ptr<IkeRunner> restarter_, reloader_, credsLoader_, cutter_;
  std::function<void(const std::string&)> onState_;  // watchState(), handed to every restarter
  // The action in flight: its done, and which runner runs it.
  Done inFlight_;
  IkeRunner* inFlightOn_ = nullptr;
  std::uint64_t generation_ = 0;  // completions of a cancelled action are dropped
  boost::asio::steady_timer listenTimer_;
  std::function<void(bool)> listenThen_;
  std::chrono::steady_clock::time_point listenUntil_;
  std::uint64_t listenGen_ = 0;
  ListenProbe probe_;
  std::function<void(const std::string&)> log_;
  bool noAnswerSaid_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // see whenListening()
};

}  // namespace ipopsec
