// The IKE runners against real processes: CommandRunner runs real commands;
// SystemdUnit talks to a private dbus-daemon on which this test plays systemd
// (org.freedesktop.systemd1: RestartUnit, Subscribe, LoadUnit, JobRemoved, ActiveState),
// and to no bus at all.

#include <utility>  // before any boost/asio header

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "integration/netns.hpp"
#include "os/ike/command_runner.hpp"
#include "os/ike/ike_control.hpp"
#include "os/systemd/systemd_unit.hpp"

extern char** environ;

namespace ipopsec {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Outcome {
  int calls = 0;
  std::error_code ec;
  std::string detail;
};

IkeRunner::Done recordInto(Outcome& o) {
  return [&o](std::error_code ec, const std::string& detail) {
    ++o.calls;
    o.ec = ec;
    o.detail = detail;
  };
}

// Runs the io_context until pred() holds or `limit` passes; false on timeout.
bool runUntil(boost::asio::io_context& io, const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (!pred()) {
    auto now = Clock::now();
    if (now >= deadline) return false;
    io.restart();
    if (io.run_one_for(deadline - now) == 0 && io.stopped() && !pred()) return false;
  }
  return true;
}

int countOpenFds() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

// True when this process has no child left, running or zombie.
bool noChildren() {
  int status = 0;
  return ::waitpid(-1, &status, WNOHANG) < 0 && errno == ECHILD;
}

// A directory under /tmp, removed with everything in it when the test ends (also when
// an assertion fails).
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ipopsec-unit-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class IkeRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::isRoot()) test::enterFreshNetns();
    ASSERT_TRUE(noChildren()) << "a previous test left a child behind";
  }
  // Runs `r` once and waits for its done, at most `limit`: false when it never came.
  bool runOnce(IkeRunner& r, Outcome& o, std::chrono::milliseconds limit = 5s) {
    r.run(recordInto(o));
    return runUntil(io_, [&] { return o.calls > 0; }, limit);
  }
  boost::asio::io_context io_;
};

// --- IkeDaemonControl: the port over the runners ------------------------------------

Config commandConfig(std::vector<std::string> restart, std::vector<std::string> load = {}) {
  Config c;
  c.ike.control = IkeControl::command;
  c.ike.restartCommand = std::move(restart);
  c.ike.restartTimeout = 5000ms;
  if (!load.empty()) {
    c.ike.backend = IkeBackend::strongswan;
    c.strongswan.loadCommand = std::move(load);
  }
  return c;
}

TEST_F(IkeRunnerTest, ControlRunsRestartAndReloadOnTheirOwnRunnersAndNamesWhatItRuns) {
  IkeDaemonControl ike(io_, commandConfig({"/bin/true"}, {"/bin/false"}));
  EXPECT_EQ(ike.name(), "the IKE daemon (ike.restart_command /bin/true)");
  ASSERT_TRUE(ike.canReload());
  Outcome restart, reload;
  ike.run(IkeAction::restart, recordInto(restart));
  ASSERT_TRUE(runUntil(io_, [&] { return restart.calls == 1; }, 5s));
  EXPECT_FALSE(restart.ec) << restart.detail;
  ike.run(IkeAction::reload, recordInto(reload));
  ASSERT_TRUE(runUntil(io_, [&] { return reload.calls == 1; }, 5s));
  EXPECT_TRUE(reload.ec) << "the reload ran strongswan.load_command (/bin/false), not the restart command";
  Config racoon;
  racoon.ike.unit = "racoon.service";
  IkeDaemonControl systemd(io_, racoon);
  EXPECT_EQ(systemd.name(), "racoon.service");
  EXPECT_FALSE(systemd.canReload());
}

