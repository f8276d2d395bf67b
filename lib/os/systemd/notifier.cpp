#include "os/systemd/notifier.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdint>

namespace ipopsec {
namespace {

// Failures of sd_notify are ignored on purpose: the service manager may not want the
// message, and nothing the daemon could do about it would help.
void notify(const std::string& state) { (void)::sd_notify(0, state.c_str()); }

std::uint64_t monotonicUsec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000U + static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
}

}  // namespace

void SdNotifier::ready() { notify("READY=1"); }

void SdNotifier::reloading() {
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonicUsec()));
}

void SdNotifier::stopping() { notify("STOPPING=1"); }

void SdNotifier::status(const std::string& line) {
  std::string clean = line;
  for (char& c : clean) {
    if (c == '\n' || c == '\r' || c == '\0') c = ' ';
  }
  notify("STATUS=" + clean);
}

void SdNotifier::watchdog() { notify("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> SdNotifier::watchdogInterval() const {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usec));
  }
  return std::nullopt;
}

}  // namespace ipopsec
