#pragma once
#include <string>

#include "core/config/config.hpp"
#include "core/config/config_issue.hpp"
#include "core/ports.hpp"

namespace ipopsec {

// Reads the file and hands it to parseConfig. Throws ConfigError (with the file named)
// when it can't be read: missing, a directory, unreadable, or larger than 1 MiB.
Config loadConfig(const std::string& path);

// The daemon's ConfigSource (core/ports.hpp): loadConfig.
class FileConfigSource final : public ConfigSource {
 public:
  Config load(const std::string& path) override { return loadConfig(path); }
};

}  // namespace ipopsec
