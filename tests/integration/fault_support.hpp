#pragma once
// Support for the fault-injection tests (tests/integration/fault_*_test.cpp) and the
// benchmarks (tests/bench/): the real daemon binary as a child process, address changes
// over rtnetlink directly (no fork of `ip`, so a change costs microseconds, not
// milliseconds), and the daemon's resource use from /proc. Everything runs inside the
// private network namespace the caller entered (netns.hpp).

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/policy/cidr.hpp"
#include "support/read_file.hpp"

namespace ipopsec::test {

inline int countLinesIn(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (!line.empty()) ++n;
  return n;
}

// Waits (bounded) for a condition that a real event makes true, polling every `step`.
template <class F>
bool waitUntil(F pred, std::chrono::milliseconds timeout = std::chrono::seconds(10),
               std::chrono::microseconds step = std::chrono::milliseconds(2)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

// Adds and removes addresses with RTM_NEWADDR / RTM_DELADDR and waits for the kernel's ack.
class AddressSetter {
 public:
  AddressSetter() {
    fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd_ < 0) throw std::runtime_error("socket(NETLINK_ROUTE) failed");
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) throw std::runtime_error("bind failed");
  }
  ~AddressSetter() {
    if (fd_ >= 0) ::close(fd_);
  }
  AddressSetter(const AddressSetter&) = delete;
  AddressSetter& operator=(const AddressSetter&) = delete;

  // Returns 0 or a positive errno.
  int add(const std::string& dev, const Cidr& c) { return change(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, dev, c); }
  int del(const std::string& dev, const Cidr& c) { return change(RTM_DELADDR, 0, dev, c); }

 private:
  int change(std::uint16_t type, std::uint16_t flags, const std::string& dev, const Cidr& c) {
    unsigned index = ::if_nametoindex(dev.c_str());
    if (index == 0) return ENODEV;
    struct {
      nlmsghdr h;
      ifaddrmsg ifa;
      std::array<char, 64> attrs;
    } req{};
    const int alen = c.address.byteLength();
    req.h.nlmsg_type = type;
    req.h.nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    req.h.nlmsg_seq = ++seq_;
    req.ifa.ifa_family = c.family() == Family::v4 ? AF_INET : AF_INET6;
    req.ifa.ifa_prefixlen = static_cast<unsigned char>(c.prefix);
    req.ifa.ifa_flags = IFA_F_NODAD;
    req.ifa.ifa_index = index;
    std::size_t off = 0;
    for (std::uint16_t attr : {IFA_LOCAL, IFA_ADDRESS}) {
      auto* rta = reinterpret_cast<rtattr*>(req.attrs.data() + off);
      rta->rta_type = attr;
      rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(alen));
      std::memcpy(RTA_DATA(rta), c.address.bytes.data(), static_cast<std::size_t>(alen));
      off += RTA_SPACE(alen);
    }
    req.h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof(ifaddrmsg)) + off);
    if (::send(fd_, &req, req.h.nlmsg_len, 0) < 0) return errno;
    std::array<char, 8192> buf{};
    for (;;) {
      ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0) return errno;
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n));
           h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_seq != seq_ || h->nlmsg_type != NLMSG_ERROR) continue;
        return -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
      }
    }
  }

  int fd_ = -1;
  std::uint32_t seq_ = 0;
};

// The real ipop-ipsecd, forked and exec'd with a config; output to a log file.
class DaemonProcess {
 public:
  DaemonProcess() = default;
  ~DaemonProcess() { stop(SIGTERM); }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // `env` entries ("NAME=value") are added to the daemon's environment ("WATCHDOG_PID=self"
  // becomes the daemon's own pid). `pending` signals are blocked and raised before the exec:
  // the daemon starts with them pending and blocked (a signal that arrived before its
  // handlers existed, under a supervisor that left them blocked).
  void start(const std::string& binary, const std::filesystem::path& config, const std::filesystem::path& log,
             const std::vector<std::string>& env = {}, const std::vector<int>& pending = {}) {
    if (pid_ > 0) throw std::logic_error("daemon already running");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      static std::string self;  // "WATCHDOG_PID=self": the daemon's own pid, as systemd sets it
      for (const auto& e : env) {
        if (e == "WATCHDOG_PID=self") {
          self = "WATCHDOG_PID=" + std::to_string(::getpid());
          ::putenv(self.data());
        } else {
          ::putenv(const_cast<char*>(e.c_str()));
        }
      }
      sigset_t block;
      sigemptyset(&block);
      for (int sig : pending) sigaddset(&block, sig);
      ::sigprocmask(SIG_BLOCK, &block, nullptr);
      for (int sig : pending) ::raise(sig);
      ::execl(binary.c_str(), "ipop-ipsecd", "--config", config.c_str(), nullptr);
      ::_exit(127);
    }
  }
  // Sends `sig` and reaps the process; returns its wait status (-1 when none ran).
  int stop(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  // Waits until the process exits by itself and reaps it; returns its wait status (-1 when
  // none ran).
  int wait() {
    if (pid_ <= 0) return -1;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exitStatus_ = status;
    pid_ = -1;
    return status;
  }
  // True while the process has not exited (reaps it when it has).
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exitStatus_ = status;
      pid_ = -1;
      return false;
    }
    return true;
  }
  int exitStatus() const { return exitStatus_; }
  pid_t pid() const { return pid_; }

  // utime + stime, in seconds.
  double cpuSeconds() const {
    std::string stat = readFile("/proc/" + std::to_string(pid_) + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream in(stat.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  // A numeric field of /proc/PID/status ("VmRSS" in kB, "voluntary_ctxt_switches", ...).
  long long statusField(const std::string& name) const {
    std::istringstream in(readFile("/proc/" + std::to_string(pid_) + "/status"));
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(name + ":", 0) == 0) return std::stoll(line.substr(name.size() + 1));
    return -1;
  }
  long long contextSwitches() const {
    return statusField("voluntary_ctxt_switches") + statusField("nonvoluntary_ctxt_switches");
  }

 private:
  pid_t pid_ = -1;
  int exitStatus_ = 0;
};

}  // namespace ipopsec::test
