#pragma once
// A problem found in ipop-ipsecd.yaml (where and what), and the error that carries all of
// them: what parseConfig (parse_config.hpp) and loadConfig (os/files/config_loader.hpp) throw.

#include <stdexcept>
#include <string>
#include <vector>

namespace ipopsec {

// One problem found in a config file: where it is and what is wrong.
struct ConfigIssue {
  std::string file;     // as given, e.g. "/etc/ipop-ipsec/ipop-ipsecd.yaml"
  int line = 0;         // 1-based; 0 when unknown (e.g. a missing required key)
  int column = 0;       // 1-based; 0 when unknown
  std::string keyPath;  // "protect.ranges[1]"
  std::string message;  // "'172.31.0.0/33' is not a valid CIDR: prefix length 33 is out of range 0..32"

  // "ipop-ipsecd.yaml:12:5: protect.ranges[1]: '172.31.0.0/33' is not a valid CIDR: ..."
  std::string str() const;
};

// Thrown when the file can't be read or doesn't validate. Carries every problem found,
// not only the first.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<ConfigIssue> issues);
  const std::vector<ConfigIssue>& issues() const { return issues_; }

 private:
  std::vector<ConfigIssue> issues_;
};

}  // namespace ipopsec
