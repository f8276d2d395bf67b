#include "os/files/inotify_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <cerrno>
#include <cstring>

namespace ipopsec {
namespace {

// Everything that can change what a file in the directory holds, or the directory itself.
constexpr std::uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB |
                                IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

std::string parentOf(const std::string& p) {
  auto slash = p.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return p.substr(0, slash);
}

}  // namespace

InotifyWatch::InotifyWatch(boost::asio::io_context& io, std::chrono::milliseconds debounce)
    : io_(io), debounce_(debounce), sd_(io), timer_(io) {}

InotifyWatch::~InotifyWatch() {
  *alive_ = false;
  stop();
}

std::error_code InotifyWatch::watch(std::vector<std::string> dirs, std::function<void()> onChange) {
  onChange_ = std::move(onChange);
  for (auto& d : dirs)
    while (d.size() > 1 && d.back() == '/') d.pop_back();
  dirs_ = std::move(dirs);
  if (!sd_.is_open()) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return {errno, std::system_category()};
    boost::system::error_code ec;
    sd_.assign(fd, ec);
    if (ec) {
      ::close(fd);
      return {ec.value(), std::system_category()};
    }
    read();
  }
  rebuild();
  return {};
}

void InotifyWatch::rebuild() {
  int fd = sd_.native_handle();
  // A directory below the watched ancestor can appear between the failed watch on it and
  // the watch on its parent (mkdir -p makes several at once): no event would ever tell.
  // So after watching, look again; if something deeper exists now, watch again.
  for (int attempt = 0; attempt < 8; ++attempt) {
    for (const auto& [wd, idx] : wds_) ::inotify_rm_watch(fd, wd);
    wds_.clear();
    watched_.assign(dirs_.size(), "");
    for (std::size_t i = 0; i < dirs_.size(); ++i) {
      std::string p = dirs_[i];
      while (true) {
        int wd = ::inotify_add_watch(fd, p.c_str(), kMask);
        if (wd >= 0) {
          wds_[wd].push_back(i);
          watched_[i] = p;
          break;
        }
        if (p == "/") break;
        p = parentOf(p);
      }
    }
    bool deeperAppeared = false;
    for (std::size_t i = 0; i < dirs_.size(); ++i) {
      if (watched_[i] == dirs_[i] || watched_[i].empty()) continue;
      // The component just below the watched ancestor, on the way to dirs_[i].
      std::string below = dirs_[i];
      while (parentOf(below) != watched_[i] && below != "/") below = parentOf(below);
      if (::access(below.c_str(), F_OK) == 0) deeperAppeared = true;
    }
    if (!deeperAppeared) return;
  }
}

void InotifyWatch::rearm() {
  if (sd_.is_open() && !watchingAll()) rebuild();
}

void InotifyWatch::stop() {
  boost::system::error_code ec;
  timer_.cancel();
  timerArmed_ = false;
  if (sd_.is_open()) sd_.close(ec);  // also removes every watch
  wds_.clear();
}

std::vector<std::string> InotifyWatch::watchedPaths() const { return watched_; }

bool InotifyWatch::watchingAll() const {
  for (std::size_t i = 0; i < dirs_.size(); ++i)
    if (i >= watched_.size() || watched_[i] != dirs_[i]) return false;
  return true;
}

void InotifyWatch::read() {
  std::weak_ptr<bool> alive = alive_;
  sd_.async_read_some(boost::asio::buffer(buf_, sizeof buf_), [this, alive](boost::system::error_code ec, std::size_t n) {
    if (alive.expired() || ec == boost::asio::error::operation_aborted || !sd_.is_open()) return;
    if (!ec) onEvents(n);
    // EAGAIN can't reach here (Asio waits for readability); another error (ENOMEM...) is
    // retried on the next event or resync: a missed event is healed by the resync timer.
    read();
  });
}

void InotifyWatch::onEvents(std::size_t n) {
  bool needRebuild = false, any = false;
  std::size_t off = 0;
  while (off + sizeof(inotify_event) <= n) {
    inotify_event ev;
    std::memcpy(&ev, buf_ + off, sizeof ev);
    std::size_t size = sizeof(inotify_event) + ev.len;
    if (off + size > n) break;  // the kernel never splits an event; stop on anything odd
    off += size;
    any = true;
    if (ev.mask & IN_Q_OVERFLOW) continue;  // events lost: a change is reported anyway
    auto it = wds_.find(ev.wd);
    if (it == wds_.end()) continue;  // an old watch (IN_IGNORED after our own rm_watch)
    if (ev.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) needRebuild = true;
    for (auto i : it->second)
      if (watched_[i] != dirs_[i]) needRebuild = true;  // an ancestor changed: the directory may exist now
  }
  if (needRebuild) rebuild();
  if (any) changed();
}

void InotifyWatch::changed() {
  auto now = std::chrono::steady_clock::now();
  if (!timerArmed_) firstEvent_ = now;
  // Each event restarts the quiet period, but a steady stream can't postpone forever.
  auto at = std::min(now + debounce_, firstEvent_ + kMaxDelay);
  timer_.expires_at(at);
  timerArmed_ = true;
  std::weak_ptr<bool> alive = alive_;
  timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (alive.expired() || ec) return;
    timerArmed_ = false;
    if (onChange_) onChange_();
  });
}

}  // namespace ipopsec
