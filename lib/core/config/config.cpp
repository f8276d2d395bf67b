// Parsing and validation of ipop-ipsecd.yaml, in the style of ISC Kea's parsers: the
// generic reader (yaml_reader.hpp) walks the file through one key->handler table per
// section (config_schema_*.cpp), then the checks that span sections run
// (config_checks.cpp). Every problem is collected; the caller gets either a fully valid
// Config or a ConfigError listing all of them.
//
// Defaults are never repeated here: parsing starts from Config{} (config.hpp) and only
// overwrites what the file sets; the keys whose default follows ike.backend (ike.unit,
// xfrm.protect_priority) get their backend's row of kBackendDefaults.

#include "core/config/config.hpp"

#include <utility>

#include "core/config/config_schema.hpp"

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

std::string certificatePath(const Config& cfg, const std::string& name) {
  return !name.empty() && name.front() == '/' ? name : cfg.racoon.certificateDir + "/" + name;
}

Config parseConfig(const std::string& text, const std::string& name) {
  Config cfg;
  cfg.sourceFile = name;
  yaml::Reader r(name);
  const yaml::Names sections{"ipop",         "protect",   "ike",  "racoon", "strongswan",
                             "certificates", "proposals", "xfrm", "daemon"};
  if (auto top = r.root(text, sections)) {
    schema::Parse p{r, cfg};
    try {
      r.mapping(*top, {
                          {"ipop", [&](const yaml::Item& i) { schema::ipop(p, i); }},
                          {"protect", [&](const yaml::Item& i) { schema::protect(p, i); }},
                          {"ike", [&](const yaml::Item& i) { schema::ike(p, i); }},
                          {"racoon", [&](const yaml::Item& i) { schema::racoon(p, i); }},
                          {"strongswan", [&](const yaml::Item& i) { schema::strongswan(p, i); }},
                          {"proposals", [&](const yaml::Item& i) { schema::proposals(p, i); }},
                          {"xfrm", [&](const yaml::Item& i) { schema::xfrm(p, i); }},
                          {"daemon", [&](const yaml::Item& i) { schema::daemon(p, i); }},
                          {"certificates", [&](const yaml::Item& i) { schema::certificates(p, i); }},
                      });
      schema::crossChecks(p);
    } catch (const YAML::Exception& e) {
      // Not expected: every reader checks types first. Still a clear error, never a crash.
      r.error(e.mark, "", std::string("cannot read the YAML: ") + e.what());
    }
  }
  if (r.failed()) throw ConfigError(r.takeIssues());
  cfg.warnings = r.takeWarnings();
  return cfg;
}

}  // namespace ipopsec
