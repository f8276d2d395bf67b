#pragma once
// Desired state: a pure function of the config, the observed network and the
// certificate files. No I/O.

#include <chrono>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "core/policy/net_state.hpp"
#include "core/policy/policy.hpp"
#include "core/render/render.hpp"

namespace ipopsec {

struct CertFiles {
  // Content of cacert.pem, host-cert.pem, host-key.pem; nullopt when missing/unreadable.
  std::optional<std::string> ca, cert, key;
  // The CRL's content when one is configured and loaded (racoon.crl); it is an IKE input.
  std::optional<std::string> crl;
  // The serials that CRL revokes (upper-case hex): what a change of it means for peers.
  std::vector<std::string> crlRevoked;
  // racoon finds a CA's CRL as <certificate_dir>/<CA subject hash>.r0: that path, when a CRL is used.
  std::string crlHashPath;
  // The daemon's CRL copies found on disk (racoon: <CA hash>.r0 with its marker line;
  // strongSwan: its x509crl/ file): removed when no CRL is handed over any more.
  std::vector<std::string> ownedCrlCopies;
  std::vector<std::string> problems;  // human lines; empty when usable
  std::vector<std::string> warnings;  // e.g. expiring soon; usable nevertheless
  std::optional<std::chrono::system_clock::time_point> expiry;  // the host certificate's notAfter
  // When the same files may be judged otherwise (CertVerdict::nextChange): judge again then.
  std::optional<std::chrono::system_clock::time_point> recheckAt;
  // racoon looks the CA up as <certificate_dir>/<subject hash>.0, .1, ...: the copies of the
  // CA file's certificates the daemon writes there (full path, PEM), as planHashFiles
  // (core/certs/certs.hpp) decided: none for a certificate that an operator's entry (c_rehash's
  // symlink to cacert.pem, ...) already holds.
  std::vector<std::pair<std::string, std::string>> caHashCopies;
  // Hash copies an earlier run wrote into the certificate directory (full paths).
  std::vector<std::string> ownedHashCopies;
  bool usable() const { return ca && cert && key && problems.empty(); }
};

// Where the tap stands, as the status line, the state file ("tap_state") and `status` say it.
// noCarrier: administratively up, but no process holds the tap open (IPOP's controller is
// not running or not connected): the kernel reports NO-CARRIER, operstate DOWN.
enum class TapState { absent, down, noCarrier, noAddress, up };
const char* toString(TapState s);  // "absent", "down", "no carrier", "no address", "up"

struct Desired {
  // "IPOP is up": the tap exists, is up with carrier, and carries an address inside the
  // protected ranges (with `auto`: any address of an enabled family). A tap without carrier
  // keeps its ranges and policies (fail closed) but is not up: no ipop-up flag, no IKE start.
  bool ipopUp = false;
  TapState tapState = TapState::absent;
  std::optional<IpAddress> localAddress;  // the tap's address inside the ranges
  // The tap's addresses (not link-local) while it is up with carrier: where the IKE daemon
  // may initiate (strongSwan's trapping connections). Empty while it is absent, down or
  // without carrier. Read from the same snapshot as tapState, once per policy step.
  std::vector<Cidr> tapAddresses;
  std::vector<Cidr> ranges;               // ranges whose policies are installed
  bool heldRanges = false;                // auto: tap has no address; last ranges held (fail closed)
  std::vector<std::string> refused;       // ranges refused by the underlay safety check, with why
  // Ranges protected now (in the kernel) that are kept although they would not be added
  // today: a conflict never takes protection away (fail closed). One line each: why, and
  // what the operator can do.
  std::vector<std::string> conflicts;
  std::vector<Policy> policies;
  std::vector<RenderedFile> files;
  bool certsUsable = false;
  std::vector<std::string> certProblems, certWarnings;
  std::optional<std::chrono::system_clock::time_point> certExpiry;
  std::optional<std::chrono::system_clock::time_point> certRecheckAt;  // CertFiles::recheckAt
  std::vector<std::string> staleFiles;  // files the daemon wrote earlier and no longer wants (removed)
  // Files at paths only the daemon writes (named after it) that it no longer wants: removed
  // whatever they hold (absent is fine). The CRL copy in swanctl's x509crl/ once racoon.crl
  // is gone from the config: charon would go on enforcing an old list.
  std::vector<std::string> staleOwnFiles;
  std::string ikeInputs;  // fingerprint of everything the IKE daemon depends on
  // The part of ikeInputs whose change needs the IKE daemon restarted; nullopt when every
  // change does (racoon). strongSwan: the certificates; the rest is applied by a reload.
  std::optional<std::string> ikeRestartInputs;
  // The part of ikeInputs whose change needs a reload (strongSwan: the connections and the
  // certificates); a change of ikeInputs that leaves it (and ikeRestartInputs) as they are
  // is credentials only, the CRL: IkeAction::loadCreds. nullopt: racoon.
  std::optional<std::string> ikeReloadInputs;
  // Where the IKE configuration initiates, "range=address" (strongSwan: the ranges with a tap
  // address). A reload that adds an entry is not held back by the quiet period (IkeScheduler).
  std::vector<std::string> ikeInitiating;
  // The CRL handed to the IKE daemon: its fingerprint ("" when none) and the serials it
  // revokes (sorted). strongSwan: a new CRL is loaded into the running charon (loadCreds,
  // never a restart); without strongswan.cut_command a changed set restarts charon
  // (ikeRestartInputs). The Reconciler names the change in the action's reason (crlChange).
  std::string ikeCrl;
  std::vector<std::string> ikeRevoked;
};

// What a new CRL changes for the peers, as the reason of the IKE action that hands it over:
// "loading the new CRL (revoked set unchanged)", "the new CRL revokes serial 0F", "the
// new CRL no longer revokes serial 77", "the CRL was removed from the configuration".
std::string crlChange(const std::string& crlBefore, const std::vector<std::string>& revokedBefore,
                      const std::string& crlNow, const std::vector<std::string>& revokedNow);

// `previousRanges`: ranges the daemon protects now (from the kernel); with `ranges: auto`
// they are held while the tap carries no address, so no protected range ever loses its
// policies because IPOP went down or restarted.
// `remembered`: with `ranges: auto`, ranges an earlier run derived from the tap (persisted
// across reboots): held while the tap has no address and nothing else is in force (a node
// that rebooted), but provisional: the underlay check still refuses them.
Desired computeDesired(const Config& cfg, const NetSnapshot& net, const CertFiles& certs,
                       const std::vector<Cidr>& previousRanges, const std::vector<Cidr>& remembered = {});
// computeDesired in two steps, so that the reaction path puts the policies in before it
// reads certificates or renders a file: desiredPolicies gives the ranges, the tap's state
// and the policies; addDesiredFiles adds the certificates' verdict, the IKE daemon's files
// and its inputs to that result.
Desired desiredPolicies(const Config& cfg, const NetSnapshot& net, const LinkState* tap,
                        const std::vector<Cidr>& previousRanges,
                        const std::vector<Cidr>& remembered = {});
void addDesiredFiles(Desired& d, const Config& cfg, const CertFiles& certs);
// Copies desiredPolicies' part of `from` (tap, ranges, policies, refusals) into `into`,
// leaving addDesiredFiles' part (certificates, files, IKE inputs) as it is.
void takePolicySide(Desired& into, const Desired& from);

// The ranges a set of owned policies protects (their protect `out` selectors).
std::vector<Cidr> rangesOf(const std::vector<Policy>& policies);

// The ranges both of whose protect policies (in and out, range <-> range) are in `policies`:
// what the kernel really protects.
std::vector<Cidr> protectedRanges(const std::vector<Policy>& policies);

// One status line for systemd's STATUS= and the log. `inKernel`: the ranges the kernel
// really protects (protectedRanges of the policies read back), not the intended ones.
std::string describe(const Config& cfg, const Desired& d, const std::vector<Cidr>& inKernel);

// 64-bit FNV-1a, hex; for fingerprints (not security-relevant).
std::string fingerprint(const std::string& data);

}  // namespace ipopsec
