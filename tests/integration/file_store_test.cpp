// AtomicFileStore against real filesystems: a directory under /tmp for the basics, and
// tmpfs mounts (read-only, tiny) inside a private mount namespace for EROFS/ENOSPC.

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <system_error>

#include "integration/netns.hpp"
#include "os/files/file_store.hpp"
#include "support/read_file.hpp"

namespace ipopsec {
namespace {

namespace fs = std::filesystem;

std::error_code errnoCode(int e) { return {e, std::generic_category()}; }

using test::readFile;

std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

unsigned modeOf(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0xffffffffU;
  return st.st_mode & 07777;
}

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::isRoot()) test::enterFreshNetns();
    char tmpl[] = "/tmp/ipopsec-filestore-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }

  void TearDown() override {
    if (!mnt_.empty()) ::umount2(mnt_.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Root only: a private mount namespace (mounts vanish with the process) and a tmpfs
  // at dir_/mnt with the given options.
  void mountTmpfs(const std::string& options) {
    ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << std::strerror(errno);
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << std::strerror(errno);
    mnt_ = dir_ + "/mnt";
    ASSERT_TRUE(fs::create_directory(mnt_));
    ASSERT_EQ(::mount("tmpfs", mnt_.c_str(), "tmpfs", 0, options.c_str()), 0) << std::strerror(errno);
  }

  std::string dir_;
  std::string mnt_;
  AtomicFileStore store_;
};

TEST_F(FileStoreTest, WriteThenReadRoundTrip) {
  const std::string path = dir_ + "/racoon.conf";
  ASSERT_FALSE(store_.write(path, "path certificate \"/etc/racoon/certs\";\n", 0644));
  std::string content;
  ASSERT_FALSE(store_.read(path, content));
  EXPECT_EQ(content, "path certificate \"/etc/racoon/certs\";\n");
  EXPECT_EQ(readFile(path), content);

  // Overwrite, with binary content (NUL bytes survive).
  const std::string binary("a\0b\0\xff\n", 6);
  ASSERT_FALSE(store_.write(path, binary, 0644));
  ASSERT_FALSE(store_.read(path, content));
  EXPECT_EQ(content, binary);

  // Empty content is a valid file.
  ASSERT_FALSE(store_.write(path, "", 0644));
  content = "stale";
  ASSERT_FALSE(store_.read(path, content));
  EXPECT_EQ(content, "");
}

TEST_F(FileStoreTest, LargeContentIsWrittenWhole) {
  const std::string path = dir_ + "/big";
  std::string big(3 * 1024 * 1024 + 17, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4093) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_FALSE(store_.write(path, big, 0600));
  std::string content;
  ASSERT_FALSE(store_.read(path, content));
  EXPECT_EQ(content, big);
}

TEST_F(FileStoreTest, ModeIsAppliedExactlyRegardlessOfUmask) {
  const std::string path = dir_ + "/host-key.pem";
  mode_t old = ::umask(077);
  EXPECT_FALSE(store_.write(path, "k", 0644));
  EXPECT_EQ(modeOf(path), 0644U);
  EXPECT_FALSE(store_.write(path, "k", 0600));
  EXPECT_EQ(modeOf(path), 0600U);
  ::umask(0);
  EXPECT_FALSE(store_.write(path, "k", 0640));
  EXPECT_EQ(modeOf(path), 0640U);
  // Only permission bits are used.
  EXPECT_FALSE(store_.write(path, "k", 0100644));
  EXPECT_EQ(modeOf(path), 0644U);
  ::umask(old);
}

TEST_F(FileStoreTest, NoTemporaryFilesAfterSuccess) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_FALSE(store_.write(dir_ + "/ipsec-tools.conf", "spdflush;\n" + std::to_string(i), 0644));
  }
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"ipsec-tools.conf"}));
}

TEST_F(FileStoreTest, RelativePathIsWrittenInTheWorkingDirectory) {
  auto cwd = fs::current_path();
  fs::current_path(dir_);
  auto ec = store_.write("relative.conf", "rel", 0644);
  fs::current_path(cwd);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(readFile(dir_ + "/relative.conf"), "rel");
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"relative.conf"}));
}