TEST_F(IkeRunnerTest, ReconfigureCutsAnActionOnAReplacedRunnerShortAndStopsItsCommand) {
  TempDir dir;
  const std::string pidFile = dir.path() + "/pid";
  IkeDaemonControl ike(io_, commandConfig({"/bin/sh", "-c", "echo $$ > " + pidFile + "; exec sleep 30"}));
  Outcome first;
  ike.run(IkeAction::restart, recordInto(first));
  // The command started (it wrote its pid): polled, since no io_context event says so.
  for (auto end = Clock::now() + 5s; !(std::filesystem::exists(pidFile) && std::filesystem::file_size(pidFile) > 0);) {
    ASSERT_LT(Clock::now(), end) << "the restart command did not start";
    io_.restart();
    io_.run_for(10ms);
  }
  EXPECT_EQ(ike.name(), "the IKE daemon (ike.restart_command /bin/sh -c 'echo $$ > " + pidFile + "; exec sleep 30')")
      << "a wrapper is named by what it runs, not by its interpreter";
  Outcome busy;
  ike.run(IkeAction::restart, recordInto(busy));
  ASSERT_TRUE(runUntil(io_, [&] { return busy.calls == 1; }, 5s));
  EXPECT_EQ(busy.ec, std::errc::operation_in_progress) << "one action at a time";

  // The same restart command: nothing in flight is touched.
  ike.reconfigure(commandConfig({"/bin/sh", "-c", "echo $$ > " + pidFile + "; exec sleep 30"}));
  io_.restart();
  io_.run_for(100ms);
  EXPECT_EQ(first.calls, 0);

  ike.reconfigure(commandConfig({"/bin/true"}));
  ASSERT_TRUE(runUntil(io_, [&] { return first.calls == 1; }, 5s));
  EXPECT_EQ(first.ec, std::errc::operation_canceled);
  EXPECT_EQ(ike.name(), "the IKE daemon (ike.restart_command /bin/true)");
  EXPECT_TRUE(runUntil(io_, [] { return noChildren(); }, 5s)) << "the old command was stopped and reaped";
  Outcome again;
  ike.run(IkeAction::restart, recordInto(again));
  ASSERT_TRUE(runUntil(io_, [&] { return again.calls == 1; }, 5s));
  EXPECT_FALSE(again.ec) << again.detail;
}

// --- CommandRunner ---------------------------------------------------------------

TEST_F(IkeRunnerTest, CommandTrueSucceeds) {
  CommandRunner m(io_, {"/bin/true"}, 5s);
  EXPECT_EQ(m.state(), "unknown");
  Outcome o;
  m.run(recordInto(o));
  EXPECT_EQ(o.calls, 0) << "done must not run inside restart()";
  EXPECT_EQ(m.state(), "activating");
  ASSERT_TRUE(runUntil(io_, [&] { return o.calls > 0; }, 5s));
  EXPECT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(o.detail, "exited with status 0");
  EXPECT_EQ(m.state(), "active");
  EXPECT_TRUE(noChildren());
}

TEST_F(IkeRunnerTest, CommandFalseFails) {
  CommandRunner m(io_, {"/bin/false"}, 5s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o));
  EXPECT_EQ(o.ec, UnitErrc::commandFailed);
  EXPECT_EQ(o.detail, "exited with status 1");
  EXPECT_EQ(m.state(), "failed");
}

TEST_F(IkeRunnerTest, CommandOutputLastLineIsInTheDetail) {
  TempDir dir;
  std::string script = dir.path() + "/restart-racoon";
  {
    std::ofstream out(script);
    out << "#!/bin/sh\necho 'Restarting racoon'\necho 'racoon: failed to parse configuration' >&2\n\nexit 3\n";
  }
  ::chmod(script.c_str(), 0755);
  CommandRunner m(io_, {script}, 5s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o));
  EXPECT_EQ(o.ec, UnitErrc::commandFailed);
  EXPECT_EQ(o.detail, "exited with status 3: racoon: failed to parse configuration");
}

TEST_F(IkeRunnerTest, CommandMissingBinaryIsAClearError) {
  CommandRunner m(io_, {"/nonexistent/ipopsec-restart"}, 5s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o));
  EXPECT_EQ(o.ec, std::errc::no_such_file_or_directory);
  EXPECT_NE(o.detail.find("cannot run '/nonexistent/ipopsec-restart'"), std::string::npos) << o.detail;
  EXPECT_EQ(m.state(), "failed");
  EXPECT_TRUE(noChildren());
}

TEST_F(IkeRunnerTest, EmptyCommandIsRejectedAtConstruction) {
  EXPECT_THROW(CommandRunner(io_, {}, 5s), std::invalid_argument);
  EXPECT_THROW(CommandRunner(io_, {""}, 5s), std::invalid_argument);
}

