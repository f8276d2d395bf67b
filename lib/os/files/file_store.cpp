#include "os/files/file_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>
#include <climits>
#include <utility>
#include <vector>

namespace ipopsec {
namespace {

std::error_code errnoCode(int e) { return {e, std::generic_category()}; }
std::error_code lastError() { return errnoCode(errno); }

// Owns a file descriptor; close() reports its error (it matters after a write).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  std::error_code close() {
    int fd = fd_;
    fd_ = -1;
    // Linux always releases the descriptor, even when close() fails (EINTR included):
    // never retry.
    if (fd >= 0 && ::close(fd) != 0) return lastError();
    return {};
  }

 private:
  int fd_ = -1;
};

std::error_code writeAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastError();
    }
    if (n == 0) return errnoCode(EIO);  // not expected for regular files; avoid a loop
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return {};
}

std::string randomSuffix() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::array<unsigned char, 6> bytes{};
  ssize_t n;
  do {
    n = ::getrandom(bytes.data(), bytes.size(), GRND_NONBLOCK);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(bytes.size())) {
    // No entropy yet (early boot): a pid/time mix is good enough, O_EXCL settles clashes.
    auto seed = static_cast<unsigned long>(::getpid()) * 2654435761UL ^
                static_cast<unsigned long>(::time(nullptr));
    for (auto& b : bytes) {
      seed = seed * 6364136223846793005UL + 1442695040888963407UL;
      b = static_cast<unsigned char>(seed >> 33);
    }
  }
  std::string s;
  for (unsigned char b : bytes) s += kAlphabet[b % (sizeof kAlphabet - 1)];
  return s;
}

constexpr char kTempMarker[] = ".ipop-ipsecd.";
constexpr std::size_t kTempSuffixLength = 6;  // randomSuffix()

