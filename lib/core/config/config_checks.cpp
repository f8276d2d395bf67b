// The checks of ipop-ipsecd.yaml that span keys and sections, after the walk and the
// backend's defaults (config_schema.hpp). They only check: no key is assigned here.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "core/config/config_schema.hpp"
#include "core/render/render_swanctl.hpp"

namespace ipopsec::schema {

using namespace yaml;

namespace {

// An ike.unit that names the other backend's daemon (e.g. the example's racoon.service
// kept after switching to strongswan): the daemon would write one daemon's files and
// restart the other, so no SA would ever come up. A warning, repeated at every load, not
// an error: an error would keep the daemon from starting at boot, and so from installing
// the policies that keep the range closed; with them in, traffic is dropped, never sent
// in the clear.
void backendUnitMismatch(Parse& p) {
  const Item* at = p.r.seen("ike.unit");
  if (!at || p.cfg.ike.control != IkeControl::systemd) return;
  const std::string unit = lower(p.cfg.ike.unit);
  const bool racoonUnit = unit.find("racoon") != std::string::npos;
  const bool swanUnit = unit.find("strongswan") != std::string::npos || unit.find("charon") != std::string::npos;
  const bool racoon = p.cfg.ike.backend == IkeBackend::racoon;
  if (racoon ? (swanUnit && !racoonUnit) : (racoonUnit && !swanUnit))
    p.r.warn(at->path, "'" + p.cfg.ike.unit + "' looks like " + (racoon ? "strongSwan's" : "racoon's") +
                           " unit, but ike.backend is " + (racoon ? "racoon" : "strongswan") +
                           ": the daemon would write " + (racoon ? "racoon's" : "strongSwan's") +
                           " files and restart the other daemon, and no SA would come up (traffic of the range is "
                           "dropped); remove ike.unit to get the backend's default (" +
                           (racoon ? "racoon.service" : "strongswan.service") + ") or set the right unit");
}

// Every file the daemon writes must have a path of its own, and none may be a file it
// reads: racoon.config equal to racoon.spd_file would have each replace the other; an
// output equal to the host key, a certificate, the config file or the state file would
// destroy it at the first reconcile. Paths are compared after lexical normalisation
// (symlinks are not resolved: the core does not look at the filesystem). True when an issue
// was reported at daemon.state_dir.
bool pathCollisions(Parse& p) {
  bool stateDirReported = false;
  struct Use {
    std::string path;  // normalised
    std::string what;  // "racoon.spd_file", "racoon.host_key (in racoon.certificate_dir)"
    std::string key;   // the key that sets it, for the position
  };
  auto norm = [](const std::string& p) { return std::filesystem::path(p).lexically_normal().string(); };
  std::vector<Use> writes, reads;
  if (p.cfg.ike.backend == IkeBackend::racoon) {
    writes.push_back({norm(p.cfg.racoon.config), "racoon.config", "racoon.config"});
    writes.push_back({norm(p.cfg.racoon.spdFile), "racoon.spd_file", "racoon.spd_file"});
  } else {
    writes.push_back({norm(p.cfg.strongswan.config), "strongswan.config", "strongswan.config"});
    for (const char* f : {kSwanctlCaFile, kSwanctlCertFile, kSwanctlKeyFile, kSwanctlCrlFile})
      writes.push_back({norm(p.cfg.strongswan.swanctlDir + "/" + f), std::string("strongswan.swanctl_dir's ") + f,
                        "strongswan.swanctl_dir"});
  }
  for (const char* f : {Config::Daemon::kStateFile, Config::Daemon::kIpopUpFile})
    writes.push_back(
        {norm(p.cfg.daemon.stateDir + "/" + f), std::string("daemon.state_dir's ") + f, "daemon.state_dir"});
  if (!p.cfg.daemon.metricsFile.empty())
    writes.push_back({norm(p.cfg.daemon.metricsFile), "daemon.metrics_file", "daemon.metrics_file"});
  auto certFile = [&](const std::string& name, const char* key) {
    bool relative = name.front() != '/';
    reads.push_back(
        {norm(certificatePath(p.cfg, name)), std::string(key) + (relative ? " (in racoon.certificate_dir)" : ""), key});
  };
  certFile(p.cfg.racoon.caCert, "racoon.ca_cert");
  certFile(p.cfg.racoon.hostCert, "racoon.host_cert");
  certFile(p.cfg.racoon.hostKey, "racoon.host_key");
  if (!p.cfg.racoon.crl.empty()) certFile(p.cfg.racoon.crl, "racoon.crl");
  if (!p.r.file().empty() && p.r.file().front() == '/')
    reads.push_back({norm(p.r.file()), "the config file itself", ""});

  // Reported at the key that sets the output when the file sets it, else at the input's.
  auto report = [&](const Use& out, const Use& other, const std::string& why) {
    const Item* at = p.r.seen(out.key);
    if (!at && !other.key.empty()) at = p.r.seen(other.key);
    std::string msg = show(out.path) + " (" + out.what + ") is also " + other.what + ": " + why;
    if (at && at->path == "daemon.state_dir") stateDirReported = true;
    if (at)
      p.r.error(*at, msg);
    else
      p.r.error(YAML::Mark::null_mark(), out.key, msg);
  };
  for (std::size_t i = 0; i < writes.size(); ++i)
    for (std::size_t j = i + 1; j < writes.size(); ++j)
      if (writes[i].path == writes[j].path)
        report(writes[j], writes[i], "the daemon would write both files at the same path, each replacing the other");
  for (const auto& w : writes)
    for (const auto& r : reads)
      if (w.path == r.path) report(w, r, "a file the daemon reads; writing there would destroy it");
  return stateDirReported;
}

// The drop-ins installed for the backends' units (systemd/racoon.service.d-ipop-ipsec.conf,
// strongswan.service.d-ipop-ipsec.conf) start the IKE daemon only when the ipop-up flag exists
// at a fixed path, in the default daemon.state_dir: a file cannot follow this config. With
// another state_dir the daemon would keep its flag elsewhere and such a unit would never
// start ("condition failed"), so no SA would come up. Refused when the daemon restarts one of
// those units; another unit (no drop-in) or ike.control: command may use any directory.
void stateDirAndDropIn(Parse& p) {
  const Item* at = p.r.seen("daemon.state_dir");
  if (!at || !p.controlValid || p.cfg.ike.control != IkeControl::systemd) return;
  auto norm = [](const std::string& d) {
    std::string n = std::filesystem::path(d).lexically_normal().string();
    if (n.size() > 1 && n.back() == '/') n.pop_back();
    return n;
  };
  const std::string fixed = Config::Daemon{}.stateDir;
  if (norm(p.cfg.daemon.stateDir) == fixed) return;
  bool dropIn = false;
  for (const auto& row : kBackendDefaults) dropIn = dropIn || p.cfg.ike.unit == row.unit;
  if (!dropIn) return;
  p.r.error(*at, show(p.cfg.daemon.stateDir) + " cannot be used with ike.control systemd and ike.unit " + p.cfg.ike.unit +
                     ": that unit's drop-in (" + p.cfg.ike.unit +
                     ".d/ipop-ipsec.conf) starts it only when " + fixed + "/" + Config::Daemon::kIpopUpFile +
                     " exists, and the daemon would keep that flag in " + show(p.cfg.daemon.stateDir) +
                     ", so the IKE daemon would never start; keep the default " + fixed +
                     " (remove the key), or restart the IKE daemon with ike.control: command");
}

}  // namespace

void crossChecks(Parse& p) {
  if (p.cfg.ike.backend == IkeBackend::strongswan && p.priorityValid &&
      p.cfg.xfrm.protectPriority <= Config::Xfrm::kCharonLowestPriority) {
    if (const Item* at = p.r.seen("xfrm.protect_priority"))
      p.r.error(*at, std::to_string(p.cfg.xfrm.protectPriority) +
                         " would shadow charon's trap policies (priorities up to " +
                         std::to_string(Config::Xfrm::kCharonLowestPriority) +
                         "): the first packet to a peer would then raise an ACQUIRE charon ignores, and no SA "
                         "would ever come up; with backend strongswan use a value above " +
                         std::to_string(Config::Xfrm::kCharonLowestPriority) + " (default " +
                         std::to_string(Config::Xfrm::kStrongswanProtectPriority) + ")");
  }

  backendUnitMismatch(p);
  if (!pathCollisions(p)) stateDirAndDropIn(p);  // one problem of daemon.state_dir at a time

  const Item* control = p.r.seen("ike.control");
  const Item* command = p.r.seen("ike.restart_command");
  if (p.controlValid && p.restartCommandValid) {
    if (p.cfg.ike.control == IkeControl::command) {
      if (!command)
        p.r.error(control->mark, "ike.restart_command",
                  "is required when ike.control is command: give the argv that restarts the IKE daemon, "
                  "e.g. [/usr/sbin/service, racoon, restart]");
      else if (p.cfg.ike.restartCommand.empty())
        p.r.error(*command, "must not be empty when ike.control is command");
    } else if (command) {
      p.r.error(*command,
                "is set but ike.control is systemd, so it would be ignored; set 'control: command' or remove it");
    }
  }

  if (p.priorityValid) {
    const auto protect = p.cfg.xfrm.protectPriority;
    const auto bypass = p.cfg.xfrm.bypassPriority;
    const Item* at = p.r.seen("xfrm.bypass_priority");
    if (!at) at = p.r.seen("xfrm.protect_priority");
    YAML::Mark mark = at ? at->mark : YAML::Mark::null_mark();
    std::string path = at ? at->path : "xfrm";
    if (protect == bypass)
      p.r.error(mark, path,
                "bypass_priority and protect_priority are both " + std::to_string(bypass) +
                    "; they must differ (the daemon tells its policies apart by priority)");
    else if (bypass > protect)
      p.r.error(mark, path,
                "bypass_priority (" + std::to_string(bypass) + ") must be lower than protect_priority (" +
                    std::to_string(protect) + "): the lower value wins, and exclusions must win over protection");
  }
}

}  // namespace ipopsec::schema
