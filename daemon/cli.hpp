#pragma once
// The command line: a thin layer over the daemon and the core (Kea style: `check`
// shares the code path of a real load).

namespace ipopsec {

// Exit codes (sysexits.h where one fits).
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 64;   // EX_USAGE
constexpr int kExitConfig = 78;  // EX_CONFIG

int runCli(int argc, char** argv);

}  // namespace ipopsec
