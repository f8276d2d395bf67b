#pragma once
// `ipop-ipsecd check` and `ipop-ipsecd render`: the daemon's path from config to files
// (computeDesired and the renderers) run offline on a tap with sample addresses, and, for
// check, the certificates and what this host would refuse. Dispatched by cli.cpp.

#include <string>

namespace ipopsec {

int cmdCheck(const std::string& path, bool strict, bool reload);
int cmdRender(const std::string& path, const std::string& address, const std::string& outDir);

}  // namespace ipopsec
