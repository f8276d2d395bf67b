// Fuzz target: the YAML config parser (ipopsec::parseConfig), and, for every config it
// accepts, everything the daemon computes from it (desired state, policies, rendered files).
// Contract: either a Config or a ConfigError whose issues each say something; never a
// crash, a hang or another exception type.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/config/parse_config.hpp"
#include "core/reconcile/desired.hpp"
#include "core/policy/net_state.hpp"
#include "core/policy/policy.hpp"

using namespace ipopsec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The loader refuses files over 1 MiB before parsing (os/files/config_loader.cpp).
  if (size > (1U << 20)) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  Config cfg;
  try {
    cfg = parseConfig(text, "fuzz.yaml");
  } catch (const ConfigError& e) {
    if (e.issues().empty()) std::abort();  // an error must say what is wrong
    for (const auto& i : e.issues())
      if (i.message.empty() || i.str().empty()) std::abort();
    return 0;
  }
  // Accepted: the core must handle it. A node with a LAN and a tap in the range.
  NetSnapshot net;
  LinkState lan;
  lan.index = 2;
  lan.name = "eth0";
  lan.up = lan.running = true;
  lan.addresses = {*Cidr::parse("192.168.1.5/24")};
  net.links[2] = lan;
  LinkState tap;
  tap.index = 3;
  tap.name = cfg.ipop.interface;
  tap.up = tap.running = true;
  tap.addresses = {*Cidr::parse("10.254.0.16/16"), *Cidr::parse("fd50::16/64")};
  if (!cfg.protect.autoRanges && !cfg.protect.ranges.empty()) {
    Cidr first = cfg.protect.ranges.front();
    tap.addresses.push_back(Cidr{first.address, first.prefix});
  }
  net.links[3] = tap;
  CertFiles certs;
  certs.ca = certs.cert = certs.key = std::string("PEM");
  Desired d = computeDesired(cfg, net, certs, {});
  auto again = computeDesired(cfg, net, certs, rangesOf(d.policies));
  if (again.policies != d.policies) std::abort();  // desired state is stable
  (void)describe(cfg, d, protectedRanges(d.policies));
  for (const auto& p : d.policies) (void)p.str();
  if (!diffPolicies(d.policies, d.policies).empty()) std::abort();
  return 0;
}
