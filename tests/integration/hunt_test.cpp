// A randomized, model-based hunt for fail-closed holes: a seeded sequence of steps against
// the real daemon in a private network namespace (addresses added, moved and deleted on the
// tap; the tap down/up, renamed, deleted and re-created; another interface getting an
// address inside a range; foreign policies, also one that takes over a daemon policy's
// selector; `ip xfrm policy flush` and `deleteall`; SIGHUP with valid and invalid configs,
// explicit or auto ranges and exclusions; SIGKILL and restart; certificate files replaced).
// After every step the model predicts the daemon's exact policy set (protection.hpp writes
// out every policy of a range and of its exclusions) and the kernel must hold exactly that,
// within the bound:
//   ranges: the running config's explicit ranges, or (auto) the networks of the tap's
//     addresses, or, while the tap has none, the ranges in force (held, fail closed);
//   a range that covers another interface's address is refused unless it is in force
//     (then kept); when one is refused, every range in force stays;
//   in force: the ranges whose out policy the kernel holds, and those the daemon has
//     protected and wanted ever since (a flush does not end that; a restart does: the new
//     daemon takes what the kernel holds);
//   a policy whose selector a foreign policy took over cannot go in: then nothing is removed
//     (make before break) and the rest goes in (a takeover is checked within its step: the
//     daemon's install refused, the foreign policy untouched; then the operator deletes it);
//   a move (add, then delete) is checked after its first half too;
// so an added range is protected, a dropped one is gone, exclusions are as configured. Also:
// no policy of the daemon's priorities is duplicated; every foreign policy the test added is
// untouched. The bound is far under the daemon's 5-minute resync (the reaction to events); the
// largest time seen is printed. A SIGHUP's step waits for that reload's own outcome in the
// log ("reloaded", "reload refused"), counted, not any earlier one.
// CI: IPOPSEC_HUNT_SEED=1, 120 steps. Long runs: IPOPSEC_HUNT_SEED=random IPOPSEC_HUNT_STEPS=2000;
// a failure prints the seed and the step list, so it replays.

#include <cstdlib>
#include <random>
#include <map>
#include <set>

#include "integration/daemon_fixture.hpp"
#include "integration/protection.hpp"
#include "integration/tap_carrier.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;