TEST_F(IkeRunnerTest, CommandKilledBySignalFails) {
  CommandRunner m(io_, {"/bin/sh", "-c", "echo dying; kill -9 $$"}, 5s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o));
  EXPECT_EQ(o.ec, UnitErrc::commandFailed);
  EXPECT_EQ(o.detail.rfind("killed by signal 9", 0), 0U) << o.detail;
  EXPECT_NE(o.detail.find(": dying"), std::string::npos) << o.detail;
}

TEST_F(IkeRunnerTest, CommandHangIsKilledAtTheTimeoutAndReaped) {
  CommandRunner m(io_, {"/bin/sleep", "30"}, 200ms);
  Outcome o;
  auto start = Clock::now();
  ASSERT_TRUE(runOnce(m, o, 10s));
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(o.ec, std::errc::timed_out);
  EXPECT_NE(o.detail.find("timed out after 200 ms"), std::string::npos) << o.detail;
  EXPECT_NE(o.detail.find("signal 15"), std::string::npos) << o.detail;
  EXPECT_GE(elapsed, 200ms);
  EXPECT_LT(elapsed, 4s);
  EXPECT_TRUE(noChildren());
}

TEST_F(IkeRunnerTest, CommandIgnoringSigtermIsKilledAfterTheGrace) {
  // The shell ignores TERM, and so do its children (ignored dispositions are inherited).
  CommandRunner m(io_, {"/bin/sh", "-c", "trap '' TERM; echo stubborn; while :; do sleep 0.05; done"}, 200ms,
                       300ms);
  Outcome o;
  auto start = Clock::now();
  ASSERT_TRUE(runOnce(m, o, 10s));
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(o.ec, std::errc::timed_out);
  EXPECT_NE(o.detail.find("signal 9"), std::string::npos) << o.detail;
  EXPECT_NE(o.detail.find("stubborn"), std::string::npos) << o.detail;
  EXPECT_GE(elapsed, 500ms);
  EXPECT_TRUE(noChildren());
}

TEST_F(IkeRunnerTest, CommandDoesNotInheritBlockedSignals) {
  // A daemon that blocks SIGTERM (signalfd style) must not hand that mask to the command,
  // or the timeout's SIGTERM would not stop it.
  sigset_t term;
  sigset_t old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::sigprocmask(SIG_BLOCK, &term, &old), 0);
  CommandRunner m(io_, {"/bin/sleep", "30"}, 200ms, 20s);
  Outcome o;
  auto start = Clock::now();
  m.run(recordInto(o));
  bool finished = runUntil(io_, [&] { return o.calls > 0; }, 10s);
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(finished);
  EXPECT_EQ(o.ec, std::errc::timed_out);
  EXPECT_NE(o.detail.find("signal 15"), std::string::npos) << o.detail;
  EXPECT_LT(Clock::now() - start, 5s);
}

// Commands that succeed, each with the detail its run must report: its output's last line.
struct DetailCase {
  const char* name;
  std::vector<std::string> argv;
  std::string detail;
};

void PrintTo(const DetailCase& c, std::ostream* os) { *os << c.name; }

class CommandDetailTest : public IkeRunnerTest, public ::testing::WithParamInterface<DetailCase> {};

TEST_P(CommandDetailTest, IsTheOutputsLastLine) {
  CommandRunner m(io_, GetParam().argv, 10s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o, 10s));
  EXPECT_FALSE(o.ec) << o.ec.message() << ": " << o.detail;
  EXPECT_EQ(o.detail, GetParam().detail);
}

INSTANTIATE_TEST_SUITE_P(
    Command, CommandDetailTest,
    ::testing::Values(
        // PATH lookup for a bare name; an argument with shell metacharacters stays literal.
        DetailCase{"ArgumentsArePassedWithoutAShell", {"printf", "%s\\n", "a; exit 7 $(false)"}, "a; exit 7 $(false)"},
        DetailCase{"StdinIsDevNull", {"/bin/sh", "-c", "cat; echo stdin-closed"}, "stdin-closed"},
        // 1 MB through a 64 KiB pipe: the command would block for ever if nobody read it.
        DetailCase{"LargeOutputDoesNotBlockAndIsBounded",
                   {"/bin/sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo tail-line"},
                   "tail-line"}),
    [](const ::testing::TestParamInfo<DetailCase>& info) { return std::string(info.param.name); });

