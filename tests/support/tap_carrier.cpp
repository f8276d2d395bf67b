// ipopsec-tap-carrier NAME: gives the tap NAME carrier the way IPOP's controller does, for
// the shell tests, the demo and the simulated IPOP of the system tests. A tap made by `ip
// tuntap add` and set up has NO-CARRIER (operstate DOWN) until a process holds it open, and
// ipop-ipsecd counts IPOP as up only with carrier.
//
// It opens /dev/net/tun and attaches to the tap by name (TUNSETIFF, IFF_TAP | IFF_NO_PI) in
// its own network namespace (run it under `ip netns exec NS`), creating the tap when there is
// none; such a tap goes away with the holder, like IPOP's own. Then it forks: the parent
// prints the holder's pid and exits 0, the tap already attached; the holder keeps it open,
// reading and dropping what the kernel sends out of the tap, until it is killed (SIGTERM:
// the carrier drops) or the tap is deleted. Use: `pid=$(ipopsec-tap-carrier ipop)` ...
// `kill "$pid"`.

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(stderr,
                 "usage: ipopsec-tap-carrier NAME\n"
                 "Holds the tap NAME open (creating it when absent) so that it has carrier; prints the\n"
                 "holder's pid and returns once attached; kill that pid to drop the carrier.\n");
    return 2;
  }
  const char* name = argv[1];
  if (std::strlen(name) >= IFNAMSIZ) {
    std::fprintf(stderr, "ipopsec-tap-carrier: interface name '%s' is longer than %d characters\n", name, IFNAMSIZ - 1);
    return 2;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "ipopsec-tap-carrier: cannot open /dev/net/tun: %s\n", std::strerror(errno));
    return 1;
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, name, std::strlen(name));
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    std::fprintf(stderr, "ipopsec-tap-carrier: cannot attach to tap '%s' (TUNSETIFF): %s\n", name,
                 std::strerror(errno));
    return 1;
  }
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "ipopsec-tap-carrier: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (pid > 0) {
    std::printf("%d\n", static_cast<int>(pid));
    return 0;
  }
  // The holder: nothing of the caller's stays open (a $(...) or a pipe reading the pid ends).
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
  }
  static char frame[65536];
  for (;;) {
    ssize_t n = read(fd, frame, sizeof frame);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 0;  // the tap was deleted (EBADFD/EFAULT): nothing left to hold
  }
}
