#include "core/reconcile/range_memory.hpp"

#include <algorithm>
#include <utility>

namespace ipopsec {

namespace {

void sortUnique(std::vector<Cidr>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool has(const std::vector<Cidr>& sorted, const Cidr& c) { return std::binary_search(sorted.begin(), sorted.end(), c); }

}  // namespace

RememberedRanges parseRememberedRanges(std::string_view text, const std::string& path, bool ipv6) {
  RememberedRanges out;
  int n = 0;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::string why;
    auto c = Cidr::parse(line, &why);
    if (!c)
      out.problems.push_back(path + ":" + std::to_string(n) + ": not a range (" + why + "); ignored");
    else if (c->family() == Family::v6 && !ipv6)
      continue;
    else
      out.ranges.push_back(c->network());
  }
  sortUnique(out.ranges);
  return out;
}

std::string renderRememberedRanges(const std::vector<Cidr>& ranges) {
  std::string s = "# ipop-ipsecd: the ranges the tap's addresses gave last (ranges: auto); held from the next start\n";
  for (const auto& r : ranges) s += r.str() + "\n";
  return s;
}

void RangeMemory::assumeCommitted(std::vector<Cidr> ranges) {
  sortUnique(ranges);
  committed_ = std::move(ranges);
}

void RangeMemory::assumeRemembered(std::vector<Cidr> ranges) {
  sortUnique(ranges);
  provisional_ = std::move(ranges);
}

void RangeMemory::confirm(const std::vector<Cidr>& tapAddresses) {
  for (const auto& a : tapAddresses)
    std::erase_if(provisional_, [&](const Cidr& r) { return r.contains(a.address); });
}

std::vector<Cidr> RangeMemory::inForce(const std::vector<Cidr>& kernelRanges) {
  std::vector<Cidr> out = kernelRanges;
  sortUnique(out);
  if (!provisionalChecked_) {
    // A remembered range whose policies were already in the kernel when this run began is
    // in force (a daemon restart, not a reboot); one this run installs from the file stays
    // provisional until the tap confirms it.
    std::erase_if(provisional_, [&](const Cidr& r) { return has(out, r); });
    provisionalChecked_ = true;
  }
  out.insert(out.end(), committed_.begin(), committed_.end());
  sortUnique(out);
  std::erase_if(out, [&](const Cidr& r) { return has(provisional_, r); });
  return out;
}

void RangeMemory::commit(const std::vector<Cidr>& wanted, const std::vector<Cidr>& protectedNow) {
  std::vector<Cidr> next;
  for (const auto& r : wanted)
    if ((has(committed_, r) || has(protectedNow, r)) && !has(provisional_, r)) next.push_back(r);
  sortUnique(next);
  committed_ = std::move(next);
}

std::vector<Cidr> RangeMemory::toRemember(const std::vector<Cidr>& wanted, const std::vector<Cidr>& protectedNow) {
  std::vector<Cidr> out;
  for (const auto& r : protectedNow)
    if (has(wanted, r)) out.push_back(r);
  return out;
}

}  // namespace ipopsec
