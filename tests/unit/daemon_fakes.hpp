#pragma once
// The Daemon on fake ports, as daemon_wiring_test and reaction_order_test build it: a node
// with lo and eth0, a certificate set in /certs, the ports the test keeps pointers to, and
// the config both write (`ranges: auto`, racoon, restart by command, remember_dir off).

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "daemon/daemon.hpp"
#include "fakes.hpp"
#include "reconciler_fixture.hpp"  // link()

namespace ipopsec::test {

// A pointer to each fake port, for the test (the Daemon owns the ports): a test fixture
// derives from it and takes them from FakeDaemonPorts (`pointers() = fakes`).
struct FakePortPointers {
  FakeFileStore* files = nullptr;
  FakeLinkMonitor* links = nullptr;
  FakePolicyTable* policies = nullptr;
  FakePolicyWatch* policyWatch = nullptr;
  FakeIkeController* ike = nullptr;
  FakeNotifier* notifier = nullptr;
  FakeDirectoryWatch* dirWatch = nullptr;
  FakeClock* clock = nullptr;  // virtual time: only the test moves it
  FakeCertificateInspector* certs = nullptr;
  FakePortPointers& pointers() { return *this; }
};

// The fake ports, for a Daemon to own (`ports`), with the pointers.
struct FakeDaemonPorts : FakePortPointers {
  DaemonPorts ports;

  explicit FakeDaemonPorts(std::optional<std::chrono::microseconds> watchdogPeriod = std::nullopt) {
    files = keep(ports.files, std::make_unique<FakeFileStore>());
    files->files["/certs/cacert.pem"] = "CA";
    files->files["/certs/host-cert.pem"] = "CERT";
    files->files["/certs/host-key.pem"] = "KEY";
    certs = keep(ports.certs, std::make_unique<FakeCertificateInspector>(*files));
    links = keep(ports.links, std::make_unique<FakeLinkMonitor>());
    links->net.links[1] = link(1, "lo", true, {"127.0.0.1/8"});
    links->net.links[2] = link(2, "eth0", true, {"192.168.1.5/24"});
    policies = keep(ports.policies, std::make_unique<FakePolicyTable>());
    policyWatch = keep(ports.policyWatch, std::make_unique<FakePolicyWatch>());
    ike = keep(ports.ike, std::make_unique<FakeIkeController>());
    notifier = keep(ports.notifier, std::make_unique<FakeNotifier>());
    notifier->watchdogPeriod = watchdogPeriod;
    dirWatch = keep(ports.certWatch, std::make_unique<FakeDirectoryWatch>());
    clock = keep(ports.clock, std::make_unique<FakeClock>());
  }

 private:
  template <class Port, class Fake>
  static Fake* keep(std::unique_ptr<Port>& slot, std::unique_ptr<Fake> fake) {
    Fake* raw = fake.get();
    slot = std::move(fake);
    return raw;
  }
};

// The config file the daemon tests share; `ike`, `extra` (appended after the daemon
// section's keys), `daemonExtra`, `racoonExtra` and `protectExtra` vary.
inline void writeDaemonTestConfig(const std::string& path, const std::filesystem::path& stateDir,
                                  const std::string& ike = "  backend: racoon\n  control: command\n"
                                                           "  restart_command: [/bin/true]\n",
                                  const std::string& extra = "", const std::string& daemonExtra = "",
                                  const std::string& racoonExtra = "", const std::string& protectExtra = "") {
  std::ofstream(path) << "ipop:\n  interface: ipop\nprotect:\n  ranges: auto\n" << protectExtra << "ike:\n" << ike
                      << "  quiet_period: 1ms\n  min_interval: 1ms\n"
                      << "racoon:\n  config: /etc/racoon/racoon.conf\n  spd_file: /etc/ipsec-tools.conf\n"
                      << "  certificate_dir: /certs\n" << racoonExtra << "daemon:\n  state_dir: " << stateDir.string()
                      << "\n  remember_dir: \"\"\n" << daemonExtra << extra;
}

}  // namespace ipopsec::test
