#include "core/reconcile/desired.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>

#include "core/certs/certs.hpp"
#include "core/render/render_swanctl.hpp"

namespace ipopsec {
namespace {

bool familyEnabled(const Config& cfg, Family f) { return f == Family::v4 || cfg.protect.ipv6; }

bool isLinkLocal(const Cidr& c) {
  if (c.family() == Family::v6) return c.address.bytes[0] == 0xfe && (c.address.bytes[1] & 0xc0) == 0x80;
  return c.address.bytes[0] == 169 && c.address.bytes[1] == 254;
}

}  // namespace

const char* toString(TapState s) {
  switch (s) {
    case TapState::absent: return "absent";
    case TapState::down: return "down";
    case TapState::noCarrier: return "no carrier";
    case TapState::noAddress: return "no address";
    case TapState::up: return "up";
  }
  return "?";
}

std::string fingerprint(const std::string& data) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<Cidr> rangesOf(const std::vector<Policy>& policies) {
  std::vector<Cidr> out;
  for (const auto& p : policies)
    if (p.action == PolicyAction::protect && p.dir == Direction::out && p.sel.src == p.sel.dst && !p.sel.proto)
      out.push_back(p.sel.src);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Desired desiredPolicies(const Config& cfg, const NetSnapshot& net, const LinkState* tap,
                        const std::vector<Cidr>& previousRanges,
                        const std::vector<Cidr>& remembered) {
  Desired d;

  // Candidate ranges.
  std::vector<Cidr> candidates;
  if (cfg.protect.autoRanges) {
    if (tap)
      for (const auto& a : tap->addresses)
        if (familyEnabled(cfg, a.family()) && !isLinkLocal(a)) candidates.push_back(a.network());
    if (candidates.empty()) {
      candidates = previousRanges;  // hold: fail closed while the tap has no address
      // The remembered ranges stand in only when nothing is in force (a node that rebooted:
      // no policies left); otherwise what the kernel protects is what this run holds.
      if (candidates.empty()) candidates = remembered;
      d.heldRanges = !candidates.empty();
    }
  } else {
    candidates = cfg.protect.ranges;
  }
  for (auto& c : candidates) c = c.network();
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  // Auto ranges of several addresses may nest (10.1.0.0/16 and 10.1.2.0/24): keep the outer one.
  // One pass, not a pairwise check (that was quadratic: 1.5 s per reconcile at 10,000 ranges,
  // found by tests/bench scale): prefixes either nest or are disjoint, and sorted by (family,
  // network address, length) an inner range comes right after the outermost range that
  // contains it, so only the last kept range needs checking.
  std::vector<Cidr> ranges;
  for (const auto& c : candidates)
    if (ranges.empty() || !ranges.back().contains(c)) ranges.push_back(c);

  // Underlay safety: a range that covers another interface's address or network would
  // cut the node off its LAN and IPOP off its own underlay. It stops a range from being
  // *added*; a range the kernel protects now is never taken away by it (fail closed): it
  // is kept and the conflict reported.
  std::vector<Cidr> inForce = previousRanges;
  for (auto& c : inForce) c = c.network();
  std::sort(inForce.begin(), inForce.end());
  auto isInForce = [&](const Cidr& r) { return std::binary_search(inForce.begin(), inForce.end(), r); };
  for (const auto& r : ranges) {
    std::string why;
    for (const auto& [idx, link] : net.links) {
      if (link.name == cfg.ipop.interface) continue;
      for (const auto& a : link.addresses) {
        if (isLinkLocal(a)) continue;
        if (r.contains(a.address) || r.overlaps(a.network())) {
          why = r.str() + " covers " + a.str() + " on '" + link.name + "'";
          break;
        }
      }
      if (!why.empty()) break;
    }
    if (!why.empty() && !cfg.protect.allowUnderlayOverlap) {
      if (isInForce(r)) {
        d.conflicts.push_back(why + "; still protected (a conflict never removes protection in force): move that "
                                    "address out of the range, or set protect.allow_underlay_overlap: true if the "
                                    "overlap is intended");
        d.ranges.push_back(r);
        continue;
      }
      d.refused.push_back(why + "; refusing to protect it (set protect.allow_underlay_overlap: true to override)");
      continue;
    }
    d.ranges.push_back(r);
  }
  // A range in force leaves the kernel only when what replaces it is in: a new address's
  // range (auto) or the ranges of a new config. When any of those was refused, every range
  // in force stays.
  if (!d.refused.empty()) {
    for (const auto& r : inForce)
      if (std::find(d.ranges.begin(), d.ranges.end(), r) == d.ranges.end()) {
        d.conflicts.push_back(r.str() + " is kept protected because the range(s) that would replace it were refused");
        d.ranges.push_back(r);
      }
    std::sort(d.ranges.begin(), d.ranges.end());
  }

  // Tap state and "IPOP is up".
  if (!tap) {
    d.tapState = TapState::absent;
  } else if (!tap->up) {
    d.tapState = TapState::down;
  } else if (!tap->running) {
    d.tapState = TapState::noCarrier;  // rendered like a down tap: nothing initiates from it
  } else {
    d.tapState = TapState::noAddress;
    for (const auto& a : tap->addresses)
      if (!isLinkLocal(a)) d.tapAddresses.push_back(a);
    for (const auto& a : tap->addresses) {
      // protect.ipv6 only limits what `auto` derives; explicit ranges say it themselves.
      if ((cfg.protect.autoRanges && !familyEnabled(cfg, a.family())) || isLinkLocal(a)) continue;
      bool inside = std::any_of(d.ranges.begin(), d.ranges.end(), [&](const Cidr& r) { return r.contains(a.address); });
      if (inside) {
        d.localAddress = a.address;
        d.tapState = TapState::up;
        break;
      }
    }
  }
  d.ipopUp = d.localAddress.has_value();

  d.policies = buildPolicies(d.ranges, cfg);
  return d;
}

void takePolicySide(Desired& into, const Desired& from) {
  into.ipopUp = from.ipopUp;
  into.tapState = from.tapState;
  into.localAddress = from.localAddress;
  into.tapAddresses = from.tapAddresses;
  into.ranges = from.ranges;
  into.heldRanges = from.heldRanges;
  into.refused = from.refused;
  into.conflicts = from.conflicts;
  into.policies = from.policies;
}

void addDesiredFiles(Desired& d, const Config& cfg, const CertFiles& certs) {
  d.certsUsable = certs.usable();
  d.certProblems = certs.problems;
  d.certWarnings = certs.warnings;
  d.certExpiry = certs.expiry;
  d.certRecheckAt = certs.recheckAt;
  if (cfg.ike.backend == IkeBackend::racoon) {
    d.files = renderRacoonBackend(d.policies, cfg, d.localAddress);
    // racoon verifies a peer's certificate with OpenSSL's hash-directory lookup over
    // `path certificate` (X509_LOOKUP_hash_dir): it opens <dir>/<subject hash>.0, .1, ...
    // and reads the PEM certificates in it. It only opens the path, so a regular file
    // (written atomically, like every file here) serves exactly as c_rehash's symlink
    // would, and keeps the core free of symlink syscalls. Which slots get a copy is
    // planHashFiles' decision (in readCerts): none where an operator's entry (c_rehash's
    // symlink to cacert.pem, a bundle, a copy) already holds the CA certificate; an entry
    // the daemon does not own is never written to.
    std::string caPath = certificatePath(cfg, cfg.racoon.caCert);
    for (const auto& [path, pem] : certs.caHashCopies)
      d.files.push_back(RenderedFile{path,
                                     std::string(kHashCopyMarker) + " of " + caPath + " (rewritten by ipop-ipsecd)\n" + pem,
                                     0644});
    // The CRL where racoon looks for it (X509_LOOKUP_hash_dir: <issuer hash>.r0), only a
    // usable set's: a CRL that revokes this node or is not the CA's is never handed over.
    if (certs.usable() && certs.crl && !certs.crlHashPath.empty())
      d.files.push_back(RenderedFile{certs.crlHashPath,
                                     std::string(kHashCopyMarker) + " of " +
                                         certificatePath(cfg, cfg.racoon.crl) + " (rewritten by ipop-ipsecd)\n" +
                                         *certs.crl,
                                     0644});
  }
  if (cfg.ike.backend == IkeBackend::strongswan) {
    // One connection per protected range: trapping where the tap (up with carrier) has an
    // address, responder-only elsewhere. The certificates are copied only when all three are
    // usable: charon never loads a half-made set.
    std::vector<SwanctlMesh> meshes;
    for (const auto& r : d.ranges) {
      SwanctlMesh m{r, std::nullopt};
      for (const auto& a : d.tapAddresses)
        if (r.contains(a.address)) {
          m.local = a.address;
          break;
        }
      if (m.local) d.ikeInitiating.push_back(r.str() + "=" + m.local->str());
      meshes.push_back(m);
    }
    bool copy = certs.usable();
    d.files = renderStrongswanBackend(meshes, cfg, copy ? certs.ca : std::nullopt, copy ? certs.cert : std::nullopt,
                                      copy ? certs.key : std::nullopt);
    // charon loads CRLs from swanctl's x509crl/ (swanctl --load-creds, part of --load-all).
    if (copy && certs.crl)
      d.files.push_back(RenderedFile{cfg.strongswan.swanctlDir + "/" + kSwanctlCrlFile, *certs.crl, 0644});
  }
  // With no CRL configured the daemon's copies go: no IKE daemon may keep enforcing an old
  // list. racoon's <hash>.r0 is removed only while it still holds the marker (staleFiles);
  // the x509crl/ file is the daemon's by its name (staleOwnFiles). A CRL that is configured
  // but refused (one that revokes this node, forged, out of date) or a set that is unusable
  // for another reason leaves the last accepted copy in place: an IKE daemon started later
  // still loads it.
  for (const auto& path : certs.ownedCrlCopies)
    if (cfg.racoon.crl.empty() && std::none_of(d.files.begin(), d.files.end(), [&](const RenderedFile& f) { return f.path == path; }))
      (cfg.ike.backend == IkeBackend::strongswan ? d.staleOwnFiles : d.staleFiles).push_back(path);
  for (const auto& path : certs.ownedHashCopies)
    if (std::none_of(d.files.begin(), d.files.end(), [&](const RenderedFile& f) { return f.path == path; }))
      d.staleFiles.push_back(path);

  // Only what the IKE daemon reads: its configuration files and the certificates. Not the
  // ranges or the address as such (racoon learns policies over PF_KEY and addresses over
  // netlink; a range change that leaves racoon.conf byte-identical needs no restart), and
  // not ipsec-tools.conf (the daemon installs the policies itself; racoon never reads it).
  // IPOP coming up is a reason of its own (Reconciler: IkeScheduler::ipopCameUp).
  std::string inputs;
  // racoon reads the CRL itself at every verification of a peer's certificate
  // (crypto_openssl.c eay_check_x509cert, called from oakley.c for each phase 1: a new
  // X509_STORE with X509_LOOKUP_hash_dir over `path certificate` and X509_V_FLAG_CRL_CHECK,
  // so <CA hash>.r0 is opened again each time). The file's content is no restart input: a
  // refresh that revokes nothing new is in force for the next peer once it is written. What
  // is an input is the revoked set (below): racoon keeps the SAs of a peer it verified before,
  // and nothing but a restart ends them, since racoon tells no one which certificate (serial)
  // a peer presented (racoonctl shows SAs by address only, and the CRL names serials only).
  for (const auto& f : d.files)
    if (f.path != cfg.racoon.spdFile && !(cfg.ike.backend == IkeBackend::racoon && f.path == certs.crlHashPath))
      inputs += f.path + "=" + fingerprint(f.content) + ";";
  // The CRL is an input (a new one must reach the IKE daemon), but for strongSwan it is loaded
  // into the running charon (swanctl --load-creds loads x509crl/ with the other credentials;
  // the SAs stay). A routine refresh (new next update, same revoked set) restarts nothing. Without
  // strongswan.cut_command a change of the revoked set restarts charon, so that the SAs with
  // a newly revoked peer end now, not at their next rekey.
  const std::string certPrints = fingerprint(certs.ca.value_or("")) + fingerprint(certs.cert.value_or("")) +
                                 fingerprint(certs.key.value_or(""));
  d.ikeCrl = certs.crl ? fingerprint(*certs.crl) : "";
  d.ikeRevoked = certs.crl ? certs.crlRevoked : std::vector<std::string>{};
  std::sort(d.ikeRevoked.begin(), d.ikeRevoked.end());
  std::string revoked;
  for (const auto& s : d.ikeRevoked) revoked += s + ",";
  if (cfg.ike.backend == IkeBackend::racoon)
    inputs += "|" + certPrints + "|revoked=" + revoked;  // a CRL added or removed that revokes nothing: no restart
  else
    inputs += "|" + certPrints + d.ikeCrl;
  d.ikeInputs = inputs;
  // strongSwan: what a reload (load_command: connections, certificates) is needed for; a
  // change of the rest, the CRL alone, is loaded with load_creds_command, which reloads no
  // connection (strongSwan 6's load-conn closes the IKE_SAs without a CHILD_SA even of an
  // unchanged connection, vici_config.c since 7bfaa9acb6; load-cert touches no SA).
  if (cfg.ike.backend == IkeBackend::strongswan) {
    const std::string crlFile = cfg.strongswan.swanctlDir + "/" + kSwanctlCrlFile;
    std::string conns;
    for (const auto& f : d.files)
      if (f.path != cfg.racoon.spdFile && f.path != crlFile) conns += f.path + "=" + fingerprint(f.content) + ";";
    d.ikeReloadInputs = conns + "|" + certPrints;
  }
  // With strongswan.cut_command the Reconciler cuts the SAs with newly revoked peers after the
  // load instead (Reconciler::cutRevoked): then the revoked set is no restart input either.
  if (cfg.ike.backend == IkeBackend::strongswan)
    d.ikeRestartInputs =
        certPrints + (certs.crl && cfg.strongswan.cutCommand.empty() ? "|revoked=" + revoked : "");
}

namespace {

std::string serials(const std::vector<std::string>& list) {
  std::string out = list.size() == 1 ? "serial " : "serials ";
  for (std::size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + list[i];
  return out;
}

}  // namespace

std::string crlChange(const std::string& crlBefore, const std::vector<std::string>& revokedBefore,
                      const std::string& crlNow, const std::vector<std::string>& revokedNow) {
  if (crlBefore == crlNow) return "";
  if (crlNow.empty()) return "the CRL was removed from the configuration";
  std::vector<std::string> added, dropped;
  std::set_difference(revokedNow.begin(), revokedNow.end(), revokedBefore.begin(), revokedBefore.end(),
                      std::back_inserter(added));
  std::set_difference(revokedBefore.begin(), revokedBefore.end(), revokedNow.begin(), revokedNow.end(),
                      std::back_inserter(dropped));
  if (added.empty() && dropped.empty())
    return crlBefore.empty() ? "loading the CRL" : "loading the new CRL (revoked set unchanged)";
  std::string s;
  if (!added.empty()) s = "the new CRL revokes " + serials(added);
  if (!dropped.empty()) s += (s.empty() ? "the new CRL " : " and ") + std::string("no longer revokes ") + serials(dropped);
  return s;
}

Desired computeDesired(const Config& cfg, const NetSnapshot& net, const CertFiles& certs,
                       const std::vector<Cidr>& previousRanges, const std::vector<Cidr>& remembered) {
  Desired d = desiredPolicies(cfg, net, net.byName(cfg.ipop.interface), previousRanges, remembered);
  addDesiredFiles(d, cfg, certs);
  return d;
}

std::vector<Cidr> protectedRanges(const std::vector<Policy>& policies) {
  std::vector<Cidr> out;
  for (const auto& r : rangesOf(policies)) {
    bool in = std::any_of(policies.begin(), policies.end(), [&](const Policy& p) {
      return p.action == PolicyAction::protect && p.dir == Direction::in && p.sel.src == r && p.sel.dst == r &&
             !p.sel.proto;
    });
    if (in) out.push_back(r);
  }
  return out;
}

std::string describe(const Config& cfg, const Desired& d, const std::vector<Cidr>& inKernel) {
  std::string ranges;
  for (const auto& r : inKernel) ranges += (ranges.empty() ? "" : ", ") + r.str();
  std::string s;
  if (d.tapState == TapState::absent)
    s = "waiting for '" + cfg.ipop.interface + "'";
  else if (d.tapState == TapState::down)
    s = "'" + cfg.ipop.interface + "' is down";
  else if (d.tapState == TapState::noCarrier)
    s = "'" + cfg.ipop.interface + "' has no carrier (IPOP's controller is not connected to it; the IKE daemon waits)";
  else if (d.tapState == TapState::noAddress)
    s = "'" + cfg.ipop.interface + "' has no address in the protected ranges";
  else
    s = "'" + cfg.ipop.interface + "' up at " + d.localAddress->str();
  std::string missing;
  for (const auto& r : d.ranges)
    if (std::find(inKernel.begin(), inKernel.end(), r) == inKernel.end())
      missing += (missing.empty() ? "" : ", ") + r.str();
  if (ranges.empty() && missing.empty())
    s += "; nothing protected yet";
  else if (!ranges.empty())
    s += "; protecting " + ranges;
  if (!missing.empty()) s += "; NOT protecting " + missing + " (its policies are not in the kernel)";
  if (d.heldRanges) s += " (held)";
  if (!d.conflicts.empty()) s += "; CONFLICT " + d.conflicts.front();
  if (!d.refused.empty()) s += "; REFUSED " + d.refused.front();
  return s;
}

}  // namespace ipopsec
