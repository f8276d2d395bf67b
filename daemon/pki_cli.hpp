#pragma once
// `ipop-ipsecd pki`: the issuance step the classic procedure left out. A GroupVPN CA
// (init-ca) and a node's certificate (issue), through os/pki.hpp (OpenSSL API).

namespace ipopsec {

// argv[0] is the pki subcommand ("init-ca", "issue", "--help"); returns an exit code
// (cli.hpp: kExitOk, kExitFailure, kExitUsage).
int runPkiCli(int argc, char** argv);

}  // namespace ipopsec
