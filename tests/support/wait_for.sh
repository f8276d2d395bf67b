# tests/support/wait_for.sh -- sourced (not run) by the shell tests that wait for a real event
# of the daemon they started (tests/integration/strongswan_traps.sh, strongswan_crl_refresh.sh,
# metrics_node_exporter.sh). The caller defines ok and fail (its check counter and its exit).
#
#   wait_for WHAT SECONDS CMD...
#     runs CMD (quietly) every 0.1 s until it succeeds, then says "ok WHAT". It fails when
#     SECONDS pass, or at once when a process the test watches has exited: WAIT_FOR_WATCH
#     holds pairs VARIABLE NAME ("DAEMON_PID" "the daemon"), each the name of the variable
#     that holds the pid at the time of the wait (a test may restart its daemon) and what to
#     call it. When the caller defines wait_for_detail, its output ends the timeout message.

WAIT_FOR_WATCH=(DAEMON_PID "the daemon")

wait_for() {  # WHAT SECONDS CMD...
  local what=$1 limit=$2 i var detail
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    for ((i = 0; i < ${#WAIT_FOR_WATCH[@]}; i += 2)); do
      var=${WAIT_FOR_WATCH[i]}
      kill -0 "${!var}" 2>/dev/null || fail "${WAIT_FOR_WATCH[i + 1]} exited while waiting for: $what"
    done
    if ((SECONDS >= deadline)); then
      detail=''
      declare -F wait_for_detail >/dev/null && detail=" ($(wait_for_detail))"
      fail "timed out after ${limit}s waiting for: $what$detail"
    fi
    sleep 0.1
  done
  ok "$what"
}
