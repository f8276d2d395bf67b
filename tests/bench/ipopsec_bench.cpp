// ipop-ipsecd benchmarks. Each scenario runs in its own throw-away network namespace (a
// forked child that unshares one), on this machine's kernel, against the real daemon
// binary; nothing leaves the namespaces. They PRINT figures (markdown tables); nothing here
// asserts a time. Run them with scripts/bench.
//
//   ipopsec_bench BINARY [latency|storm|idle|leak|scale|repair|all]...
// Environment: IPOPSEC_BENCH_CHANGES (latency, default 1000), IPOPSEC_BENCH_STORM (default
// 10000), IPOPSEC_BENCH_IDLE_SECONDS (default 60), IPOPSEC_BENCH_LEAK_TRIALS (default 20),
// IPOPSEC_BENCH_SCALE_MAX (default 10000), IPOPSEC_BENCH_SCALE_ROUNDS (default 5),
// IPOPSEC_BENCH_REPAIRS (trials per operation, default 200); IPOPSEC_BENCH_DEBUG=1 prints the
// observer's messages. Where a measurement has rounds, every round is reported (count,
// min / median / max, failures; a failed round counts as +inf).

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/config/config.hpp"
#include "core/reconcile/desired.hpp"
#include "core/policy/policy.hpp"
#include "integration/fault_support.hpp"
#include "integration/netns.hpp"
#include "integration/pki_fixtures.hpp"
#include "integration/tap_carrier.hpp"
#include "os/netlink/xfrm.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string g_binary;

// Pipe I/O between the benchmark and its child processes, all or nothing: a short transfer
// means the figures would be wrong. In a forked child it ends the child; else it throws.
void pipeWrite(int fd, const void* data, std::size_t n, bool child = false) {
  if (::write(fd, data, n) == static_cast<ssize_t>(n)) return;
  if (child) ::_exit(3);
  throw std::runtime_error("benchmark: a write to a pipe failed");
}
void pipeRead(int fd, void* data, std::size_t n, bool child = false) {
  if (::read(fd, data, n) == static_cast<ssize_t>(n)) return;
  if (child) ::_exit(3);
  throw std::runtime_error("benchmark: a read from a pipe failed");
}

int envInt(const char* name, int dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : dflt;
}

double nowMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

std::string fmt(double v, int prec = 3) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

struct Stats {
  std::vector<double> v;
  double pct(double p) const {
    if (v.empty()) return 0;
    auto s = v;
    std::sort(s.begin(), s.end());
    auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(s.size() - 1) + 0.5);
    return s[std::min(i, s.size() - 1)];
  }
  double max() const { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }
};

// The rounds (trials, steps) of one measurement, every one counted: the values of the rounds
// that succeeded and the number that failed or timed out. A failed round counts as +inf: it
// sorts last, so it moves the median and the max (printed "failed") and is never dropped.
struct Rounds {
  std::vector<double> ok;
  int failed = 0;
  void add(std::optional<double> v) {
    if (v) ok.push_back(*v);
    else ++failed;
  }
  std::size_t count() const { return ok.size() + static_cast<std::size_t>(failed); }
  std::vector<double> all() const {
    auto s = ok;
    std::sort(s.begin(), s.end());
    s.insert(s.end(), static_cast<std::size_t>(failed), std::numeric_limits<double>::infinity());
    return s;
  }
  double min() const { return count() ? all().front() : std::nan(""); }
  double max() const { return count() ? all().back() : std::nan(""); }
  double median() const {
    auto s = all();
    if (s.empty()) return std::nan("");
    std::size_t n = s.size();
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;  // inf when either middle round failed
  }
  static std::string show(double v, int prec) {
    if (std::isnan(v)) return "-";
    if (std::isinf(v)) return "failed";
    return fmt(v, prec);
  }
  double pct(double p) const {
    auto s = all();
    if (s.empty()) return std::nan("");
    auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(s.size() - 1) + 0.5);
    return s[std::min(i, s.size() - 1)];
  }
  // "min / median / max"
  std::string range(int prec) const { return show(min(), prec) + " / " + show(median(), prec) + " / " + show(max(), prec); }
};

// Runs `body` in a forked child inside a fresh network namespace; the child's stdout is the
// parent's. Returns the child's exit status.
int inFreshNetns(const std::function<void()>& body) {
  std::cout.flush();
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 0;
    try {
      enterFreshNetns();
      body();
    } catch (const std::exception& e) {
      std::cout << "\n**benchmark failed: " << e.what() << "**\n";
      rc = 1;
    }
    std::cout.flush();
    ::_exit(rc);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// Same, and returns what `body` returned (its result, sent back over a pipe that holds it
// until the child has exited); empty when the child failed (its message is in the output).
std::string inFreshNetnsResult(const std::function<std::string()>& body) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  ::fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);  // the parent reads only after the child exited
  inFreshNetns([&] {
    ::close(pipefd[0]);
    std::string text = body();
    pipeWrite(pipefd[1], text.data(), text.size());
    ::close(pipefd[1]);
  });
  ::close(pipefd[1]);
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  return text;
}

// A work directory with certificates valid for every address the benchmarks use. Its
// restart command only counts restarts, so the work also holds UDP port 500 in its network
// namespace, as the IKE daemon a real restart starts would: the daemon asks the kernel
// (sock_diag) whether the IKE daemon listens, every few milliseconds until it does, and a
// port never bound would leave that polling in every figure.
struct Work {
  fs::path dir;
  // daemon.state_dir on tmpfs, as in production (/run/ipop-ipsec, systemd's RuntimeDirectory=):
  // the rendered files, certificates and remember_dir stay on the disk under `dir`, as /etc
  // and /var/lib are.
  fs::path run;
  int ikePort = -1;
  explicit Work(const std::string& name, bool certs = true) {
    ikePort = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in ike{};
    ike.sin_family = AF_INET;
    ike.sin_port = htons(500);
    if (ikePort < 0 || ::bind(ikePort, reinterpret_cast<sockaddr*>(&ike), sizeof ike) != 0)
      throw std::runtime_error("benchmark: cannot bind UDP port 500 in the namespace (the IKE daemon's stand-in)");
    dir = fs::temp_directory_path() / ("ipopsec-bench-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir);
    fs::create_directories(dir / "certs");
    run = fs::path("/run") / ("ipopsec-bench-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(run);
    fs::create_directories(run);
    if (certs) {
      auto spec = hostSpec("10.254.0.16");
      spec.ips.push_back("10.77.0.16");
      writeHostSet(dir / "certs", makeTestCa(), spec);
    }
    std::ofstream(dir / "restart.sh") << "#!/bin/sh\necho restart >> " << (dir / "restarts.log").string() << "\n";
    fs::permissions(dir / "restart.sh", fs::perms::owner_all);
  }
  ~Work() {
    ::close(ikePort);
    fs::remove_all(dir);
    fs::remove_all(run);
  }
  fs::path config(const std::string& protect, const std::string& ike = "") const {
    auto p = dir / "ipop-ipsecd.yaml";
    std::ofstream(p) << "ipop:\n  interface: ipop\nprotect:\n" << protect
                     << "ike:\n  control: command\n  restart_command: [\"" << (dir / "restart.sh").string() << "\"]\n"
                     << ike << "racoon:\n  config: " << (dir / "racoon.conf").string() << "\n  spd_file: "
                     << (dir / "ipsec-tools.conf").string() << "\n  certificate_dir: " << (dir / "certs").string()
                     << "\ndaemon:\n  state_dir: " << run.string() << "\n  remember_dir: " << (dir / "lib").string() << "\n  log_level: warn\n";
    return p;
  }
  int restarts() const { return countLinesIn(dir / "restarts.log"); }
  std::string state() const { return readFile(run / "state.json"); }
};

std::vector<Policy> ownedPolicies() {
  XfrmPolicyTable t(250000, 1000);
  std::vector<Policy> v;
  if (auto ec = t.list(v)) throw std::runtime_error("xfrm list: " + ec.message());
  return v;
}

void flushOwned() {
  XfrmPolicyTable t(250000, 1000);
  std::vector<Policy> v;
  t.list(v);
  for (const auto& p : v) t.remove(p);
}

// --- observer: NEWADDR on rtnetlink, policy events on XFRM ------------------------------

int openNetlink(int proto, std::uint32_t groups) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
  if (fd < 0) throw std::runtime_error("netlink socket");
  int size = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) throw std::runtime_error("netlink bind");
  return fd;
}