TEST_F(IkeRunnerTest, CommandThatLeavesADaemonHoldingItsOutputCompletes) {
  // Like an init script starting a daemon that keeps the script's stdout: completion
  // follows the command's exit, not the end of its output.
  CommandRunner m(io_, {"/bin/sh", "-c", "sleep 3 & echo started-daemon"}, 10s);
  Outcome o;
  auto start = Clock::now();
  ASSERT_TRUE(runOnce(m, o, 10s));
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_FALSE(o.ec) << o.detail;
  EXPECT_EQ(o.detail, "started-daemon");
}

TEST_F(IkeRunnerTest, CommandSecondRestartWhileRunningIsRefused) {
  CommandRunner m(io_, {"/bin/sh", "-c", "sleep 0.3; echo first"}, 5s);
  Outcome first;
  Outcome second;
  m.run(recordInto(first));
  m.run(recordInto(second));
  ASSERT_TRUE(runUntil(io_, [&] { return first.calls > 0 && second.calls > 0; }, 5s));
  EXPECT_EQ(second.ec, std::errc::operation_in_progress);
  EXPECT_FALSE(first.ec) << first.detail;
  EXPECT_EQ(first.detail, "first");
  EXPECT_EQ(first.calls, 1);
  EXPECT_EQ(second.calls, 1);

  // Afterwards a restart runs again.
  Outcome third;
  ASSERT_TRUE(runOnce(m, third));
  EXPECT_FALSE(third.ec);
}

TEST_F(IkeRunnerTest, CommandManySequentialRestartsLeakNoDescriptors) {
  CommandRunner m(io_, {"/bin/sh", "-c", "echo ok"}, 5s);
  // One warm-up run: Asio's reactor opens its epoll/eventfd descriptors lazily.
  Outcome warm;
  ASSERT_TRUE(runOnce(m, warm));
  int before = countOpenFds();
  for (int i = 0; i < 50; ++i) {
    Outcome o;
    m.run(recordInto(o));
    ASSERT_TRUE(runUntil(io_, [&] { return o.calls > 0; }, 5s)) << "run " << i;
    ASSERT_FALSE(o.ec) << o.detail;
  }
  // Failures (missing binary, timeout) release theirs too.
  CommandRunner missing(io_, {"/nonexistent/x"}, 5s);
  CommandRunner hang(io_, {"/bin/sleep", "30"}, 50ms);
  for (int i = 0; i < 5; ++i) {
    Outcome a;
    Outcome b;
    missing.run(recordInto(a));
    hang.run(recordInto(b));
    ASSERT_TRUE(runUntil(io_, [&] { return a.calls > 0 && b.calls > 0; }, 5s));
    ASSERT_TRUE(a.ec);
    ASSERT_EQ(b.ec, std::errc::timed_out);
  }
  EXPECT_EQ(countOpenFds(), before);
  EXPECT_TRUE(noChildren());
}

TEST_F(IkeRunnerTest, DestroyingTheManagerKillsTheCommandAndDropsDone) {
  Outcome o;
  {
    CommandRunner m(io_, {"/bin/sleep", "30"}, 60s);
    m.run(recordInto(o));
    io_.poll();
  }
  EXPECT_TRUE(noChildren());
  io_.restart();
  io_.poll();
  EXPECT_EQ(o.calls, 0);
}

// --- SystemdUnit without systemd -----------------------------------------------

class EnvGuard {
 public:
  EnvGuard(const char* name, const std::string& value) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
    ::setenv(name, value.c_str(), 1);
  }
  ~EnvGuard() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_F(IkeRunnerTest, SystemdWithoutABusFailsCleanlyAndRetries) {
  EnvGuard env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/ipopsec-system-bus");
  SystemdUnit m(io_, "racoon.service", 2s);
  for (int i = 0; i < 3; ++i) {
    Outcome o;
    m.run(recordInto(o));
    EXPECT_EQ(o.calls, 0) << "done must not run inside restart()";
    ASSERT_TRUE(runUntil(io_, [&] { return o.calls > 0; }, 5s));
    EXPECT_TRUE(o.ec);
    EXPECT_NE(o.ec, std::errc::operation_in_progress) << "a failed attempt must not stay in flight";
    EXPECT_NE(o.detail.find("system bus"), std::string::npos) << o.detail;
  }
  EXPECT_EQ(m.state(), "unknown");
}

