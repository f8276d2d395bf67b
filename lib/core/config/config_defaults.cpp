#include "core/config/config_defaults.hpp"

#include "core/config/config.hpp"

namespace ipopsec {

namespace {

// The keys of kBackendDefaults: the file's path and where the row's value goes.
struct DefaultedKey {
  const char* path;
  void (*apply)(Config& cfg, const BackendDefaults& row);
};

constexpr DefaultedKey kKeys[] = {
    {"ike.unit", [](Config& c, const BackendDefaults& d) { c.ike.unit = d.unit; }},
    {"xfrm.protect_priority", [](Config& c, const BackendDefaults& d) { c.xfrm.protectPriority = d.protectPriority; }},
    {"racoon.certificate_dir", [](Config& c, const BackendDefaults& d) { c.racoon.certificateDir = d.certificateDir; }},
};

}  // namespace

void setDefaults(Config& cfg, const std::function<bool(const std::string& path)>& isSet) {
  const BackendDefaults& row = backendDefaults(cfg.ike.backend);
  for (const auto& key : kKeys)
    if (!isSet(key.path)) key.apply(cfg, row);
  cfg.racoon.certificateDirDefaulted = !isSet("racoon.certificate_dir");
}

}  // namespace ipopsec
