// The real adapters behind the daemon's ports (lib/os): realPorts(), the only place that
// builds the daemon's ports from them. Other files of daemon/ name adapters too, outside the
// ports: daemon.cpp (file store's temp cleanup, logging), daemon_control.cpp (the config
// loader on SIGHUP, logging), the command line's
// cli.cpp (config loader, logging), cli_common.cpp (config loader), check_cli.cpp (config
// loader, file store, logging, rtnetlink, certificate inspector, systemd unit),
// status_cli.cpp (file store, XFRM) and pki_cli.cpp (pki, crl).

#include "daemon/daemon.hpp"

#include <spdlog/spdlog.h>

#include "os/clock.hpp"
#include "os/files/config_loader.hpp"
#include "os/files/file_store.hpp"
#include "os/ike/ike_control.hpp"
#include "os/files/inotify_watch.hpp"
#include "os/systemd/notifier.hpp"
#include "os/openssl/cert_inspector.hpp"
#include "os/netlink/rtnetlink.hpp"
#include "os/netlink/xfrm.hpp"
#include "os/netlink/xfrm_watch.hpp"

namespace ipopsec {
namespace {

// XfrmPolicyWatch ignores the changes the daemon's own XfrmPolicyTable makes, told apart
// by the netlink port id the kernel stamps on each notification.
class OwnPolicyWatch final : public PolicyWatch {
 public:
  OwnPolicyWatch(boost::asio::io_context& io, std::uint32_t ownPortId) : watch_(io), ownPortId_(ownPortId) {}
  void start(OnChange onChange, Concerns concerns, OnAcquire onAcquire) override {
    watch_.start(ownPortId_, std::move(onChange), std::move(concerns), std::move(onAcquire));
  }
  void stop() override { watch_.stop(); }
  void onStatesFlushed(OnChange f) override { watch_.onStatesFlushed(std::move(f)); }

 private:
  XfrmPolicyWatch watch_;
  std::uint32_t ownPortId_;
};

}  // namespace

DaemonPorts realPorts(boost::asio::io_context& io, const Config& cfg) {
  DaemonPorts p;
  auto table = std::make_unique<XfrmPolicyTable>(PolicyOwnership::configured(cfg));
  p.policyWatch = std::make_unique<OwnPolicyWatch>(io, table->portId());
  p.policies = std::move(table);
  auto monitor = std::make_unique<NetlinkLinkMonitor>(io);
  monitor->setLogger([](const std::string& line) { spdlog::warn("netlink: {}", line); });
  p.links = std::move(monitor);
  p.files = std::make_unique<AtomicFileStore>();
  auto ike = std::make_unique<IkeDaemonControl>(io, cfg);
  ike->setLogger([](const std::string& line) { spdlog::info("{}", line); });
  p.ike = std::move(ike);
  p.notifier = std::make_unique<SdNotifier>();
  p.clock = std::make_unique<SteadyClock>(io);
  p.certs = std::make_unique<OpenSslInspector>();
  p.certWatch = std::make_unique<InotifyWatch>(io);
  p.config = std::make_unique<FileConfigSource>();
  return p;
}

}  // namespace ipopsec
