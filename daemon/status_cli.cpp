// `ipop-ipsecd status` and `ipop-ipsecd flush`: the commands that read the daemon's state
// file and the kernel's policies (cli.cpp dispatches).

#include "daemon/status_cli.hpp"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/sa_summary.hpp"
#include "daemon/cli.hpp"
#include "daemon/state_file.hpp"
#include "os/file_store.hpp"
#include "os/xfrm.hpp"

namespace ipopsec {

using cli::error;
using cli::load;

namespace {

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

}  // namespace

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

namespace {



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

}  // namespace

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
    std::vector<SaFact> facts;
    if (!table.listSas(facts)) {
      std::vector<Cidr> ranges;
      for (const auto& r : s->ranges)
        if (auto c = Cidr::parse(r)) ranges.push_back(*c);
      std::vector<IpAddress> local;
      for (const auto& a : s->addresses)
        if (auto c = Cidr::parse(a))
          local.push_back(c->address);
        else if (auto ip = IpAddress::parse(a))
          local.push_back(*ip);
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


void printStatusJsonUsageError(const std::string& reason) {
  StatusVerdict v;
  v.reason = reason;
  printStatusJson(v, kExitUsage, "");
}

}  // namespace ipopsec
