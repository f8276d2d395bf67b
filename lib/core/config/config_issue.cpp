#include "core/config/config_issue.hpp"

#include <utility>

namespace ipopsec {

std::string ConfigIssue::str() const {
  std::string out = file;
  if (line > 0) {
    out += ':' + std::to_string(line);
    if (column > 0) out += ':' + std::to_string(column);
  }
  if (!keyPath.empty()) out += (out.empty() ? "" : ": ") + keyPath;
  out += (out.empty() ? "" : ": ") + message;
  return out;
}

namespace {

std::string summarize(const std::vector<ConfigIssue>& issues) {
  if (issues.empty()) return "invalid configuration";
  std::string out;
  for (const auto& i : issues) {
    if (!out.empty()) out += '\n';
    out += i.str();
  }
  return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<ConfigIssue> issues)
    : std::runtime_error(summarize(issues)), issues_(std::move(issues)) {}

}  // namespace ipopsec
