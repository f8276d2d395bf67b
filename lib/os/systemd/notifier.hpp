#pragma once
// The real Notifier: sd_notify(3). Without NOTIFY_SOCKET (not run by systemd, or not
// Type=notify) every call is a no-op.

#include <chrono>
#include <optional>
#include <string>

#include "core/ports.hpp"

namespace ipopsec {

class SdNotifier final : public Notifier {
 public:
  void ready() override;       // READY=1
  void reloading() override;   // RELOADING=1 + MONOTONIC_USEC=now (systemd 253+ wants it; 252 ignores it)
  void stopping() override;    // STOPPING=1
  // STATUS=<line>; line breaks become spaces (a newline would start another assignment).
  void status(const std::string& line) override;
  void watchdog() override;    // WATCHDOG=1

  // The service's WatchdogSec= (WATCHDOG_USEC for this process), or nullopt when the
  // watchdog is off. Ping at half of it.
  std::optional<std::chrono::microseconds> watchdogInterval() const override;
};

}  // namespace ipopsec
