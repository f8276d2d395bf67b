#pragma once
// Fakes of the ports (lib/core/ports.hpp) for unit tests of the pure core. Each records
// what was asked of it; failures can be injected.

#include <algorithm>
#include <map>
#include <system_error>

#include "core/ports.hpp"

namespace ipopsec::test {

class FakeClock final : public Clock {
 public:
  time_point now() const override { return now_; }
  void advance(std::chrono::steady_clock::duration d) { now_ += d; }
  time_point now_{std::chrono::seconds(1000)};
};

class FakePolicyTable final : public PolicyTable {
 public:
  std::error_code list(std::vector<Policy>& out) override {
    ++lists;
    if (failList) return failList;
    out.clear();
    for (const auto& [k, p] : installed) out.push_back(p);
    return {};
  }
  std::error_code install(const Policy& p) override {
    if (refuse && refuse(p)) return std::make_error_code(std::errc::invalid_argument);
    installed[keyOf(p)] = p;
    log.push_back("install " + p.str());
    minCount = std::min(minCount, protectCount());
    return {};
  }
  std::error_code remove(const Policy& p) override {
    installed.erase(keyOf(p));
    log.push_back("remove " + p.str());
    minCount = std::min(minCount, protectCount());
    return {};
  }
  std::error_code flushLarval(const std::vector<Cidr>& ranges) override {
    larvalFlushes.push_back(ranges);
    return {};
  }
  std::vector<Policy> all() const {
    std::vector<Policy> v;
    for (const auto& [k, p] : installed) v.push_back(p);
    return v;
  }
  std::size_t protectCount() const {
    return static_cast<std::size_t>(std::count_if(installed.begin(), installed.end(), [](const auto& kv) {
      return kv.second.action == PolicyAction::protect;
    }));
  }
  static std::string keyOf(const Policy& p) {
    return std::string(toString(p.dir)) + " " + p.sel.src.str() + " " + p.sel.dst.str() + " " +
           std::to_string(p.sel.proto) + " " + std::to_string(p.sel.hasIcmpType) + std::to_string(p.sel.icmpType);
  }

  std::map<std::string, Policy> installed;
  std::vector<std::string> log;
  std::vector<std::vector<Cidr>> larvalFlushes;
  std::function<bool(const Policy&)> refuse;
  std::error_code failList;
  std::size_t minCount = SIZE_MAX;  // lowest number of protect policies seen during changes
  int lists = 0;
};

class FakeFileStore final : public FileStore {
 public:
  std::error_code read(const std::string& path, std::string& content) override {
    auto it = files.find(path);
    if (it == files.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
    content = it->second;
    return {};
  }
  std::error_code write(const std::string& path, const std::string& content, unsigned mode) override {
    if (failWrite) return failWrite;
    files[path] = content;
    modes[path] = mode;
    ++writes;
    return {};
  }
  std::error_code remove(const std::string& path) override {
    files.erase(path);
    return {};
  }
  std::map<std::string, std::string> files;
  std::map<std::string, unsigned> modes;
  std::error_code failWrite;
  int writes = 0;
};

// Restarts complete only when the test says so (complete()), like a real systemd job.
class FakeUnitManager final : public UnitManager {
 public:
  void restart(Done done) override {
    ++restarts;
    pending.push_back(std::move(done));
  }
  std::string state() override { return "active"; }
  void complete(std::error_code ec = {}, const std::string& detail = "") {
    auto d = std::move(pending.front());
    pending.erase(pending.begin());
    d(ec, detail);
  }
  int restarts = 0;
  std::vector<Done> pending;
};

class FakeNotifier final : public Notifier {
 public:
  void ready() override { log.push_back("READY=1"); }
  void reloading() override { log.push_back("RELOADING=1"); }
  void stopping() override { log.push_back("STOPPING=1"); }
  void status(const std::string& line) override { log.push_back("STATUS=" + line); }
  void watchdog() override { ++watchdogs; }
  std::vector<std::string> log;
  int watchdogs = 0;
};

}  // namespace ipopsec::test