TEST_F(IkeRunnerTest, SystemdWithGarbageBusAddressFailsCleanly) {
  EnvGuard env("DBUS_SYSTEM_BUS_ADDRESS", "this is not an address");
  SystemdUnit m(io_, "racoon.service", 2s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o));
  EXPECT_TRUE(o.ec);
  EXPECT_EQ(m.state(), "unknown");
}

// A bus socket that accepts connections and never speaks: restart() must end with
// timed_out at the deadline, and state() must give up within its own bound.
TEST_F(IkeRunnerTest, SystemdSilentBusTimesOut) {
  TempDir dir;
  std::string path = dir.path() + "/bus";
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{lfd};
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(lfd, 8), 0);

  EnvGuard env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + path);
  {
    SystemdUnit m(io_, "racoon.service", 300ms);
    Outcome o;
    auto start = Clock::now();
    ASSERT_TRUE(runOnce(m, o));
    EXPECT_EQ(o.ec, std::errc::timed_out) << o.ec.message() << ": " << o.detail;
    EXPECT_GE(Clock::now() - start, 300ms);
    start = Clock::now();
    EXPECT_EQ(m.state(), "unknown");
    EXPECT_LT(Clock::now() - start, 3s);
  }
}

// --- SystemdUnit against a fake systemd on a private dbus-daemon ----------------

class PrivateBus {
 public:
  PrivateBus() {
    char tmpl[] = "/tmp/ipopsec-dbus-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::string config = dir_ + "/bus.conf";
    std::ofstream(config) << R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=)" << dir_ << R"(/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
)";
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    std::string configArg = "--config-file=" + config;
    std::vector<std::string> args{"dbus-daemon", configArg, "--nofork", "--nopidfile", "--print-address=3"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int r = posix_spawn(&pid_, "/usr/bin/dbus-daemon", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[1]);
    if (r != 0) {
      ::close(p[0]);
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      throw std::runtime_error("cannot start dbus-daemon");
    }
    // It prints its address once it listens: wait for that line (bounded).
    std::string line;
    auto deadline = Clock::now() + 10s;
    while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
      pollfd pfd{p[0], POLLIN, 0};
      if (::poll(&pfd, 1, 200) <= 0) continue;
      char buf[256];
      ssize_t n = ::read(p[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    ::close(p[0]);
    if (line.find('\n') == std::string::npos) {
      shutdown();  // the destructor does not run for a throwing constructor
      throw std::runtime_error("dbus-daemon did not start");
    }
    address_ = "unix:path=" + dir_ + "/bus";
  }
  ~PrivateBus() { shutdown(); }
  PrivateBus(const PrivateBus&) = delete;
  PrivateBus& operator=(const PrivateBus&) = delete;
  const std::string& address() const { return address_; }

 private:
  void shutdown() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);  // our own child, by pid
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::string address_;
  pid_t pid_ = -1;
};

// Plays org.freedesktop.systemd1 on the private bus, in its own thread.
class FakeSystemd {
 public:
  enum class Mode {
    jobDone,          // reply with a job, then JobRemoved(result)
    signalFirst,      // JobRemoved for our job before the reply (reordering)
    methodError,      // RestartUnit fails: NoSuchUnit
    accessDenied,     // RestartUnit fails: org.freedesktop.DBus.Error.AccessDenied
    silent,           // never reply
  };

  // `loadState`: racoon.service's LoadState ("not-found": loaded by name, but no unit file,
  // as real systemd answers LoadUnit for a unit that is not installed).
  FakeSystemd(const std::string& address, Mode mode, std::string result = "done", std::string loadState = "loaded")
      : mode_(mode), result_(std::move(result)), loadState_(std::move(loadState)) {
    std::promise<std::string> ready;
    auto started = ready.get_future();
    thread_ = std::thread([this, address, p = std::move(ready)]() mutable { run(address, p); });
    if (started.wait_for(10s) != std::future_status::ready) throw std::runtime_error("fake systemd: no start");
    std::string err = started.get();
    if (!err.empty()) {
      stop();
      throw std::runtime_error("fake systemd: " + err);
    }
  }
  ~FakeSystemd() { stop(); }
  FakeSystemd(const FakeSystemd&) = delete;
  FakeSystemd& operator=(const FakeSystemd&) = delete;

