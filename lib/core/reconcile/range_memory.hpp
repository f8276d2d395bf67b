#pragma once
// The ranges the Reconciler remembers beyond what it observes now, and their rules, decided
// here and nowhere else (pure: no I/O):
//   - committed: ranges in force, protected by this daemon and wanted ever since (also
//     those an earlier run's state recorded). Policies deleted behind the daemon's back (a
//     flush) do not end that: such a range is restored, never refused as new.
//   - provisional: with `ranges: auto`, the ranges the tap gave before (the remembered
//     file, daemon.remember_dir), held from the start until the tap has an address. Unlike
//     ranges in force they yield to an underlay conflict (a node rebooted into a LAN that
//     overlaps them). A tap address inside one confirms it; one whose policies the kernel
//     already held when this run began is in force (a daemon restart, not a reboot).
//   - in force = the kernel's ranges + committed - provisional.
// And the remembered file's format, both ways: one range a line, '#' comments; a bad line
// is named with its line number and skipped.

#include <string>
#include <string_view>
#include <vector>

#include "core/policy/cidr.hpp"

namespace ipopsec {

// What the remembered file gave: its ranges (networks, sorted, once each) and one line per
// bad line ("<path>:<line>: not a range (<why>); ignored").
struct RememberedRanges {
  std::vector<Cidr> ranges;
  std::vector<std::string> problems;
};
// `ipv6`: protect.ipv6; when off, IPv6 ranges are skipped (not a problem: a config change).
RememberedRanges parseRememberedRanges(std::string_view text, const std::string& path, bool ipv6);
// The file's content for these ranges (a comment line, then one range a line).
std::string renderRememberedRanges(const std::vector<Cidr>& ranges);

class RangeMemory {
 public:
  // The ranges an earlier run protected (state file): in force from the start.
  void assumeCommitted(std::vector<Cidr> ranges);
  // The remembered file's ranges: provisional until confirmed.
  void assumeRemembered(std::vector<Cidr> ranges);

  // The tap's addresses (with prefix, as LinkState gives them) confirm the provisional
  // ranges that contain one of them.
  void confirm(const std::vector<Cidr>& tapAddresses);
  // No provisional range any more: `ranges: auto` is off, or the tap gives ranges of its
  // own (from then on its addresses decide; a remembered range it did not confirm goes).
  void dropProvisional() { provisional_.clear(); }

  // What is in force given the ranges the kernel protects now (rangesOf its owned
  // policies): those and the committed ones, without the provisional ones; sorted, once
  // each. The first call also decides which remembered ranges the kernel already held when
  // this run began: those are in force, not provisional.
  std::vector<Cidr> inForce(const std::vector<Cidr>& kernelRanges);
  const std::vector<Cidr>& provisional() const { return provisional_; }
  const std::vector<Cidr>& committed() const { return committed_; }

  // After an apply: the committed ranges are the wanted ones that were committed or that
  // the kernel protects now, provisional ones excepted.
  void commit(const std::vector<Cidr>& wanted, const std::vector<Cidr>& protectedNow);

  // What the remembered file should hold: the wanted (sorted) ranges the kernel protects
  // now; empty when none.
  static std::vector<Cidr> toRemember(const std::vector<Cidr>& wanted, const std::vector<Cidr>& protectedNow);

 private:
  std::vector<Cidr> committed_;    // sorted, once each
  std::vector<Cidr> provisional_;  // sorted, once each
  bool provisionalChecked_ = false;  // the first inForce compared them with the kernel
};

}  // namespace ipopsec