namespace {

const char* kRanges[] = {"10.50.0.0/16", "10.60.0.0/16", "172.31.0.0/16"};
const char* kAddrs[] = {"10.50.0.16/16", "10.60.0.16/16", "172.31.0.16/16"};
const char* kInner[] = {"10.50.200.1/24", "10.60.200.1/24", "172.31.200.1/24"};
const char* kExclude[] = {"10.50.0.1/32", "10.60.0.1/32", "172.31.255.254/32"};  // one host of each range

// A policy's id in the kernel (direction + selector): its str() up to the action.
std::string idOf(const std::string& policy) {
  auto at = policy.find(" esp/");
  if (at == std::string::npos) at = policy.find(" bypass");
  return policy.substr(0, at);
}

struct Foreign {
  std::string dir, src, dst;
  bool operator<(const Foreign& o) const { return std::tie(dir, src, dst) < std::tie(o.dir, o.src, o.dst); }
};

class HuntTest : public DaemonFixture {
 protected:
  std::mt19937 rng_;
  std::vector<std::string> trail_;
  // The model: the running config, the daemon's policies in the kernel (id -> Policy::str()),
  // the ranges it committed to (protected and wanted ever since, this run).
  std::optional<std::set<Cidr>> listed_;  // explicit ranges of the running config; nullopt = auto
  std::vector<Cidr> exclude_;             // protect.exclude of the running config
  std::map<std::string, std::string> kernel_;
  std::set<Cidr> committed_;
  std::string predicted_;  // what the model said at the last check, for a failure's message
  int step_ = 0;
  std::set<Foreign> foreign_;
  long worstMs_ = 0;
  TapCarrier carrier_;  // IPOP's controller holding the tap open: carrier

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool exists(const std::string& dev) { return shStatus("ip link show dev " + dev + " >/dev/null 2>&1") == 0; }
  void run(const std::string& what, const std::string& cmd) {
    trail_.push_back(what);
    shStatus(cmd);  // some steps may not apply (address already there): the model reads the kernel
  }
  // The IPv4 addresses of every interface: name -> address/prefix.
  std::vector<std::pair<std::string, Cidr>> addresses() {
    std::vector<std::pair<std::string, Cidr>> out;
    std::string o;
    if (shStatus("ip -o -4 addr show | awk '{print $2, $4}'", &o) != 0) return out;
    std::istringstream in(o);
    std::string dev, addr;
    while (in >> dev >> addr)
      if (auto c = Cidr::parse(addr)) out.emplace_back(dev, *c);
    return out;
  }
  std::vector<Policy> allPolicies() {
    XfrmPolicyTable t(250000, 1000);
    std::vector<Policy> v;
    EXPECT_FALSE(t.listAll(v));
    return v;
  }
  // The daemon's policies the kernel holds now, as the model keeps them.
  std::set<std::string> ownedNow() {
    std::set<std::string> s;
    for (const auto& p : owned()) s.insert(p.str());
    return s;
  }
  // The model's ranges whose out (and, with `in`, also in) protect policy R->R the daemon holds.
  std::set<Cidr> heldRanges(const std::map<std::string, std::string>& k, bool in) {
    std::set<Cidr> out;
    for (const char* c : kRanges) {
      const std::string r = Cidr::parse(c)->str();
      auto protect = [&](const std::string& dir) {
        auto it = k.find(dir + " " + r + " -> " + r);
        return it != k.end() && it->second.find(" esp/") != std::string::npos;
      };
      if (protect("out") && (!in || protect("in"))) out.insert(*Cidr::parse(c));
    }
    return out;
  }
  void writeHuntConfig(const std::optional<std::set<Cidr>>& ranges, const std::vector<Cidr>& exclude) {
    std::string protect = "  ranges: auto\n";
    if (ranges) {
      protect = "  ranges: [";
      bool first = true;
      for (const auto& r : *ranges) protect += (first ? "" : ", ") + r.str(), first = false;
      protect += "]\n";
    }
    if (!exclude.empty()) {
      protect += "  exclude: [";
      for (std::size_t i = 0; i < exclude.size(); ++i) protect += (i ? ", " : "") + exclude[i].str();
      protect += "]\n";
    }
    writeConfig(protect);
  }

