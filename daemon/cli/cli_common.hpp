#pragma once
// What every command of the command line shares (cli.cpp's dispatcher, check_cli.cpp,
// status_cli.cpp, pki_cli.cpp, cut_revoked_cli.cpp): the exit codes, the one form of an
// error line, and loading the config the way the daemon does (Kea style: `check` shares
// the code path of a real load). The commands include this, never each other.

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/config/config.hpp"

namespace ipopsec {

// Exit codes (sysexits.h where one fits).
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 64;   // EX_USAGE
constexpr int kExitConfig = 78;  // EX_CONFIG

namespace cli {
// Every error line of the command line tool has this one form, on stderr.
std::ostream& error();
// Loads the config, printing every issue (also into `issues`, as ConfigIssue::str()).
// Returns nullopt after printing.
std::optional<Config> load(const std::string& path, std::vector<std::string>* issues = nullptr);
}  // namespace cli

}  // namespace ipopsec
