// `ipop-ipsecd status` and `ipop-ipsecd flush`: the commands that read the daemon's state
// file and the kernel's policies (cli.cpp dispatches).

#include "daemon/cli/status_cli.hpp"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/policy/ownership.hpp"
#include "core/status/sa_summary.hpp"
#include "daemon/cli/cli_common.hpp"
#include "daemon/cli/json_check.hpp"
#include "daemon/state_file.hpp"
#include "os/files/file_store.hpp"
#include "os/netlink/xfrm.hpp"

#include <yaml-cpp/yaml.h>

namespace ipopsec {

using cli::error;
using cli::load;

namespace {

// What status and flush know of the config: the config when it validates; otherwise its
// errors, and the state directory the running daemon most likely uses (it runs on the config
// it loaded last): daemon.state_dir as far as the file reads as YAML, else the default.
struct ConfigView {
  std::string path;
  std::optional<Config> cfg;
  std::vector<std::string> issues;  // ConfigIssue::str() of each, when it does not validate
  std::string stateDir;
  bool stateDirKnown = true;  // false: the file could name another state_dir that cannot be read
  std::string stateFile() const { return stateDir + "/" + Config::Daemon::kStateFile; }
  std::string problem() const {  // "" when the config validates
    if (cfg) return "";
    std::string p = "the config " + path + " does not validate";
    if (!issues.empty()) p += ": " + issues.front();
    if (issues.size() > 1) p += " (and " + std::to_string(issues.size() - 1) + " more)";
    return p;
  }
};

ConfigView readConfig(const std::string& path) {
  ConfigView v;
  v.path = path;
  v.cfg = load(path, &v.issues);
  v.stateDir = Config::Daemon{}.stateDir;
  if (v.cfg) {
    v.stateDir = v.cfg->daemon.stateDir;
    return v;
  }
  try {
    YAML::Node n = YAML::LoadFile(path);
    YAML::Node dir = n.IsMap() && n["daemon"] && n["daemon"].IsMap() ? n["daemon"]["state_dir"] : YAML::Node();
    if (!dir) return v;  // the file reads, and sets no state_dir: the default
    if (dir.IsScalar() && !dir.Scalar().empty() && dir.Scalar().front() == '/')
      v.stateDir = dir.Scalar();
    else
      v.stateDirKnown = false;
  } catch (const std::exception&) {
    v.stateDirKnown = false;  // not YAML at all, or unreadable
  }
  return v;
}

// The daemon's state file, parsed; null when absent or not a state file.
std::unique_ptr<SavedState> readSavedState(const std::string& file) {
  std::string text, err;
  if (AtomicFileStore().read(file, text)) return nullptr;
  auto s = parseState(text, &err);
  return s ? std::make_unique<SavedState>(std::move(*s)) : nullptr;
}

// The policy table over this daemon's priorities: the configured ones and every one its state
// file records (an earlier backend or configuration may have used others: those are its own
// too). Without a valid config only the recorded ones; null when there are none. Throws when
// the kernel's XFRM interface cannot be opened.
std::unique_ptr<XfrmPolicyTable> ownedTable(const ConfigView& view, const SavedState* saved) {
  std::vector<std::uint32_t> recorded = saved ? saved->ownedPriorities : std::vector<std::uint32_t>{};
  if (!view.cfg && recorded.empty()) return nullptr;
  PolicyOwnership owned = view.cfg ? PolicyOwnership::configured(*view.cfg)
                                   : PolicyOwnership(recorded.front(), recorded.front());
  owned.adopt(recorded);
  return std::make_unique<XfrmPolicyTable>(std::move(owned));
}

std::string joinPriorities(const std::vector<std::uint32_t>& v) {
  std::string o;
  for (auto p : v) o += (o.empty() ? "" : ", ") + std::to_string(p);
  return o;
}

}  // namespace

int cmdFlush(const std::string& path) {
  ConfigView view = readConfig(path);
  auto saved = readSavedState(view.stateFile());
  try {
    auto table = ownedTable(view, saved.get());
    if (!table) {
      error() << "cannot tell which policies are this daemon's: " << view.problem() << ", and "
              << view.stateFile() << (saved ? " records no priorities" : " is not a readable state file") << "\n";
      return kExitConfig;
    }
    if (!view.cfg)
      std::cout << view.problem() << "; removing the policies with the priorities the running daemon recorded in "
                << view.stateFile() << " (" << joinPriorities(saved->ownedPriorities) << ")\n";
    std::vector<Policy> owned;
    if (auto ec = table->list(owned)) {
      error() << "cannot list policies: " << ec.message() << "\n";
      return kExitFailure;
    }
    int failed = 0;
    for (const auto& p : owned)
      if (auto ec = table->remove(p)) {
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

namespace {

// What `status` concluded. With --json it is printed as one object whatever the exit code:
// the verdict keys below first, then (when the state file could be read) every key of the
// daemon's state file, unchanged.
struct StatusVerdict {
  std::optional<bool> running;  // nullopt: unknown (unreadable state file, no state file found)
  bool protectedOk = false;      // exit code 0
  std::string reason;            // why not, "" when protected
  std::optional<bool> kernelVerified;  // nullopt: not compared (no root, no priorities known)
  std::string kernelNote;
  std::string stateFile;
  std::string configFile;
  std::vector<std::string> configErrors;  // the config on disk does not validate: its errors
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
  o += "  \"config_file\": " + jsonString(v.configFile) + ",\n";
  o += "  \"config_valid\": " + std::string(v.configErrors.empty() ? "true" : "false") + ",\n";
  std::string errors;
  for (const auto& e : v.configErrors) errors += (errors.empty() ? "" : ", ") + jsonString(e);
  o += "  \"config_errors\": [" + errors + "],\n";
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

// Exit codes of `status`, after the LSB's for init scripts' status action.
constexpr int kExitNotHealthy = 1;  // running, not healthy
constexpr int kExitNotRunning = 3;
constexpr int kExitUnknown = 4;     // cannot tell

// The kernel's side of the daemon's record: its owned policies (compared with what the state
// file lists) and the SAs of its ranges. Sets kernelVerified (nullopt when not compared),
// kernelNote and sas.
void checkKernel(const ConfigView& view, const SavedState& s, StatusVerdict& v) {
  try {
    auto table = ownedTable(view, &s);
    if (!table) {
      v.kernelNote = "not compared: " + view.problem() + ", and the state file records no priorities";
    } else {
      std::vector<Policy> owned;
      if (auto ec = table->list(owned)) {
        v.kernelNote = "not verified: cannot read the kernel's policies: " + ec.message() +
                       (ec == std::errc::operation_not_permitted ? " (run status as root)" : "");
      } else {
        std::vector<std::string> now;
        for (const auto& p : owned) now.push_back(p.str());
        std::sort(now.begin(), now.end());
        auto want = s.policies;
        std::sort(want.begin(), want.end());
        v.kernelVerified = now == want;
        if (now != want)
          v.kernelNote = "kernel has " + std::to_string(now.size()) + " owned policies, daemon reported " +
                         std::to_string(want.size());
      }
    }
    // The SAs: "protected" is the policies; "encrypted, with whom" is the SAD.
    std::vector<SaFact> facts;
    XfrmPolicyTable sad(0, 0);
    if (!sad.listSas(facts)) {
      std::vector<Cidr> ranges;
      for (const auto& r : s.ranges)
        if (auto c = Cidr::parse(r)) ranges.push_back(*c);
      std::vector<IpAddress> local;
      for (const auto& a : s.addresses)
        if (auto c = Cidr::parse(a))
          local.push_back(c->address);
        else if (auto ip = IpAddress::parse(a))
          local.push_back(*ip);
      v.sas = summarizeSas(facts, ranges, local);
    }
  } catch (const std::exception& e) {
    v.kernelNote = std::string("not verified: cannot open XFRM: ") + e.what();
  }
}

}  // namespace

int cmdStatus(const std::string& path, bool json) {
  StatusVerdict v;
  auto finish = [&](int code, const std::string& stateText = {}) {
    if (json) printStatusJson(v, code, stateText);
    return code;
  };
  ConfigView view = readConfig(path);
  v.configFile = path;
  v.configErrors = view.issues;
  if (!view.cfg && view.issues.empty()) v.configErrors.push_back(path + ": does not validate");
  const std::string file = view.stateFile();
  v.stateFile = file;
  // Said first: the config on disk is not what the daemon runs on.
  auto configLine = [&](bool running) {
    if (view.cfg || json) return;
    std::cout << "config:     NOT VALID, " << view.problem() << "\n"
              << "            "
              << (running ? "the daemon runs on the config it loaded before; a reload would be refused"
                          : "ipop-ipsecd would not start with it")
              << " ('ipop-ipsecd check' lists every error)\n";
    std::cout << "state file: " << file
              << (view.stateDirKnown ? "" : " (the default: the config's daemon.state_dir cannot be read)") << "\n";
  };
  std::string text, err;
  AtomicFileStore fs;
  if (auto ec = fs.read(file, text)) {
    if (ec == std::errc::no_such_file_or_directory && view.stateDirKnown) {
      v.running = false;
      v.reason = "no state file " + file + " (ipop-ipsecd is not running, or has not started yet)";
      if (!json) std::cout << "daemon not running: no state file " << file << "\n";
      configLine(false);
      return finish(kExitNotRunning);
    }
    if (ec == std::errc::no_such_file_or_directory) {
      v.reason = "no state file " + file + ", and " + view.problem() +
                 ": it may name another daemon.state_dir, which cannot be read";
      if (!json) std::cout << "cannot tell whether ipop-ipsecd runs: " << v.reason << "\n";
      return finish(kExitUnknown);
    }
    v.reason = "cannot read " + file + ": " + ec.message();
    configLine(false);
    if (!json) error() << file << ": " << ec.message() << " (is ipop-ipsecd running?)\n";
    return finish(kExitUnknown);
  }
  auto s = parseState(text, &err);
  if (s && !JsonCheck(text).isObject()) err = "not valid JSON";
  if (!s || !err.empty()) {
    v.reason = file + " is not a state file: " + err;
    configLine(false);
    if (!json) error() << file << ": not a state file: " << err << "\n";
    return finish(kExitUnknown);
  }
  v.pid = s->pid;
  const bool alive = processExists(s->pid);
  v.running = alive;
  // Health is what the daemon recorded; the kernel is asked only whether it still holds the
  // policies the daemon recorded (the truth beats the record), and what SAs it has.
  checkKernel(view, *s, v);
  const bool kernelLacks = v.kernelVerified == false;
  const bool healthy = alive && s->healthy && !kernelLacks;
  v.protectedOk = healthy;
  if (!alive)
    v.reason = "daemon not running (pid " + std::to_string(s->pid) + " from the state file is gone)";
  else if (kernelLacks)
    v.reason = v.kernelNote;
  else if (!s->healthy)
    v.reason = !s->reloadRefused.empty() && s->status.empty() ? "RELOAD REFUSED: " + s->reloadRefused
               : s->status.empty()                            ? "the daemon reports it is not healthy"
                                                              : s->status;
  const int code = !alive ? kExitNotRunning : healthy ? kExitOk : kExitNotHealthy;
  if (json) return finish(code, text);

  if (!alive) std::cout << "daemon not running (pid " << s->pid << " from " << file << " is gone); last state:\n";
  configLine(alive);
  std::cout << "status:     " << s->status << "\n";
  if (!s->reloadRefused.empty())
    std::cout << "reload:     RELOAD REFUSED, running config kept: " << s->reloadRefused << "\n";
  std::cout << "tap:        " << s->tapState << (s->addresses.empty() ? "" : " " + s->addresses.front()) << "\n";
  std::string ranges;
  for (const auto& r : s->ranges) ranges += (ranges.empty() ? "" : ", ") + r;
  std::cout << "ranges:     " << (ranges.empty() ? "(none)" : ranges) << "\n";
  std::cout << "policies:   " << s->policies.size() << (v.kernelVerified == true ? " (verified in the kernel)" : "")
            << "\n";
  for (const auto& p : s->policies) std::cout << "            " << p << "\n";
  std::cout << "ipsec SAs:  " << (v.sas ? v.sas->str() : std::string("unknown (cannot read the kernel's SAs)")) << "\n";
  std::cout << "ike:        " << s->ikeUnit << (s->ikeUnitState.empty() ? "" : " " + s->ikeUnitState)
            << ", last restart " << (s->lastRestart.empty() ? "never" : s->lastRestart)
            << (s->lastRestartResult.empty() ? "" : " (" + s->lastRestartResult + ")") << "\n";
  if (!s->lastActionReason.empty()) std::cout << "            why: " << s->lastActionReason << "\n";
  for (const auto& p : s->ikeProblems) std::cout << "            NOT READY: " << p << "\n";
  for (const auto& r : s->refused) std::cout << "refused:    " << r << "\n";
  if (!s->certificateExpiry.empty() || !s->certificatesUsable)
    std::cout << "certs:      " << (s->certificatesUsable ? "usable" : "NOT usable")
              << (s->certificateExpiry.empty() ? "" : ", host certificate valid until " + s->certificateExpiry) << "\n";
  for (const auto& p : s->certificateProblems) std::cout << "            error: " << p << "\n";
  for (const auto& w : s->certificateWarnings) std::cout << "            warning: " << w << "\n";
  if (!s->lastError.empty()) std::cout << "error:      " << s->lastError << "\n";
  if (!v.kernelNote.empty()) std::cout << "kernel:     " << v.kernelNote << "\n";
  std::cout << "daemon:     " << (alive ? "running" : "not running") << " (pid " << s->pid << ")\n";
  std::cout << "health:     " << (healthy ? "protected" : alive ? "NOT healthy" : "unknown (the daemon is not running)")
            << "\n";
  return code;
}


void printStatusJsonUsageError(const std::string& reason) {
  StatusVerdict v;
  v.reason = reason;
  printStatusJson(v, kExitUsage, "");
}

}  // namespace ipopsec
