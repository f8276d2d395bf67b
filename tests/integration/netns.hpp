#pragma once
// Test support: run the whole test process in a fresh, private network namespace.
// The namespace exists only as long as the process; the kernel deletes it (with every
// tap, veth, address and XFRM policy in it) when the process exits, also on a crash.
// Nothing here can reach an address outside it.

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace ipopsec::test {

inline bool isRoot() { return ::geteuid() == 0; }

// Moves the calling process (and the programs it runs) into a new network namespace
// with only `lo`, brought up. Call once, before any thread or socket is created.
inline void enterFreshNetns() {
  if (::unshare(CLONE_NEWNET) != 0) throw std::runtime_error("unshare(CLONE_NEWNET) failed");
  if (std::system("ip link set lo up") != 0) throw std::runtime_error("ip link set lo up failed");
}

// Runs a shell command; throws with its output when it fails.
inline std::string sh(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 4096> buf{};
  while (auto n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int rc = ::pclose(p);
  if (rc != 0) throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd + "\n" + out);
  return out;
}

// How often `needle` occurs in `text` (overlapping occurrences counted).
inline std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

// Same as sh(), but returns the exit status instead of throwing.
inline int shStatus(const std::string& cmd, std::string* output = nullptr) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf{};
  while (auto n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int rc = ::pclose(p);
  if (output) *output = out;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace ipopsec::test

// In CI (root) these tests must run; elsewhere they are skipped loudly.
#define IPOPSEC_REQUIRE_ROOT()                                                          \
  do {                                                                                   \
    if (!::ipopsec::test::isRoot()) {                                                    \
      if (std::getenv("CI")) FAIL() << "integration tests need root, and CI runs as root"; \
      GTEST_SKIP() << "needs root (network namespaces, XFRM)";                          \
    }                                                                                    \
  } while (0)
