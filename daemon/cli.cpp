#include "daemon/cli.hpp"

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

#include "core/desired.hpp"
#include "core/certs.hpp"
#include "core/sa_summary.hpp"
#include "daemon/daemon.hpp"
#include "daemon/pki_cli.hpp"
#include "daemon/state_file.hpp"
#include "os/config_loader.hpp"
#include "os/file_store.hpp"
#include "os/logging.hpp"
#include "os/pki.hpp"
#include "os/systemd_unit.hpp"
#include "os/xfrm.hpp"

namespace po = boost::program_options;

namespace ipopsec {
namespace {

constexpr const char* kDefaultConfig = "/etc/ipop-ipsec/ipop-ipsecd.yaml";

// `ipop-ipsecd --help`: the overview of every command. `ipop-ipsecd COMMAND --help` prints
// only that command's usage and options (commandHelp()).
const char* kUsage =
    "usage: ipop-ipsecd [--config FILE]                 run the daemon (foreground)\n"
    "       ipop-ipsecd check  [--config FILE]          validate the config and certificate files\n"
    "       ipop-ipsecd render [--config FILE] --address CIDR --output-dir DIR\n"
    "                                                   write every file the daemon would write\n"
    "       ipop-ipsecd status [--config FILE] [--json] where this node stands (exit 0 = protected)\n"
    "       ipop-ipsecd flush  [--config FILE]          remove the policies this daemon installed\n"
    "       ipop-ipsecd pki init-ca|issue ...            make a GroupVPN CA and node certificates\n"
    "       ipop-ipsecd --help | --version\n"
    "\n"
    "'ipop-ipsecd COMMAND --help' shows one command's usage and options (also 'pki init-ca --help').\n"
    "Errors are printed on stderr as 'error: ...'. Exit status: 0 success, 1 failure, 2 and 3 see\n"
    "'status --help', 64 bad command line, 78 the config does not validate.\n";

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
  if (command.empty() || command == "run") add("version", "print the version");
  add("help,h", "show this help");
  return o;
}

// The usage text of one command (without its option list).
std::string commandHelp(const std::string& command) {
  if (command == "check")
    return "usage: ipop-ipsecd check [--config FILE]\n"
           "Validates the config (every error with file:line:column and key path) and checks the\n"
           "certificate files it names (racoon.certificate_dir), as the daemon does before it\n"
           "starts the IKE daemon. Prints \"ok\" when all is fine.\n"
           "Exit status: 0 ok; 1 the config is valid but the certificate files are missing or\n"
           "unusable; 78 the config does not validate; 64 bad command line.\n";
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
           "(which needs root).\n"
           "Exit status: 0 protected and healthy; 2 not healthy (or the daemon is gone); 3 no\n"
           "readable state file (the daemon is not running); 78 the config does not validate;\n"
           "64 bad command line.\n";
  if (command == "flush")
    return "usage: ipop-ipsecd flush [--config FILE]\n"
           "Removes the XFRM policies this daemon installed (those with its priorities, xfrm: in\n"
           "the config, and those recorded in its state file) and nothing else: traffic in the\n"
           "range then flows in the clear. Needs root.\n"
           "Exit status: 0 removed (\"removed N policies\"); 1 a policy could not be listed or\n"
           "removed; 78 the config does not validate; 64 bad command line.\n";
  return std::string(kUsage) + "\nThe daemon (no command) runs in the foreground, as systemd runs it.\n";
}

// Every error line of the command line tool has this one form, on stderr.
std::ostream& error() { return std::cerr << "error: "; }

// Loads the config, printing every issue (the first also into `firstIssue`). Returns nullopt
// after printing.
std::optional<Config> load(const std::string& path, std::string* firstIssue = nullptr) {
  try {
    return loadConfig(path);
  } catch (const ConfigError& e) {
    if (firstIssue && !e.issues().empty()) *firstIssue = e.issues().front().str();
    for (const auto& issue : e.issues()) error() << issue.str() << "\n";
    error() << e.issues().size() << (e.issues().size() == 1 ? " error" : " errors") << " in " << path << "\n";
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
  if (cfg->ike.control == IkeControl::systemd) {
    // The IKE unit must exist (racoon is not packaged on Debian 12): asked over D-Bus when
    // systemd runs; without a bus the state is "unknown" and nothing is said.
    boost::asio::io_context io;
    SystemdUnit unit(io, cfg->ike.unit, std::chrono::milliseconds(2000));
    if (unit.state() == "not-found") std::cout << "warning: " << unitdetail::notInstalled(cfg->ike.unit) << "\n";
  }
  // The same inspection and judgement as the daemon's, before every IKE restart.
  OpenSslInspector inspector;
  CertFacts facts = inspector.inspect(certPath(*cfg, cfg->racoon.caCert), certPath(*cfg, cfg->racoon.hostCert),
                                      certPath(*cfg, cfg->racoon.hostKey));
  CertVerdict verdict = judgeCertificates(facts, certPolicyFor(*cfg), std::chrono::system_clock::now());
  if (cfg->ike.backend == IkeBackend::racoon && facts.ca.loadError.empty()) {
    // racoon's CA lookup files, as the daemon judges them (an operator's entry for another CA).
    std::vector<std::string> hashes;
    for (const auto& ca : facts.caCerts) hashes.push_back(ca.subjectHash);
    HashFilePlan plan = planHashFiles(facts.caCerts, inspector.hashFiles(cfg->racoon.certificateDir, hashes),
                                      cfg->racoon.certificateDir, certPath(*cfg, cfg->racoon.caCert));
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
  NetSnapshot net;
  LinkState tap;
  tap.index = 1;
  tap.name = cfg->ipop.interface;
  tap.up = tap.running = true;
  tap.addresses = {*cidr};
  net.links[1] = tap;
  Desired d = computeDesired(*cfg, net, CertFiles{}, {});
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

// The daemon records in its state file every priority its policies carry (an earlier
// backend or configuration may have used others): those are its own too.
void ownRecordedPriorities(XfrmPolicyTable& table, const Config& cfg, const SavedState* saved) {
  if (saved && !saved->ownedPriorities.empty())
    table.setPriorities(cfg.xfrm.protectPriority, cfg.xfrm.bypassPriority, saved->ownedPriorities);
}

// The daemon's state file, parsed; null when absent or not a state file.
std::unique_ptr<SavedState> readSavedState(const Config& cfg) {
  std::string text, err;
  if (AtomicFileStore().read(cfg.daemon.stateDir + "/" + Config::Daemon::kStateFile, text)) return nullptr;
  auto s = parseState(text, &err);
  return s ? std::make_unique<SavedState>(std::move(*s)) : nullptr;
}

int cmdFlush(const std::string& path) {
  auto cfg = load(path);
  if (!cfg) return kExitConfig;
  try {
    XfrmPolicyTable table(cfg->xfrm.protectPriority, cfg->xfrm.bypassPriority);
    ownRecordedPriorities(table, *cfg, readSavedState(*cfg).get());
    std::vector<Policy> owned;
    if (auto ec = table.list(owned)) {
      error() << "cannot list policies: " << ec.message() << "\n";
      return kExitFailure;
    }
    int failed = 0;
    for (const auto& p : owned)
      if (auto ec = table.remove(p)) {
        error() << "cannot remove " << p.str() << ": " << ec.message() << "\n";
        ++failed;
      }
    std::cout << "removed " << owned.size() - static_cast<std::size_t>(failed) << " policies\n";
    return failed ? kExitFailure : kExitOk;
  } catch (const std::exception& e) {
    error() << "cannot open the kernel's XFRM interface: " << e.what() << "\n";
    return kExitFailure;
  }
}

// --- status ------------------------------------------------------------------------------


// A strict RFC 8259 check of the state file's text, so that `status --json` never passes on
// something that only yaml-cpp (which parsed it) accepts. Depth-bounded; no allocation.
class JsonCheck {
 public:
  explicit JsonCheck(std::string_view s) : s_(s) {}
  // True when the whole text is one JSON object (surrounding whitespace allowed).
  bool isObject() {
    space();
    if (i_ >= s_.size() || s_[i_] != '{') return false;
    if (!value(0)) return false;
    space();
    return i_ == s_.size();
  }

 private:
  static constexpr int kMaxDepth = 64;
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool literal(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool digits() {
    std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool number() {
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0')
      ++i_;
    else if (!digits())
      return false;
    if (i_ < s_.size() && s_[i_] == '.' && (++i_, !digits())) return false;
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    return true;
  }
  bool string() {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    for (++i_; i_ < s_.size(); ++i_) {
      auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (++i_ >= s_.size()) return false;
      char e = s_[i_];
      if (e == 'u') {
        for (int k = 0; k < 4; ++k)
          if (++i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_]))) return false;
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return false;
      }
    }
    return false;
  }
  bool value(int depth) {
    space();
    if (i_ >= s_.size() || depth > kMaxDepth) return false;
    char c = s_[i_];
    if (c == '"') return string();
    if (c == 't') return literal("true");
    if (c == 'f') return literal("false");
    if (c == 'n') return literal("null");
    if (c != '{' && c != '[') return number();
    const char close = c == '{' ? '}' : ']';
    ++i_;
    space();
    if (i_ < s_.size() && s_[i_] == close) {
      ++i_;
      return true;
    }
    for (;;) {
      if (close == '}') {
        space();
        if (!string()) return false;
        space();
        if (i_ >= s_.size() || s_[i_++] != ':') return false;
      }
      if (!value(depth + 1)) return false;
      space();
      if (i_ >= s_.size()) return false;
      if (s_[i_] == close) {
        ++i_;
        return true;
      }
      if (s_[i_++] != ',') return false;
    }
  }
  std::string_view s_;
  std::size_t i_ = 0;
};

// What `status` concluded. With --json it is printed as one object whatever the exit code:
// the verdict keys below first, then (when the state file could be read) every key of the
// daemon's state file, unchanged.
struct StatusVerdict {
  std::optional<bool> running;  // nullopt: unknown (no config, unreadable state file)
  bool protectedOk = false;      // exit code 0
  std::string reason;            // why not, "" when protected
  std::optional<bool> kernelVerified;
  std::string kernelNote;
  std::string stateFile;
  int pid = 0;
  std::optional<SaSummary> sas;  // the kernel's SAD for the protected ranges; nullopt: unreadable
};

void printStatusJson(const StatusVerdict& v, int exitCode, const std::string& stateText) {
  auto opt = [](const std::optional<bool>& b) { return b ? (*b ? "true" : "false") : "null"; };
  std::string o = "{\n";
  o += "  \"running\": " + std::string(opt(v.running)) + ",\n";
  o += "  \"protected\": " + std::string(v.protectedOk ? "true" : "false") + ",\n";
  o += "  \"reason\": " + jsonString(v.reason) + ",\n";
  o += "  \"exit_code\": " + std::to_string(exitCode) + ",\n";
  o += "  \"kernel_verified\": " + std::string(opt(v.kernelVerified)) + ",\n";
  o += "  \"kernel_note\": " + jsonString(v.kernelNote) + ",\n";
  o += "  \"state_file\": " + jsonString(v.stateFile) + ",\n";
  if (v.sas) {
    std::string peers;
    for (const auto& p : v.sas->peers) peers += (peers.empty() ? "" : ", ") + jsonString(p.str());
    o += "  \"esp_sas\": " + std::to_string(v.sas->esp) + ",\n  \"esp_peers\": [" + peers + "],\n";
    o += "  \"larval_sas\": " + std::to_string(v.sas->larval);
  } else {
    o += "  \"esp_sas\": null,\n  \"esp_peers\": null,\n  \"larval_sas\": null";
  }
  if (!stateText.empty()) {
    // Splice the daemon's object in: everything after its opening brace.
    auto open = stateText.find('{');
    auto rest = std::string_view(stateText).substr(open + 1);
    auto firstKey = rest.find_first_not_of(" \t\r\n");
    if (rest[firstKey] == '}')
      o += "\n}\n";
    else
      o += ",\n" + std::string(rest.substr(rest.find_first_not_of("\r\n")));
    if (o.back() != '\n') o += "\n";
  } else {
    o += "\n}\n";
  }
  std::cout << o;
}

// kill(pid, 0) tells whether the process exists: EPERM means it does, but belongs to
// another user (the daemon runs as root, `status` often does not).
bool processExists(int pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

constexpr int kExitNotHealthy = 2;
constexpr int kExitNoState = 3;

int cmdStatus(const std::string& path, bool json) {
  StatusVerdict v;
  auto finish = [&](int code, const std::string& stateText = {}) {
    if (json) printStatusJson(v, code, stateText);
    return code;
  };
  std::string issue;
  auto cfg = load(path, &issue);
  if (!cfg) {
    v.reason = "cannot load the config (so the state directory is unknown): " + issue;
    return finish(kExitConfig);
  }
  std::string file = cfg->daemon.stateDir + "/" + Config::Daemon::kStateFile, text, err;
  v.stateFile = file;
  AtomicFileStore fs;
  if (auto ec = fs.read(file, text)) {
    if (ec == std::errc::no_such_file_or_directory) {
      v.running = false;
      v.reason = "no state file " + file + " (ipop-ipsecd is not running, or has not started yet)";
      if (!json) std::cout << "daemon not running: no state file " << file << "\n";
    } else {
      v.reason = "cannot read " + file + ": " + ec.message();
      if (!json) error() << file << ": " << ec.message() << " (is ipop-ipsecd running?)\n";
    }
    return finish(kExitNoState);
  }
  auto s = parseState(text, &err);
  if (s && !JsonCheck(text).isObject()) err = "not valid JSON";
  if (!s || !err.empty()) {
    v.reason = file + " is not a state file: " + err;
    if (!json) error() << file << ": not a state file: " << err << "\n";
    return finish(kExitNoState);
  }
  v.pid = s->pid;
  const bool alive = processExists(s->pid);
  v.running = alive;
  // Check against the kernel, not only against what the daemon remembers.
  bool kernelOk = true;
  std::string kernelNote;
  try {
    XfrmPolicyTable table(cfg->xfrm.protectPriority, cfg->xfrm.bypassPriority);
    ownRecordedPriorities(table, *cfg, &*s);
    std::vector<Policy> owned;
    if (auto ec = table.list(owned)) {
      kernelOk = false;
      kernelNote = "cannot read the kernel's policies: " + ec.message() +
                   (ec == std::errc::operation_not_permitted ? " (run status as root)" : "");
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
    // The SAs: "protected" is the policies; "encrypted, with whom" is the SAD.
    std::vector<xfrm::StateInfo> states;
    if (!table.listStates(states)) {
      std::vector<SaFact> facts;
      for (const auto& st : states) facts.push_back({st.src, st.dst, st.proto == IPPROTO_ESP, st.larval()});
      std::vector<Cidr> ranges;
      for (const auto& r : s->ranges)
        if (auto c = Cidr::parse(r)) ranges.push_back(*c);
      std::vector<IpAddress> local;
      for (const auto& a : s->addresses)
        if (auto c = Cidr::parse(a)) local.push_back(c->address);
        else if (auto ip = IpAddress::parse(a)) local.push_back(*ip);
      v.sas = summarizeSas(facts, ranges, local);
    }
  } catch (const std::exception& e) {
    kernelOk = false;
    kernelNote = std::string("cannot open XFRM: ") + e.what();
  }
  v.kernelVerified = kernelOk;
  v.kernelNote = kernelNote;
  bool healthy = s->healthy && kernelOk && alive;
  v.protectedOk = healthy;
  if (!alive)
    v.reason = "daemon not running (pid " + std::to_string(s->pid) + " from the state file is gone)";
  else if (!kernelOk)
    v.reason = kernelNote;
  else if (!s->healthy)
    v.reason = s->status.empty() ? "the daemon reports it is not healthy" : s->status;
  if (json) return finish(healthy ? kExitOk : kExitNotHealthy, text);

  if (!alive) std::cout << "daemon not running (pid " << s->pid << " from " << file << " is gone); last state:\n";
  std::cout << "status:     " << s->status << "\n";
  std::cout << "tap:        " << s->tapState << (s->addresses.empty() ? "" : " " + s->addresses.front()) << "\n";
  std::string ranges;
  for (const auto& r : s->ranges) ranges += (ranges.empty() ? "" : ", ") + r;
  std::cout << "ranges:     " << (ranges.empty() ? "(none)" : ranges) << "\n";
  std::cout << "policies:   " << s->policies.size() << (kernelOk ? " (verified in the kernel)" : "") << "\n";
  for (const auto& p : s->policies) std::cout << "            " << p << "\n";
  std::cout << "ipsec SAs:  " << (v.sas ? v.sas->str() : std::string("unknown (cannot read the kernel's SAs)")) << "\n";
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
  std::cout << "daemon:     " << (alive ? "running" : "not running") << " (pid " << s->pid << ")\n";
  std::cout << "health:     " << (healthy ? "protected" : "NOT healthy") << "\n";
  return healthy ? kExitOk : kExitNotHealthy;
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
  DaemonPorts ports;
  try {
    ports = realPorts(io, cfg);
  } catch (const std::exception& e) {
    spdlog::critical("cannot open the kernel's XFRM interface: {} (needs CAP_NET_ADMIN)", e.what());
    return 1;
  }
  Daemon daemon(io, path, std::move(cfg), std::move(ports));
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
      StatusVerdict v;
      v.reason = std::string("bad command line: ") + e.what();
      printStatusJson(v, kExitUsage, "");
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
  if (command == "check") return cmdCheck(config);
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
