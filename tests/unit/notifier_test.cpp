// SdNotifier: the datagrams it sends to NOTIFY_SOCKET, and the watchdog interval.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "os/systemd/notifier.hpp"

namespace ipopsec {
namespace {

using namespace std::chrono_literals;

class ScopedEnv {
 public:
  explicit ScopedEnv(const char* name) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  void set(const std::string& v) { ::setenv(name_, v.c_str(), 1); }
  void unset() { ::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Plays the service manager's notification socket.
class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ipopsec-notify-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::string path = dir_ + "/notify";
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    env_.set(path);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // The next datagram, or "" after 2 s.
  std::string receive() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) return "";
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }

  bool nothingPending() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

  ScopedEnv env_{"NOTIFY_SOCKET"};
  std::string dir_;
  int fd_ = -1;
  SdNotifier notifier_;
};

TEST_F(NotifierTest, SendsTheStates) {
  notifier_.ready();
  EXPECT_EQ(receive(), "READY=1");
  notifier_.stopping();
  EXPECT_EQ(receive(), "STOPPING=1");
  notifier_.watchdog();
  EXPECT_EQ(receive(), "WATCHDOG=1");
  notifier_.status("protecting 172.31.0.0/16 on ipop");
  EXPECT_EQ(receive(), "STATUS=protecting 172.31.0.0/16 on ipop");
}

TEST_F(NotifierTest, ReloadingCarriesTheMonotonicTime) {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long long before = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL + ts.tv_nsec / 1000;
  notifier_.reloading();
  std::string msg = receive();
  ASSERT_EQ(msg.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0U) << msg;
  unsigned long long usec = std::stoull(msg.substr(std::strlen("RELOADING=1\nMONOTONIC_USEC=")));
  EXPECT_GE(usec, before);
  EXPECT_LT(usec, before + 10ULL * 1000000ULL);
}

TEST_F(NotifierTest, StatusCannotInjectOtherAssignments) {
  notifier_.status("bad\nREADY=1\rx");
  EXPECT_EQ(receive(), "STATUS=bad READY=1 x");
  EXPECT_TRUE(nothingPending());
}

// Not run by systemd (no NOTIFY_SOCKET): every call sends nothing, throws nothing, and
// leaves the environment alone; with the socket back, the same notifier sends again.
TEST_F(NotifierTest, WithoutNotifySocketNothingIsSent) {
  env_.unset();
  EXPECT_NO_THROW(notifier_.ready());
  EXPECT_NO_THROW(notifier_.reloading());
  EXPECT_NO_THROW(notifier_.status("x"));
  EXPECT_NO_THROW(notifier_.watchdog());
  EXPECT_NO_THROW(notifier_.stopping());
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_TRUE(nothingPending()) << "a datagram reached the socket without NOTIFY_SOCKET";
  env_.set(dir_ + "/nonexistent");  // a socket that does not exist: still harmless
  EXPECT_NO_THROW(notifier_.ready());
  // The notifier leaves the environment alone (sd_notify's unset_environment = 0).
  ASSERT_NE(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(std::string(std::getenv("NOTIFY_SOCKET")), dir_ + "/nonexistent");
  EXPECT_TRUE(nothingPending());
  env_.set(dir_ + "/notify");
  notifier_.ready();
  EXPECT_EQ(receive(), "READY=1");
}

TEST(NotifierWatchdog, IntervalFromTheEnvironment) {
  ScopedEnv usec("WATCHDOG_USEC");
  ScopedEnv pid("WATCHDOG_PID");
  usec.unset();
  pid.unset();
  EXPECT_FALSE(SdNotifier().watchdogInterval());

  usec.set("3000000");
  pid.set(std::to_string(::getpid()));
  auto interval = SdNotifier().watchdogInterval();
  ASSERT_TRUE(interval);
  EXPECT_EQ(*interval, 3s);

  // Meant for another process: off for us.
  pid.set(std::to_string(::getpid() + 1));
  EXPECT_FALSE(SdNotifier().watchdogInterval());

  pid.set(std::to_string(::getpid()));
  for (const char* bad : {"", "abc", "-5", "0", "18446744073709551616"}) {
    usec.set(bad);
    EXPECT_FALSE(SdNotifier().watchdogInterval()) << "WATCHDOG_USEC=" << bad;
  }
}

}  // namespace
}  // namespace ipopsec