// /etc/racoon/ when racoon isn't installed: the parents are made (mkdir -p), 0755 whatever
// the umask, owned by the writer.
TEST_F(FileStoreTest, MissingParentDirectoriesAreCreated0755) {
  const std::string path = dir_ + "/a/b/c/racoon.conf";
  mode_t old = ::umask(077);
  auto ec = store_.write(path, "path certificate \"/etc/racoon/certs\";\n", 0640);
  ::umask(old);
  ASSERT_FALSE(ec) << ec.message();
  for (const auto& d : {dir_ + "/a", dir_ + "/a/b", dir_ + "/a/b/c"}) {
    SCOPED_TRACE(d);
    struct stat st {};
    ASSERT_EQ(::lstat(d.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0755U);
    EXPECT_EQ(st.st_uid, ::geteuid());
  }
  EXPECT_EQ(readFile(path), "path certificate \"/etc/racoon/certs\";\n");
  EXPECT_EQ(modeOf(path), 0640U);
  EXPECT_EQ(entries(dir_ + "/a/b/c"), (std::set<std::string>{"racoon.conf"}));
  // Once there, the next write just replaces the file.
  ASSERT_FALSE(store_.write(path, "again\n", 0640));
  EXPECT_EQ(readFile(path), "again\n");
  // A sibling under a partly existing tree: only the missing part is made.
  ASSERT_FALSE(store_.write(dir_ + "/a/b/d/e/f", "f", 0600));
  EXPECT_EQ(entries(dir_ + "/a/b"), (std::set<std::string>{"c", "d"}));
  EXPECT_EQ(modeOf(dir_ + "/a/b/d/e"), 0755U);
}

TEST_F(FileStoreTest, RelativeMissingParentsAreCreatedInTheWorkingDirectory) {
  auto cwd = fs::current_path();
  fs::current_path(dir_);
  auto ec = store_.write("x/./y//rel.conf", "rel", 0644);
  fs::current_path(cwd);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(readFile(dir_ + "/x/y/rel.conf"), "rel");
  EXPECT_EQ(modeOf(dir_ + "/x"), 0755U);
}

TEST_F(FileStoreTest, ComponentThatIsAFileIsENotDirAndNothingIsCreated) {
  fs::create_directory(dir_ + "/a");
  ASSERT_FALSE(store_.write(dir_ + "/a/b", "a file\n", 0644));
  const std::string path = dir_ + "/a/b/c/racoon.conf";
  auto ec = store_.write(path, "x", 0644);
  EXPECT_EQ(ec, errnoCode(ENOTDIR)) << ec.message();
  EXPECT_EQ(readFile(dir_ + "/a/b"), "a file\n");
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"a"}));
  EXPECT_EQ(entries(dir_ + "/a"), (std::set<std::string>{"b"}));
  EXPECT_EQ(describeWriteError(path, ec), "cannot create the directory for " + path + ": " + dir_ +
                                              "/a/b exists and is a regular file, not a directory");
  // Other errors are their message.
  EXPECT_EQ(describeWriteError(path, errnoCode(EROFS)), errnoCode(EROFS).message());
}

TEST_F(FileStoreTest, DanglingSymlinkParentIsNotFollowedToCreateItsTarget) {
  fs::create_symlink(dir_ + "/nowhere", dir_ + "/link");
  const std::string path = dir_ + "/link/sub/racoon.conf";
  auto ec = store_.write(path, "x", 0644);
  EXPECT_EQ(ec, errnoCode(ENOENT)) << ec.message();
  EXPECT_FALSE(fs::exists(dir_ + "/nowhere"));
  EXPECT_TRUE(fs::is_symlink(dir_ + "/link"));
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"link"}));
  EXPECT_NE(describeWriteError(path, ec).find(dir_ + "/link is a symbolic link to a missing target"),
            std::string::npos)
      << describeWriteError(path, ec);
}

TEST_F(FileStoreTest, SymlinkToADirectoryAmongTheParentsIsUsed) {
  // Like /var/run -> /run.
  fs::create_directory(dir_ + "/real");
  fs::create_directory_symlink(dir_ + "/real", dir_ + "/run");
  ASSERT_FALSE(store_.write(dir_ + "/run/ipop-ipsec/state.json", "{}", 0644));
  EXPECT_TRUE(fs::is_symlink(dir_ + "/run"));
  EXPECT_EQ(readFile(dir_ + "/real/ipop-ipsec/state.json"), "{}");
  EXPECT_EQ(modeOf(dir_ + "/real/ipop-ipsec"), 0755U);
}

