#pragma once
// The daemon's configuration: the typed result of parsing and validating
// /etc/ipop-ipsec/ipop-ipsecd.yaml. The defaults: the member initialisers below for the keys
// whose default is the same for every backend, and the one table of config_defaults.hpp for
// those that follow ike.backend (applied once by parseConfig; the members start from the
// default backend's row, so that Config{} is what a file that sets none of them gives).
// config/ipop-ipsecd.yaml documents each key. The parse entry point is parse_config.hpp
// (config.cpp); the schema per section config_schema_*.cpp; the issues config_issue.hpp.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config_defaults.hpp"
#include "core/policy/cidr.hpp"

namespace ipopsec {

enum class IkeControl { systemd, command };
enum class PolicyLevel { require, use };
enum class WeakCertPolicy { warn, refuse };

struct Phase1Proposal {
  std::string encryption = "aes 256";  // racoon names: "aes 256", "aes 128", "3des", "camellia 256"
  std::string hash = "sha256";         // sha1 sha256 sha384 sha512
  std::string dhGroup = "modp2048";    // modp1024 (legacy only) modp1536 modp2048 modp3072 modp4096 modp6144 modp8192
  std::chrono::seconds lifetime{8 * 3600};
};

struct Phase2Proposal {
  std::vector<std::string> encryption{"aes 256", "aes 128"};  // racoon names
  std::vector<std::string> authentication{"hmac_sha256"};     // hmac_sha1 hmac_sha256 hmac_sha384 hmac_sha512
  std::string pfsGroup = "modp2048";
  std::string compression = "deflate";
  std::chrono::seconds lifetime{3600};
};

struct Config {
  std::string sourceFile;  // the file this was loaded from (for messages)

  struct Ipop {
    std::string interface = "ipop";  // "tapipop" for the old DHCP GroupVPN, "ipopbr0" in bridge mode
  } ipop;

  struct Protect {
    bool autoRanges = true;        // ranges: auto
    std::vector<Cidr> ranges;      // when !autoRanges; network addresses, no host bits, no overlaps
    bool ipv6 = false;             // with auto: also derive IPv6 ranges from the tap
    std::vector<Cidr> exclude;     // inside some range; bypass IPsec
    PolicyLevel level = PolicyLevel::require;
    bool forward = false;          // also install dir fwd policies (routers)
    bool allowUnderlayOverlap = false;  // install even if a range covers another interface's address
  } protect;

  struct Ike {
    IkeBackend backend = IkeBackend::racoon;
    IkeControl control = IkeControl::systemd;
    std::string unit = backendDefaults(IkeBackend::racoon).unit;  // default follows backend
    std::vector<std::string> restartCommand;  // argv; required when control == command
    std::chrono::milliseconds quietPeriod{2000};   // coalesce restarts: wait this long after the last change
    std::chrono::milliseconds minInterval{10000};  // at most one restart per interval
    std::chrono::milliseconds restartTimeout{90000};
    // After the kernel's ACQUIRE for a packet with no SA, remove the larval states in the
    // ranges this long later (while the IKE daemon listens), so that a failed attempt is
    // asked again by the next packet instead of after net.core.xfrm_acq_expires. 0 = off.
    std::chrono::milliseconds acquireRetry{1000};
  } ike;

  struct Racoon {
    std::string config = "/etc/racoon/racoon.conf";
    std::string spdFile = "/etc/ipsec-tools.conf";
    std::string certificateDir = backendDefaults(IkeBackend::racoon).certificateDir;  // default follows backend
    bool certificateDirDefaulted = true;  // the file does not set certificate_dir
    std::string caCert = "cacert.pem";     // file names inside certificateDir
    std::string hostCert = "host-cert.pem";
    std::string hostKey = "host-key.pem";
    // The GroupVPN CA's revocation list (`ipop-ipsecd pki crl`), a file name inside
    // certificateDir or an absolute path; "" = none. Checked like the certificates and
    // handed to the IKE daemon (racoon: <CA hash>.r0; strongSwan: x509crl/).
    std::string crl;
    bool listenOnTap = false;              // render listen { isakmp <tap address> [500]; }
    int dpdDelay = 20;                     // seconds; 0 disables DPD
    bool natTraversal = false;
  } racoon;