bool isSuffixChar(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// A writer killed between creating its temp file and the rename (SIGKILL, a crash, power
// loss) leaves the temp file behind, and every such death added one more (found by
// tests/integration/fault_sigkill_test). Each writer holds an flock on its temp file
// while it writes; a temp file that can be locked has no live writer: remove it.
// `matches` picks the names to consider. Returns the number removed; -1 (errno set) when
// the directory can't be read.
template <class Match>
long removeUnlockedTemps(int dirFd, Match matches) {
  int fd = ::openat(dirFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  long removed = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (!matches(name)) continue;
    Fd tmp(::openat(dirFd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    struct stat st {};
    if (!tmp.valid() || ::fstat(tmp.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::flock(tmp.get(), LOCK_EX | LOCK_NB) == 0 && ::unlinkat(dirFd, name.c_str(), 0) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

void removeStaleTempsOf(int dirFd, const std::string& prefix) {
  removeUnlockedTemps(dirFd, [&](const std::string& name) {
    return name.size() == prefix.size() + kTempSuffixLength && name.compare(0, prefix.size(), prefix) == 0;
  });
}

// A directory write() created, to be removed again if the write fails.
struct CreatedDir {
  Fd parent;
  std::string name;
};

// Removes what createParents() made, deepest first; a directory someone else filled in
// the meantime stays (rmdir fails with ENOTEMPTY).
void removeCreated(std::vector<CreatedDir>& created) {
  for (auto it = created.rbegin(); it != created.rend(); ++it) ::unlinkat(it->parent.get(), it->name.c_str(), AT_REMOVEDIR);
  created.clear();
}

// `mkdir -p dir`, one component at a time from the root (or the working directory), each
// created with mode exactly 0755 (the umask does not apply), owned by the caller. What
// exists is used as the kernel resolves it (a symlink to a directory, like /var/run, is
// followed, as open() did before); nothing is ever created through a symlink (mkdirat
// does not follow one: a dangling link stays dangling and is an error, ENOENT), and an
// existing component that is not a directory is never touched: ENOTDIR. A component
// longer than NAME_MAX is ENAMETOOLONG before anything is created. On success returns
// the open directory and appends what it created to `created`; on failure removes what
// it created.
Fd createParents(const std::string& dir, std::vector<CreatedDir>& created, std::error_code& ec) {
  std::vector<std::string> parts;
  for (std::size_t pos = 0; pos <= dir.size();) {
    auto next = dir.find('/', pos);
    if (next == std::string::npos) next = dir.size();
    std::string part = dir.substr(pos, next - pos);
    if (!part.empty() && part != ".") parts.push_back(part);
    pos = next + 1;
  }
  for (const auto& part : parts) {
    if (part.size() > NAME_MAX) {
      ec = errnoCode(ENAMETOOLONG);
      return Fd();
    }
  }
  Fd cur(::open(dir.front() == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cur.valid()) {
    ec = lastError();
    return Fd();
  }
  auto failed = [&](int e) {
    removeCreated(created);
    ec = errnoCode(e);
    return Fd();
  };
  for (const auto& part : parts) {
    Fd next(::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!next.valid() && errno == ENOENT) {
      if (::mkdirat(cur.get(), part.c_str(), 0755) == 0) {
        next = Fd(::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next.valid()) return failed(errno);
        Fd parent(::dup(cur.get()));
        if (parent.valid()) created.push_back(CreatedDir{std::move(parent), part});
        if (::fchmod(next.get(), 0755) != 0) return failed(errno);
      } else if (errno == EEXIST) {
        // Made by someone else meanwhile, or a dangling symlink (then ENOENT again).
        next = Fd(::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!next.valid()) return failed(errno);
      } else {
        return failed(errno);
      }
    } else if (!next.valid()) {
      return failed(errno);  // ENOTDIR: a component exists and is not a directory; EACCES, ELOOP...
    }
    cur = std::move(next);
  }
  return cur;
}

}  // namespace

std::string tempNamePrefix(const std::string& base) { return "." + base + kTempMarker; }

bool isTempName(const std::string& name) {
  constexpr std::size_t marker = sizeof kTempMarker - 1;
  // "." + at least one character of base + marker + suffix
  if (name.size() < 1 + 1 + marker + kTempSuffixLength || name[0] != '.') return false;
  const std::size_t suffixAt = name.size() - kTempSuffixLength;
  if (name.compare(suffixAt - marker, marker, kTempMarker) != 0) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(suffixAt), name.end(), isSuffixChar);
}

std::error_code removeStaleTemps(const std::string& dir, std::size_t* removed) {
  if (removed) *removed = 0;
  Fd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirFd.valid()) return lastError();
  long n = removeUnlockedTemps(dirFd.get(), isTempName);
  if (n < 0) return lastError();
  if (n > 0 && ::fsync(dirFd.get()) != 0) return lastError();
  if (removed) *removed = static_cast<std::size_t>(n);
  return {};
}

namespace {

const char* kindOf(mode_t m) {
  if (S_ISREG(m)) return "a regular file";
  if (S_ISLNK(m)) return "a symbolic link";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  return "not a directory";
}

}  // namespace

std::string describeWriteError(const std::string& path, std::error_code ec) {
  if (ec != std::errc::not_a_directory && ec != std::errc::no_such_file_or_directory) return ec.message();
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return ec.message();
  const std::string dir = path.substr(0, slash);
  // Walk the parent's prefixes: the first that exists and (resolved) is not a directory.
  for (std::size_t pos = dir.front() == '/' ? 1 : 0; pos <= dir.size();) {
    auto next = dir.find('/', pos);
    if (next == std::string::npos) next = dir.size();
    const std::string prefix = dir.substr(0, next);
    pos = next + 1;
    if (prefix.empty() || prefix.back() == '/') continue;
    struct stat lst {};
    if (::lstat(prefix.c_str(), &lst) != 0) break;  // missing from here on: would be created
    struct stat st {};
    if (::stat(prefix.c_str(), &st) != 0) {
      if (S_ISLNK(lst.st_mode))
        return "cannot create the directory for " + path + ": " + prefix +
               " is a symbolic link to a missing target (not followed to create it)";
      break;
    }
    if (!S_ISDIR(st.st_mode))
      return "cannot create the directory for " + path + ": " + prefix + " exists and is " + kindOf(st.st_mode) +
             ", not a directory";
  }
  return ec.message();
}

std::error_code AtomicFileStore::read(const std::string& path, std::string& content) {
  // O_NONBLOCK: opening a FIFO must not hang the daemon; it is rejected below anyway.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return lastError();
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return lastError();
  if (S_ISDIR(st.st_mode)) return errnoCode(EISDIR);
  if (!S_ISREG(st.st_mode)) return errnoCode(EINVAL);
  if (st.st_size > static_cast<off_t>(kMaxReadSize)) return errnoCode(EFBIG);

  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  // Not zero-filled: 64 KiB of memset per read was most of a reconcile's CPU time (callgrind).
  std::array<char, 65536> buf;  // NOLINT(cppcoreguidelines-pro-type-member-init): read() fills it
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastError();
    }
    if (n == 0) break;
    // The file may grow after fstat (or report size 0, as /proc files do).
    if (out.size() + static_cast<std::size_t>(n) > kMaxReadSize) return errnoCode(EFBIG);
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  content = std::move(out);
  return {};
}

std::error_code AtomicFileStore::write(const std::string& path, const std::string& content, unsigned mode) {
  if (path.empty() || path.back() == '/') return errnoCode(EINVAL);
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base == "." || base == "..") return errnoCode(EINVAL);

  // A missing parent (/etc/racoon when racoon isn't installed) is created: mkdir -p.
  std::vector<CreatedDir> created;
  Fd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirFd.valid()) {
    if (errno != ENOENT) return lastError();
    // The temp name is the longest name this write needs: checked before creating anything.
    if (tempNamePrefix(base).size() + kTempSuffixLength > NAME_MAX) return errnoCode(ENAMETOOLONG);
    std::error_code ec;
    dirFd = createParents(dir, created, ec);
    if (!dirFd.valid()) return ec;
  }
  // On an error before the rename, the directories this call created go again.
  struct Rollback {
    std::vector<CreatedDir>& created;
    bool armed = true;
    ~Rollback() {
      if (armed) removeCreated(created);
    }
  } rollback{created};

  // A symlink target is refused rather than replaced: rename() would replace the link
  // itself with a regular file, silently cutting whatever the operator linked it to
  // (and following it instead would let a link redirect a root write anywhere).
  struct stat st {};
  if (::fstatat(dirFd.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) return errnoCode(ELOOP);
    if (S_ISDIR(st.st_mode)) return errnoCode(EISDIR);
  } else if (errno != ENOENT) {
    return lastError();
  }

  // Temp file next to the target, so that rename() stays within one filesystem.
  std::string tmpName;
  Fd fd;
  for (int attempt = 0; attempt < 100 && !fd.valid(); ++attempt) {
    tmpName = tempNamePrefix(base) + randomSuffix();
    fd = Fd(::openat(dirFd.get(), tmpName.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid() && errno != EEXIST) return lastError();
  }
  if (!fd.valid()) return errnoCode(EEXIST);
  // "A live writer" (see removeUnlockedTemps), on a descriptor of its own that stays open past
  // the rename: `fd` is closed before it.
  Fd lockFd(::openat(dirFd.get(), tmpName.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (lockFd.valid()) ::flock(lockFd.get(), LOCK_EX);

  auto fail = [&](std::error_code ec) {
    fd.close();
    ::unlinkat(dirFd.get(), tmpName.c_str(), 0);
    return ec;
  };

  if (::fchmod(fd.get(), static_cast<mode_t>(mode & 07777)) != 0) return fail(lastError());
  if (auto ec = writeAll(fd.get(), content.data(), content.size())) return fail(ec);
  if (::fsync(fd.get()) != 0) return fail(lastError());
  if (auto ec = fd.close()) return fail(ec);
  if (::renameat(dirFd.get(), tmpName.c_str(), dirFd.get(), base.c_str()) != 0) return fail(lastError());
  rollback.armed = false;
  removeStaleTempsOf(dirFd.get(), tempNamePrefix(base));
  // The new directories' entries must be durable too.
  for (const auto& c : created) ::fsync(c.parent.get());
  // The new content is in place; make the rename itself durable.
  if (::fsync(dirFd.get()) != 0) return lastError();
  return {};
}

std::error_code AtomicFileStore::remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return std::error_code(errno, std::system_category());
  }
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return {};
}

std::error_code AtomicFileStore::prepareDir(const std::string& dir, bool create) {
  std::error_code ec;
  if (create && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) ec = std::error_code(errno, std::system_category());
  removeStaleTemps(dir);  // temp files of a predecessor killed mid-write
  return ec;
}

}  // namespace ipopsec