  void step() {
    int tap = exists("ipop"), old = exists("ipop-old");
    switch (pick(12)) {
      case 0: {
        int i = pick(3);
        run(std::string("add ") + kAddrs[i], std::string("ip addr add ") + kAddrs[i] + " dev ipop");
        break;
      }
      case 1: {
        int i = pick(3);
        run(std::string("del ") + kAddrs[i], std::string("ip addr del ") + kAddrs[i] + " dev ipop");
        break;
      }
      case 2: {
        int a = pick(3), b = pick(3);
        // In two halves: the daemon may or may not see the tap with both addresses (two
        // commands, milliseconds apart), and when it does, a range it protected in between
        // is in force (kept if what replaces it is refused). So the model's prediction for
        // the first half must hold before the second half runs.
        run(std::string("move ") + kAddrs[a] + " -> " + kAddrs[b], std::string("ip addr add ") + kAddrs[b] + " dev ipop");
        check(step_, " (after the move's add)");
        if (HasFatalFailure()) return;
        shStatus(std::string("ip addr del ") + kAddrs[a] + " dev ipop");
        break;
      }
      case 3:
        if (pick(2)) run("tap down", "ip link set ipop down");
        else run("tap up", "ip link set ipop up");
        break;
      case 4:
        if (tap && !old) run("rename ipop -> ipop-old", "ip link set ipop down; ip link set ipop name ipop-old; ip link set ipop-old up");
        else if (old && !tap) run("rename ipop-old -> ipop", "ip link set ipop-old down; ip link set ipop-old name ipop; ip link set ipop up");
        else run("delete ipop-old", "ip link del ipop-old");
        break;
      case 5:
        if (tap) run("delete tap", "ip link del ipop");
        else {
          int i = pick(3);
          run(std::string("create tap with ") + kAddrs[i],
              std::string("ip tuntap add dev ipop mode tap; ip link set ipop up; ip addr add ") + kAddrs[i] + " dev ipop");
          if (exists("ipop")) carrier_ = TapCarrier("ipop");
        }
        break;
      case 6: {
        int i = pick(3);
        if (!exists("docker0")) run("create docker0", "ip link add docker0 type veth peer name d0p; ip link set docker0 up");
        if (pick(2)) run(std::string("docker0 gets ") + kInner[i], std::string("ip addr add ") + kInner[i] + " dev docker0");
        else run(std::string("docker0 loses ") + kInner[i], std::string("ip addr del ") + kInner[i] + " dev docker0");
        break;
      }
      case 7: {
        int i = pick(3);
        std::string r = kRanges[i];
        if (pick(2)) {
          // A foreign policy of its own (a /24 inside the range): must stay untouched.
          std::string sub = std::string(kInner[i]).substr(0, std::string(kInner[i]).find('/') - 1) + "0/24";
          run("foreign bypass " + sub, "ip xfrm policy add src " + sub + " dst " + sub + " dir out priority 77");
          foreign_.insert({"out", sub, sub});
        } else {
          // A foreign policy that takes over the daemon's selector (update replaces in place).
          // If the daemon wants that selector, its install is refused (File exists) and it
          // removes nothing until it is in (make before break); the foreign policy stays
          // untouched. Then the operator deletes it, as the daemon's error says, and the
          // daemon's own goes in by the event. (Within the step: a selector held by someone
          // else across steps would leave the model guessing which of the daemon's
          // intermediate reconciles committed a range.)
          const std::string refusal = "kernel refused policy out " + r + " -> " + r;
          const std::size_t before = count(readFile(dir_ / "daemon.log"), refusal);
          const bool wanted = kernel_.count("out " + r + " -> " + r) > 0;
          run("foreign takeover out " + r,
              "ip xfrm policy update src " + r + " dst " + r + " dir out priority 77 tmpl proto esp mode transport");
          if (wanted) {
            ASSERT_TRUE(waitFor([&] { return count(readFile(dir_ / "daemon.log"), refusal) > before; }, 3s))
                << "the daemon did not try to put its policy back";
            ASSERT_NE(sh("ip xfrm policy list dir out src " + r + " dst " + r).find("priority 77"), std::string::npos)
                << "the foreign policy was touched";
          }
          shStatus("ip xfrm policy delete dir out src " + r + " dst " + r);
          kernel_.erase("out " + r + " -> " + r);  // the daemon's was replaced, then deleted
        }
        break;
      }
      case 8:
        if (pick(2)) {
          run("ip xfrm policy flush", "ip xfrm policy flush");
          foreign_.clear();
          kernel_.clear();
        } else {
          run("deleteall priority 250000", "ip xfrm policy deleteall priority 250000");
          std::erase_if(kernel_, [](const auto& kv) { return kv.second.find(" prio 250000") != std::string::npos; });
        }
        break;
      case 9: {
        int k = pick(4);
        // Counted: this SIGHUP's own outcome, not an earlier reload's line.
        const std::string outcome = k == 3 ? "reload refused" : "reloaded ";
        const std::size_t before = count(readFile(dir_ / "daemon.log"), outcome);
        if (k == 3) {
          trail_.push_back("SIGHUP invalid config");
          std::ofstream(dir_ / "ipop-ipsecd.yaml") << "protect:\n  ranges: [not a range]\n";
        } else {
          std::optional<std::set<Cidr>> next;
          if (k > 0) next = std::set<Cidr>{*Cidr::parse(kRanges[pick(3)])};
          if (k == 2) next->insert(*Cidr::parse(kRanges[pick(3)]));
          // Exclusions: one host of some of the ranges (explicit ranges: only of those listed).
          std::vector<Cidr> exclude;
          for (int i = 0; i < 3; ++i)
            if ((!next || next->count(*Cidr::parse(kRanges[i]))) && pick(2)) exclude.push_back(*Cidr::parse(kExclude[i]));
          writeHuntConfig(next, exclude);
          listed_ = next;
          exclude_ = exclude;
          std::string what = next ? "SIGHUP explicit ranges" : "SIGHUP auto";
          if (next)
            for (const auto& r : *next) what += " " + r.str();
          for (const auto& x : exclude) what += " exclude " + x.str();
          trail_.push_back(what);
        }
        ::kill(daemon_.pid(), SIGHUP);
        // The reload is applied (or refused) when the log says so; the model then uses the new config.
        ASSERT_TRUE(waitFor([&] { return count(readFile(dir_ / "daemon.log"), outcome) > before; }, 5s))
            << "no '" << outcome << "' line for this SIGHUP";
        break;
      }
      case 10: {
        trail_.push_back("SIGKILL + restart");
        stopDaemon(SIGKILL);
        writeHuntConfig(listed_, exclude_);  // a killed daemon restarts on the last valid config
        committed_.clear();                 // the new daemon takes in force what the kernel holds
        // The remembered auto ranges (held from the start while nothing is in force) are
        // fail_closed_daemon_test's subject: here the kernel alone says what is in force.
        fs::remove(dir_ / "lib" / "auto-ranges");
        {
          // Up to its first reconcile (its read of the kernel) before the next step, so each
          // step meets a running daemon that knows what is in force (a SIGHUP during the start
          // is held until the handlers exist: fault_sigkill_test).
          auto reconciled = [&] { return count(readFile(dir_ / "daemon.log"), "reconciled in"); };
          const std::size_t before = reconciled();
          startDaemon();
          ASSERT_TRUE(waitFor([&] { return reconciled() > before; })) << "the restarted daemon never reconciled";
        }
        break;
      }
      case 11:
        run("certificate replaced", "cd " + (dir_ / "certs").string() + " && cp host-cert.pem .n && mv .n host-cert.pem");
        break;
    }
  }