  // The strongSwan backend (ike.backend: strongswan). Certificates are read from the
  // racoon section's certificate_dir/ca_cert/host_cert/host_key and copied into
  // swanctlDir (x509ca/, x509/, private/). See the README, "The strongSwan backend".
  struct Strongswan {
    std::string swanctlDir = "/etc/swanctl";
    std::string config = "/etc/swanctl/conf.d/ipop-ipsec.conf";  // must be included by swanctl.conf
    // Run when only the swanctl configuration changed (charon keeps running); argv, no shell.
    std::vector<std::string> loadCommand{"/usr/sbin/swanctl", "--load-all", "--noprompt"};
    // Run when only credentials changed (a new CRL): loads x509crl/ and the other credential
    // directories into the running charon and touches no connection, so no SA (strongSwan 6's
    // load-conn closes IKE_SAs without a CHILD_SA even of an unchanged connection); argv.
    std::vector<std::string> loadCredsCommand{"/usr/sbin/swanctl", "--load-creds", "--noprompt"};
    // Run after charon loaded a CRL that revokes new serials, with those serials appended
    // (upper-case hex): ends the SAs with the peers that presented such a certificate; argv,
    // no shell. Empty: no cut, a revocation restarts charon instead.
    std::vector<std::string> cutCommand{"/usr/sbin/ipop-ipsecd", "cut-revoked"};
    int dpdDelay = 30;  // seconds; 0 disables dead peer detection
  } strongswan;

  struct Proposals {
    bool legacy = false;  // the seed's 3des/sha1/modp1024/hmac_sha1: warned about on every load
    Phase1Proposal phase1;
    Phase2Proposal phase2;
  } proposals;

  struct Xfrm {
    // Kernel XFRM priorities (lower value wins). The daemon owns exactly the policies
    // that carry one of these two priorities. The protect priority sits below
    // strongSwan's own policies so charon's SAs take precedence.
    std::uint32_t protectPriority = backendDefaults(IkeBackend::racoon).protectPriority;  // follows backend
    std::uint32_t bypassPriority = 1000;
    static constexpr std::uint32_t kStrongswanProtectPriority =
        backendDefaults(IkeBackend::strongswan).protectPriority;
    static constexpr std::uint32_t kCharonLowestPriority = 400000;  // charon's routed (trap) policy for 0/0
  } xfrm;

  struct Certificates {
    int expiryWarningDays = 30;                      // warn this many days before the host certificate expires
    WeakCertPolicy weak = WeakCertPolicy::warn;      // RSA < 2048 bits, SHA-1/MD5 signatures
    bool checkKeyOwner = true;                       // the key file must be owned by root
  } certificates;

  struct Daemon {
    // The files the daemon writes in stateDir: its state (daemon/daemon.cpp, Daemon::onChange), read by
    // `ipop-ipsecd status`, and the ipop-up flag the IKE unit's start condition tests
    // (the Reconciler, lib/core/reconcile/reconciler.cpp).
    static constexpr const char* kStateFile = "state.json";
    static constexpr const char* kIpopUpFile = "ipop-up";
    std::string stateDir = "/run/ipop-ipsec";
    // Persistent (survives a reboot, unlike /run): with `ranges: auto`, the ranges the tap's
    // addresses gave last, in kRememberFile, whose policies are installed from the start so
    // that a node that comes back in the same range leaks nothing. "" = off.
    static constexpr const char* kRememberFile = "auto-ranges";
    std::string rememberDir = "/var/lib/ipop-ipsec";
    // The runtime files' paths, built here only.
    std::string statePath() const { return stateDir + "/" + kStateFile; }
    std::string ipopUpPath() const { return stateDir + "/" + kIpopUpFile; }
    std::string rememberPath() const { return rememberDir.empty() ? std::string() : rememberDir + "/" + kRememberFile; }
    std::string logLevel = "info";  // trace debug info warn error
    // Prometheus text format (core/status/metrics.hpp) for node_exporter's textfile collector,
    // rewritten atomically whenever its content changes, and at least every metricsInterval
    // (1s..60s) with a fresh timestamp; removed on a clean stop. "" = off.
    std::string metricsFile;
    std::chrono::milliseconds metricsInterval{30000};
  } daemon;

  // Warnings worth repeating at every load (e.g. the legacy proposal).
  std::vector<std::string> warnings;
};

// Where a certificate file named by racoon.ca_cert, host_cert or host_key is: inside
// racoon.certificate_dir unless the name is an absolute path.
std::string certificatePath(const Config& cfg, const std::string& name);

}  // namespace ipopsec