  std::vector<std::string> restarts() {
    std::lock_guard<std::mutex> lock(mutex_);
    return restarts_;
  }
  int subscribes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return subscribes_;
  }

 private:
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  void run(const std::string& address, std::promise<std::string>& ready) {
    sd_bus* bus = nullptr;
    int r = sd_bus_new(&bus);
    if (r >= 0) r = sd_bus_set_address(bus, address.c_str());
    if (r >= 0) r = sd_bus_set_bus_client(bus, 1);
    if (r >= 0) r = sd_bus_start(bus);
    if (r >= 0) r = sd_bus_request_name(bus, "org.freedesktop.systemd1", 0);
    if (r >= 0) r = sd_bus_add_object_vtable(bus, nullptr, "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", kManagerVtable, this);
    if (r >= 0) r = sd_bus_add_object_vtable(bus, nullptr, "/org/freedesktop/systemd1/unit/racoon_2eservice",
                                             "org.freedesktop.systemd1.Unit", kUnitVtable, this);
    if (r < 0) {
      ready.set_value(std::string("setup failed: ") + std::strerror(-r));
      sd_bus_flush_close_unref(bus);
      return;
    }
    ready.set_value("");
    while (!stop_) {
      r = sd_bus_process(bus, nullptr);
      if (r < 0) break;
      if (r == 0) sd_bus_wait(bus, 50000);  // bounded, so that stop_ is seen
    }
    sd_bus_flush_close_unref(bus);
  }

  static int onRestartUnit(sd_bus_message* m, void* userdata, sd_bus_error* err) {
    auto* self = static_cast<FakeSystemd*>(userdata);
    const char* unit = nullptr;
    const char* mode = nullptr;
    int r = sd_bus_message_read(m, "ss", &unit, &mode);
    if (r < 0) return r;
    int job;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      self->restarts_.push_back(std::string(unit) + " " + mode);
      job = 100 + static_cast<int>(self->restarts_.size());
    }
    std::string jobPath = "/org/freedesktop/systemd1/job/" + std::to_string(job);
    sd_bus* bus = sd_bus_message_get_bus(m);
    auto jobRemoved = [&](const std::string& path, const char* u, const char* result) {
      return sd_bus_emit_signal(bus, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "JobRemoved",
                                "uoss", static_cast<std::uint32_t>(job), path.c_str(), u, result);
    };
    switch (self->mode_) {
      case Mode::methodError:
        return sd_bus_error_setf(err, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.", unit);
      case Mode::accessDenied:
        return sd_bus_error_setf(err, "org.freedesktop.DBus.Error.AccessDenied", "Access denied\nfor %s", unit);
      case Mode::silent:
        return 1;  // no reply, no signal
      case Mode::signalFirst:
        jobRemoved("/org/freedesktop/systemd1/job/7", "other.service", "failed");
        jobRemoved(jobPath, unit, self->result_.c_str());
        return sd_bus_reply_method_return(m, "o", jobPath.c_str());
      case Mode::jobDone:
        r = sd_bus_reply_method_return(m, "o", jobPath.c_str());
        // Noise first: another unit's job, and a JobRemoved with the wrong signature.
        jobRemoved("/org/freedesktop/systemd1/job/7", "other.service", "failed");
        sd_bus_emit_signal(bus, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "JobRemoved", "s",
                           "garbage");
        jobRemoved(jobPath, unit, self->result_.c_str());
        return r;
    }
    return r;
  }

