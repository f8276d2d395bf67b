#pragma once
// The command line's dispatcher: `ipop-ipsecd [COMMAND] ...` to the command's code (cli.cpp
// for run and render, check_cli.cpp, status_cli.cpp, pki_cli.cpp, cut_revoked_cli.cpp).
// What the commands share is cli_common.hpp.

namespace ipopsec {

int runCli(int argc, char** argv);

}  // namespace ipopsec