struct Observer {
  int rtnl = openNetlink(NETLINK_ROUTE, RTMGRP_IPV4_IFADDR);
  int xfrm = openNetlink(NETLINK_XFRM, 1U << (XFRMNLGRP_POLICY - 1));
  ~Observer() {
    ::close(rtnl);
    ::close(xfrm);
  }
  // Waits until the NEWADDR of `addr` and every protect policy ipop-ipsecd installs for
  // `range` R have been seen: out and in, R -> R and any -> R (tWant[dir][fromAny]); returns
  // {t_newaddr, t_last_policy} in ms, or nullopt after `timeoutMs`.
  std::optional<std::pair<double, double>> awaitChange(const Cidr& addr, const Cidr& range, double timeoutMs) {
    double tAddr = -1, tWant[2][2] = {{-1, -1}, {-1, -1}};
    auto allSeen = [&] { return tWant[0][0] >= 0 && tWant[0][1] >= 0 && tWant[1][0] >= 0 && tWant[1][1] >= 0; };
    double end = nowMs() + timeoutMs;
    std::vector<char> buf(1 << 16);
    while ((tAddr < 0 || !allSeen()) && nowMs() < end) {
      pollfd p[2] = {{rtnl, POLLIN, 0}, {xfrm, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0) continue;
      for (int k = 0; k < 2; ++k) {
        if (!(p[k].revents & POLLIN)) continue;
        for (;;) {
          ssize_t n = ::recv(p[k].fd, buf.data(), buf.size(), 0);
          if (n <= 0) break;
          const double t = nowMs();  // per message: several may be queued by one wake-up
          for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
            if (std::getenv("IPOPSEC_BENCH_DEBUG")) std::cerr << "sock " << k << " type " << h->nlmsg_type << "\n";
            if (k == 0 && h->nlmsg_type == RTM_NEWADDR && tAddr < 0) {
              auto* ifa = reinterpret_cast<ifaddrmsg*>(NLMSG_DATA(h));
              int len = static_cast<int>(IFA_PAYLOAD(h));
              for (auto* a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len))
                if (a->rta_type == IFA_LOCAL && std::memcmp(RTA_DATA(a), addr.address.bytes.data(), 4) == 0) tAddr = t;
            } else if (k == 1 && (h->nlmsg_type == XFRM_MSG_NEWPOLICY || h->nlmsg_type == XFRM_MSG_UPDPOLICY)) {
              auto* pi = reinterpret_cast<xfrm_userpolicy_info*>(NLMSG_DATA(h));
              if (pi->priority != 250000 || pi->sel.prefixlen_d != range.prefix ||
                  std::memcmp(&pi->sel.daddr, range.address.bytes.data(), 4) != 0)
                continue;
              const bool fromRange = pi->sel.prefixlen_s == range.prefix &&
                                     std::memcmp(&pi->sel.saddr, range.address.bytes.data(), 4) == 0;
              const bool fromAny = pi->sel.prefixlen_s == 0;
              if ((!fromRange && !fromAny) || (pi->dir != XFRM_POLICY_IN && pi->dir != XFRM_POLICY_OUT)) continue;
              double& seen = tWant[pi->dir == XFRM_POLICY_IN ? 1 : 0][fromAny ? 1 : 0];
              if (seen < 0) seen = t;
            }
          }
        }
      }
    }
    if (tAddr < 0 || !allSeen()) return std::nullopt;
    return std::make_pair(tAddr, std::max({tWant[0][0], tWant[0][1], tWant[1][0], tWant[1][1]}));
  }
  // Waits for the DELPOLICY of `range`'s out policy.
  bool awaitRemoval(const Cidr& range, double timeoutMs) {
    double end = nowMs() + timeoutMs;
    std::vector<char> buf(1 << 16);
    while (nowMs() < end) {
      pollfd p{xfrm, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      for (;;) {
        ssize_t n = ::recv(xfrm, buf.data(), buf.size(), 0);
        if (n <= 0) break;
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
          if (h->nlmsg_type != XFRM_MSG_DELPOLICY) continue;
          // xfrm_userpolicy_id (its selector is zero when deleted by index), then XFRMA_POLICY
          // with the whole xfrm_userpolicy_info.
          auto* id = reinterpret_cast<xfrm_userpolicy_id*>(NLMSG_DATA(h));
          if (id->dir != XFRM_POLICY_OUT) continue;
          int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof(xfrm_userpolicy_id)));
          auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(id) + NLMSG_ALIGN(sizeof(xfrm_userpolicy_id)));
          for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            if (a->rta_type != XFRMA_POLICY || RTA_PAYLOAD(a) < sizeof(xfrm_userpolicy_info)) continue;
            auto* pi = reinterpret_cast<xfrm_userpolicy_info*>(RTA_DATA(a));
            if (pi->sel.prefixlen_d == range.prefix && std::memcmp(&pi->sel.daddr, range.address.bytes.data(), 4) == 0)
              return true;
          }
        }
      }
    }
    return false;
  }
  void drain() {
    std::vector<char> buf(1 << 16);
    for (int fd : {rtnl, xfrm})
      while (::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
      }
  }
};

// The shell alternative an operator would write: follow `ip monitor address`, and per
// event `ip xfrm policy update` (make) or `delete` (break) the range's four policies.
constexpr const char* kShellPeer = R"SH(#!/bin/bash
net() { # 10.77.0.16/16 -> 10.77.0.0/16
  local ip=${1%/*} p=${1#*/} a b c d n
  IFS=. read -r a b c d <<<"$ip"
  n=$(( ((a<<24)|(b<<16)|(c<<8)|d) & ((0xffffffff << (32-p)) & 0xffffffff) ))
  printf -v NET '%d.%d.%d.%d/%d' $((n>>24&255)) $((n>>16&255)) $((n>>8&255)) $((n&255)) "$p"
}
ip -o -4 monitor address | while read -r first rest; do
  if [[ $first == Deleted ]]; then set -- $rest; else set -- $first $rest; fi
  [[ $2 == ipop && $3 == inet ]] || continue
  net "$4"
  for dir in out in; do
    for src in "$NET" 0.0.0.0/0; do
      if [[ $first == Deleted ]]; then
        ip xfrm policy delete src "$src" dst "$NET" dir $dir 2>/dev/null
      else
        ip xfrm policy update src "$src" dst "$NET" dir $dir priority 250000 tmpl proto esp mode transport
      fi
    done
  done
done
)SH";

constexpr double kLatencyTimeoutMs = 5000;

// One latency run: `changes` moves of the tap's address between two /16s. Returns the
// latencies (ms; a change whose policies never came within kLatencyTimeoutMs is counted as
// that timeout) and the misses.
// `gap`: a pause between one change settling and the next (0: back to back, so the peer may
// still be finishing the previous change, e.g. writing files, when the next one comes).
struct LatencyResult {
  Stats st;
  int misses = 0;    // changes whose policies never came within the timeout
  int staleOld = 0;  // old range's out policy not seen removed within the timeout
};
LatencyResult measureLatency(int changes, const std::function<void()>& startPeer,
                                     std::chrono::milliseconds gap = std::chrono::milliseconds(0)) {
  sh("ip tuntap add dev ipop mode tap && ip link set ipop up");
  TapCarrier carrier("ipop");  // IPOP's controller holds the tap open: carrier
  Observer obs;
  AddressSetter addr;
  startPeer();
  const Cidr a = *Cidr::parse("10.254.0.16/16"), b = *Cidr::parse("10.77.0.16/16");
  // Warm-up: the peer is up and following once it handled a first change (a shell's `ip
  // monitor` may subscribe after the first change: then the change is made again).
  bool warm = false;
  for (int attempt = 0; attempt < 20 && !warm; ++attempt) {
    addr.del("ipop", a);
    if (addr.add("ipop", a)) throw std::runtime_error("add address");
    warm = obs.awaitChange(a, a.network(), 1000).has_value();
  }
  if (!warm) throw std::runtime_error("the peer never installed the first policies");
  Stats st;
  int misses = 0, staleOld = 0;
  const Cidr* cur = &a;
  for (int i = 0; i < changes; ++i) {
    const Cidr* next = cur == &a ? &b : &a;
    if (gap.count() > 0) std::this_thread::sleep_for(gap);  // the experiment's variable, not a wait
    obs.drain();
    // The clock starts at the change request: a peer faster than the observer's own wake-up
    // (the reference) has its policies queued before the observer reads the NEWADDR.
    const double tRequest = nowMs();
    if (addr.add("ipop", *next)) throw std::runtime_error("add address");
    auto r = obs.awaitChange(*next, next->network(), kLatencyTimeoutMs);
    if (r) {
      st.v.push_back(r->second - tRequest);
    } else {
      st.v.push_back(kLatencyTimeoutMs);  // in the percentiles as the timeout, never dropped
      ++misses;
    }
    if (addr.del("ipop", *cur)) throw std::runtime_error("del address");
    if (!obs.awaitRemoval(cur->network(), kLatencyTimeoutMs)) ++staleOld;
    cur = next;
  }
  return {st, misses, staleOld};
}