  // The model's prediction after a step: the daemon's exact policy set (see the top).
  std::map<std::string, std::string> predict() {
    std::vector<Cidr> tapNets, others;
    for (const auto& [dev, a] : addresses()) (dev == "ipop" ? tapNets : others).push_back(dev == "ipop" ? a.network() : a);
    std::set<Cidr> inForce = heldRanges(kernel_, false);
    inForce.insert(committed_.begin(), committed_.end());
    std::set<Cidr> candidates;
    if (listed_) candidates = *listed_;
    else if (!tapNets.empty()) candidates.insert(tapNets.begin(), tapNets.end());
    else candidates = inForce;  // held while the tap has no address
    std::set<Cidr> ranges;
    bool refused = false;
    for (const auto& r : candidates) {
      bool conflict = std::any_of(others.begin(), others.end(),
                                  [&](const Cidr& a) { return r.contains(a.address) || r.overlaps(a.network()); });
      if (!conflict || inForce.count(r)) ranges.insert(r);
      else refused = true;
    }
    if (refused) ranges.insert(inForce.begin(), inForce.end());
    std::map<std::string, std::string> want;
    for (const auto& p : policiesOfRanges({ranges.begin(), ranges.end()}, Protection{exclude_})) want[idOf(p)] = p;
    // A selector a foreign policy took over: that install fails, so nothing is removed.
    std::set<std::string> takenOver;
    for (const auto& f : foreign_)
      if (f.src == f.dst) takenOver.insert(f.dir + " " + f.src + " -> " + f.dst);
    bool blocked = false;
    for (const auto& [id, p] : want)
      if (takenOver.count(id) && (!kernel_.count(id) || kernel_.at(id) != p)) blocked = true;
    std::map<std::string, std::string> next = blocked ? kernel_ : std::map<std::string, std::string>{};
    for (const auto& [id, p] : want)
      if (!takenOver.count(id)) next[id] = p;
    // Committed: wanted, and committed before or protected (out and in) now.
    std::set<Cidr> nowProtected = heldRanges(next, true), committed;
    for (const auto& r : ranges)
      if (committed_.count(r) || nowProtected.count(r)) committed.insert(r);
    committed_ = committed;
    predicted_ = "ranges";
    for (const auto& r : ranges) predicted_ += " " + r.str();
    predicted_ += std::string(listed_ ? " (explicit)" : " (auto)") + (refused ? ", one refused" : "") +
                  (blocked ? ", an install blocked by a foreign policy" : "") + "; from tap";
    for (const auto& r : tapNets) predicted_ += " " + r.str();
    predicted_ += ", in force";
    for (const auto& r : inForce) predicted_ += " " + r.str();
    predicted_ += ", other interfaces";
    for (const auto& a : others) predicted_ += " " + a.str();
    return next;
  }