TEST_F(FileStoreTest, TooLongNameUnderMissingParentsCreatesNothing) {
  auto ec = store_.write(dir_ + "/new/" + std::string(300, 'n'), "x", 0644);
  EXPECT_EQ(ec, errnoCode(ENAMETOOLONG)) << ec.message();
  ec = store_.write(dir_ + "/new/" + std::string(300, 'd') + "/file", "x", 0644);
  EXPECT_EQ(ec, errnoCode(ENAMETOOLONG)) << ec.message();
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(FileStoreTest, FailedWriteRemovesTheDirectoriesItCreated) {
  IPOPSEC_REQUIRE_ROOT();
  mountTmpfs("size=16k,mode=0755");
  auto ec = store_.write(mnt_ + "/etc/racoon/racoon.conf", std::string(64 * 1024, 'n'), 0644);
  EXPECT_EQ(ec, errnoCode(ENOSPC)) << ec.message();
  EXPECT_TRUE(entries(mnt_).empty());
  // With room, the same write succeeds and makes them.
  ASSERT_FALSE(store_.write(mnt_ + "/etc/racoon/racoon.conf", "small\n", 0644));
  EXPECT_EQ(readFile(mnt_ + "/etc/racoon/racoon.conf"), "small\n");
}

TEST_F(FileStoreTest, MissingParentOnAReadOnlyFilesystemIsEROFSAndNothingIsCreated) {
  IPOPSEC_REQUIRE_ROOT();
  mountTmpfs("size=1m,mode=0755");
  ASSERT_EQ(::mount("tmpfs", mnt_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=1m"), 0) << std::strerror(errno);
  auto ec = store_.write(mnt_ + "/etc/racoon/racoon.conf", "x", 0644);
  EXPECT_EQ(ec, errnoCode(EROFS)) << ec.message();
  EXPECT_TRUE(entries(mnt_).empty());
}

TEST_F(FileStoreTest, ParentThatIsAFileIsAnError) {
  ASSERT_FALSE(store_.write(dir_ + "/file", "x", 0644));
  auto ec = store_.write(dir_ + "/file/child", "y", 0644);
  EXPECT_EQ(ec, errnoCode(ENOTDIR)) << ec.message();
  EXPECT_EQ(readFile(dir_ + "/file"), "x");
}

TEST_F(FileStoreTest, SymlinkTargetIsRefusedAndLeftAlone) {
  const std::string real = dir_ + "/real.conf";
  const std::string link = dir_ + "/link.conf";
  ASSERT_FALSE(store_.write(real, "original", 0644));
  fs::create_symlink(real, link);

  EXPECT_EQ(store_.write(link, "replacement", 0644), errnoCode(ELOOP));
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), real);
  EXPECT_EQ(readFile(real), "original");

  // A dangling link too.
  const std::string dangling = dir_ + "/dangling.conf";
  fs::create_symlink(dir_ + "/nowhere", dangling);
  EXPECT_EQ(store_.write(dangling, "x", 0644), errnoCode(ELOOP));
  EXPECT_FALSE(fs::exists(dir_ + "/nowhere"));
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"real.conf", "link.conf", "dangling.conf"}));
}

TEST_F(FileStoreTest, DirectoryTargetIsRefused) {
  fs::create_directory(dir_ + "/sub");
  EXPECT_EQ(store_.write(dir_ + "/sub", "x", 0644), errnoCode(EISDIR));
  EXPECT_TRUE(fs::is_directory(dir_ + "/sub"));
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"sub"}));
}

