#include "daemon/cli.hpp"

#include <unistd.h>

#include <utility>

#include <boost/program_options.hpp>
#include <ctime>
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "core/desired.hpp"
#include "core/certs.hpp"
#include "daemon/daemon.hpp"
#include "daemon/pki_cli.hpp"
#include "daemon/state_file.hpp"
#include "os/config_loader.hpp"
#include "os/file_store.hpp"
#include "os/logging.hpp"
#include "os/pki.hpp"
#include "os/xfrm.hpp"

namespace po = boost::program_options;

namespace ipopsec {
namespace {

constexpr const char* kDefaultConfig = "/etc/ipop-ipsec/ipop-ipsecd.yaml";

const char* kUsage =
    "usage: ipop-ipsecd [--config FILE]                 run the daemon (foreground)\n"
    "       ipop-ipsecd check  [--config FILE]          validate the config and certificate files\n"
    "       ipop-ipsecd render [--config FILE] --address CIDR --output-dir DIR\n"
    "                                                   write every file the daemon would write\n"
    "       ipop-ipsecd status [--config FILE] [--json] where this node stands (exit 0 = protected)\n"
    "       ipop-ipsecd flush  [--config FILE]          remove the policies this daemon installed\n"
    "       ipop-ipsecd pki init-ca|issue ...            make a GroupVPN CA and node certificates\n"
    "                                                   (ipop-ipsecd pki --help)\n"
    "       ipop-ipsecd --help | --version\n";

// Loads the config, printing every issue. Returns nullopt after printing.
std::optional<Config> load(const std::string& path) {
  try {
    return loadConfig(path);
  } catch (const ConfigError& e) {
    for (const auto& issue : e.issues()) std::cerr << issue.str() << "\n";
    std::cerr << e.issues().size() << (e.issues().size() == 1 ? " error" : " errors") << " in " << path << "\n";
    return std::nullopt;
  }
}

std::string certPath(const Config& cfg, const std::string& name) {
  return name.front() == '/' ? name : cfg.racoon.certificateDir + "/" + name;
}

int cmdCheck(const std::string& path) {
  auto cfg = load(path);
  if (!cfg) return kExitConfig;
  for (const auto& w : cfg->warnings) std::cout << path << ": warning: " << w << "\n";
  // The same inspection and judgement as the daemon's, before every IKE restart.
  OpenSslInspector inspector;
  CertFacts facts = inspector.inspect(certPath(*cfg, cfg->racoon.caCert), certPath(*cfg, cfg->racoon.hostCert),
                                      certPath(*cfg, cfg->racoon.hostKey));
  CertVerdict verdict = judgeCertificates(facts, certPolicyFor(*cfg), std::chrono::system_clock::now());
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
  for (const auto& e : verdict.errors) std::cout << "error: " << e << "\n";
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
    std::cerr << "--address '" << address << "': " << err << "\n";
    return kExitUsage;
  }
  if (!std::filesystem::is_directory(outDir)) {
    std::cerr << "--output-dir '" << outDir << "': not a directory\n";
    return kExitUsage;
  }
  NetSnapshot net;
  LinkState tap;
  tap.index = 1;
  tap.name = cfg->ipop.interface;
  tap.up = tap.running = true;
  tap.addresses = {*cidr};
  net.links[1] = tap;
  Desired d = computeDesired(*cfg, net, CertFiles{}, {});
  for (const auto& r : d.refused) std::cerr << "refused: " << r << "\n";
  AtomicFileStore fs;
  std::string policies;
  for (const auto& p : d.policies) policies += p.str() + "\n";
  auto files = d.files;
  files.push_back(RenderedFile{"policies.txt", policies, 0644});
  for (const auto& f : files) {
    std::string target = outDir + "/" + std::filesystem::path(f.path).filename().string();
    if (auto ec = fs.write(target, f.content, f.mode)) {
      std::cerr << target << ": " << ec.message() << "\n";
      return kExitFailure;
    }
    std::cout << "wrote " << target << (f.path != "policies.txt" ? " (installed as " + f.path + ")" : "") << "\n";
  }
  return kExitOk;
}

int cmdFlush(const std::string& path) {
  auto cfg = load(path);
  if (!cfg) return kExitConfig;
  try {
    XfrmPolicyTable table(cfg->xfrm.protectPriority, cfg->xfrm.bypassPriority);
    std::vector<Policy> owned;
    if (auto ec = table.list(owned)) {
      std::cerr << "cannot list policies: " << ec.message() << "\n";
      return kExitFailure;
    }
    int failed = 0;
    for (const auto& p : owned)
      if (auto ec = table.remove(p)) {
        std::cerr << "cannot remove " << p.str() << ": " << ec.message() << "\n";
        ++failed;
      }
    std::cout << "removed " << owned.size() - static_cast<std::size_t>(failed) << " policies\n";
    return failed ? kExitFailure : kExitOk;
  } catch (const std::exception& e) {
    std::cerr << "cannot open the kernel's XFRM interface: " << e.what() << "\n";
    return kExitFailure;
  }
}

int cmdStatus(const std::string& path, bool json) {
  auto cfg = load(path);
  if (!cfg) return kExitConfig;
  std::string file = cfg->daemon.stateDir + "/state.json", text, err;
  AtomicFileStore fs;
  if (auto ec = fs.read(file, text)) {
    std::cerr << file << ": " << ec.message() << " (is ipop-ipsecd running?)\n";
    return 3;
  }
  auto s = parseState(text, &err);
  if (!s) {
    std::cerr << file << ": not a state file: " << err << "\n";
    return 3;
  }
  // Check against the kernel, not only against what the daemon remembers.
  bool kernelOk = true;
  std::string kernelNote;
  try {
    XfrmPolicyTable table(cfg->xfrm.protectPriority, cfg->xfrm.bypassPriority);
    std::vector<Policy> owned;
    if (auto ec = table.list(owned)) {
      kernelOk = false;
      kernelNote = "cannot read the kernel's policies: " + ec.message();
    } else {
      std::vector<std::string> now;
      for (const auto& p : owned) now.push_back(p.str());
      std::sort(now.begin(), now.end());
      auto want = s->policies;
      std::sort(want.begin(), want.end());
      if (now != want) {
        kernelOk = false;
        kernelNote = "kernel has " + std::to_string(now.size()) + " owned policies, daemon reported " +
                     std::to_string(want.size());
      }
    }
  } catch (const std::exception& e) {
    kernelOk = false;
    kernelNote = std::string("cannot open XFRM: ") + e.what();
  }
  bool alive = s->pid > 0 && ::kill(s->pid, 0) == 0;
  bool healthy = s->healthy && kernelOk && alive;
  if (json) {
    std::cout << text;
  } else {
    std::cout << "status:     " << s->status << "\n";
    std::cout << "tap:        " << s->tapState << (s->addresses.empty() ? "" : " " + s->addresses.front()) << "\n";
    std::string ranges;
    for (const auto& r : s->ranges) ranges += (ranges.empty() ? "" : ", ") + r;
    std::cout << "ranges:     " << (ranges.empty() ? "(none)" : ranges) << "\n";
    std::cout << "policies:   " << s->policies.size() << (kernelOk ? " (verified in the kernel)" : "") << "\n";
    for (const auto& p : s->policies) std::cout << "            " << p << "\n";
    std::cout << "ike:        " << s->ikeUnit << ", last restart " << (s->lastRestart.empty() ? "never" : s->lastRestart)
              << (s->lastRestartResult.empty() ? "" : " (" + s->lastRestartResult + ")") << "\n";
    for (const auto& r : s->refused) std::cout << "refused:    " << r << "\n";
    if (!s->certificateExpiry.empty() || !s->certificatesUsable)
      std::cout << "certs:      " << (s->certificatesUsable ? "usable" : "NOT usable")
                << (s->certificateExpiry.empty() ? "" : ", host certificate valid until " + s->certificateExpiry) << "\n";
    for (const auto& p : s->certificateProblems) std::cout << "            error: " << p << "\n";
    for (const auto& w : s->certificateWarnings) std::cout << "            warning: " << w << "\n";
    if (!s->lastError.empty()) std::cout << "error:      " << s->lastError << "\n";
    if (!kernelOk) std::cout << "kernel:     " << kernelNote << "\n";
    if (!alive) std::cout << "daemon:     not running (pid " << s->pid << ")\n";
    std::cout << "health:     " << (healthy ? "protected" : "NOT healthy") << "\n";
  }
  return healthy ? kExitOk : 2;
}

int cmdRun(const std::string& path) {
  bool journal = std::getenv("JOURNAL_STREAM") != nullptr || std::getenv("INVOCATION_ID") != nullptr;
  Config cfg;
  try {
    cfg = loadConfig(path);
  } catch (const ConfigError& e) {
    setupLogging("info", journal);
    for (const auto& issue : e.issues()) spdlog::critical("{}", issue.str());
    spdlog::critical("not starting: {} error(s) in {}", e.issues().size(), path);
    return kExitConfig;
  }
  setupLogging(cfg.daemon.logLevel, journal);
  boost::asio::io_context io;
  Daemon daemon(io, path, std::move(cfg));
  return daemon.run();
}

}  // namespace

