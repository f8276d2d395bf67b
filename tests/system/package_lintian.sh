#!/usr/bin/env bash
# The Debian package as built for release (CPack from the build dir, as in docs/operations.md):
# lintian reports no error on it (warnings are printed), and it carries what an operator
# and Debian expect: the MIT (Expat) licence in a machine-readable copyright file, a real
# Maintainer, both man pages, the example config, the journal catalog (and the postinst
# that loads it), and a binary built with Debian's hardening flags (no lintian hardening-* tag).
# Usage: package_lintian.sh IPOP_IPSECD_BINARY BUILD_DIR
source "$(dirname "$0")/lib.sh" "$@"   # check, sys_fail, sys_need, sys_pass (no container)
BUILD=$SYS_BUILD
sys_need cpack dpkg-deb dpkg-shlibdeps lintian
WORK=$(mktemp -d /tmp/ipopsec-lintian.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$WORK/pkg" >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log" >&2; sys_fail "cpack -G DEB failed"; }
deb=$(ls "$WORK"/pkg/ipop-ipsec_*.deb)
check "cpack built $(basename "$deb")" test -f "$deb"
# IPOPSEC_DEB_OUT=DIR: this .deb is left in DIR too (scripts/test-trixie installs it next).
[[ -z ${IPOPSEC_DEB_OUT:-} ]] || cp "$deb" "$IPOPSEC_DEB_OUT/"
dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|' >"$WORK/files"
has() { grep -qx -- "$1" "$WORK/files"; }
check "ipop-ipsecd(8) is in the package" has /usr/share/man/man8/ipop-ipsecd.8.gz
check "ipop-ipsecd.yaml(5) is in the package" has /usr/share/man/man5/ipop-ipsecd.yaml.5.gz
check "the example config is in /usr/share/doc/ipop-ipsec/examples" has /usr/share/doc/ipop-ipsec/examples/ipop-ipsecd.yaml
check "the Prometheus alert rules are in /usr/share/doc/ipop-ipsec/examples" has /usr/share/doc/ipop-ipsec/examples/ipop-ipsec.rules.yml
check "the journal catalog is in /usr/lib/systemd/catalog" has /usr/lib/systemd/catalog/ipop-ipsec.catalog
check "the copyright file is in /usr/share/doc/ipop-ipsec" has /usr/share/doc/ipop-ipsec/copyright
mkdir "$WORK/x"
dpkg-deb -x "$deb" "$WORK/x"
dpkg-deb -e "$deb" "$WORK/x/DEBIAN"
copyright=$WORK/x/usr/share/doc/ipop-ipsec/copyright
check "the copyright file is machine-readable (DEP-5 Format: line)" \
  grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' "$copyright"
check "the copyright file grants the MIT licence (Expat) to every file" \
  bash -c "grep -qx 'Files: \*' '$copyright' && grep -qx 'License: Expat' '$copyright' && grep -q 'Permission is hereby granted, free of charge' '$copyright'"
maintainer=$(dpkg-deb -f "$deb" Maintainer)
check "a real Maintainer field ($maintainer)" bash -c "[[ '$maintainer' == *'<'*@*.*'>' && '$maintainer' != *localhost* ]]"
check "postinst loads the journal catalog" grep -q 'journalctl --update-catalog' "$WORK/x/DEBIAN/postinst"
check "the example config is the repository's" cmp -s "$WORK/x/usr/share/doc/ipop-ipsec/examples/ipop-ipsecd.yaml" \
  "$(cd "$(dirname "$0")/../.." && pwd)/config/ipop-ipsecd.yaml"

# lintian: every tag is printed; errors fail the test.
rc=0
lintian --fail-on error --display-info --tag-display-limit 0 "$deb" >"$WORK/lintian.txt" 2>&1 || rc=$?
echo "---- lintian $(basename "$deb") (exit $rc):"
sed 's/^/    /' "$WORK/lintian.txt"
check "lintian reports no error ($(grep -c '^E: ' "$WORK/lintian.txt" || true) errors, $(grep -c '^W: ' "$WORK/lintian.txt" || true) warnings)" \
  bash -c "[[ $rc -eq 0 ]] && ! grep -q '^E: ' '$WORK/lintian.txt'"
# The hardening Debian builds packages with (cmake/Hardening.cmake: FORTIFY_SOURCE, RELRO,
# BIND_NOW, PIE): lintian's tags for a binary that lacks it must not appear, whatever their level.
hardening=$(grep -Eo 'hardening-no-(fortify-functions|relro|bindnow|pie)( .*)?$' "$WORK/lintian.txt" | sort -u | tr '\n' ';' || true)
check "lintian reports no hardening-no-{fortify-functions,relro,bindnow,pie} tag${hardening:+ (got: $hardening)}" test -z "$hardening"
sys_pass
