#pragma once
// `ipop-ipsecd cut-revoked [--uri URI] SERIAL...`: ends charon's IKE_SAs (and their CHILD_SAs)
// with the peers whose certificates carry these serials; strongswan.cut_command's default,
// which the daemon runs with the serials a new CRL revokes after charon loaded that CRL.

namespace ipopsec {

int runCutRevokedCli(int argc, char** argv);

}  // namespace ipopsec
