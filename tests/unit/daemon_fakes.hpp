#pragma once
// The Daemon on fake ports, as daemon_wiring_test and reaction_order_test build it: a node
// with lo and eth0, a certificate set in /certs, the ports the test keeps pointers to, and
// the config both use (`ranges: auto`, racoon, restart by command, remember_dir off). All in
// memory and on virtual time: nothing on the disk, no real clock.

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/config/parse_config.hpp"
#include "daemon/daemon.hpp"
#include "fakes.hpp"
#include "reconciler_fixture.hpp"  // link()

namespace ipopsec::test {

// Where the daemon tests keep the config file and the state directory (in memory only).
inline const std::string kTestConfigPath = "/etc/ipop-ipsec/ipop-ipsecd.yaml";
inline const std::string kTestStateDir = "/run/ipop-ipsec-test";

// The config file as the test wrote it: `files` (path -> text, owned by the test, which
// outlives the daemon) parsed as the real loader does, or ConfigError when it is missing.
class FakeConfigSource final : public ConfigSource {
 public:
  explicit FakeConfigSource(const std::map<std::string, std::string>& files) : files_(files) {}
  Config load(const std::string& path) override {
    ++loads;
    auto it = files_.find(path);
    if (it == files_.end()) throw ConfigError({ConfigIssue{path, 0, 0, "", "cannot read: No such file or directory"}});
    return parseConfig(it->second, path);
  }
  int loads = 0;

 private:
  const std::map<std::string, std::string>& files_;
};

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
  FakeConfigSource* config = nullptr;
  FakePortPointers& pointers() { return *this; }
};

// The fake ports, for a Daemon to own (`ports`), with the pointers.
struct FakeDaemonPorts : FakePortPointers {
  DaemonPorts ports;

  explicit FakeDaemonPorts(const std::map<std::string, std::string>& configFiles,
                           std::optional<std::chrono::microseconds> watchdogPeriod = std::nullopt) {
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
    config = keep(ports.config, std::make_unique<FakeConfigSource>(configFiles));
  }

 private:
  template <class Port, class Fake>
  static Fake* keep(std::unique_ptr<Port>& slot, std::unique_ptr<Fake> fake) {
    Fake* raw = fake.get();
    slot = std::move(fake);
    return raw;
  }
};

// The config file's text the daemon tests share; `ike`, `extra` (appended after the daemon
// section's keys), `daemonExtra`, `racoonExtra` and `protectExtra` vary.
inline std::string daemonTestConfig(const std::string& ike = "  backend: racoon\n  control: command\n"
                                                             "  restart_command: [/bin/true]\n",
                                    const std::string& extra = "", const std::string& daemonExtra = "",
                                    const std::string& racoonExtra = "", const std::string& protectExtra = "") {
  return "ipop:\n  interface: ipop\nprotect:\n  ranges: auto\n" + protectExtra + "ike:\n" + ike +
         "  quiet_period: 1ms\n  min_interval: 1ms\n"
         "racoon:\n  config: /etc/racoon/racoon.conf\n  spd_file: /etc/ipsec-tools.conf\n"
         "  certificate_dir: /certs\n" + racoonExtra + "daemon:\n  state_dir: " + kTestStateDir +
         "\n  remember_dir: \"\"\n" + daemonExtra + extra;
}

}  // namespace ipopsec::test