void benchLatency() {
  const int changes = envInt("IPOPSEC_BENCH_CHANGES", 1000);
  std::cout << "\n### Reaction latency: address on the tap (RTM_NEWADDR) -> the range's four ESP policies in the kernel\n\n"
            << changes << " changes, the address moving between 10.254.0.16/16 and 10.77.0.16/16 (`ranges: auto`: every "
            << "change needs new policies). Observer: one process that makes the change over netlink (the clock starts "
               "just before its request) and waits for the RTM_NEWADDR (rtnetlink) and every policy ipop-ipsecd installs for the range R "
               "(out and in, R -> R and any -> R; XFRMNLGRP_POLICY), "
               "CLOCK_MONOTONIC at the receipt of each message. The reference is "
               "the least a program can do (tests/bench/reference_peer.cpp): on RTM_NEWADDR on the tap, compute the "
               "range and send the same four policies, in the daemon's order, in one sendmsg, acks read after (the same "
               "job as the daemon's: not fewer policies); no checks, no files, no state. The daemon "
               "writes its files as on a node: daemon.state_dir (state.json, ipop-up) on tmpfs under /run, the rendered "
               "files and daemon.remember_dir on the disk, each write fsync'ed.\n\n";
  struct Row {
    std::string who;
    Stats st;
    int misses = 0;
    int staleOld = 0;
    bool failed = false;
  };
  std::vector<Row> rows;
  // The peers, each under the same observer in its own fresh namespace, one after the
  // other: the daemon, the minimal reference (tests/bench/reference_peer.cpp), the shell; then
  // the daemon and the reference again with changes 20 ms apart (the reaction alone, without
  // the tail of the previous change's fsync'ed file writes).
  enum class Peer { daemon, reference, shell };
  struct Run {
    Peer peer;
    int gapMs;
    std::string who;
  };
  const std::vector<Run> runs{
      {Peer::daemon, 0, "ipop-ipsecd"},
      {Peer::reference, 0, "reference: rtnetlink -> XFRM, one loop, the four policies in one sendmsg"},
      {Peer::shell, 0, "shell: `ip monitor address` + `ip xfrm policy update`"},
      {Peer::daemon, 20, "ipop-ipsecd, changes 20 ms apart"},
      {Peer::reference, 20, "reference, changes 20 ms apart"}};
  const fs::path reference = fs::read_symlink("/proc/self/exe").parent_path() / "ipopsec_reference";
  if (!fs::exists(reference)) throw std::runtime_error(reference.string() + " is missing (build target ipopsec_reference)");
  for (const auto& run : runs) {
    std::string text = inFreshNetnsResult([&] {
      Work w(run.peer == Peer::daemon ? "latency-daemon" : "latency-other", true);
      DaemonProcess daemon;
      pid_t child = -1;  // the shell or the reference, in its own process group
      struct KillChild {
        pid_t& pid;
        ~KillChild() {
          if (pid > 0) {
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
          }
        }
      } killChild{child};
      auto result = measureLatency(changes, [&] {
        if (run.peer == Peer::daemon) {
          daemon.start(g_binary, w.config("  ranges: auto\n"), w.dir / "daemon.log");
          return;
        }
        if (run.peer == Peer::shell) std::ofstream(w.dir / "peer.sh") << kShellPeer;
        child = ::fork();
        if (child == 0) {
          ::setpgid(0, 0);
          if (run.peer == Peer::shell)
            ::execl("/bin/bash", "bash", (w.dir / "peer.sh").c_str(), nullptr);
          else
            ::execl(reference.c_str(), reference.c_str(), "ipop", nullptr);
          ::_exit(127);
        }
      }, std::chrono::milliseconds(run.gapMs));
      std::ostringstream o;
      o << result.misses << " " << result.staleOld;
      for (double v : result.st.v) o << " " << v;
      return o.str();
    });
    std::istringstream in(text);
    Row r{run.who, {}, 0, 0};
    if (!(in >> r.misses >> r.staleOld)) r.failed = true;  // the run itself failed (its message is above)
    for (double v; in >> v;) r.st.v.push_back(v);
    rows.push_back(r);
  }
  std::cout << "| implementation | changes | p50 ms | p99 ms | max ms | missed (counted as " << fmt(kLatencyTimeoutMs, 0)
            << " ms) | old range's policy not seen removed |\n|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    if (r.failed) {
      std::cout << "| " << r.who << " | " << changes << " | failed | failed | failed | " << changes << " | - |\n";
      continue;
    }
    std::cout << "| " << r.who << " | " << r.st.v.size() << " | " << fmt(r.st.pct(50)) << " | " << fmt(r.st.pct(99))
              << " | " << fmt(r.st.max()) << " | " << r.misses << " | " << r.staleOld << " |\n";
  }
  std::cout << "\nOne run of " << changes << " changes per row; the percentiles are over every change of the run, a "
               "missed change (its policies not in the kernel within "
            << fmt(kLatencyTimeoutMs, 0) << " ms) counted as " << fmt(kLatencyTimeoutMs, 0) << " ms.\n";
  auto ratio = [&](const char* what, std::size_t num, std::size_t den) {
    if (rows[den].failed || rows[num].failed || rows[den].st.v.empty() || rows[num].st.v.empty() || rows[den].st.pct(50) <= 0) return;
    std::cout << "\n" << what << ": p50 " << fmt(rows[num].st.pct(50) / rows[den].st.pct(50), 2) << "x, p99 "
              << fmt(rows[num].st.pct(99) / rows[den].st.pct(99), 2) << "x.\n";
  };
  ratio("Daemon / reference (back to back)", 0, 1);
  ratio("Daemon / reference (changes 20 ms apart)", 3, 4);
  ratio("Shell / daemon", 2, 0);
}

void benchStorm() {
  const int changes = envInt("IPOPSEC_BENCH_STORM", 10000);
  std::cout << "\n### Flap storm: " << changes << " address changes in about a second\n\n";
  inFreshNetns([&] {
    Work w("storm");
    sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
    TapCarrier carrier("ipop");  // IPOP's controller holds the tap open: carrier
    DaemonProcess daemon;
    // The defaults: quiet period 2 s, minimum interval 10 s.
    daemon.start(g_binary, w.config("  ranges: auto\n"), w.dir / "daemon.log");
    if (!waitUntil([&] { return w.restarts() == 1; }, 20s)) throw std::runtime_error("no first restart");
    AddressSetter addr;
    const Cidr a = *Cidr::parse("10.254.0.16/16"), b = *Cidr::parse("10.77.0.16/16");
    double cpu0 = daemon.cpuSeconds();
    double t0 = nowMs();
    const Cidr* cur = &a;
    int done = 0;
    const double perChange = 1000.0 / changes;  // spread over about a second
    while (done < changes) {
      const Cidr* next = cur == &a ? &b : &a;
      addr.add("ipop", *next);
      addr.del("ipop", *cur);
      done += 2;
      cur = next;
      while (nowMs() < t0 + perChange * done) {
      }
    }
    if (cur == &a) {  // end away from the start, so the IKE daemon's inputs do change
      addr.add("ipop", b);
      addr.del("ipop", a);
      done += 2;
      cur = &b;
    }
    double stormMs = nowMs() - t0;
    const Cidr finalRange = cur->network();
    Config cfg;
    cfg.protect.autoRanges = true;
    auto want = buildPolicies({finalRange}, cfg);
    std::sort(want.begin(), want.end());
    bool exact = waitUntil(
        [&] {
          auto have = ownedPolicies();
          std::sort(have.begin(), have.end());
          return have == want;
        },
        10s);
    double exactMs = nowMs() - t0;
    double cpuStorm = daemon.cpuSeconds() - cpu0;
    // Settle: the coalesced restart (quiet period 2 s) and nothing pending after it.
    waitUntil([&] { return w.restarts() >= 2 && w.state().find("\"healthy\": true") != std::string::npos; }, 30s);
    std::this_thread::sleep_for(12s);  // longer than the minimum interval: a further restart would show
    int restarts = w.restarts() - 1;
    double cpuTotal = daemon.cpuSeconds() - cpu0;
    int redumps = 0;
    std::string log = readFile(w.dir / "daemon.log");
    for (auto p = log.find("netlink:"); p != std::string::npos; p = log.find("netlink:", p + 1)) ++redumps;
    std::cout << "| changes | storm took ms | final policy set exact | exact after ms | IKE restarts | daemon CPU during "
                 "storm s | daemon CPU until settled s | netlink warnings (re-dumps) |\n|---|---|---|---|---|---|---|---|\n"
              << "| " << done << " | " << fmt(stormMs, 0) << " | " << (exact ? "yes" : "NO") << " | " << fmt(exactMs, 0)
              << " | " << restarts << " | " << fmt(cpuStorm, 2) << " | " << fmt(cpuTotal, 2) << " | " << redumps << " |\n";
  });
}

