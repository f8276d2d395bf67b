#include "os/files/config_loader.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "core/config/certificate_dir.hpp"
#include "core/config/parse_config.hpp"

namespace ipopsec {

Config loadConfig(const std::string& path) {
  auto fail = [&](const std::string& why) -> Config {
    throw ConfigError({ConfigIssue{path, 0, 0, "", why}});
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail(std::string("cannot read: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail("is a directory, not a config file");
  if (!S_ISREG(st.st_mode)) return fail("is not a regular file");
  if (st.st_size > 1024 * 1024) return fail("is larger than 1 MiB; refusing to parse it");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail("read error");
  Config cfg = parseConfig(text.str(), path);
  // A strongSwan node set up when its certificates' default was /etc/racoon/certs keeps them there.
  useLegacyCertificateDir(cfg, [](const std::string& file) {
    struct stat f {};
    return ::stat(file.c_str(), &f) == 0;
  });
  return cfg;
}

}  // namespace ipopsec
