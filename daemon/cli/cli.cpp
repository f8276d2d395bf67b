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

#include "daemon/cli/check_cli.hpp"
#include "daemon/cli/cli_common.hpp"
#include "daemon/daemon.hpp"
#include "daemon/cli/cut_revoked_cli.hpp"
#include "daemon/cli/pki_cli.hpp"
#include "daemon/cli/status_cli.hpp"
#include "os/files/config_loader.hpp"
#include "os/systemd/logging.hpp"

namespace po = boost::program_options;

namespace ipopsec {

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