// Memory of a process: /proc/PID/smaps_rollup (RSS, PSS, USS = Private_Clean + Private_Dirty)
// and, from /proc/PID/smaps, the same per mapped file (each shared library, the binary) and
// for the anonymous memory.
struct MemoryUse {
  struct Part {
    std::string name;
    long long rss = 0, pss = 0, priv = 0, dirty = 0;  // KiB; dirty: Private_Dirty alone
  };
  long long rss = -1, pss = -1, uss = -1, dirty = -1;  // KiB; dirty: Private_Dirty alone
  std::vector<Part> libraries;             // each .so, largest RSS first
  Part binary{"the binary", 0, 0, 0, 0}, anon{"anonymous (heap, stacks)", 0, 0, 0, 0}, other{"other mappings", 0, 0, 0, 0};
};

MemoryUse memoryOf(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  auto field = [](const std::string& line, const char* key) -> std::optional<long long> {
    const std::string k = std::string(key) + ":";
    if (line.rfind(k, 0) != 0) return std::nullopt;
    return std::stoll(line.substr(k.size()));
  };
  MemoryUse m;
  {
    std::istringstream in(readFile(proc + "/smaps_rollup"));
    long long pc = 0, pd = 0;
    for (std::string line; std::getline(in, line);) {
      if (auto v = field(line, "Rss")) m.rss = *v;
      if (auto v = field(line, "Pss")) m.pss = *v;
      if (auto v = field(line, "Private_Clean")) pc = *v;
      if (auto v = field(line, "Private_Dirty")) pd = *v;
    }
    m.uss = pc + pd;
    m.dirty = pd;
  }
  std::error_code ec;
  const std::string exe = fs::read_symlink(proc + "/exe", ec).string();
  std::map<std::string, MemoryUse::Part> libs;
  MemoryUse::Part* cur = nullptr;
  std::istringstream in(readFile(proc + "/smaps"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first.empty()) continue;
    if (first.back() != ':') {  // a mapping: "start-end perms offset dev inode [path]"
      std::string perms, offset, dev, inode, path;
      words >> perms >> offset >> dev >> inode;
      std::getline(words, path);
      path.erase(0, path.find_first_not_of(' '));
      if (path.empty() || path == "[heap]" || path.rfind("[stack", 0) == 0 || path.rfind("[anon", 0) == 0) {
        cur = &m.anon;
      } else if (path == exe) {
        cur = &m.binary;
      } else if (path.find(".so") != std::string::npos) {
        auto name = fs::path(path).filename().string();
        cur = &libs[name];
        cur->name = name;
      } else {
        cur = &m.other;
      }
      continue;
    }
    if (!cur) continue;
    if (auto v = field(line, "Rss")) cur->rss += *v;
    if (auto v = field(line, "Pss")) cur->pss += *v;
    if (auto v = field(line, "Private_Clean")) cur->priv += *v;
    if (auto v = field(line, "Private_Dirty")) {
      cur->priv += *v;
      cur->dirty += *v;
    }
  }
  for (auto& [name, part] : libs) m.libraries.push_back(part);
  std::sort(m.libraries.begin(), m.libraries.end(), [](const auto& x, const auto& y) { return x.rss > y.rss; });
  return m;
}

// Per thread of a process: name, times it was put on a CPU (/proc/PID/task/TID/schedstat, the
// third field), voluntary context switches. Reading these does not wake the process.
struct ThreadCounts {
  std::string name;
  long long runs = 0, voluntary = 0;
};
std::map<int, ThreadCounts> threadCounts(pid_t pid) {
  std::map<int, ThreadCounts> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    int tid = std::atoi(e.path().filename().c_str());
    ThreadCounts t;
    std::istringstream sched(readFile(e.path() / "schedstat"));
    long long run = 0, wait = 0;
    sched >> run >> wait >> t.runs;
    std::istringstream status(readFile(e.path() / "status"));
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Name:", 0) == 0) {
        t.name = line.substr(5);
        t.name.erase(0, t.name.find_first_not_of(" \t"));
      }
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) t.voluntary = std::stoll(line.substr(24));
    }
    out[tid] = t;
  }
  return out;
}

