#include "daemon/cli/cli.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include <boost/program_options.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>

#include <spdlog/spdlog.h>

#include "core/reconcile/desired.hpp"
#include "core/certs/certs.hpp"
#include "daemon/daemon.hpp"
#include "daemon/cli/cut_revoked_cli.hpp"
#include "daemon/cli/pki_cli.hpp"
#include "daemon/cli/status_cli.hpp"
#include "os/files/config_loader.hpp"
#include "os/files/file_store.hpp"
#include "os/systemd/logging.hpp"
#include "os/netlink/rtnetlink.hpp"
#include "os/openssl/cert_inspector.hpp"
#include "os/systemd/systemd_unit.hpp"
#include "os/netlink/xfrm.hpp"

namespace po = boost::program_options;

namespace ipopsec {

namespace cli {

// Every error line of the command line tool has this one form, on stderr.
std::ostream& error() { return std::cerr << "error: "; }

// Loads the config, printing every issue (also into `issues`). Returns nullopt after printing.
std::optional<Config> load(const std::string& path, std::vector<std::string>* issues) {
  try {
    return loadConfig(path);
  } catch (const ConfigError& e) {
    for (const auto& issue : e.issues()) {
      if (issues) issues->push_back(issue.str());
      error() << issue.str() << "\n";
    }
    error() << e.issues().size() << (e.issues().size() == 1 ? " error" : " errors") << " in " << path << "\n";
    return std::nullopt;
  }
}

}  // namespace cli

namespace {

constexpr const char* kDefaultConfig = "/etc/ipop-ipsec/ipop-ipsecd.yaml";

// `ipop-ipsecd --help`: the overview of every command. `ipop-ipsecd COMMAND --help` prints
// only that command's usage and options (commandHelp()).
const char* kUsage =
    "usage: ipop-ipsecd [--config FILE]                 run the daemon (foreground)\n"
    "       ipop-ipsecd check  [--config FILE] [--strict] [--reload]\n"
    "                                                   validate the config and certificate files\n"
    "       ipop-ipsecd render [--config FILE] --address CIDR --output-dir DIR\n"
    "                                                   write every file the daemon would write\n"
    "       ipop-ipsecd status [--config FILE] [--json] where this node stands (exit 0 = running, healthy)\n"
    "       ipop-ipsecd flush  [--config FILE]          remove the policies this daemon installed\n"
    "       ipop-ipsecd pki init-ca|issue ...            make a GroupVPN CA and node certificates\n"
    "       ipop-ipsecd cut-revoked [--uri URI] SERIAL...\n"
    "                                                   end charon's SAs with revoked peers\n"
    "       ipop-ipsecd --help | --version\n"
    "\n"
    "'ipop-ipsecd COMMAND --help' shows one command's usage and options (also 'pki init-ca --help').\n"
    "Errors are printed on stderr as 'error: ...'. Exit status: 0 success, 1 failure, 64 bad command\n"
    "line, 78 the config does not validate; status has its own (see 'status --help').\n";

// The commands besides the daemon itself ("" or "run"); `pki` is dispatched to pki_cli.cpp.
bool isCommand(const std::string& c) {
  return c.empty() || c == "run" || c == "check" || c == "render" || c == "status" || c == "flush";
}

// One command's options: --config and --help for every command, then its own.
po::options_description commandOptions(const std::string& command) {
  po::options_description o("options");
  auto add = o.add_options();
  add("config,c", po::value<std::string>()->default_value(kDefaultConfig)->value_name("FILE"), "the config file");
  if (command == "render")
    add("address", po::value<std::string>()->value_name("CIDR"),
        "the tap's address with its prefix, e.g. 172.31.0.16/16 (required)")(
        "output-dir", po::value<std::string>()->value_name("DIR"),
        "where to write; created (mkdir -p, mode 0755) if missing (required)");
  if (command == "status") add("json", "print one JSON object, whatever the exit code");
  if (command == "check")
    add("strict", "a range this host would refuse at run time (underlay overlap) is an error (exit 78)")(
        "reload", "check as 'systemctl reload' does (ExecReload): a refusal is logged as a refused reload");
  if (command.empty() || command == "run") add("version", "print the version");
  add("help,h", "show this help");
  return o;
}

// The usage text of one command (without its option list).
std::string commandHelp(const std::string& command) {
  if (command == "check")
    return "usage: ipop-ipsecd check [--config FILE] [--strict] [--reload]\n"
           "Validates the config (every error with file:line:column and key path), renders the\n"
           "files the daemon would write from it (as render does, for an address in each range),\n"
           "asks what this host would refuse at run time (a range that covers an address of\n"
           "another interface, read from the kernel: a warning, an error with --strict), and\n"
           "checks the certificate files it names (racoon.certificate_dir), as the daemon does\n"
           "before it starts the IKE daemon. Prints \"ok\" when all is fine.\n"
           "--reload is what 'systemctl reload' runs before it signals the daemon: the config\n"
           "and what this host would refuse only (the daemon judges certificates itself); a\n"
           "config it refuses is logged as a refused reload (to the journal when systemd runs\n"
           "it, MESSAGE_ID=f5c33688d1d547ac866ff433a792405e, as a refused SIGHUP).\n"
           "Exit status: 0 ok; 1 the config is valid but the certificate files are missing or\n"
           "unusable; 78 the config does not validate, its files cannot be rendered, or (with\n"
           "--strict) this host would refuse a range; 64 bad command line.\n";
  if (command == "render")
    return "usage: ipop-ipsecd render [--config FILE] --address CIDR --output-dir DIR\n"
           "Writes into DIR every file the daemon would write for a tap with the address CIDR,\n"
           "and the policies it would install (policies.txt). DIR is created if missing. Touches\n"
           "nothing else: no kernel policy, no IKE daemon, no file outside DIR.\n"
           "Exit status: 0 written; 1 DIR could not be created or a file not written; 78 the\n"
           "config does not validate; 64 bad command line (a bad CIDR; DIR, or a part of it,\n"
           "exists and is not a directory).\n";
  if (command == "status")
    return "usage: ipop-ipsecd status [--config FILE] [--json]\n"
           "Where this node stands: reads the daemon's state file (daemon.state_dir/state.json,\n"
           "/run/ipop-ipsec/state.json by default) and checks its policies against the kernel\n"
           "(as root). Health is what the daemon recorded. A config that does not validate is\n"
           "reported (with its errors), not fatal: the running daemon's state file is read at\n"
           "the file's daemon.state_dir as far as it reads, else at the default.\n"
           "Exit status (LSB): 0 running and healthy; 1 running, not healthy (the reason is\n"
           "shown; also when the kernel lacks policies the daemon recorded); 3 not running (no\n"
           "state file, or its pid is gone); 4 cannot tell (the state file is unreadable or not\n"
           "one, or the config does not parse and there is no state file at the default\n"
           "place); 64 bad command line.\n";
  if (command == "flush")
    return "usage: ipop-ipsecd flush [--config FILE]\n"
           "Removes the XFRM policies this daemon installed (those with its priorities, xfrm: in\n"
           "the config, and those recorded in its state file) and nothing else: traffic in the\n"
           "range then flows in the clear. Needs root. When the config does not validate, the\n"
           "priorities the running daemon recorded in its state file are used, and it says so.\n"
           "Exit status: 0 removed (\"removed N policies\"); 1 a policy could not be listed or\n"
           "removed; 78 the config does not validate and no state file records the daemon's\n"
           "priorities; 64 bad command line.\n";
  return std::string(kUsage) + "\nThe daemon (no command) runs in the foreground, as systemd runs it.\n";
}

using cli::error;
using cli::load;

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

int cmdRun(const std::string& path) {
  // SIGHUP (reload), SIGTERM and SIGINT wait while the daemon starts: their default action
  // would end it. The Daemon's signal set takes them over; what arrived before is handled
  // then (a reload, a clean stop). Unblocked explicitly, not restored: a parent that left
  // them blocked must not make the daemon deaf to them.
  sigset_t startup;
  sigemptyset(&startup);
  for (int sig : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&startup, sig);
  ::pthread_sigmask(SIG_BLOCK, &startup, nullptr);
  bool journal = runBySystemd();
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
  DaemonPorts ports;
  try {
    ports = realPorts(io, cfg);
  } catch (const std::exception& e) {
    spdlog::critical("cannot open the kernel's XFRM interface: {} (needs CAP_NET_ADMIN)", e.what());
    return 1;
  }
  Daemon daemon(io, path, std::move(cfg), std::move(ports));  // installs the handlers
  ::pthread_sigmask(SIG_UNBLOCK, &startup, nullptr);
  return daemon.run();
}

}  // namespace

int runCli(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "pki") return runPkiCli(argc - 2, argv + 2);
  if (argc > 1 && std::string(argv[1]) == "cut-revoked") return runCutRevokedCli(argc - 2, argv + 2);
  std::string command;
  int first = 1;
  if (argc > 1 && argv[1][0] != '-') {
    command = argv[1];
    first = 2;
  }
  if (!isCommand(command)) {
    error() << "unknown command '" << command << "' ('ipop-ipsecd --help' lists the commands)\n";
    return kExitUsage;
  }
  const std::string name = command.empty() || command == "run" ? std::string("ipop-ipsecd") : "ipop-ipsecd " + command;
  po::options_description opts = commandOptions(command);
  po::variables_map vm;
  try {
    std::vector<std::string> args(argv + first, argv + argc);
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    error() << name << ": " << e.what() << " ('" << name << " --help' lists the options)\n";
    // `status --json` answers in JSON whatever happens, a bad command line included.
    if (command == "status" && std::find(argv + first, argv + argc, std::string_view("--json")) != argv + argc) {
      printStatusJsonUsageError(std::string("bad command line: ") + e.what());
    }
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << commandHelp(command) << "\n" << opts;
    return kExitOk;
  }
  if (vm.count("version")) {
    std::cout << "ipop-ipsecd " << IPOPSEC_VERSION << "\n";
    return kExitOk;
  }
  std::string config = vm["config"].as<std::string>();
  if (command.empty() || command == "run") return cmdRun(config);
  if (command == "check") return cmdCheck(config, vm.count("strict") > 0, vm.count("reload") > 0);
  if (command == "flush") return cmdFlush(config);
  if (command == "status") return cmdStatus(config, vm.count("json") > 0);
  // render
  if (!vm.count("address") || !vm.count("output-dir")) {
    error() << name << ": --address and --output-dir are required ('" << name << " --help' lists the options)\n";
    return kExitUsage;
  }
  return cmdRender(config, vm["address"].as<std::string>(), vm["output-dir"].as<std::string>());
}

}  // namespace ipopsec

