#pragma once
// The real FileStore: atomic replacement of rendered files (temp file in the same
// directory, fchmod, write, fsync, rename over the target, fsync the directory).

#include <cstddef>
#include <string>
#include <system_error>

#include "core/ports.hpp"

namespace ipopsec {

class AtomicFileStore final : public FileStore {
 public:
  // read() refuses files larger than this with EFBIG.
  static constexpr std::size_t kMaxReadSize = 4 * 1024 * 1024;

  // Reads a regular file. `content` is assigned only on success. Errors: the errno of
  // open/read (ENOENT, EACCES, ...), EISDIR for a directory, EINVAL for another
  // non-regular file (FIFO, device, socket), EFBIG when larger than kMaxReadSize.
  std::error_code read(const std::string& path, std::string& content) override;

  // Replaces `path` atomically with `content`, file mode exactly `mode` (& 07777, the
  // umask does not apply). A missing parent directory is created, recursively (mkdir -p),
  // each new directory with mode exactly 0755 and owned by the caller (root for the
  // daemon); existing components are resolved as open() does (a symlink to a directory,
  // like /var/run, is used), but nothing is ever created through a symlink (a dangling
  // one is ENOENT) and a component that exists but is not a directory is ENOTDIR
  // (describeWriteError() names it); then nothing is created. If the write fails after
  // creating directories, the ones it created (still empty) are removed again. Refuses a symlink target with ELOOP, a directory with EISDIR,
  // an empty path or one ending in '/' with EINVAL. On any error before the rename the
  // old file is left untouched and no temporary file is left behind (ENOSPC, EROFS,
  // EACCES, EIO...). If only the final fsync of the directory fails, the new content is
  // already in place but may not survive a crash; that error is returned too. The new
  // file belongs to the calling process's user (root for the daemon).
  std::error_code write(const std::string& path, const std::string& content, unsigned mode) override;
  // unlink(2), then fsync of the directory; ENOENT counts as success.
  std::error_code remove(const std::string& path) override;
  // mkdir(2) with mode 0755 when `create` (EEXIST is success), then removeStaleTemps(dir).
  std::error_code prepareDir(const std::string& dir, bool create) override;
};

// A one-line explanation of write(path)'s error `ec` for a log: for ENOTDIR, names the
// component of the path that exists and is not a directory ("cannot create the directory
// for /etc/racoon/racoon.conf: /etc/racoon exists and is a regular file, not a
// directory"); for ENOENT, a dangling symlink among the parents; otherwise ec.message().
std::string describeWriteError(const std::string& path, std::error_code ec);

// Name prefix/suffix of the temporary files write() creates next to the target:
// ".<base>.ipop-ipsecd.XXXXXX". Exposed for tests and for cleanup tools.
std::string tempNamePrefix(const std::string& base);

// True when `name` (a file name, no directory) has the form of write()'s temporary files:
// ".<base>.ipop-ipsecd." followed by six letters or digits, <base> not empty.
bool isTempName(const std::string& name);

// Removes from `dir` the temporary files write() left behind when its process died between
// creating one and the rename (SIGKILL, a crash, power loss), whatever the target: only
// regular files whose name isTempName() and that no live writer holds (write() keeps an
// flock on its temp file). Nothing else in `dir` is touched, subdirectories are not
// entered. `removed` (optional) gets the number of files removed. Errors: the errno of
// opening or reading `dir` (ENOENT, ENOTDIR, EACCES...); a file that can't be removed is
// skipped, not an error.
std::error_code removeStaleTemps(const std::string& dir, std::size_t* removed = nullptr);

}  // namespace ipopsec
