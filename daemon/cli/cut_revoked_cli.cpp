#include "daemon/cli/cut_revoked_cli.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <string>
#include <vector>

#include "core/certs/revoked_peers.hpp"
#include "daemon/cli/cli_common.hpp"

namespace ipopsec {
namespace {

constexpr const char* kSwanctl = "/usr/sbin/swanctl";

// Runs argv (no shell), stdout captured, stderr passed on. Its exit status, or -1.
int capture(const std::vector<std::string>& argv, std::string& out) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int usage(std::ostream& out) {
  out << "usage: ipop-ipsecd cut-revoked [--uri URI] SERIAL...\n"
               "  ends charon's IKE_SAs with the peers whose certificates carry these serials (hex, as\n"
               "  `openssl x509 -noout -serial` prints them); charon must hold the CRL that revokes them.\n"
               "  --uri URI  charon's vici socket, passed on to swanctl\n";
  return kExitUsage;
}

}  // namespace

int runCutRevokedCli(int argc, char** argv) {
  std::vector<std::string> uri, serials;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--uri" && i + 1 < argc) {
      uri = {"--uri", argv[++i]};
    } else if (a == "-h" || a == "--help") {
      usage(std::cout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "error: cut-revoked: unknown option " << a << "\n";
      return usage(std::cerr);
    } else if (normalizeSerial(a).empty()) {
      std::cerr << "error: cut-revoked: '" << a << "' is not a serial (hex digits, optionally with ':')\n";
      return usage(std::cerr);
    } else {
      serials.push_back(a);
    }
  }
  if (serials.empty()) {
    std::cerr << "error: cut-revoked: no serial given\n";
    return usage(std::cerr);
  }
  auto swanctl = [&](std::vector<std::string> args, std::string& out) {
    args.insert(args.begin(), kSwanctl);
    args.insert(args.end(), uri.begin(), uri.end());
    return capture(args, out);
  };
  std::string certsText, sasText, flushed;
  // charon answers a revocation check from its certificate cache first: a CRL it checked
  // earlier stays there and wins over the one just loaded ("using cached crl", the revoked
  // peer accepted again). Flush the cached CRLs (only those: the peers' certificates in the
  // cache are what maps a serial to an IKE_SA).
  if (swanctl({"--flush-certs", "--type", "x509_crl"}, flushed) != 0) {
    std::cerr << "error: cut-revoked: swanctl --flush-certs --type x509_crl failed (is charon running?)\n";
    return 1;
  }
  if (swanctl({"--list-certs"}, certsText) != 0) {
    std::cerr << "error: cut-revoked: swanctl --list-certs failed (is charon running?)\n";
    return 1;
  }
  if (swanctl({"--list-sas", "--noblock"}, sasText) != 0) {
    std::cerr << "error: cut-revoked: swanctl --list-sas failed\n";
    return 1;
  }
  std::vector<std::string> unknown;
  const auto certs = parseSwanctlCerts(certsText);
  const auto sas = parseSwanctlSas(sasText);
  auto cuts = revokedPeerSas(certs, sas, serials, &unknown);
  int failed = 0;
  std::string summary;
  for (const auto& c : cuts) {
    std::string out;
    const std::string what = "IKE_SA #" + std::to_string(c.sa.id) + " with " + c.sa.remoteId + " at " +
                             c.sa.remoteHost + " (serial " + c.serial + ")";
    // --force: charon sends the DELETE and removes the SA without waiting for the peer.
    if (swanctl({"--terminate", "--ike-id", std::to_string(c.sa.id), "--force"}, out) != 0) {
      std::cerr << "error: cut-revoked: terminating " << what << " failed\n";
      ++failed;
      continue;
    }
    std::cout << "terminated " << what << "\n";
    summary += (summary.empty() ? "" : ", ") + c.sa.remoteId + " at " + c.sa.remoteHost + " (#" + std::to_string(c.sa.id) + ")";
  }
  std::string none;
  for (const auto& u : unknown) none += (none.empty() ? "" : ", ") + u;
  // A serial no certificate charon holds carries, while some IKE_SA's peer certificate is not
  // known either (left charon's 32-entry cache): that SA may be the revoked peer's. Fail, so
  // that the daemon restarts charon instead of leaving it up.
  std::string unmapped;
  if (!unknown.empty())
    for (const auto& sa : unmappedSas(certs, sas))
      unmapped += (unmapped.empty() ? "" : ", ") + sa.remoteId + " at " + sa.remoteHost + " (#" + std::to_string(sa.id) + ")";
  // The last line is what the daemon logs.
  std::cout << (summary.empty() ? "no IKE_SA with a revoked peer" : "cut " + summary)
            << (none.empty() ? "" : "; no certificate charon holds has serial(s) " + none)
            << (unmapped.empty() ? "" : "; cannot tell whether " + unmapped + " presented it (certificate not in charon's cache)")
            << "\n";
  return failed || !unmapped.empty() ? 1 : 0;
}

}  // namespace ipopsec
