#!/usr/bin/env bash
# CI: an 8-node IPOP mesh (plus a joiner) in User-Mode-Linux, every node running
# ipop-ipsecd (backend strongswan) with its own charon. Asserts, for (a) all taps coming up,
# (b) a range change on all nodes and (c) a node joining the running mesh, that every pair
# exchanges ESP (answered UDP echo, SA packet counters both ways, ESP for every pair in a
# capture of the overlay) and that no plaintext between range addresses is ever on the wire.
# The convergence times are printed, not asserted; `scripts/bench mesh` measures them
# against the limit and the ideal in order (tests/system/uml/mesh_bench.sh without
# --no-anchor). Its host side (checks, certificates, the guest) is mesh_setup.sh, shared
# with tests/system/uml_mesh.sh.
#   uml_mesh8.sh IPOP_IPSECD BUILD_DIR
set -euo pipefail
exec bash "$(dirname "$0")/uml/mesh_bench.sh" "$1" "$2" --nodes 8 --no-anchor