// inFreshNetnsResult for several bodies at once, each in its own child and namespace: their
// results in order, "" for one that failed (its message is in the output).
std::vector<std::string> inFreshNetnsResults(const std::vector<std::function<std::string()>>& bodies) {
  struct Child {
    pid_t pid;
    int fd;
  };
  std::vector<Child> children;
  std::cout.flush();
  for (const auto& body : bodies) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    ::fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);  // the parent reads only after the child exited
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork");
    if (pid == 0) {
      ::close(pipefd[0]);
      int rc = 0;
      try {
        enterFreshNetns();
        std::string text = body();
        pipeWrite(pipefd[1], text.data(), text.size());
      } catch (const std::exception& e) {
        std::cout << "\n**benchmark failed: " << e.what() << "**\n";
        rc = 1;
      }
      std::cout.flush();
      ::_exit(rc);
    }
    ::close(pipefd[1]);
    children.push_back({pid, pipefd[0]});
  }
  std::vector<std::string> out;
  for (const auto& c : children) {
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    std::string text;
    char buf[65536];
    for (ssize_t n; (n = ::read(c.fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    ::close(c.fd);
    out.push_back(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? text : std::string());
  }
  return out;
}

void benchIdle() {
  // Longer than the daemon's resync period (5 minutes): a window shorter than a period would
  // show no wakeup at all. The two daemons (watchdog off, on) are measured at the same time,
  // each in its own namespace and work directory: both are idle, and the machine has the
  // cores for two processes that sleep.
  const int seconds = envInt("IPOPSEC_BENCH_IDLE_SECONDS", 330);
  constexpr int kPollMs = 10;
  std::cout << "\n### Idle cost: " << seconds << " s with nothing happening\n\n"
            << "The daemon settled (IKE daemon started, healthy, its auto range remembered), then a window of " << seconds
            << " s in which nothing changes; the daemon without and the daemon with the watchdog run side by side, each in "
               "a network namespace and work directory of its own, measured over the same "
            << seconds << " s (the restart command only counts; the benchmark holds UDP port 500 in the "
               "namespace as the IKE daemon would). Context switches: /proc/PID/status, all threads, voluntary + involuntary. "
               "Wakeups: every " << kPollMs << " ms the benchmark reads each thread's /proc/PID/task/TID/schedstat (times "
               "put on a CPU; reading it does not wake the daemon); a step in which any thread ran is one wakeup, at the "
               "second of the window it was seen. The longest stretch without a wakeup counts the window's start and end as "
               "edges, so a daemon that never wakes shows the whole window. Memory at the end of the window: RSS, PSS and "
               "USS (private: Private_Clean + Private_Dirty) and Private_Dirty alone from /proc/PID/smaps_rollup "
               "(Private_Clean is file-backed pages only this process maps, such as its own binary's code: the kernel can "
               "drop them and read them again; Private_Dirty is memory only this process holds and the kernel cannot "
               "drop).\n\n"
            << "| watchdog | window s | context switches | voluntary, per thread | wakeups in " << seconds
            << " s | seen at s | longest stretch without a wakeup s | CPU s | RSS KiB | PSS KiB | USS KiB | private dirty KiB | "
               "WATCHDOG=1 received |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  std::string libraryTable;
  auto measure = [&](int wd) -> std::string {
    Work w(wd ? "idle-wd" : "idle");
    sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
    TapCarrier carrier("ipop");  // IPOP's controller holds the tap open: carrier
    std::vector<std::string> env;
    int sock = -1;
    if (wd) {
      // A NOTIFY_SOCKET of our own, so that sd_watchdog_enabled() is true in the daemon.
      sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      std::string path = (w.dir / "notify.sock").string();
      std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
      if (::bind(sock, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) throw std::runtime_error("bind notify");
      env = {"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=30000000", "WATCHDOG_PID=self"};  // WatchdogSec=30s
    }
    DaemonProcess daemon;
    daemon.start(g_binary, w.config("  ranges: auto\n"), w.dir / "daemon.log", env);
    // Settled: restarted, healthy, and the auto range remembered (written once the range is
    // stable: a one-time write, not idle cost).
    if (!waitUntil([&] {
          return w.restarts() == 1 && w.state().find("\"healthy\": true") != std::string::npos &&
                 fs::exists(w.dir / "lib" / "auto-ranges");
        }, 20s))
      throw std::runtime_error("daemon did not settle");
    // What settling leaves behind (state and remember files written) is over once no thread
    // has run for 500 ms; at most 10 s.
    {
      double quietSince = nowMs(), end = nowMs() + 10000;
      long long last = -1;
      while (nowMs() < end && nowMs() - quietSince < 500) {
        long long runs = 0;
        for (const auto& [tid, t] : threadCounts(daemon.pid())) runs += t.runs;
        if (runs != last) quietSince = nowMs();
        last = runs;
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      }
    }
    auto drainPings = [&] {
      int n = 0;
      char buf[4096];
      for (ssize_t r; sock >= 0 && (r = ::recv(sock, buf, sizeof buf, 0)) > 0;)
        if (std::string(buf, static_cast<std::size_t>(r)).find("WATCHDOG=1") != std::string::npos) ++n;
      return n;
    };
    drainPings();
    auto threads0 = threadCounts(daemon.pid());
    long long cs0 = daemon.contextSwitches();
    double cpu0 = daemon.cpuSeconds();
    // The measurement window: poll the threads' schedstat, note each step in which one ran.
    std::vector<double> wakeups;  // s since the window's start
    const double t0 = nowMs(), tEnd = t0 + seconds * 1000.0;
    auto prev = threads0;
    int pings = 0;
    while (nowMs() < tEnd) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      // Read as systemd would: the socket's queue holds 10 datagrams (net.unix.max_dgram_qlen),
      // and a full one blocks the daemon's sd_notify (seen: no wakeup after the 11th ping).
      pings += drainPings();
      auto now = threadCounts(daemon.pid());
      bool ran = false;
      for (const auto& [tid, t] : now) {
        auto it = prev.find(tid);
        if (it == prev.end() || t.runs != it->second.runs) ran = true;
      }
      if (ran) wakeups.push_back((nowMs() - t0) / 1000.0);
      prev = std::move(now);
    }
    const double window = (nowMs() - t0) / 1000.0;
    long long cs = daemon.contextSwitches() - cs0;
    double cpu = daemon.cpuSeconds() - cpu0;
    double longest = 0, last = 0;
    for (double t : wakeups) {
      longest = std::max(longest, t - last);
      last = t;
    }
    longest = std::max(longest, window - last);
    std::string perThread, seen;
    for (const auto& [tid, t] : prev) {
      auto it = threads0.find(tid);
      long long v = t.voluntary - (it == threads0.end() ? 0 : it->second.voluntary);
      perThread += (perThread.empty() ? "" : ", ") + t.name + " " + std::to_string(v);
    }
    for (std::size_t i = 0; i < wakeups.size(); ++i) {
      if (i == 12) {
        seen += " ... (" + std::to_string(wakeups.size() - i) + " more)";
        break;
      }
      seen += (i ? ", " : "") + fmt(wakeups[i], 2);
    }
    auto mem = memoryOf(daemon.pid());
    std::ostringstream o;
    o << "| " << (wd ? "on (WatchdogSec=30s: WATCHDOG_USEC=30000000)" : "off") << " | " << fmt(window, 1) << " | " << cs
      << " | " << perThread << " | " << wakeups.size() << " | " << (seen.empty() ? "-" : seen) << " | " << fmt(longest, 2)
      << " | " << fmt(cpu, 2) << " | " << mem.rss << " | " << mem.pss << " | " << mem.uss << " | " << mem.dirty << " | "
      << (wd ? std::to_string(pings + drainPings()) : std::string("-")) << " |\n";
    if (!wd) {
      o << "\x1e";  // the watchdog-off run also reports where its memory goes
      o << "\nWhere the daemon's memory is (the watchdog-off run, end of the window; /proc/PID/smaps summed per "
           "mapped file; private = Private_Clean + Private_Dirty, what only this process holds; KiB):\n\n"
        << "| mapping | RSS | PSS | private | private dirty |\n|---|---|---|---|---|\n";
      MemoryUse::Part rest{"", 0, 0, 0, 0}, allLibs{"all shared libraries", 0, 0, 0, 0};
      const std::size_t named = 8;
      for (std::size_t i = 0; i < mem.libraries.size(); ++i) {
        const auto& l = mem.libraries[i];
        allLibs.rss += l.rss;
        allLibs.pss += l.pss;
        allLibs.priv += l.priv;
        allLibs.dirty += l.dirty;
        if (i < named) {
          o << "| " << l.name << " | " << l.rss << " | " << l.pss << " | " << l.priv << " | " << l.dirty << " |\n";
        } else {
          rest.rss += l.rss;
          rest.pss += l.pss;
          rest.priv += l.priv;
          rest.dirty += l.dirty;
        }
      }
      if (mem.libraries.size() > named)
        o << "| the other " << mem.libraries.size() - named << " shared libraries | " << rest.rss << " | " << rest.pss
          << " | " << rest.priv << " | " << rest.dirty << " |\n";
      for (const auto* p : {&allLibs, &mem.binary, &mem.anon, &mem.other})
        o << "| **" << p->name << "** | " << p->rss << " | " << p->pss << " | " << p->priv << " | " << p->dirty << " |\n";
      o << "| **the process (smaps_rollup)** | " << mem.rss << " | " << mem.pss << " | " << mem.uss << " | " << mem.dirty
        << " |\n";
    }
    if (sock >= 0) ::close(sock);
    return o.str();
  };
  const auto texts = inFreshNetnsResults({[&] { return measure(0); }, [&] { return measure(1); }});
  for (int wd = 0; wd < 2; ++wd) {
    const std::string& text = texts[wd];
    if (text.empty()) {
      std::cout << "| " << (wd ? "on" : "off") << " | failed (see above) | | | | | | | | | | |\n";
      continue;
    }
    auto sep = text.find('\x1e');
    std::cout << text.substr(0, sep);
    if (sep != std::string::npos) libraryTable = text.substr(sep + 1);
  }
  std::cout << libraryTable;
}

// Plaintext leak window: a sender blasts UDP at a peer on the range from before the tap has
// its address; the peer (another namespace, over a veth) counts what arrives in the clear.
void benchLeak() {
  const int trials = envInt("IPOPSEC_BENCH_LEAK_TRIALS", 20);
  std::cout << "\n### Plaintext leak window: UDP sent to a range address from before the tap has its address\n\n"
            << "The 'tap' is one end of a veth pair, the peer (10.254.0.17/16) is in a namespace of its own and counts "
               "the plaintext UDP packets it receives. Per trial: daemon running, sender blasting, then the address "
               "10.254.0.16/16 is added; counted: packets that arrived after the address was added. "
            << trials << " trials per mode. `auto`, restarted: the daemon had seen the tap in this range before "
               "(daemon.remember_dir, kept across reboots) and is started again before IPOP, like a node that reboots; "
               "one uncounted trial first makes it remember. A trial fails when the daemon does not start, or its "
               "policies are not all in the kernel within 10 s (before the address for configured or remembered "
               "ranges, after it otherwise); a failed trial counts as +inf (\"failed\") in min / median / max.\n\n"
            << "| ranges | trials | failed | packets sent per trial (median) | plaintext packets received per trial: min / median / max "
               "| mean | trials with any |\n"
               "|---|---|---|---|---|---|---|\n";
  // mode 0: configured range; 1: auto, first time in this range; 2: auto, restarted into it.
  for (int mode = 0; mode < 3; ++mode) {
    inFreshNetns([&] {
      Work w(mode == 0 ? "leak-fixed" : mode == 1 ? "leak-auto" : "leak-auto-restarted");
      auto cfg = w.config(mode ? "  ranges: auto\n" : "  ranges: [10.254.0.0/16]\n");
      sh("ip link add ipop type veth peer name peer0");
      int ready[2], ctl[2], res[2];
      if (::pipe2(ready, O_CLOEXEC) || ::pipe2(ctl, O_CLOEXEC) || ::pipe2(res, O_CLOEXEC)) throw std::runtime_error("pipe");
      pid_t peer = ::fork();
      if (peer == 0) {
        // The peer: own namespace, counts UDP datagrams on port 9999 between "reset" and "report".
        if (::unshare(CLONE_NEWNET) != 0) ::_exit(1);
        pipeWrite(ready[1], "x", 1, true);
        char c;
        pipeRead(ctl[0], &c, 1, true);  // configured by the parent
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(9999);
        ::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        pipeWrite(ready[1], "x", 1, true);
        long count = 0;
        char buf[2048];
        for (;;) {
          pollfd p[2] = {{s, POLLIN, 0}, {ctl[0], POLLIN, 0}};
          ::poll(p, 2, -1);
          while (::recv(s, buf, sizeof buf, 0) > 0) ++count;
          if (p[1].revents) {
            if (::read(ctl[0], &c, 1) != 1) ::_exit(0);
            while (::recv(s, buf, sizeof buf, 0) > 0) ++count;
            if (c == 'r') {
              pipeWrite(res[1], &count, sizeof count, true);
            }
            count = 0;
          }
        }
      }
      char c;
      pipeRead(ready[0], &c, 1);
      sh("ip link set peer0 netns " + std::to_string(peer));
      sh("nsenter -t " + std::to_string(peer) +
         " -n sh -c 'ip link set lo up; ip addr add 10.254.0.17/16 dev peer0; ip link set peer0 up'");
      sh("ip link set ipop up");
      pipeWrite(ctl[1], "c", 1);
      pipeRead(ready[0], &c, 1);
      Rounds recv;
      Stats sent;
      int withAny = 0;
      AddressSetter addr;
      const Cidr local = *Cidr::parse("10.254.0.16/16");
      for (int t = mode == 2 ? -1 : 0; t < trials; ++t) {
        flushOwned();
        DaemonProcess daemon;
        ::unlink((w.run / "state.json").c_str());
        if (mode == 1) ::unlink((w.dir / "lib" / "auto-ranges").c_str());  // never seen this range
        daemon.start(g_binary, cfg, w.dir / "daemon.log");
        bool failed = !waitUntil([&] { return fs::exists(w.run / "state.json"); }, 10s);
        // R->R and ANY->R, out and in.
        if (!failed && (mode == 0 || (mode == 2 && t >= 0)) && !waitUntil([&] { return ownedPolicies().size() == 4; }, 10s))
          failed = true;
        if (failed) {
          std::cerr << "leak: trial " << t << " failed: the daemon did not start or its policies did not come (log: "
                    << readFile(w.dir / "daemon.log").substr(0, 2000) << ")\n";
          daemon.stop(SIGTERM);
          if (t >= 0) recv.add(std::nullopt);
          continue;
        }
        std::atomic<bool> stop{false};
        std::atomic<long> nsent{0};
        std::thread sender([&] {
          int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
          sockaddr_in to{};
          to.sin_family = AF_INET;
          to.sin_port = htons(9999);
          ::inet_pton(AF_INET, "10.254.0.17", &to.sin_addr);
          char payload[64] = "plaintext";
          while (!stop) {
            if (::sendto(s, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) > 0) ++nsent;
          }
          ::close(s);
        });
        std::this_thread::sleep_for(50ms);  // blasting, still no route: nothing can leave
        pipeWrite(ctl[1], "z", 1);  // peer: start counting from zero
        long before = nsent;
        if (addr.add("ipop", local)) throw std::runtime_error("add address");
        const bool protectedInTime = waitUntil([&] { return ownedPolicies().size() == 4; }, 10s);
        std::this_thread::sleep_for(200ms);  // anything in flight arrives
        stop = true;
        sender.join();
        pipeWrite(ctl[1], "r", 1);
        long count = 0;
        pipeRead(res[0], &count, sizeof count);
        if (mode == 2 && t < 0) waitUntil([&] { return fs::exists(w.dir / "lib" / "auto-ranges"); }, 10s);
        daemon.stop(SIGTERM);
        addr.del("ipop", local);
        if (t < 0) continue;  // the warm-up of mode 2: not counted
        sent.v.push_back(static_cast<double>(nsent - before));
        if (count > 0) ++withAny;
        if (!protectedInTime) {
          std::cerr << "leak: trial " << t << " failed: the policies were not in the kernel 10 s after the address\n";
          recv.add(std::nullopt);
          continue;
        }
        recv.add(static_cast<double>(count));
      }
      double mean = 0;
      for (double v : recv.ok) mean += v;
      mean /= static_cast<double>(std::max<std::size_t>(recv.ok.size(), 1));
      std::cout << "| " << (mode == 0 ? "configured [10.254.0.0/16]" : mode == 1 ? "`auto`, first time in the range" : "`auto`, restarted into its previous range")
                << " | " << recv.count() << " | " << recv.failed << " | " << (sent.v.empty() ? "-" : fmt(sent.pct(50), 0))
                << " | " << recv.range(0) << " | " << (recv.ok.empty() ? "-" : fmt(mean, 1)) << " | " << withAny << " |\n";
      ::close(ctl[1]);
      ::kill(peer, SIGKILL);
      ::waitpid(peer, nullptr, 0);
    });
  }
}

// Scale: many ranges. (a) The daemon with N configured ranges (the config accepts at most 256
// ranges and 1024 exclusions): time from exec to every policy in the kernel, and memory.
// (b) Beyond the config's cap, the same code paths in-process: desired state, diff, render,
// kernel install and list for N ranges.
void benchScale() {
  const int maxN = envInt("IPOPSEC_BENCH_SCALE_MAX", 10000);
  const int rounds = std::max(1, envInt("IPOPSEC_BENCH_SCALE_ROUNDS", 5));
  std::cout << "\n### Scale: many ranges and exclusions\n\n" << rounds << " rounds per step, each in a fresh network namespace; "
               "min / median / max over the rounds, a failed round (the policies not all in the kernel within 60 s, or "
               "the step's checks failing) counting as +inf (\"failed\").\n\n(a) The daemon, ranges and exclusions from the config "
               "(non-overlapping /24s in 10.0.0.0/8; exclusions are /32s spread over the ranges; the config accepts at most 256 "
               "ranges and 1024 exclusions):\n\n"
            << "| ranges | exclusions | policies | rounds | failed | exec -> all policies in the kernel ms: min / median / max "
               "| daemon RSS KiB: min / median / max | daemon CPU s: min / median / max |\n"
               "|---|---|---|---|---|---|---|---|\n";
  struct Case {
    int ranges, excludes;
  };
  for (Case c : {Case{1, 0}, Case{100, 0}, Case{256, 0}, Case{1, 100}, Case{256, 1024}}) {
    Rounds exec, rss, cpu;
    for (int r = 0; r < rounds; ++r) {
      std::string text = inFreshNetnsResult([&] {
        Work w("scale");
        std::string protect = "  ranges: [";
        for (int i = 0; i < c.ranges; ++i)
          protect += (i ? ", " : "") + ("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24");
        protect += "]\n";
        if (c.excludes) {
          protect += "  exclude: [";
          for (int i = 0; i < c.excludes; ++i) {
            int rg = i % c.ranges;
            protect += (i ? ", " : "") + ("10." + std::to_string(rg / 256) + "." + std::to_string(rg % 256) + "." +
                                          std::to_string(1 + i / c.ranges));
          }
          protect += "]\n";
        }
        // Per range: out/in R->R and ANY->R; per exclusion: in X->R, out R->X, out ANY->X.
        std::size_t want = static_cast<std::size_t>(4 * c.ranges + 3 * c.excludes);
        sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.0.0.16/24 dev ipop");
        TapCarrier carrier("ipop");  // IPOP's controller holds the tap open: carrier
        DaemonProcess daemon;
        double t0 = nowMs();
        daemon.start(g_binary, w.config(protect), w.dir / "daemon.log");
        bool ok = waitUntil([&] { return ownedPolicies().size() == want; }, 60s, 200us);
        double ms = nowMs() - t0;
        waitUntil([&] { return w.state().find("\"policies_exact\": true") != std::string::npos; }, 30s);
        std::ostringstream o;
        o << (ok ? ms : -1) << " " << daemon.statusField("VmRSS") << " " << daemon.cpuSeconds();
        return o.str();
      });
      std::istringstream in(text);
      double ms = -1, kib = -1, s = -1;
      if (!(in >> ms >> kib >> s) || ms < 0) {
        exec.add(std::nullopt);
        rss.add(std::nullopt);
        cpu.add(std::nullopt);
        continue;
      }
      exec.add(ms);
      rss.add(kib);
      cpu.add(s);
    }
    std::cout << "| " << c.ranges << " | " << c.excludes << " | " << 4 * c.ranges + 3 * c.excludes << " | " << exec.count()
              << " | " << exec.failed << " | " << exec.range(1) << " | " << rss.range(0) << " | " << cpu.range(2) << " |\n";
  }

  std::cout << "\n(b) In-process, beyond the config's cap (the daemon's code paths: desired state, diff, render; the "
               "XFRM adapter's install and list); each cell min / median / max over the rounds:\n\n"
            << "| ranges | policies | rounds | failed | computeDesired ms | diff (vs empty) ms | diff (vs itself) ms | kernel install ms | "
               "kernel list ms |\n|---|---|---|---|---|---|---|---|---|\n";
  for (int n : {1, 100, 1000, 10000}) {
    if (n > maxN) break;
    Rounds tDesired, tDiff, tSame, tInstall, tList;
    std::size_t policies = 0;
    for (int r = 0; r < rounds; ++r) {
      std::string text = inFreshNetnsResult([&] {
        Config cfg;
        cfg.protect.autoRanges = false;
        for (int i = 0; i < n; ++i)
          cfg.protect.ranges.push_back(
              *Cidr::parse("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24"));
        NetSnapshot net;
        LinkState tap;
        tap.index = 2;
        tap.name = "ipop";
        tap.up = tap.running = true;
        tap.addresses = {*Cidr::parse("10.0.0.16/24")};
        net.links[2] = tap;
        CertFiles certs;
        double t0 = nowMs();
        Desired d = computeDesired(cfg, net, certs, {});
        double desired = nowMs() - t0;
        t0 = nowMs();
        auto diff = diffPolicies({}, d.policies);
        double diffMs = nowMs() - t0;
        t0 = nowMs();
        auto same = diffPolicies(d.policies, d.policies);
        double sameMs = nowMs() - t0;
        XfrmPolicyTable table(250000, 1000);
        t0 = nowMs();
        for (const auto& p : diff.add)
          if (auto ec = table.install(p)) throw std::runtime_error("install: " + ec.message());
        double install = nowMs() - t0;
        std::vector<Policy> listed;
        t0 = nowMs();
        if (auto ec = table.list(listed)) throw std::runtime_error("list: " + ec.message());
        double list = nowMs() - t0;
        if (listed.size() != d.policies.size() || !same.empty()) throw std::runtime_error("scale: mismatch");
        std::ostringstream o;
        o << d.policies.size() << " " << desired << " " << diffMs << " " << sameMs << " " << install << " " << list;
        return o.str();
      });
      std::istringstream in(text);
      std::size_t count = 0;
      double v[5];
      if (!(in >> count >> v[0] >> v[1] >> v[2] >> v[3] >> v[4])) {
        for (auto* x : {&tDesired, &tDiff, &tSame, &tInstall, &tList}) x->add(std::nullopt);
        continue;
      }
      policies = count;
      tDesired.add(v[0]);
      tDiff.add(v[1]);
      tSame.add(v[2]);
      tInstall.add(v[3]);
      tList.add(v[4]);
    }
    std::cout << "| " << n << " | " << (policies ? std::to_string(policies) : "-") << " | " << tDesired.count() << " | "
              << tDesired.failed << " | " << tDesired.range(2) << " | " << tDiff.range(2) << " | " << tSame.range(2)
              << " | " << tInstall.range(1) << " | " << tList.range(1) << " |\n";
  }
}


// --- repair: the kernel's XFRM policy table over raw netlink ------------------------------

// A policy's identity: direction, selector, priority (its index changes when it is re-added).
std::string policyKey(const xfrm_userpolicy_info& p) {
  std::ostringstream k;
  k << int(p.dir) << ' ' << p.sel.family << ' ' << int(p.sel.prefixlen_s) << ' ' << int(p.sel.prefixlen_d) << ' '
    << int(p.sel.proto) << ' ' << p.sel.sport << ' ' << p.sel.dport << ' ' << p.sel.ifindex << ' ' << p.priority;
  for (auto b : std::string(reinterpret_cast<const char*>(&p.sel.saddr), sizeof p.sel.saddr)) k << ' ' << int(static_cast<unsigned char>(b));
  for (auto b : std::string(reinterpret_cast<const char*>(&p.sel.daddr), sizeof p.sel.daddr)) k << ' ' << int(static_cast<unsigned char>(b));
  return k.str();
}

// Reads the replies to `expect` requests (acks, or a dump until NLMSG_DONE) from a
// non-blocking netlink socket; calls `onPolicy` for each dumped policy. Throws on an error.
void readReplies(int fd, int expect, const std::function<void(const xfrm_userpolicy_info&)>& onPolicy = {}) {
  std::vector<char> buf(1 << 16);
  double end = nowMs() + 5000;
  while (expect > 0) {
    if (nowMs() > end) throw std::runtime_error("xfrm: no reply from the kernel within 5 s");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) continue;
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        --expect;
      } else if (h->nlmsg_type == NLMSG_ERROR) {
        int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        if (err) throw std::runtime_error(std::string("xfrm: ") + std::strerror(err));
        --expect;
      } else if (h->nlmsg_type == XFRM_MSG_NEWPOLICY && onPolicy) {
        onPolicy(*reinterpret_cast<xfrm_userpolicy_info*>(NLMSG_DATA(h)));
      }
    }
  }
}

