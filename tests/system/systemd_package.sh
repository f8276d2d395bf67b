#!/usr/bin/env bash
# The Debian package under a real systemd: built here with CPack from the build dir, then
# installed with dpkg inside the container.
#   - install: unit enabled, NOT started (no config/certs yet), conffile in place;
#   - upgrade (dpkg -i again) while running with a valid config: restarted on the new binary
#     (new MainPID), policies kept, the IKE daemon (racoon stand-in) untouched: same MainPID,
#     no new start;
#   - remove: daemon and IKE daemon stopped, unit gone, policies left in the kernel (fail
#     closed, as documented); the removal prints the command that clears them with the
#     priority in use (from the daemon's state file, not only the config: here the config
#     was edited to another protect_priority without a reload); the README's commands for
#     after a removal, run exactly as written, clear them;
#   - purge: the files the daemon wrote for racoon (racoon.conf, ipsec-tools.conf, the CA
#     lookup copy <hash>.0), auto-ranges and the state are gone, the operator's certificates stay.
# Usage: systemd_package.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"

sys_need cpack dpkg-deb dpkg-shlibdeps
sys_setup --no-install
cpack -G DEB --config "$SYS_BUILD/CPackConfig.cmake" -B "$SYS_WORK/pkg" >"$SYS_WORK/cpack.log" 2>&1 ||
  { cat "$SYS_WORK/cpack.log" >&2; sys_fail "cpack -G DEB failed"; }
deb=$(ls "$SYS_WORK"/pkg/ipop-ipsec_*.deb)
check "cpack built $(basename "$deb")" test -f "$deb"
check "the package declares the config as a conffile" \
  bash -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/ipop-ipsec/ipop-ipsecd.yaml"
# The package of the yaml-cpp the binary links (libyaml-cpp0.7 on Debian 12, 0.8 on 13).
yaml_so=$(objdump -p "$SYS_BIN" | awk '$1 == "NEEDED" && $2 ~ /^libyaml-cpp/ { print $2 }')
yaml_pkg=$(dpkg -S "*/$yaml_so" 2>/dev/null | sed -n '1s/:.*//p')
depends=$(dpkg-deb -f "$deb" Depends)
check "the package depends on libsystemd0 and on $yaml_pkg, whose $yaml_so the binary links (dpkg-shlibdeps)" \
  bash -c "[[ -n '$yaml_pkg' ]] && grep -Eq '(^|, )libsystemd0( |,|\$)' <<<'$depends' && grep -Eq '(^|, )$yaml_pkg( |,|\$)' <<<'$depends'"
cp "$deb" "$ROOT/root/ipop-ipsec.deb"
# Container images (this machine's too) ship a policy-rc.d that forbids maintainer scripts
# to start or stop services; a real node has none. Inside the overlay only.
rm -f "$ROOT/usr/sbin/policy-rc.d"
sys_make_certs racoon
sys_make_ipop 10.254.0.16/16
sys_make_racoon_standin
sys_enable ipop.service
sys_boot

# --- install ---------------------------------------------------------------------------------
check "dpkg -i succeeds" sys_run dpkg -i /root/ipop-ipsec.deb
check "ipop-ipsecd.service is enabled by the install" test "$(sys_run systemctl is-enabled ipop-ipsecd.service)" = enabled
check "ipop-ipsecd.service is NOT started by the install" test "$(sys_prop ipop-ipsecd.service ActiveState)" = inactive
check "the config is installed" sys_run test -f /etc/ipop-ipsec/ipop-ipsecd.yaml
# A bypass priority of its own, so that prerm must read it from the config (it used to look
# at 250000 only).
sed -i 's|^  bypass_priority: 1000|  bypass_priority: 900|' "$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
check "the installed config now sets bypass_priority 900" grep -qx '  bypass_priority: 900' "$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
check "ipop-ipsecd check passes on the installed config + test certs" sys_run ipop-ipsecd check
check "the man page is installed" sys_run test -f /usr/share/man/man8/ipop-ipsecd.8.gz
check "ipop-ipsecd.yaml(5) is installed" sys_run test -f /usr/share/man/man5/ipop-ipsecd.yaml.5.gz
check "postinst loaded the journal catalog (journalctl --list-catalog)" \
  sys_run sh -c "journalctl --list-catalog | grep -q 'ipop-ipsecd refused to reload its configuration'"
check "systemctl start ipop-ipsecd succeeds" sys_run systemctl start ipop-ipsecd.service
has_policy() { grep -q "src 10.254.0.0/16 dst 10.254.0.0/16" <<<"$(sys_run ip xfrm policy)"; }
sys_wait "policies for 10.254.0.0/16" 20 has_policy
sys_wait "racoon started once IPOP is up" 20 starts_ge 1

# --- upgrade (same package again) ------------------------------------------------------------
sys_wait "the daemon reports racoon's start done" 20 sys_run grep -q '"last_restart_result": "done"' /run/ipop-ipsec/state.json
old=$(sys_prop ipop-ipsecd.service MainPID)
racoon_pid=$(sys_prop racoon.service MainPID)
racoon_starts=$(starts)
check "racoon runs (MainPID $racoon_pid)" test "$racoon_pid" -gt 0