  static int onSubscribe(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<FakeSystemd*>(userdata);
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      ++self->subscribes_;
    }
    return sd_bus_reply_method_return(m, nullptr);
  }

  static int onLoadUnit(sd_bus_message* m, void*, sd_bus_error* err) {
    const char* unit = nullptr;
    int r = sd_bus_message_read(m, "s", &unit);
    if (r < 0) return r;
    if (std::string(unit) != "racoon.service") {
      return sd_bus_error_setf(err, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.", unit);
    }
    return sd_bus_reply_method_return(m, "o", "/org/freedesktop/systemd1/unit/racoon_2eservice");
  }

  static int getActiveState(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void*,
                            sd_bus_error*) {
    return sd_bus_message_append(reply, "s", "active");
  }

  static int getLoadState(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                          sd_bus_error*) {
    return sd_bus_message_append(reply, "s", static_cast<FakeSystemd*>(userdata)->loadState_.c_str());
  }

  static const sd_bus_vtable kManagerVtable[];
  static const sd_bus_vtable kUnitVtable[];

  Mode mode_;
  std::string result_;
  std::string loadState_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> restarts_;
  int subscribes_ = 0;
};

const sd_bus_vtable FakeSystemd::kManagerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("RestartUnit", "ss", "o", &FakeSystemd::onRestartUnit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Subscribe", "", "", &FakeSystemd::onSubscribe, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("LoadUnit", "s", "o", &FakeSystemd::onLoadUnit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("JobRemoved", "uoss", 0),
    SD_BUS_VTABLE_END};

const sd_bus_vtable FakeSystemd::kUnitVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("ActiveState", "s", &FakeSystemd::getActiveState, 0, 0),
    SD_BUS_PROPERTY("LoadState", "s", &FakeSystemd::getLoadState, 0, 0),
    SD_BUS_VTABLE_END};

class SystemdFakeTest : public IkeRunnerTest {
 protected:
  void SetUp() override {
    IkeRunnerTest::SetUp();
    if (::access("/usr/bin/dbus-daemon", X_OK) != 0) GTEST_SKIP() << "dbus-daemon is not installed";
    bus_.emplace();
    env_.emplace("DBUS_SYSTEM_BUS_ADDRESS", bus_->address());
  }
  void TearDown() override {
    env_.reset();
    bus_.reset();
  }
  std::optional<PrivateBus> bus_;
  std::optional<EnvGuard> env_;
};

TEST_F(SystemdFakeTest, RestartCompletesWhenItsJobIsDone) {
  FakeSystemd systemd(bus_->address(), FakeSystemd::Mode::jobDone, "done");
  SystemdUnit m(io_, "racoon.service", 5s);
  for (int i = 0; i < 3; ++i) {
    Outcome o;
    m.run(recordInto(o));
    ASSERT_TRUE(runUntil(io_, [&] { return o.calls > 0; }, 5s)) << "restart " << i;
    EXPECT_FALSE(o.ec) << o.ec.message() << ": " << o.detail;
    EXPECT_NE(o.detail.find("done"), std::string::npos) << o.detail;
  }
  EXPECT_EQ(systemd.restarts(), (std::vector<std::string>(3, "racoon.service replace")));
  EXPECT_EQ(systemd.subscribes(), 1) << "Subscribe once per connection";
  EXPECT_EQ(m.state(), "active");
}

TEST_F(SystemdFakeTest, JobSignalBeforeTheReplyIsNotLost) {
  FakeSystemd systemd(bus_->address(), FakeSystemd::Mode::signalFirst, "done");
  SystemdUnit m(io_, "racoon.service", 5s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o));
  EXPECT_FALSE(o.ec) << o.detail;
}

TEST_F(SystemdFakeTest, FailedJobIsAnErrorWithTheResult) {
  for (const char* result : {"dependency", "failed", "timeout", "canceled", "skipped"}) {
    SCOPED_TRACE(result);
    FakeSystemd systemd(bus_->address(), FakeSystemd::Mode::jobDone, result);
    SystemdUnit m(io_, "racoon.service", 5s);
    Outcome o;
    ASSERT_TRUE(runOnce(m, o));
    EXPECT_EQ(o.ec, UnitErrc::jobFailed);
    EXPECT_EQ(o.detail.rfind("restart of racoon.service failed: job result '" + std::string(result) + "' (", 0), 0U)
        << o.detail;
    EXPECT_NE(o.detail.find("job /org/freedesktop/systemd1/job/"), std::string::npos) << o.detail;
    const std::string hint = "; see `journalctl -u racoon.service`";
    ASSERT_GT(o.detail.size(), hint.size());
    EXPECT_EQ(o.detail.substr(o.detail.size() - hint.size()), hint) << o.detail;
    EXPECT_EQ(o.detail.find('\n'), std::string::npos) << o.detail;
  }
}

