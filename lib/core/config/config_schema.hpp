#pragma once
// The schema of ipop-ipsecd.yaml, one reader per section: each walks its section's keys
// with the generic reader (yaml_reader.hpp) and sets the Config fields they name, on top
// of the defaults of config.hpp. Internal to parseConfig (config.cpp).
//   config_schema_network.cpp    ipop, protect, xfrm
//   config_schema_ike.cpp        ike, racoon, strongswan, certificates, daemon
//   config_schema_proposals.cpp  proposals (and the algorithm names racoon accepts)
//   config_checks.cpp            the checks that span sections, after the walk

#include "core/config/config.hpp"
#include "core/config/config_issue.hpp"
#include "core/config/yaml_reader.hpp"

namespace ipopsec::schema {

// One parse: the reader (issues, warnings, what the file set) and the Config being filled.
struct Parse {
  yaml::Reader& r;
  Config& cfg;
  // False when the key was set but did not parse: the cross-checks that need it skip.
  bool controlValid = true;
  bool restartCommandValid = true;
  bool priorityValid = true;
};

void ipop(Parse& p, const yaml::Item& section);
void protect(Parse& p, const yaml::Item& section);
void xfrm(Parse& p, const yaml::Item& section);
void ike(Parse& p, const yaml::Item& section);
void racoon(Parse& p, const yaml::Item& section);
void strongswan(Parse& p, const yaml::Item& section);
void certificates(Parse& p, const yaml::Item& section);
void daemon(Parse& p, const yaml::Item& section);
void proposals(Parse& p, const yaml::Item& section);

// After the walk and the backend's defaults (setDefaults, config_defaults.hpp): the checks
// that span keys and sections. They do not assign.
void crossChecks(Parse& p);

}  // namespace ipopsec::schema
