#!/usr/bin/env bash
# status.sh: what serves site S on this host now.
#
# Usage: status.sh --deploy-to D --site S --socket-dir SD [--health-path /health] [--expect-status 200]
#          [--health-protocol http|fastcgi]
#
# Prints `::sy status release=R|none pid=P|none alive=yes|no uptime=SECONDS socket=yes|no
# health=CODE|none healthy=yes|no lock=free|held releases=N previous=R|none mode=app|files|none
# instances=N running=M` (instance 1's pid, uptime and health; running: how many of its N
# instances run)
# (uptime 0 when not alive; mode files: the live release is files only, switch.sh --files-only,
# with no process or socket by design; none: nothing live), `::sy lock release=R msg=<owner
# text>` when the deploy lock is held, `::sy standby release=R pid=P until=EPOCH` while a standby
# runs, and `::sy supervisor state=running|stopped|errored pid=P|none [msg=why it gave up]`.
# Changes nothing.
#
# Exit codes: 0 reported; 1 unexpected failure; 2 usage; 3 not set up.
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

sy_init status
sy_parse 'deploy-to site socket-dir health-path expect-status health-protocol instances' "$@"
sy_require deploy-to site socket-dir
sy_validate
[[ -d $RELEASES ]] || sy_die 3 "$RELEASES is missing: run setup first"
sy_read_state

mode=app
if [[ -z $LIVE_R ]]; then mode=none; elif [[ -z $LIVE_PID ]]; then mode=files; fi
alive=no uptime=0 running=0
for ((i = 0; i < ${#LIVE_W[@]}; i += 2)); do
  if sy_alive "${LIVE_W[i]}" "${LIVE_W[i + 1]:-}"; then running=$((running + 1)); fi
done
if sy_alive "$LIVE_PID" "$LIVE_ST"; then
  alive=yes
  read -r up _ </proc/uptime
  ticks=$(getconf CLK_TCK 2>/dev/null) || ticks=100
  uptime=$((${up%.*} - LIVE_ST / ticks))
fi

socket=no health=none healthy=no
if [[ -S $LIVE_SOCK ]]; then
  socket=yes
  sy_health "$LIVE_SOCK"
  health=$SY_CODE
  if [[ $health == "$EXPECT_STATUS" ]]; then healthy=yes; fi
fi

shopt -s nullglob
dirs=("$RELEASES"/*/)
sy_lock_read
lock=free
if [[ -n $LOCK_TEXT ]]; then lock=held; fi
sy_emit status "release=${LIVE_R:-none}" "pid=${LIVE_PID:-none}" "alive=$alive" "uptime=$uptime" \
  "socket=$socket" "health=$health" "healthy=$healthy" "lock=$lock" \
  "releases=${#dirs[@]}" "previous=${PREV_R:-none}" "mode=$mode" "instances=$((${#LIVE_W[@]} / 2))" "running=$running"
if [[ -n $LOCK_TEXT ]]; then sy_emit lock "release=${LOCK_R:-unknown}" "msg=$LOCK_TEXT"; fi
sy_supervisor_state ''
reason=''
if [[ $SY_SV_STATE == errored ]]; then { IFS= read -r reason <"$STATE/errored" || true; } 2>/dev/null; fi
sy_read_standby
if [[ -n $SB_R ]] && sy_alive "$SB_PID" "$SB_ST"; then sy_emit standby "release=$SB_R" "pid=$SB_PID" "until=$SB_UNTIL"; fi
sy_emit supervisor "state=$SY_SV_STATE" "pid=${SY_SV_PID:-none}" ${reason:+"msg=$reason"}
