// Parsing and validation of ipop-ipsecd.yaml, in the style of ISC Kea's parsers: the
// generic reader (yaml_reader.hpp) walks the file through one key->handler table per
// section (config_schema_*.cpp), then the checks that span sections run
// (config_checks.cpp). Every problem is collected; the caller gets either a fully valid
// Config or a ConfigError listing all of them.
//
// Defaults, as ISC Kea's SimpleParser::setDefaults does them: parsing starts from Config{}
// (config.hpp) and only overwrites what the file sets; then, once, the keys whose default
// follows ike.backend get their backend's row (setDefaults, config_defaults.hpp); the
// cross-checks after that only check.

#include "core/config/parse_config.hpp"

#include <utility>

#include "core/config/config_defaults.hpp"
#include "core/config/config_schema.hpp"

namespace ipopsec {

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
      setDefaults(cfg, [&r](const std::string& path) { return r.seen(path) != nullptr; });
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