check "dpkg -i over the running install succeeds" sys_run dpkg -i /root/ipop-ipsec.deb
check "the running daemon was restarted on upgrade (new MainPID)" \
  bash -c '[[ $(nsenter -t '"$SYS_PID1"' -a systemctl show -P MainPID ipop-ipsecd.service) != '"$old"' ]]'
check "active after the upgrade" test "$(sys_prop ipop-ipsecd.service ActiveState)" = active
check "policies kept through the upgrade" has_policy
new=$(sys_prop ipop-ipsecd.service MainPID)
sys_wait "the new daemon (pid $new) wrote its state" 20 sys_run grep -q "\"pid\": $new," /run/ipop-ipsec/state.json
sys_wait "the new daemon reports healthy" 20 sys_run grep -q '"healthy": true' /run/ipop-ipsec/state.json
# An absence: the new daemon would restart racoon at the latest one coalescing window
# (quiet 1 s + min interval 2 s) after its start.
sleep 4
check "racoon kept running through the upgrade (same MainPID $racoon_pid)" \
  test "$(sys_prop racoon.service ActiveState)/$(sys_prop racoon.service MainPID)" = "active/$racoon_pid"
check "racoon was not started again by the upgrade" test "$(starts)" -eq "$racoon_starts"
sys_log "upgrade: ipop-ipsecd $old -> $new, racoon $racoon_pid -> $(sys_prop racoon.service MainPID)"

# --- remove ----------------------------------------------------------------------------------
# The config on disk now names another protect priority than the one the running daemon's
# policies carry (edited, not reloaded): only the state file knows 250000.
sed -i 's|^  # protect_priority: 250000|  protect_priority: 260000|' "$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
check "the config now sets protect_priority 260000 (not reloaded)" grep -qx '  protect_priority: 260000' "$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
removal=$(sys_run dpkg -r ipop-ipsec 2>&1) || sys_fail "dpkg -r ipop-ipsec failed: $removal"
check "dpkg -r succeeds" true
printf '    dpkg -r: %s\n' "$removal" | grep ipop-ipsec: || true
check "prerm names the priority of the policies left, which only the state file records (250000)" \
  grep -q "IPsec policies (priority 250000) stay" <<<"$removal"
check "the daemon is stopped by the removal" bash -c '[[ $(nsenter -t '"$SYS_PID1"' -a systemctl show -P ActiveState ipop-ipsecd.service) != active ]]'
check "prerm says it stops racoon.service" grep -q "stopping racoon.service" <<<"$removal"
check "racoon is stopped by the removal" test "$(sys_prop racoon.service ActiveState)" = inactive
check "the binary is gone" sys_run test ! -e /usr/sbin/ipop-ipsecd
check "the unit is gone" sys_run test ! -e /lib/systemd/system/ipop-ipsecd.service
check "policies stay after removal (fail closed, documented)" has_policy
check "the config stays (conffile, until purge)" sys_run test -f /etc/ipop-ipsec/ipop-ipsecd.yaml
printed=$(sed -n 's/.*remove them with: \(.*\) (see ipop-ipsecd(8))$/\1/p' <<<"$removal")
check "prerm printed the command for the priority in use: '$printed'" \
  test "$printed" = "ip xfrm policy deleteall priority 250000"
check "prerm says a purge removes them too" grep -q "purging the package (apt-get purge ipop-ipsec) removes them too" <<<"$removal"
# The README's commands for after a removal, exactly as written (the code block after the
# marker <!-- test: lift-after-remove -->, in README.md or docs/*.md): they read the priorities
# from the state file, so the config's 260000 does not mislead them.
sys_run_doc_block lift-after-remove
check "the README's commands clear the daemon's policies" bash -c '! nsenter -t '"$SYS_PID1"' -a ip xfrm policy | grep -q "10.254.0.0/16"'

# --- purge -----------------------------------------------------------------------------------
hash=$(openssl x509 -hash -noout -in "$ROOT/etc/racoon/certs/cacert.pem")
racoon_files=(/etc/racoon/racoon.conf /etc/ipsec-tools.conf "/etc/racoon/certs/$hash.0" /var/lib/ipop-ipsec/auto-ranges
  /run/ipop-ipsec/state.json)
for f in "${racoon_files[@]}"; do check "before purge: the daemon's $f is there" sys_run test -f "$f"; done
check "before purge: /etc/racoon/certs/$hash.0 is the daemon's CA lookup copy (marker)" \
  sys_run grep -q "^# ipop-ipsecd: racoon's CA lookup copy" "/etc/racoon/certs/$hash.0"
check "dpkg --purge succeeds" sys_run dpkg --purge ipop-ipsec
check "the config is gone after purge" sys_run test ! -e /etc/ipop-ipsec/ipop-ipsecd.yaml
for f in "${racoon_files[@]}" /var/lib/ipop-ipsec /run/ipop-ipsec /etc/ipop-ipsec; do
  check "after purge: $f is gone" sys_run test ! -e "$f"
done
for f in cacert.pem host-cert.pem host-key.pem; do
  check "after purge: the operator's /etc/racoon/certs/$f stays" sys_run test -f "/etc/racoon/certs/$f"
done
sys_pass
