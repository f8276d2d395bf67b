#pragma once
// `ipop-ipsecd status` and `ipop-ipsecd flush` (status_cli.cpp); each returns an exit code
// (cli_common.hpp).

#include <string>

namespace ipopsec {

int cmdStatus(const std::string& configPath, bool json);
int cmdFlush(const std::string& configPath);
// `status --json` answers in JSON whatever happens: the object for a bad command line.
void printStatusJsonUsageError(const std::string& reason);

}  // namespace ipopsec
