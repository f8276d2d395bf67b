#include "os/ike/command_runner.hpp"


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

// --- CommandRunner ----------------------------------------------------------

namespace {

// The last non-empty line of the output, without trailing whitespace.
std::string lastLine(const std::string& out) {
  auto end = out.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return {};
  auto start = out.rfind('\n', end);
  start = start == std::string::npos ? 0 : start + 1;
  return out.substr(start, end - start + 1);
}

// A posix_spawn object (file actions, attributes), initialised and destroyed with its scope.
template <class T, int (*Init)(T*), int (*Destroy)(T*)>
class SpawnObject {
 public:
  SpawnObject() { Init(&obj_); }
  ~SpawnObject() { Destroy(&obj_); }
  SpawnObject(const SpawnObject&) = delete;
  SpawnObject& operator=(const SpawnObject&) = delete;
  T* get() { return &obj_; }

 private:
  T obj_;
};
using SpawnActions =
    SpawnObject<posix_spawn_file_actions_t, posix_spawn_file_actions_init, posix_spawn_file_actions_destroy>;
using SpawnAttr = SpawnObject<posix_spawnattr_t, posix_spawnattr_init, posix_spawnattr_destroy>;

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

class CommandRunner::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(boost::asio::io_context& io, std::vector<std::string> argv, std::chrono::milliseconds timeout,
       std::chrono::milliseconds killGrace)
      : io_(io), argv_(std::move(argv)), timeout_(timeout), killGrace_(killGrace), pidfd_(io), out_(io),
        deadline_(io), killTimer_(io) {}

  ~Impl() { shutdown(); }

  // Kills and reaps a running command; its done is dropped.
  void shutdown() {
    done_ = nullptr;
    shutdownChild();
    cleanup();  // also without a child: timers and descriptors of a finished run
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

CommandRunner::CommandRunner(boost::asio::io_context& io, std::vector<std::string> argv,
                                       std::chrono::milliseconds timeout, std::chrono::milliseconds killGrace) {
  if (argv.empty() || argv[0].empty()) throw std::invalid_argument("the restart command is empty");
  impl_ = std::make_shared<Impl>(io, std::move(argv), timeout, killGrace);
}

CommandRunner::~CommandRunner() { impl_->shutdown(); }

void CommandRunner::run(Done done) { impl_->restart(std::move(done)); }

std::string CommandRunner::state() { return impl_->state(); }

}  // namespace ipopsec