std::vector<xfrm_userpolicy_info> dumpPolicies(int fd) {
  nlmsghdr h{};
  h.nlmsg_len = NLMSG_LENGTH(0);
  h.nlmsg_type = XFRM_MSG_GETPOLICY;
  h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  if (::send(fd, &h, h.nlmsg_len, 0) < 0) throw std::runtime_error("xfrm: dump request");
  std::vector<xfrm_userpolicy_info> out;
  readReplies(fd, 1, [&](const xfrm_userpolicy_info& p) { out.push_back(p); });
  return out;
}

// Deletes `policies` (by selector and direction) in one sendmsg, as `ip xfrm policy deleteall`
// does after its dump. Returns when the kernel has done it (sendmsg returns after the kernel
// processed every request); the acks are read by the caller with readReplies.
void sendDeletes(int fd, const std::vector<xfrm_userpolicy_info>& policies) {
  std::vector<char> batch;
  for (const auto& p : policies) {
    struct {
      nlmsghdr h;
      xfrm_userpolicy_id id;
    } req{};
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(xfrm_userpolicy_id));
    req.h.nlmsg_type = XFRM_MSG_DELPOLICY;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.id.sel = p.sel;
    req.id.dir = p.dir;
    req.id.index = p.index;  // as iproute2 does: by index when it has one
    const char* b = reinterpret_cast<const char*>(&req);
    batch.insert(batch.end(), b, b + NLMSG_ALIGN(req.h.nlmsg_len));
  }
  if (::send(fd, batch.data(), batch.size(), 0) != static_cast<ssize_t>(batch.size())) throw std::runtime_error("xfrm: delete");
}

