#pragma once
// Test support: carrier on a tap, the way IPOP gives it. A tap made by `ip tuntap add` and
// set up has NO-CARRIER (operstate DOWN) until a process holds it open; IPOP's controller
// does, and ipop-ipsecd counts IPOP as up only then. A TapCarrier opens /dev/net/tun and
// attaches to the tap by name (TUNSETIFF, IFF_TAP | IFF_NO_PI) in the calling process's
// network namespace, creating it when there is none (a tap it created goes away with it);
// closing it (destructor, release()) drops the carrier. The descriptor is close-on-exec:
// a daemon the test starts does not inherit it.

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace ipopsec::test {

class TapCarrier {
 public:
  TapCarrier() = default;
  explicit TapCarrier(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ)
      throw std::runtime_error("TapCarrier: bad interface name '" + name + "'");
    fd_ = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error(std::string("TapCarrier: cannot open /dev/net/tun: ") + std::strerror(errno));
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::memcpy(ifr.ifr_name, name.c_str(), name.size());
    if (::ioctl(fd_, TUNSETIFF, &ifr) != 0) {
      int e = errno;
      release();
      throw std::runtime_error("TapCarrier: cannot attach to tap '" + name + "' (TUNSETIFF): " + std::strerror(e));
    }
  }
  TapCarrier(TapCarrier&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  TapCarrier& operator=(TapCarrier&& o) noexcept {
    if (this != &o) {
      release();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  TapCarrier(const TapCarrier&) = delete;
  TapCarrier& operator=(const TapCarrier&) = delete;
  ~TapCarrier() { release(); }

  // Closes the tap: its carrier drops (IPOP's controller stopped).
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool holding() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace ipopsec::test
