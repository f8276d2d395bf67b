# tests/support/charon_conf.sh -- sourced (not run) by the tests that start a charon of their
# own (tests/integration/strongswan_traps.sh, tests/integration/strongswan_crl_refresh.sh, the
# peer charon of tests/support/peer_charon.sh, the UML guests tests/system/uml/*_guest.sh).
#
#   charon_test_conf VICI LOG NAME [SETTING...]
#     prints the strongswan.conf of a test's charon: the plugins it needs loaded (no others,
#     so the host's strongswan.d does not matter), no routes installed, vici on the socket
#     path VICI, its log in the file LOG (filelog NAME, flushed per line, level 1). Each
#     SETTING is a line "key = value" of the charon section (retransmit_tries = 1), or of
#     its filelog with "log." before it (log.knl = 2, log.time_format = %T).
charon_test_conf() {
  local vici=$1 log=$2 name=$3 s charon='' filelog=''
  shift 3
  for s in "$@"; do
    case $s in
      log.*) filelog+="      ${s#log.}"$'\n' ;;
      *) charon+="  $s"$'\n' ;;
    esac
  done
  cat <<CONF
charon {
  load_modular = no
  load = random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey kernel-netlink socket-default vici updown hmac sha1 sha2 aes gcm kdf
  install_routes = no
${charon}  plugins {
    vici {
      socket = unix://$vici
    }
  }
  filelog {
    $name {
      path = $log
      flush_line = yes
      default = 1
${filelog}    }
  }
}
CONF
}

#   charon_restart_script DIR RUN
#     prints a daemon's ike.restart_command for the charon of DIR (a bash script): ends the
#     running one by its pid (DIR/charon.pid), starts charon-systemd with DIR/strongswan.conf
#     (setsid, output to DIR/charon.out), waits (10 s at most) for its vici socket
#     RUN/charon.vici, then loads DIR/swanctl (what strongswan.service's ExecStartPost does).
charon_restart_script() {
  local d=$1 run=$2
  cat <<SCRIPT
#!/bin/bash
if [[ -s $d/charon.pid ]] && kill "\$(<$d/charon.pid)" 2>/dev/null; then
  for ((i = 0; i < 100; i++)); do kill -0 "\$(<$d/charon.pid)" 2>/dev/null || break; sleep 0.1; done
fi
rm -f $run/charon.vici
STRONGSWAN_CONF=$d/strongswan.conf setsid /usr/sbin/charon-systemd </dev/null >>$d/charon.out 2>&1 &
echo \$! >$d/charon.pid
for ((i = 0; i < 100; i++)); do /usr/sbin/swanctl --stats --uri unix://$run/charon.vici >/dev/null 2>&1 && break; sleep 0.1; done
SWANCTL_DIR=$d/swanctl exec /usr/sbin/swanctl --load-all --noprompt --uri unix://$run/charon.vici
SCRIPT
}
