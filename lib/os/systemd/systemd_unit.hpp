#pragma once
// Restarts a systemd unit over sd-bus, and the one-line details it reports.

#include <utility>  // before any boost/asio header (Boost 1.74 + g++12)

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "os/ike/ike_runner.hpp"

namespace ipopsec {

// The one-line details SystemdUnit reports, as pure functions (tested on their own).
namespace unitdetail {

// "<unit> is not installed (no such unit)", and for racoon.service the Debian hint:
// "; racoon is not packaged in Debian: use `ike.backend: strongswan`".
std::string notInstalled(const std::string& unit);

// The detail of a RestartUnit call that systemd answered with the D-Bus error
// `errorName` / `errorMessage`: org.freedesktop.systemd1.NoSuchUnit is notInstalled(unit),
// org.freedesktop.systemd1.UnitMasked says how to unmask it, anything else is
// "RestartUnit(<unit>) failed: <name>: <message>".
std::string callFailed(const std::string& unit, const std::string& errorName, const std::string& errorMessage);

// The detail of a finished restart job. "done": "restarted <unit> (job <job>: done)".
// Any other result (failed, dependency, timeout, canceled, skipped, ...): names the unit,
// the result (quoted) and what it means when systemd documents it, the job, and where to
// look: "...; see `journalctl -u <unit>`".
std::string jobFinished(const std::string& unit, const std::string& job, const std::string& result);

// What state() reports for a unit with these LoadState and ActiveState properties:
// "not-found" (the unit does not exist) and "masked" win over the ActiveState (which
// systemd gives as "inactive" for both); otherwise the ActiveState.
std::string unitState(const std::string& loadState, const std::string& activeState);

}  // namespace unitdetail

// Restarts `unit` with org.freedesktop.systemd1.Manager.RestartUnit(unit, "replace") on
// the system bus, and completes when systemd reports the job's result (JobRemoved).
// The bus is opened lazily; when it can't be (no systemd: -ENOENT), restart() completes
// with that error and the next restart() tries again.
class SystemdUnit final : public IkeRunner {
 public:
  SystemdUnit(boost::asio::io_context& io, std::string unit, std::chrono::milliseconds timeout);
  ~SystemdUnit() override;
  SystemdUnit(const SystemdUnit&) = delete;
  SystemdUnit& operator=(const SystemdUnit&) = delete;

  void run(Done done) override;
  // The unit's ActiveState, read synchronously (bounded by min(timeout, 2 s)); "not-found"
  // for a unit that does not exist (LoadState "not-found", or LoadUnit answering
  // NoSuchUnit), "masked" for a masked one (unitdetail::unitState); "unknown" when it can't
  // be read.
  std::string state() override;
  // Subscribes to the unit's PropertiesChanged signal (ActiveState, LoadState) now and on
  // every later connection to the bus.
  void watch(std::function<void(const std::string&)> onState) override;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ipopsec