void sendFlush(int fd) {
  nlmsghdr h{};
  h.nlmsg_len = NLMSG_LENGTH(0);
  h.nlmsg_type = XFRM_MSG_FLUSHPOLICY;  // `ip xfrm policy flush`: every policy of the main type
  h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  if (::send(fd, &h, h.nlmsg_len, 0) < 0) throw std::runtime_error("xfrm: flush");
}

// Waits until the daemon's threads have not run for `quietMs` (at most `maxMs`).
void awaitQuiet(pid_t pid, double quietMs, double maxMs) {
  double since = nowMs(), end = nowMs() + maxMs;
  long long last = -1;
  while (nowMs() < end && nowMs() - since < quietMs) {
    long long runs = 0;
    for (const auto& [tid, t] : threadCounts(pid)) runs += t.runs;
    if (runs != last) since = nowMs();
    last = runs;
    ::usleep(2000);
  }
}

}  // namespace

// Repair: another process removes the daemon's policies; measured until the kernel holds the
// daemon's whole policy set again, as the XFRM policy events (XFRMNLGRP_POLICY) show it: one
// out policy deleted, `ip xfrm policy flush` (XFRM_MSG_FLUSHPOLICY), `ip xfrm policy deleteall`
// (a dump, then a DELPOLICY for each policy).
void benchRepair() {
  const int trials = envInt("IPOPSEC_BENCH_REPAIRS", 200);
  const double timeoutMs = 5000;
  std::cout << "\n### Repair: the daemon's policies removed by another process -> all back in the kernel\n\n"
            << "The daemon protects 10.254.0.0/16 (`ranges: auto`, the tap's address in it); another process removes "
               "policies over its own netlink socket, " << trials << " trials per operation: *delete*: the out policy "
               "10.254.0.0/16 -> 10.254.0.0/16 (XFRM_MSG_DELPOLICY); *flush*: what `ip xfrm policy flush` sends "
               "(XFRM_MSG_FLUSHPOLICY: every policy); *deleteall*: what `ip xfrm policy deleteall` does (a dump, then one "
               "XFRM_MSG_DELPOLICY per policy, all in one sendmsg). Timed (CLOCK_MONOTONIC) from the return of the "
               "sendmsg that removes (the kernel has removed them then) to the receipt of the XFRM policy event "
               "(XFRMNLGRP_POLICY) after which the kernel again holds every policy the daemon held before the trial "
               "(same direction, selector, priority), following the events in order (DELPOLICY and FLUSHPOLICY remove, "
               "NEWPOLICY and UPDPOLICY add). Each trial starts when the daemon has not run for 20 ms. A trial fails "
               "when the set is not whole within " << fmt(timeoutMs, 0) << " ms; it counts as +inf (\"failed\") in the "
               "median, p99 and max.\n\n"
            << "| operation | policies removed | trials | failed | min / median / max ms | p99 ms |\n|---|---|---|---|---|---|\n";
  inFreshNetns([&] {
    Work w("repair", true);
    DaemonProcess daemon;
    sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.254.0.16/16 dev ipop");
    TapCarrier carrier("ipop");  // IPOP's controller holds the tap open: carrier
    daemon.start(g_binary, w.config("  ranges: auto\n"), w.dir / "daemon.log");
    Cidr range = *Cidr::parse("10.254.0.0/16");
    if (!waitUntil([&] { return rangesOf(ownedPolicies()) == std::vector<Cidr>{range}; }, 10s, 2ms))
      throw std::runtime_error("the daemon never protected the range");
    int ctl = openNetlink(NETLINK_XFRM, 0);
    int events = openNetlink(NETLINK_XFRM, 1U << (XFRMNLGRP_POLICY - 1));
    awaitQuiet(daemon.pid(), 200, 10000);
    const auto full = dumpPolicies(ctl);
    std::set<std::string> want;
    for (const auto& p : full) want.insert(policyKey(p));
    auto isOut = [](const xfrm_userpolicy_info& p) {
      return p.dir == XFRM_POLICY_OUT && p.sel.prefixlen_d == 16 && p.sel.prefixlen_s == 16 && p.priority == 250000;
    };
    if (std::none_of(full.begin(), full.end(), isOut))
      throw std::runtime_error("the daemon's out policy 10.254.0.0/16 -> 10.254.0.0/16 is not in the kernel");
    enum class Op { del, flush, deleteall };
    std::vector<char> buf(1 << 16);
    for (Op op : {Op::del, Op::flush, Op::deleteall}) {
      Rounds r;
      std::size_t removed = 0;
      int notRun = 0;
      for (int i = 0; i < trials; ++i) {
        // The previous trial's set whole and the daemon idle before the next one.
        if (!waitUntil([&] {
              std::set<std::string> have;
              for (const auto& p : dumpPolicies(ctl)) have.insert(policyKey(p));
              return have == want;
            }, 60s, 10ms)) {
          notRun = trials - i;
          for (; i < trials; ++i) r.add(std::nullopt);
          break;
        }
        awaitQuiet(daemon.pid(), 20, 2000);
        while (::recv(events, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
        }
        int acks = 1;
        auto now = dumpPolicies(ctl);  // the policies as they are (a re-added one has a new index)
        if (op == Op::del) {
          sendDeletes(ctl, {*std::find_if(now.begin(), now.end(), isOut)});
          removed = 1;
        } else if (op == Op::flush) {
          sendFlush(ctl);
          removed = now.size();
        } else {
          sendDeletes(ctl, now);
          acks = static_cast<int>(now.size());
          removed = now.size();
        }
        const double tGone = nowMs();
        readReplies(ctl, acks);
        // Follow the events from the first one of this removal: the set is whole then, and
        // each event removes or adds a policy of it.
        std::set<std::string> have;
        bool started = false;
        double tBack = -1;
        while (tBack < 0 && nowMs() < tGone + timeoutMs) {
          pollfd pfd{events, POLLIN, 0};
          if (::poll(&pfd, 1, 50) <= 0) continue;
          ssize_t n;
          while (tBack < 0 && (n = ::recv(events, buf.data(), buf.size(), MSG_DONTWAIT)) > 0) {
            const double t = nowMs();
            for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
              const auto type = h->nlmsg_type;
              if (type == XFRM_MSG_FLUSHPOLICY || type == XFRM_MSG_DELPOLICY) {
                if (!started) have = want;
                started = true;
                if (type == XFRM_MSG_FLUSHPOLICY) {
                  have.clear();
                  continue;
                }
                auto* id = reinterpret_cast<xfrm_userpolicy_id*>(NLMSG_DATA(h));
                int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof(xfrm_userpolicy_id)));
                auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(id) + NLMSG_ALIGN(sizeof(xfrm_userpolicy_id)));
                for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
                  if (a->rta_type == XFRMA_POLICY && RTA_PAYLOAD(a) >= sizeof(xfrm_userpolicy_info))
                    have.erase(policyKey(*reinterpret_cast<xfrm_userpolicy_info*>(RTA_DATA(a))));
              } else if (started && (type == XFRM_MSG_NEWPOLICY || type == XFRM_MSG_UPDPOLICY)) {
                have.insert(policyKey(*reinterpret_cast<xfrm_userpolicy_info*>(NLMSG_DATA(h))));
                if (have == want) {
                  tBack = t;
                  break;
                }
              }
            }
          }
        }
        r.add(tBack < 0 ? std::nullopt : std::optional<double>(tBack - tGone));
      }
      std::cout << "| " << (op == Op::del ? "delete (the out policy)" : op == Op::flush ? "flush (`ip xfrm policy flush`)" : "deleteall (`ip xfrm policy deleteall`)")
                << " | " << removed << " | " << r.count() << " | " << r.failed << " | " << r.range(3) << " | "
                << Rounds::show(r.pct(99), 3) << " |\n";
      if (notRun)
        std::cout << "\n**" << notRun << " trials of that row not run (counted as failed): the daemon's policy set was "
                     "not whole 60 s after a failed trial.**\n\n";
    }
    ::close(events);
    ::close(ctl);
  });
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: ipopsec_bench IPOP_IPSECD_BINARY [latency|storm|idle|leak|scale|repair|all]...\n";
    return 2;
  }
  if (!isRoot()) {
    std::cerr << "ipopsec_bench: needs root (network namespaces, XFRM)\n";
    return 1;
  }
  g_binary = argv[1];
  std::vector<std::string> which(argv + 2, argv + argc);
  if (which.empty() || std::find(which.begin(), which.end(), "all") != which.end())
    which = {"latency", "storm", "idle", "leak", "scale", "repair"};
  std::map<std::string, std::function<void()>> benches{
      {"latency", benchLatency}, {"storm", benchStorm}, {"idle", benchIdle}, {"leak", benchLeak}, {"scale", benchScale}, {"repair", benchRepair}};
  for (const auto& w : which) {
    auto it = benches.find(w);
    if (it == benches.end()) {
      std::cerr << "ipopsec_bench: unknown benchmark '" << w << "'\n";
      return 2;
    }
    it->second();
    std::cout.flush();
  }
  return 0;
}
