#include "daemon/cli/check_cli.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/certs/certs.hpp"
#include "core/reconcile/desired.hpp"
#include "daemon/cli/cli_common.hpp"
#include "os/files/config_loader.hpp"
#include "os/files/file_store.hpp"
#include "os/netlink/rtnetlink.hpp"
#include "os/openssl/cert_inspector.hpp"
#include "os/systemd/logging.hpp"
#include "os/systemd/systemd_unit.hpp"

namespace ipopsec {

using cli::error;
using cli::load;

namespace {

// The network `render` and `check` compute the desired state on: the tap up with these
// addresses.
NetSnapshot tapWith(const Config& cfg, const std::vector<Cidr>& addresses) {
  NetSnapshot net;
  LinkState tap;
  tap.index = 1;
  tap.name = cfg.ipop.interface;
  tap.up = tap.running = true;
  tap.addresses = addresses;
  net.links[1] = tap;
  return net;
}

// The daemon's path from config to files (computeDesired and the renderers), as `render`
// runs it; nullopt after printing why the renderer refused the config.
std::optional<Desired> desiredOn(const Config& cfg, const NetSnapshot& net) {
  try {
    return computeDesired(cfg, net, CertFiles{}, {});
  } catch (const RenderError& e) {
    error() << "the config validates, but its files cannot be rendered: " << e.what() << "\n";
    return std::nullopt;
  }
}

// `check` renders with an address in each explicit range (with `ranges: auto`, one from
// the documentation ranges of RFC 5737 / RFC 3849), so that a config that passes `check`
// can always be rendered.
std::vector<Cidr> sampleAddresses(const Config& cfg) {
  if (!cfg.protect.autoRanges) return cfg.protect.ranges;
  std::vector<Cidr> out{*Cidr::parse("192.0.2.1/24")};
  if (cfg.protect.ipv6) out.push_back(*Cidr::parse("2001:db8::1/64"));
  return out;
}

// What this host would refuse at run time, as the daemon judges it (computeDesired's underlay
// check) on the links and addresses the kernel has now (one rtnetlink dump). nullopt, with
// `why`, when they cannot be read.
std::optional<std::vector<std::string>> hostRefusals(const Config& cfg, std::string& why) {
  boost::asio::io_context io;
  NetlinkLinkMonitor monitor(io);
  bool dumped = false;
  try {
    monitor.start([&] {
      dumped = true;
      monitor.stop();
    });
  } catch (const std::exception& e) {
    why = e.what();
    return std::nullopt;
  }
  io.run_for(std::chrono::seconds(5));
  if (!dumped) {
    monitor.stop();
    why = "no complete rtnetlink dump within 5 s";
    return std::nullopt;
  }
  try {
    return computeDesired(cfg, monitor.snapshot(), CertFiles{}, {}).refused;
  } catch (const RenderError& e) {
    why = std::string("the files cannot be rendered for this host's tap: ") + e.what();
    return std::nullopt;
  }
}

// `check --reload` (ExecReload): a refusal is logged as the daemon logs a refused SIGHUP
// (action refuse-reload: MESSAGE_ID reload refused, to the journal when systemd runs it).
void logRefusal(const std::string& what) {
  logEvent(spdlog::level::err, fieldsOf(EventKind::reloadRefused), "reload refused: " + what);
}

// `mkdir -p dir` for render's --output-dir: every missing component is created with mode
// 0755 exactly (the umask does not apply); existing ones (a symlink to a directory too) are
// used as they are. Returns kExitOk when `dir` is (now) a directory; otherwise prints why on
// `why` and returns kExitUsage (a component exists and is not a directory) or kExitFailure
// (mkdir failed: EACCES, EROFS...).
int makeOutputDir(const std::string& dir, std::string& why) {
  if (dir.empty()) {
    why = "empty path";
    return kExitUsage;
  }
  std::filesystem::path cur;
  for (const auto& part : std::filesystem::path(dir)) {
    if (part.empty()) continue;  // a trailing '/'
    cur /= part;
    struct stat st {};
    if (::stat(cur.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) continue;
      why = cur.string() + " exists and is not a directory";
      return kExitUsage;
    }
    if (errno != ENOENT) {
      why = "cannot use " + cur.string() + ": " + std::strerror(errno);
      return kExitFailure;
    }
    if (::mkdir(cur.c_str(), 0755) != 0) {
      int err = errno;
      if (err == EEXIST) {  // a dangling symlink (or a race): use it only if it is a directory now
        if (::stat(cur.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
        why = cur.string() + " exists and is not a directory (a dangling symbolic link?)";
        return kExitUsage;
      }
      why = "cannot create " + cur.string() + ": " + std::strerror(err);
      return kExitFailure;
    }
    if (::chmod(cur.c_str(), 0755) != 0) {
      why = "cannot chmod 0755 " + cur.string() + ": " + std::strerror(errno);
      return kExitFailure;
    }
  }
  return kExitOk;
}

}  // namespace

int cmdCheck(const std::string& path, bool strict, bool reload) {
  std::optional<Config> cfg;
  if (reload) {
    setupLogging("info", runBySystemd());
    try {
      cfg = loadConfig(path);
    } catch (const ConfigError& e) {
      for (const auto& issue : e.issues()) logRefusal(issue.str());
      return kExitConfig;
    }
  } else {
    cfg = load(path);
    if (!cfg) return kExitConfig;
  }
  for (const auto& w : cfg->warnings) std::cout << path << ": warning: " << w << "\n";
  try {
    computeDesired(*cfg, tapWith(*cfg, sampleAddresses(*cfg)), CertFiles{}, {});
  } catch (const RenderError& e) {
    if (reload)
      logRefusal(std::string("the config validates, but its files cannot be rendered: ") + e.what());
    else
      error() << "the config validates, but its files cannot be rendered: " << e.what() << "\n";
    return kExitConfig;
  }
  std::string why;
  if (auto refused = hostRefusals(*cfg, why)) {
    std::cout.flush();
    for (const auto& r : *refused) {
      if (!strict)
        std::cout << "warning: this host would refuse a range: " << r << "\n";
      else if (reload)
        logRefusal("this host would refuse a range: " + r);
      else
        error() << "this host would refuse a range: " << r << "\n";
    }
    if (strict && !refused->empty()) return kExitConfig;
  } else {
    std::cout << "warning: cannot read this host's interfaces (" << why << "): the ranges were not checked against them\n";
  }
  if (reload) {
    std::cout << "ok\n";
    return kExitOk;
  }
  if (cfg->ike.control == IkeControl::systemd) {
    // The IKE unit must exist (racoon is not packaged on Debian 12): asked over D-Bus when
    // systemd runs; without a bus the state is "unknown" and nothing is said.
    boost::asio::io_context io;
    SystemdUnit unit(io, cfg->ike.unit, std::chrono::milliseconds(2000));
    if (unit.state() == "not-found") std::cout << "warning: " << unitdetail::notInstalled(cfg->ike.unit) << "\n";
  }
  // The same inspection and judgement as the daemon's, before every IKE restart.
  OpenSslInspector inspector;
  CertFacts facts = inspector.inspect(certificatePath(*cfg, cfg->racoon.caCert),
                                      certificatePath(*cfg, cfg->racoon.hostCert),
                                      certificatePath(*cfg, cfg->racoon.hostKey),
                                      cfg->racoon.crl.empty() ? "" : certificatePath(*cfg, cfg->racoon.crl));
  CertVerdict verdict = judgeCertificates(facts, certPolicyFor(*cfg), std::chrono::system_clock::now());
  if (cfg->ike.backend == IkeBackend::racoon && facts.ca.loadError.empty()) {
    // racoon's CA lookup files, as the daemon judges them (an operator's entry for another CA).
    std::vector<std::string> hashes;
    for (const auto& ca : facts.caCerts) hashes.push_back(ca.subjectHash);
    HashFilePlan plan = planHashFiles(facts.caCerts, inspector.hashFiles(cfg->racoon.certificateDir, hashes),
                                      cfg->racoon.certificateDir, certificatePath(*cfg, cfg->racoon.caCert));
    verdict.errors.insert(verdict.errors.end(), plan.problems.begin(), plan.problems.end());
    if (!plan.problems.empty()) verdict.usable = false;
  }
  if (facts.hostCert) {
    std::string sans;
    for (const auto& n : facts.hostCert->subjectAltNames) sans += (sans.empty() ? "" : ", ") + n;
    std::cout << facts.cert.path << ": " << facts.hostCert->subject << " (" << (sans.empty() ? "no subjectAltName" : sans)
              << "), " << toString(facts.hostCert->keyType) << " " << facts.hostCert->keyBits << " bits, valid until "
              << formatUtc(facts.hostCert->notAfter) << "\n";
  }
  for (const auto& ca : facts.caCerts)
    std::cout << facts.ca.path << ": " << ca.subject << " (hash " << ca.subjectHash << "), valid until "
              << formatUtc(ca.notAfter) << "\n";
  for (const auto& w : verdict.warnings) std::cout << "warning: " << w << "\n";
  std::cout.flush();  // the errors (stderr) after what precedes them (stdout), in a terminal too
  for (const auto& e : verdict.errors) error() << e << "\n";
  if (!verdict.usable) {
    auto n = verdict.errors.size();
    std::cout << "config ok; " << n << " certificate problem" << (n == 1 ? "" : "s")
              << ": the IKE daemon would not be started on these files\n";
    return kExitFailure;
  }
  std::cout << "ok\n";
  return kExitOk;
}

int cmdRender(const std::string& path, const std::string& address, const std::string& outDir) {
  auto cfg = load(path);
  if (!cfg) return kExitConfig;
  std::string err;
  auto cidr = Cidr::parse(address, &err);
  if (!cidr) {
    error() << "--address '" << address << "': " << err << "\n";
    return kExitUsage;
  }
  std::string why;
  if (int rc = makeOutputDir(outDir, why); rc != kExitOk) {
    error() << "--output-dir '" << outDir << "': " << why << "\n";
    return rc;
  }
  auto desired = desiredOn(*cfg, tapWith(*cfg, {*cidr}));
  if (!desired) return kExitConfig;
  const Desired& d = *desired;
  for (const auto& r : d.refused) std::cerr << "warning: " << r << "\n";
  AtomicFileStore fs;
  std::string policies;
  for (const auto& p : d.policies) policies += p.str() + "\n";
  auto files = d.files;
  files.push_back(RenderedFile{"policies.txt", policies, 0644});
  for (const auto& f : files) {
    std::string target = outDir + "/" + std::filesystem::path(f.path).filename().string();
    if (auto ec = fs.write(target, f.content, f.mode)) {
      error() << target << ": " << ec.message() << "\n";
      return kExitFailure;
    }
    std::cout << "wrote " << target << (f.path != "policies.txt" ? " (installed as " + f.path + ")" : "") << "\n";
  }
  return kExitOk;
}
}  // namespace ipopsec
