#!/usr/bin/env bash
# The default build is hardened as Debian builds its packages (cmake/Hardening.cmake): read
# from the binary itself, as built and as `cmake --install --strip` lays it out (the package's
# binary is stripped the same way):
#   readelf -h   Type DYN (a position-independent executable),
#   readelf -d   BIND_NOW, or FLAGS with BIND_NOW, and FLAGS_1 with NOW and PIE (-z now, -pie),
#   readelf -l   a GNU_RELRO segment (-z relro),
#   readelf --dyn-syms   __stack_chk_fail (-fstack-protector-strong) and __*_chk functions
#                (_FORTIFY_SOURCE; a call whose buffer size the compiler cannot see keeps the
#                unchecked form, so both forms may be imported),
#   readelf -n   x86 IBT and SHSTK in the GNU property note of the daemon's objects
#                (-fcf-protection), on x86-64.
# Fails on a build configured with -DIPOPSEC_HARDENING=OFF (and says so).
# Usage: binary_hardening.sh IPOP_IPSECD_BINARY BUILD_DIR
source "$(dirname "$0")/lib.sh" "$@"   # check, sys_fail, sys_need, sys_pass (no container)
BIN=$SYS_BIN BUILD=$SYS_BUILD
sys_on_fail() {
  if grep -q '^IPOPSEC_HARDENING:BOOL=OFF' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "note: $BUILD was configured with -DIPOPSEC_HARDENING=OFF: its binary is not hardened"
  fi
}
sys_need readelf cmake
[[ -x $BIN ]] || sys_fail "no binary at $BIN"
WORK=$(mktemp -d /tmp/ipopsec-hardening.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

DESTDIR=$WORK/root cmake --install "$BUILD" --strip >"$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log" >&2; sys_fail "cmake --install --strip into $WORK/root failed"; }
installed=$WORK/root/usr/sbin/ipop-ipsecd
[[ -x $installed ]] || sys_fail "cmake --install laid out no /usr/sbin/ipop-ipsecd"

# The symbols the hardening leaves in a binary: its imports (readelf --dyn-syms: UND entries).
imports() { readelf --dyn-syms -W "$1" | awk '$7 == "UND" { sub(/@.*/, "", $8); print $8 }' | sort -u; }

for b in "$BIN" "$installed"; do
  where=$([[ $b == "$BIN" ]] && echo "built" || echo "installed")
  readelf -h -W "$b" >"$WORK/h"
  readelf -d -W "$b" >"$WORK/d"
  readelf -l -W "$b" >"$WORK/l"
  imports "$b" >"$WORK/imports"
  check "$where: ELF type DYN (PIE) ($(awk '/Type:/ { print $2 }' "$WORK/h"))" grep -Eq '^ *Type: +DYN ' "$WORK/h"
  check "$where: FLAGS_1 holds NOW and PIE ($(grep -o 'Flags: .*' <(grep FLAGS_1 "$WORK/d") || echo none))" \
    bash -c "grep -E '\(FLAGS_1\)' '$WORK/d' | grep -qw NOW && grep -E '\(FLAGS_1\)' '$WORK/d' | grep -qw PIE"
  check "$where: BIND_NOW (a BIND_NOW entry or FLAGS with BIND_NOW)" \
    bash -c "grep -Eq '\(BIND_NOW\)' '$WORK/d' || grep -E '\(FLAGS\)' '$WORK/d' | grep -qw BIND_NOW"
  check "$where: a GNU_RELRO segment" grep -Eq '^ *GNU_RELRO ' "$WORK/l"
  check "$where: __stack_chk_fail is imported (stack protector)" grep -qx '__stack_chk_fail' "$WORK/imports"
  chk=$(grep -E '^__.*_chk$' "$WORK/imports" | grep -vx '__stack_chk_fail' | paste -sd ' ' || true)
  check "$where: fortified __*_chk functions are imported (${chk:-none})" test -n "$chk"
  echo "info: $where: x86 features in the GNU property note: $(readelf -n -W "$b" | sed -n 's/.*x86 feature: //p' | head -n 1 | grep . || echo none)"
done

# -fcf-protection (x86-64): every object of the daemon carries IBT and SHSTK in its GNU property
# note. The linked binary keeps them only if every object the linker adds does too; Debian 12's
# crti.o/crtn.o (glibc 2.36) carry none, so there the binary's note says nothing of it.
if [[ $(uname -m) == x86_64 ]]; then
  mapfile -t objects < <(find "$BUILD/CMakeFiles/ipop-ipsecd.dir" "$BUILD/CMakeFiles/ipopsec_core.dir" \
                           "$BUILD/CMakeFiles/ipopsec_os.dir" "$BUILD/CMakeFiles/ipopsec_daemon.dir" -name '*.o')
  without=()
  for o in "${objects[@]}"; do
    readelf -n -W "$o" | grep -E 'x86 feature:.*IBT.*SHSTK' >/dev/null || without+=("${o#"$BUILD"/}")
  done
  check "the daemon's ${#objects[@]} objects carry x86 IBT and SHSTK (-fcf-protection)${without[*]:+; not: ${without[*]}}" \
    test "${#objects[@]}" -ge 30 -a "${#without[@]}" -eq 0
fi
sys_pass
