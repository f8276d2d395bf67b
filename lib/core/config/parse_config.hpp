#pragma once
// The parse entry point: YAML text -> a validated Config, or a ConfigError naming every
// problem. Reading the file is the OS layer's job (os/files/config_loader.hpp: loadConfig).

#include <string>

#include "core/config/config.hpp"
#include "core/config/config_issue.hpp"

namespace ipopsec {

// Parses and validates YAML text (`name` is the file name used in messages). Throws
// ConfigError listing every problem.
Config parseConfig(const std::string& text, const std::string& name);

// The seed's proposals (3des, sha1, modp1024, hmac_sha1, deflate).
Config::Proposals legacyProposals();

}  // namespace ipopsec