TEST_F(FileStoreTest, MalformedPathsAreInvalidArguments) {
  EXPECT_EQ(store_.write("", "x", 0644), errnoCode(EINVAL));
  EXPECT_EQ(store_.write(dir_ + "/", "x", 0644), errnoCode(EINVAL));
  EXPECT_EQ(store_.write(dir_ + "/..", "x", 0644), errnoCode(EINVAL));
  EXPECT_EQ(store_.write(dir_ + "/.", "x", 0644), errnoCode(EINVAL));
  // A name so long that the temp name can't exist either: an error, nothing left behind.
  auto ec = store_.write(dir_ + "/" + std::string(300, 'n'), "x", 0644);
  EXPECT_EQ(ec, errnoCode(ENAMETOOLONG)) << ec.message();
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(FileStoreTest, ReadErrorsAreClearAndLeaveContentAlone) {
  std::string content = "untouched";
  EXPECT_EQ(store_.read(dir_ + "/missing", content), errnoCode(ENOENT));
  EXPECT_EQ(store_.read("", content), errnoCode(ENOENT));
  EXPECT_EQ(store_.read(dir_, content), errnoCode(EISDIR));
  // A FIFO must neither hang nor be read.
  ASSERT_EQ(::mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  EXPECT_EQ(store_.read(dir_ + "/fifo", content), errnoCode(EINVAL));
  EXPECT_EQ(content, "untouched");
}

TEST_F(FileStoreTest, ReadIsBoundedTo4MiB) {
  const std::string path = dir_ + "/huge";
  {
    std::ofstream out(path);
  }
  fs::resize_file(path, AtomicFileStore::kMaxReadSize);  // sparse: cheap
  std::string content;
  ASSERT_FALSE(store_.read(path, content));
  EXPECT_EQ(content.size(), AtomicFileStore::kMaxReadSize);

  fs::resize_file(path, AtomicFileStore::kMaxReadSize + 1);
  content = "untouched";
  EXPECT_EQ(store_.read(path, content), errnoCode(EFBIG));
  EXPECT_EQ(content, "untouched");
}

TEST_F(FileStoreTest, ReadOnlyFilesystemKeepsOldContent) {
  IPOPSEC_REQUIRE_ROOT();
  mountTmpfs("size=1m,mode=0755");
  const std::string path = mnt_ + "/racoon.conf";
  ASSERT_FALSE(store_.write(path, "old content\n", 0644));
  ASSERT_EQ(::mount("tmpfs", mnt_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=1m"), 0) << std::strerror(errno);

  auto ec = store_.write(path, "new content\n", 0644);
  EXPECT_EQ(ec, errnoCode(EROFS)) << ec.message();
  std::string content;
  ASSERT_FALSE(store_.read(path, content));
  EXPECT_EQ(content, "old content\n");
  EXPECT_EQ(modeOf(path), 0644U);
  EXPECT_EQ(entries(mnt_), (std::set<std::string>{"racoon.conf"}));
}

TEST_F(FileStoreTest, FullFilesystemKeepsOldContentAndLeavesNoTornFile) {
  IPOPSEC_REQUIRE_ROOT();
  mountTmpfs("size=16k,mode=0755");
  const std::string path = mnt_ + "/ipsec-tools.conf";
  const std::string old = "spdadd 172.31.0.0/16 172.31.0.0/16 any -P out ipsec esp/transport//require;\n";
  ASSERT_FALSE(store_.write(path, old, 0644));

  // Larger than the whole filesystem: the temp file fills it, then the write fails.
  auto ec = store_.write(path, std::string(64 * 1024, 'n'), 0644);
  EXPECT_EQ(ec, errnoCode(ENOSPC)) << ec.message();
  EXPECT_EQ(readFile(path), old);
  EXPECT_EQ(entries(mnt_), (std::set<std::string>{"ipsec-tools.conf"}));

  // Filled up by someone else: even a small write fails, cleanly.
  {
    std::ofstream filler(mnt_ + "/filler", std::ios::binary);
    std::string chunk(1024, 'f');
    for (int i = 0; i < 64 && filler; ++i) filler.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  }
  ec = store_.write(path, "short but new\n", 0644);
  EXPECT_EQ(ec, errnoCode(ENOSPC)) << ec.message();
  EXPECT_EQ(readFile(path), old);
  EXPECT_EQ(entries(mnt_), (std::set<std::string>{"ipsec-tools.conf", "filler"}));

  // Space back: the next write succeeds.
  fs::remove(mnt_ + "/filler");
  EXPECT_FALSE(store_.write(path, "short but new\n", 0644));
  EXPECT_EQ(readFile(path), "short but new\n");
  EXPECT_EQ(entries(mnt_), (std::set<std::string>{"ipsec-tools.conf"}));
}

TEST_F(FileStoreTest, PermissionDeniedKeepsOldContent) {
  IPOPSEC_REQUIRE_ROOT();
  const std::string path = dir_ + "/racoon.conf";
  ASSERT_FALSE(store_.write(path, "old\n", 0644));
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  // As an unprivileged user (in a child, so this process keeps root) the directory is
  // not writable.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(2);
    AtomicFileStore store;
    auto ec = store.write(path, "new\n", 0644);
    ::_exit(ec == std::error_code(EACCES, std::generic_category()) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "expected EACCES from the unprivileged write";
  EXPECT_EQ(readFile(path), "old\n");
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"racoon.conf"}));
}

TEST(FileStoreNames, TempNamePrefixIsHiddenAndNamed) {
  EXPECT_EQ(tempNamePrefix("racoon.conf"), ".racoon.conf.ipop-ipsecd.");
}

TEST(FileStoreNames, TempNamesAreRecognised) {
  EXPECT_TRUE(isTempName(tempNamePrefix("ipop-up") + "AbCdE1"));
  EXPECT_TRUE(isTempName(tempNamePrefix("state.json") + "000000"));
  EXPECT_TRUE(isTempName(tempNamePrefix("a") + "zZ09aA"));
  for (const char* other : {"ipop-up", "state.json", ".state.json", ".ipop-ipsecd.AbCdE1", "..ipop-ipsecd.AbCdE",
                            ".x.ipop-ipsecd.AbCdE", ".x.ipop-ipsecd.AbCdE12", ".x.ipop-ipsecd.AbC-E1",
                            "x.ipop-ipsecd.AbCdE1", ".x.ipop-ipsecdXAbCdE1", ""})
    EXPECT_FALSE(isTempName(other)) << other;
}

// A daemon SIGKILLed mid-write leaves ".<name>.ipop-ipsecd.XXXXXX" files, e.g. of ipop-up,
// which is written rarely (the write-time cleanup of its own temps may never come): the
// daemon calls removeStaleTemps on its state directory at start.
TEST(FileStoreStaleTemps, RemovesDeadWritersTempFilesOnly) {
  auto dir = fs::temp_directory_path() / ("ipopsec-stale-temps-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  const std::string ipopUp = tempNamePrefix("ipop-up") + "AbCdE1";
  const std::string state = tempNamePrefix("state.json") + "Zz9Zz9";
  const std::string live = tempNamePrefix("state.json") + "LiVe00";
  for (const auto& name : {ipopUp, state, live}) std::ofstream(dir / name) << "half a fi";
  // Not temp files of the store, or not files: all stay.
  const std::set<std::string> kept{"state.json", "ipop-up", ".state.json.ipop-ipsecd.short",
                                   ".state.json.ipop-ipsecd.AbC-E1", "x.ipop-ipsecd.AbCdE1", ".ipop-ipsecd.AbCdE1"};
  for (const auto& name : kept) std::ofstream(dir / name) << "keep";
  fs::create_directory(dir / (tempNamePrefix("d") + "AbCdE1"));
  fs::create_symlink(dir / "state.json", dir / (tempNamePrefix("l") + "AbCdE1"));
  std::ofstream(dir / "sub" / (tempNamePrefix("x") + "AbCdE1")) << "not in dir itself";
  // A writer that is still alive holds its lock.
  int liveFd = ::open((dir / live).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(liveFd, 0);
  ASSERT_EQ(::flock(liveFd, LOCK_EX), 0);
  // And one that was SIGKILLed while holding it: the lock died with it.
  const std::string killed = tempNamePrefix("ipop-up") + "KiLLed";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open((dir / killed).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(1);
    ::raise(SIGKILL);
    ::_exit(2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_TRUE(fs::exists(dir / killed));

  std::size_t removed = 99;
  ASSERT_FALSE(removeStaleTemps(dir.string(), &removed));
  EXPECT_EQ(removed, 3U);
  auto expected = kept;
  expected.insert({live, "sub", tempNamePrefix("d") + "AbCdE1", tempNamePrefix("l") + "AbCdE1"});
  EXPECT_EQ(entries(dir.string()), expected);
  EXPECT_EQ(readFile((dir / "sub" / (tempNamePrefix("x") + "AbCdE1")).string()), "not in dir itself");
  EXPECT_EQ(readFile((dir / "state.json").string()), "keep") << "the symlink's target is untouched";

  // Once its writer is gone, the live one goes too; a second run finds nothing.
  ::close(liveFd);
  ASSERT_FALSE(removeStaleTemps(dir.string(), &removed));
  EXPECT_EQ(removed, 1U);
  ASSERT_FALSE(removeStaleTemps(dir.string(), &removed));
  EXPECT_EQ(removed, 0U);
  ASSERT_FALSE(removeStaleTemps(dir.string()));  // `removed` is optional

  EXPECT_EQ(removeStaleTemps((dir / "missing").string()), errnoCode(ENOENT));
  EXPECT_EQ(removeStaleTemps((dir / "state.json").string()), errnoCode(ENOTDIR));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ipopsec
