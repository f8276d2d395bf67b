#include "daemon/cli/cli_common.hpp"

#include <iostream>

#include "os/files/config_loader.hpp"

namespace ipopsec::cli {

std::ostream& error() { return std::cerr << "error: "; }

std::optional<Config> load(const std::string& path, std::vector<std::string>* issues) {
  try {
    return loadConfig(path);
  } catch (const ConfigError& e) {
    for (const auto& issue : e.issues()) {
      if (issues) issues->push_back(issue.str());
      error() << issue.str() << "\n";
    }
    error() << e.issues().size() << (e.issues().size() == 1 ? " error" : " errors") << " in " << path << "\n";
    return std::nullopt;
  }
}

}  // namespace ipopsec::cli
