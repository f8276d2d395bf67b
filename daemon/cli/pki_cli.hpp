#pragma once
// `ipop-ipsecd pki`: the issuance step the classic procedure left out, through pki/pki.hpp
// and pki/crl.hpp (OpenSSL API). Six subcommands: init-ca (a GroupVPN CA), issue (a node's
// key and certificate in one step, on the CA host), request (a node's key and a CSR, on the
// node), sign (the CA checks a CSR and issues its certificate), revoke (records a
// certificate's revocation in the CA's revoked.txt) and crl (the signed revocation list).

namespace ipopsec {

// argv[0] is the pki subcommand (one of the six, or "--help"); returns an exit code
// (cli.hpp: kExitOk, kExitFailure, kExitUsage).
int runPkiCli(int argc, char** argv);

}  // namespace ipopsec