// Debian has no racoon package: RestartUnit answers NoSuchUnit, LoadUnit gives a unit
// whose LoadState is "not-found".
TEST_F(SystemdFakeTest, MissingRacoonUnitSaysItIsNotInstalledWithTheDebianHint) {
  FakeSystemd systemd(bus_->address(), FakeSystemd::Mode::methodError, "done", "not-found");
  SystemdUnit m(io_, "racoon.service", 5s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o));
  EXPECT_EQ(o.ec, UnitErrc::callFailed);
  EXPECT_EQ(o.detail,
            "racoon.service is not installed (no such unit); racoon is not packaged in Debian: use "
            "`ike.backend: strongswan`");
  EXPECT_EQ(m.state(), "not-found");
}

TEST_F(SystemdFakeTest, MissingOtherUnitIsNotInstalledWithoutTheRacoonHint) {
  FakeSystemd systemd(bus_->address(), FakeSystemd::Mode::methodError);
  SystemdUnit m(io_, "nope.service", 5s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o));
  EXPECT_EQ(o.ec, UnitErrc::callFailed);
  EXPECT_EQ(o.detail, "nope.service is not installed (no such unit)");
  EXPECT_EQ(m.state(), "not-found") << "LoadUnit answers NoSuchUnit for this unit";
}

TEST_F(SystemdFakeTest, OtherMethodErrorIsReportedByNameOnOneLine) {
  FakeSystemd systemd(bus_->address(), FakeSystemd::Mode::accessDenied);
  SystemdUnit m(io_, "racoon.service", 5s);
  Outcome o;
  ASSERT_TRUE(runOnce(m, o));
  EXPECT_EQ(o.ec, UnitErrc::callFailed);
  EXPECT_EQ(o.detail,
            "RestartUnit(racoon.service) failed: org.freedesktop.DBus.Error.AccessDenied: Access denied for "
            "racoon.service");
  EXPECT_EQ(m.state(), "active") << "the unit exists (LoadState loaded)";
}

TEST_F(SystemdFakeTest, NoJobResultTimesOutAndASecondRestartIsRefusedMeanwhile) {
  FakeSystemd systemd(bus_->address(), FakeSystemd::Mode::silent);
  SystemdUnit m(io_, "racoon.service", 300ms);
  Outcome first;
  Outcome second;
  auto start = Clock::now();
  m.run(recordInto(first));
  m.run(recordInto(second));
  ASSERT_TRUE(runUntil(io_, [&] { return first.calls > 0 && second.calls > 0; }, 5s));
  EXPECT_EQ(second.ec, std::errc::operation_in_progress);
  EXPECT_EQ(first.ec, std::errc::timed_out) << first.detail;
  EXPECT_GE(Clock::now() - start, 300ms);
  EXPECT_EQ(first.calls, 1);
  // The bus stays usable.
  EXPECT_EQ(m.state(), "active");
}

TEST_F(SystemdFakeTest, LostBusFailsTheRestartAndTheNextOneReconnects) {
  SystemdUnit m(io_, "racoon.service", 5s);
  {
    FakeSystemd systemd(bus_->address(), FakeSystemd::Mode::jobDone, "done");
    Outcome o;
    ASSERT_TRUE(runOnce(m, o));
    ASSERT_FALSE(o.ec) << o.detail;
  }
  // The whole bus goes away and comes back at the same address.
  bus_.reset();
  bus_.emplace();
  env_.emplace("DBUS_SYSTEM_BUS_ADDRESS", bus_->address());
  FakeSystemd systemd(bus_->address(), FakeSystemd::Mode::jobDone, "done");
  Outcome again;
  for (int attempt = 0; attempt < 3 && (again.calls == 0 || again.ec); ++attempt) {
    again = {};
    m.run(recordInto(again));
    ASSERT_TRUE(runUntil(io_, [&] { return again.calls > 0; }, 5s));
  }
  EXPECT_FALSE(again.ec) << again.detail;
}

}  // namespace
}  // namespace ipopsec
