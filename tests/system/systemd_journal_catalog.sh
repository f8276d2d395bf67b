#!/usr/bin/env bash
# journald MESSAGE_ID= of the daemon's key events under a real systemd (nspawn, overlay):
# each event is made to happen, found with `journalctl MESSAGE_ID=<id>`, and `journalctl -x`
# shows the installed catalog's explanation (systemd/ipop-ipsec.catalog) beside it.
#   certificate problem  the host key is missing at boot
#   policies changed     the tap gets its address
#   IKE restarted        the host key is put back: the stand-in racoon is restarted
#   conflict held        another interface gets an address inside the protected range
#   reload refused       `systemctl reload` (ExecReload's `check --reload`) and SIGHUP with a
#                        config that does not validate: the same id either way
# The ids are read from lib/core/status/events.hpp, the one place they are defined.
# Usage: systemd_journal_catalog.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"

sys_need journalctl grep sed
id_of() {  # NAME in lib/core/status/events.hpp's namespace message_id, e.g. kReloadRefused
  local id
  id=$(sed -n "s/.*\\b$1 = \"\\([0-9a-f]\\{32\\}\\)\";.*/\\1/p" "$SYS_SRC/lib/core/status/events.hpp")
  [[ -n $id ]] || sys_fail "no message id $1 in lib/core/status/events.hpp"
  echo "$id"
}
ID_POLICIES=$(id_of kPoliciesChanged)
ID_RESTARTED=$(id_of kIkeRestarted)
ID_REFUSED=$(id_of kReloadRefused)
ID_CERT=$(id_of kCertificateProblem)
ID_CONFLICT=$(id_of kConflictHeld)

sys_setup
check "cmake --install put the catalog in /usr/lib/systemd/catalog" test -f "$ROOT/usr/lib/systemd/catalog/ipop-ipsec.catalog"
sys_make_certs
mv "$ROOT/etc/racoon/certs/host-key.pem" "$SYS_WORK/host-key.pem"
sys_make_ipop 10.254.0.16/16
sys_write_config racoon racoon.service
sys_make_racoon_standin
sys_enable ipop-ipsecd.service ipop.service racoon.service
sys_boot
# What the package's postinst does (cmake --install runs no maintainer script).
check "journalctl --update-catalog succeeds" sys_run journalctl --update-catalog
check "the catalog lists the daemon's ids" sys_run sh -c "journalctl --list-catalog | grep -q '^$ID_REFUSED '"

entries() { sys_run journalctl -b --no-pager -o cat -u ipop-ipsecd.service "MESSAGE_ID=$1"; }
has_entry() { entries "$1" | grep -q -- "$2"; }
# `journalctl -x` prints the catalog text (with the entry's fields substituted) after it.
explained() {  # ID TEXT-OF-THE-CATALOG-ENTRY
  local out
  out=$(sys_run journalctl -b --no-pager -x -u ipop-ipsecd.service "MESSAGE_ID=$1")
  grep -q -- "$2" <<<"$out" || { echo "journalctl -x MESSAGE_ID=$1 lacks '$2':"; echo "$out" | tail -n 25; return 1; }
}

# --- certificate problem (the host key is missing) ------------------------------------------
sys_wait "a certificate problem entry by its MESSAGE_ID" 30 has_entry "$ID_CERT" host-key.pem
check "journalctl -x explains the certificate problem" \
  explained "$ID_CERT" "While the certificates are unusable the IKE daemon is not"

# --- policies changed (the tap got its address) -----------------------------------------------
sys_wait "a policies-changed entry naming 10.254.0.0/16" 30 has_entry "$ID_POLICIES" "now protecting 10.254.0.0/16"
check "journalctl -x explains it, with the range substituted into the subject" \
  explained "$ID_POLICIES" "ipop-ipsecd changed the IPsec policies of 10.254.0.0/16"
check "the entry also carries IPOPSEC_ACTION=policies" \
  sys_run sh -c "journalctl -b --no-pager -o cat MESSAGE_ID=$ID_POLICIES IPOPSEC_ACTION=policies | grep -q protecting"

# --- IKE restarted (the key is back) ----------------------------------------------------------
check "no restart entry while the key is missing" test -z "$(entries "$ID_RESTARTED")"
install -m 0600 "$SYS_WORK/host-key.pem" "$ROOT/etc/racoon/certs/host-key.pem"
sys_wait "an IKE-restarted entry by its MESSAGE_ID" 30 has_entry "$ID_RESTARTED" "racoon.service restarted"
check "only the completed restart carries the id (not 'restarting ...')" \
  test "$(entries "$ID_RESTARTED" | grep -c restarting)" -eq 0
check "journalctl -x explains the restart, naming the unit" \
  explained "$ID_RESTARTED" "ipop-ipsecd restarted the IKE daemon racoon.service"
check "the racoon stand-in really started" starts_ge 1

# --- conflict held (another interface inside the range) ---------------------------------------
ip -n "$SYS_NAME" link add docker7 type bridge
ip -n "$SYS_NAME" link set docker7 up
ip -n "$SYS_NAME" addr add 10.254.200.1/24 dev docker7
sys_wait "a conflict-held entry naming docker7" 30 has_entry "$ID_CONFLICT" docker7
check "journalctl -x explains the conflict" explained "$ID_CONFLICT" "never takes protection away"
check "the range stays protected meanwhile" \
  sys_run sh -c "ip xfrm policy | grep -q 'src 10.254.0.0/16 dst 10.254.0.0/16'"
ip -n "$SYS_NAME" link del docker7

# --- reload refused: systemctl reload, then SIGHUP, with a broken config ------------------------
printf '%s\n' "bogus_key: 1" >>"$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
MAIN=$(sys_run systemctl show -P MainPID ipop-ipsecd.service)
check "systemctl reload with the broken config fails" eval '! sys_run systemctl reload ipop-ipsecd.service'
# ExecReload's check is not the daemon (another _PID), and the daemon was never signalled.
from_pid() { sys_run journalctl -b --no-pager -o cat -u ipop-ipsecd.service "MESSAGE_ID=$ID_REFUSED" "_PID=$1" | grep -q bogus_key; }
refusal_not_from() {
  sys_run journalctl -b --no-pager -o export -u ipop-ipsecd.service "MESSAGE_ID=$ID_REFUSED" |
    grep '^_PID=' | grep -qv "^_PID=$1\$"
}
sys_wait "a reload-refused entry from ExecReload's check (not the daemon, pid $MAIN)" 30 refusal_not_from "$MAIN"
check "the daemon itself logged no refusal (not signalled)" eval "! from_pid $MAIN"
check "the daemon still runs with the same pid" test "$(sys_run systemctl show -P MainPID ipop-ipsecd.service)" = "$MAIN"
sys_run systemctl kill -s HUP --kill-whom=main ipop-ipsecd.service
sys_wait "the daemon's own reload-refused entry (SIGHUP) naming the bad key" 30 from_pid "$MAIN"
check "journalctl -x explains the refusal" explained "$ID_REFUSED" "keeps running on its previous configuration"
sys_log "journalctl -x MESSAGE_ID=$ID_REFUSED (last entry):"
sys_run journalctl -b --no-pager -x -n 12 -u ipop-ipsecd.service "MESSAGE_ID=$ID_REFUSED" | sed 's/^/    /'
sys_pass