  void check(int n, const char* phase = "") {
    const auto next = predict();
    std::set<std::string> want;
    for (const auto& [id, p] : next) want.insert(p);
    auto t0 = std::chrono::steady_clock::now();
    bool ok = waitFor([&] { return ownedNow() == want; }, 3s);
    if (!ok) {
      auto have = ownedNow();
      std::string missing, extra;
      for (const auto& p : want)
        if (!have.count(p)) missing += "\n    " + p;
      for (const auto& p : have)
        if (!want.count(p)) extra += "\n    " + p;
      ASSERT_TRUE(ok) << "step " << n << phase << ": the kernel does not hold the predicted policy set (" << predicted_
                      << ")\n  missing:" << missing << "\n  not predicted:" << extra << "\n"
                      << sh("ip xfrm policy") << "\n" << sh("ip -o addr");
    }
    kernel_ = next;
    worstMs_ = std::max<long>(worstMs_, std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - t0).count());
    auto all = allPolicies();
    std::set<std::tuple<Direction, Selector>> ids;
    for (const auto& p : all) {
      if (p.priority == 250000 || p.priority == 1000) {
        ASSERT_TRUE(ids.insert({p.dir, p.sel}).second) << "duplicate policy " << p.str();
      }
    }
    for (const auto& f : foreign_) {
      bool there = std::any_of(all.begin(), all.end(), [&](const Policy& p) {
        return p.priority == 77 && toString(p.dir) == f.dir && p.sel.src.str() == f.src && p.sel.dst.str() == f.dst;
      });
      ASSERT_TRUE(there) << "step " << n << ": the foreign policy " << f.src << " -> " << f.dst << " was touched\n"
                         << sh("ip xfrm policy");
    }
  }
};

TEST_F(HuntTest, EveryStepLeavesExactlyThePredictedPolicies) {
  const char* seedEnv = std::getenv("IPOPSEC_HUNT_SEED");
  unsigned seed = 1;
  if (seedEnv && std::string(seedEnv) == "random") seed = std::random_device{}();
  else if (seedEnv) seed = static_cast<unsigned>(std::stoul(seedEnv));
  int steps = std::getenv("IPOPSEC_HUNT_STEPS") ? std::atoi(std::getenv("IPOPSEC_HUNT_STEPS")) : 120;
  rng_.seed(seed);
  std::cout << "hunt: seed " << seed << ", " << steps << " steps (replay: IPOPSEC_HUNT_SEED=" << seed << ")\n";
  exclude_ = {*Cidr::parse(kExclude[0])};
  writeHuntConfig(std::nullopt, exclude_);
  sh("ip tuntap add dev ipop mode tap && ip link set ipop up && ip addr add 10.50.0.16/16 dev ipop");
  carrier_ = TapCarrier("ipop");
  startDaemon();
  ASSERT_TRUE(waitFor([&] { return protects("10.50.0.0/16"); }));
  check(0);
  for (int n = 1; n <= steps; ++n) {
    step_ = n;
    step();
    if (!HasFatalFailure()) check(n);
    if (HasFatalFailure()) {
      std::cout << "hunt FAILED with seed " << seed << " at step " << n << "; steps:\n";
      for (std::size_t i = 0; i < trail_.size(); ++i) std::cout << "  " << i + 1 << ". " << trail_[i] << "\n";
      return;
    }
  }
  std::cout << "hunt: " << steps << " steps, the kernel held the predicted policy set after each; longest wait " << worstMs_ << " ms\n";
}

}  // namespace