int runCli(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "pki") return runPkiCli(argc - 2, argv + 2);
  std::string command;
  int first = 1;
  if (argc > 1 && argv[1][0] != '-') {
    command = argv[1];
    first = 2;
  }
  po::options_description opts("options");
  opts.add_options()("help,h", "show help")("version", "show the version")(
      "config,c", po::value<std::string>()->default_value(kDefaultConfig), "config file")(
      "address", po::value<std::string>(), "render: the tap's address with prefix, e.g. 172.31.0.16/16")(
      "output-dir", po::value<std::string>(), "render: where to write")("json", "status: print JSON");
  po::variables_map vm;
  try {
    std::vector<std::string> args(argv + first, argv + argc);
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "ipop-ipsecd: " << e.what() << "\n" << kUsage;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << opts;
    return kExitOk;
  }
  if (vm.count("version")) {
    std::cout << "ipop-ipsecd " << IPOPSEC_VERSION << "\n";
    return kExitOk;
  }
  std::string config = vm["config"].as<std::string>();
  if (command.empty() || command == "run") return cmdRun(config);
  if (command == "check") return cmdCheck(config);
  if (command == "flush") return cmdFlush(config);
  if (command == "status") return cmdStatus(config, vm.count("json") > 0);
  if (command == "render") {
    if (!vm.count("address") || !vm.count("output-dir")) {
      std::cerr << "ipop-ipsecd render: --address and --output-dir are required\n" << kUsage;
      return kExitUsage;
    }
    return cmdRender(config, vm["address"].as<std::string>(), vm["output-dir"].as<std::string>());
  }
  std::cerr << "ipop-ipsecd: unknown command '" << command << "'\n" << kUsage;
  return kExitUsage;
}

}  // namespace ipopsec
