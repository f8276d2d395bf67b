#!/bin/bash
# Applies each mutation, builds its target, reverts it, runs the test; the test must fail.
# tests/mutations/README. Usage: run.sh BUILD_DIR [PATCH...]
set -u
build=${1:?usage: run.sh BUILD_DIR [PATCH...]}; shift
here=$(cd "$(dirname "$0")" && pwd); src=$(cd "$here/../.." && pwd)
[ $# -gt 0 ] || set -- "$here"/*.patch
declare -A target=([hunt-never-adds]=hunt_test [hunt-never-removes]=hunt_test [helper-no-in-any]=daemon_test
                   [readback-from-acks]=read_back_test [readback-stale-claim]=read_back_test)
declare -A filter=([hunt-never-adds]='*' [hunt-never-removes]='*' [helper-no-in-any]='DaemonTest.TapCreatedAfterStartGetsPoliciesAndOneRestartAfterTheAddressExists'
                   [readback-from-acks]='*AcknowledgedButNotHeld*' [readback-stale-claim]='*AfterAMove*')
caught=0; missed=0
for p in "$@"; do
  name=$(basename "$p" .patch)
  (cd "$src" && git apply --check "$p") || { echo "$name: does not apply"; missed=$((missed+1)); continue; }
  (cd "$src" && git apply "$p")
  cmake --build "$build" -j2 --target "${target[$name]}" ipop-ipsecd >/dev/null 2>&1; rc=$?
  (cd "$src" && git apply -R "$p")
  [ $rc -eq 0 ] || { echo "$name: build failed"; missed=$((missed+1)); continue; }
  if ! out=$(CI=1 IPOPSEC_HUNT_SEED=1 "$build/tests/${target[$name]}" --gtest_filter="${filter[$name]}" 2>&1); then
    caught=$((caught+1)); echo "$name: CAUGHT by ${target[$name]}:"
    echo "$out" | grep -E '^\[  FAILED  \]|Failure$' -A6 | grep -v '^--$' | head -12 | sed 's/^/    /'
  else
    missed=$((missed+1)); echo "$name: MISSED (${target[$name]} passed)"
  fi
done
# Rebuild the unmutated binaries.
cmake --build "$build" -j2 --target hunt_test daemon_test read_back_test ipop-ipsecd >/dev/null 2>&1
echo "caught $caught, missed $missed"
[ $missed -eq 0 ]
