#!/usr/bin/env bash
# supervise.sh: keep site S's live release up on this host, without root (the spinner).
#
# Usage: supervise.sh --action start|run|stop|status --deploy-to D --site S --socket-dir SD
#          [--health-path /health] [--expect-status 200] [--health-protocol http|fastcgi] [--grace 2] [--drain 30]
#          [--drain-mode signal|connections] [--keep 5] [--version HASH] [--interval-ms 500]
#          [--health-every 10] [--unhealthy 3] [--max-restarts 10] [--instances N] [--boot yes|no]
#
# start: writes this very program (lib.sh, the steps and this script: the text the client sent, or
# the files beside it) to D/.switchyard/supervisor.sh, stops a supervisor of another --version,
# and starts `supervisor.sh --action run …` detached (setsid nohup, its cwd D, its output appended
# to D/.switchyard/supervisor.log); with --boot yes also one user crontab line `@reboot … #
# switchyard-supervise D S` (replacing the site's old line), with --boot no none. Prints
# `::sy supervisor state=running pid=P`.
# run: the loop. Records `PID ST VERSION` in .switchyard/supervisor and runs while that file names
# it. Every --interval-ms it checks that the live release's process (pid + start time) runs, and
# every --health-every checks its health on the live socket; gone, or unhealthy --unhealthy
# checks in a row: if a standby runs (retire.sh --standby), it switches back to it at once and
# marks the failed release bad; otherwise it starts the live release again the way a deploy does
# (prepare.sh --reuse on its own socket from its .switchyard/launch and env records, health check,
# switch.sh, retire.sh: the old process, if it still runs, is drained and stopped). A release that
# went down within 1 s of the supervisor's last start of it (a crash loop) is unstable: the next
# start waits 100 ms, x1.5 each time up to 15 s; after --max-restarts unstable starts in a row it
# stops trying: .switchyard/errored says why (`ISO reason`), the audit log too. 30 s up resets
# both; a release that ran longer is started again at once. It retires an expired standby. While someone else
# holds the deploy lock (a deploy, a restart) it only watches, every 100 ms. Never touches a
# process that is not the site's live release, standby or a start of its own.
# stop: stops the recorded supervisor (TERM; it finishes the step it is in) and removes the
# site's crontab line: `::sy supervisor state=stopped`. Nothing else is stopped.
# status: `::sy supervisor state=running|outdated|stopped|errored pid=P|none boot=yes|no
# [msg=REASON]`. Changes nothing.
#
# Exit codes: 0 done; 1 unexpected failure; 2 usage; 3 not set up; 5 the supervisor did not come
# up (start); 11 errored: it gave up (run).
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

sy_init supervise
ACTION='' VERSION=none INTERVAL_MS=500 HEALTH_EVERY=10 UNHEALTHY=3 MAX_RESTARTS=10 BOOT=''
sv_opts=()
while (($#)); do
  case $1 in
    --action | --version | --interval-ms | --health-every | --unhealthy | --max-restarts | --boot)
      (($# >= 2)) || sy_usage "$1 needs a value"
      case $1 in
        --action) ACTION=$2 ;;
        --version) VERSION=$2 ;;
        --interval-ms) INTERVAL_MS=$2 ;;
        --health-every) HEALTH_EVERY=$2 ;;
        --unhealthy) UNHEALTHY=$2 ;;
        --max-restarts) MAX_RESTARTS=$2 ;;
        --boot) BOOT=$2 ;;
      esac
      shift 2
      ;;
    *)
      sv_opts+=("${@:1:2}")
      shift "$(($# >= 2 ? 2 : 1))"
      ;;
  esac
done
sy_parse 'deploy-to site socket-dir health-path expect-status health-protocol grace drain drain-mode keep instances' ${sv_opts[@]+"${sv_opts[@]}"}
sy_require deploy-to site socket-dir
[[ $ACTION =~ ^(start|run|stop|status)$ ]] || sy_usage "--action: start, run, stop or status, not '$ACTION'"
[[ $VERSION =~ ^[0-9a-z]{1,64}$ ]] || sy_usage "bad --version: '$VERSION'"
for v in "$INTERVAL_MS" "$HEALTH_EVERY" "$UNHEALTHY" "$MAX_RESTARTS"; do
  [[ $v =~ ^[1-9][0-9]{0,6}$ ]] || sy_usage "bad number: '$v' (--interval-ms, --health-every, --unhealthy, --max-restarts: 1 or more)"
done
[[ -z $BOOT || $BOOT == yes || $BOOT == no ]] || sy_usage "--boot: yes or no, not '$BOOT'"
sy_validate
sy_check_setup
SV_FILE=$STATE/supervisor SV_PROG=$STATE/supervisor.sh SV_LOG=$STATE/supervisor.log
SV_MARK="# switchyard-supervise $DEPLOY_TO $SITE"

# ---- start, stop, status -------------------------------------------------------------------------

# sv_args: the options a run gets (the same as this one's, but the action).
sv_args() {
  SV_ARGS=(--deploy-to "$DEPLOY_TO" --site "$SITE" --socket-dir "$SOCKET_DIR" --health-path "$HEALTH_PATH"
    --expect-status "$EXPECT_STATUS" --health-protocol "$HEALTH_PROTOCOL" --grace "$GRACE" --drain "$DRAIN" --drain-mode "$DRAIN_MODE" --keep "$KEEP"
    --version "$VERSION" --interval-ms "$INTERVAL_MS" --health-every "$HEALTH_EVERY" --unhealthy "$UNHEALTHY"
    --max-restarts "$MAX_RESTARTS" --instances "$INSTANCES")
}

# sv_install: this program as one file. Sent by the client, it is the text bash -c runs; run as a
# file, the scripts it sources. Replaced atomically: a run already started keeps its own.
sv_install() {
  local s
  {
    if [[ -n ${BASH_EXECUTION_STRING:-} ]]; then
      printf '%s\n' "$BASH_EXECUTION_STRING"
    else
      cat -- "$sy_dir/lib.sh"
      for s in prepare switch retire undo; do printf 'sy_run_%s() (\n' "$s" && cat -- "$sy_dir/$s.sh" && printf '\n)\n'; done
      cat -- "$sy_dir/supervise.sh"
    fi
  } >"$SV_PROG.tmp"
  chmod 0750 -- "$SV_PROG.tmp"
  mv -f -- "$SV_PROG.tmp" "$SV_PROG"
}

# sv_quote WORD: WORD single-quoted for cron's /bin/sh in SY_Q; % is cron's newline, refused.
sv_quote() {
  [[ $1 != *%* && $1 != *[[:cntrl:]]* ]] || sy_usage "--boot: cannot put '$1' in a crontab line (% or a control character)"
  SY_Q="'${1//\'/\'\\\'\'}'"
}

# sv_crontab LINE|'': the user's crontab without the site's line, plus LINE.
sv_crontab() {
  local cur='' rc=0 out='' l prog fd
  prog=$(command -v crontab) || sy_die 3 "--boot needs crontab (Debian: apt install cron)"
  # Two sites of one user edit one table: one at a time. flock(1) on the crontab program itself,
  # opened read-only: a lock every user can take, without a file of ours outside deployTo.
  if command -v flock >/dev/null 2>&1 && exec {fd}<"$prog"; then flock -w 30 "$fd" || sy_die 1 "could not lock the crontab for 30 s"; fi
  cur=$(exec crontab -l 2>/dev/null) || rc=$?
  ((rc <= 1)) || sy_die 1 "crontab -l failed ($rc)"
  [[ -n $1 || $cur == *"$SV_MARK"* ]] || return 0 # nothing to remove: the table is left alone
  while IFS= read -r l; do
    [[ -z $l || $l == *"$SV_MARK" ]] || out+=$l$'\n'
  done <<<"$cur"
  [[ -z $1 ]] || out+=$1$'\n'
  printf '%s' "$out" | crontab - || sy_die 1 "crontab refused the new table"
}

# sv_boot_line: the @reboot line that starts a run from the installed program, in D.
sv_boot_line() {
  local a line
  sv_quote "$DEPLOY_TO"
  line="@reboot cd $SY_Q && exec bash"
  sv_args
  for a in "$SV_PROG" --action run "${SV_ARGS[@]}"; do
    sv_quote "$a"
    line+=" $SY_Q"
  done
  sv_quote "$SV_LOG"
  SY_LINE="$line >>$SY_Q 2>&1 </dev/null $SV_MARK"
}

sv_stop() {
  sy_supervisor_state "$VERSION"
  if [[ -n $SY_SV_PID ]]; then
    kill -TERM -- "$SY_SV_PID" 2>/dev/null || true
    sy_words "$SV_FILE"
    sy_wait_gone "$SY_SV_PID" "${SY_WORDS[1]:-}" 10000 || sy_die 1 "the supervisor (pid $SY_SV_PID) did not stop within 10 s"
  fi
  rm -f -- "$SV_FILE"
}

sv_start() {
  local i
  sy_supervisor_state "$VERSION"
  if [[ $SY_SV_STATE == outdated ]]; then sv_stop; fi
  sv_install
  rm -f -- "$STATE/errored"
  if [[ $SY_SV_STATE != running ]]; then
    sv_args
    (cd -- "$DEPLOY_TO" && exec nohup setsid -- bash "$SV_PROG" --action run "${SV_ARGS[@]}") >>"$SV_LOG" 2>&1 </dev/null &
    for ((i = 0; i < 100; i++)); do
      sy_supervisor_state "$VERSION"
      [[ $SY_SV_STATE != running ]] || break
      sy_sleep_ms 20
    done
    [[ $SY_SV_STATE == running ]] || sy_die 5 "the supervisor did not start (see $SV_LOG)"
  fi
  if [[ $BOOT == yes ]]; then sv_boot_line && sv_crontab "$SY_LINE"; elif [[ $BOOT == no ]]; then sv_crontab ''; fi
  sy_emit supervisor state=running "pid=$SY_SV_PID"
}

sv_status() {
  local boot=no reason=''
  sy_supervisor_state "$VERSION"
  if command -v crontab >/dev/null 2>&1 && [[ $(exec crontab -l 2>/dev/null) == *"$SV_MARK"* ]]; then boot=yes; fi
  if [[ -f $STATE/errored ]]; then { IFS= read -r reason <"$STATE/errored" || true; } 2>/dev/null; fi
  sy_emit supervisor "state=$SY_SV_STATE" "pid=${SY_SV_PID:-none}" "boot=$boot" ${reason:+"msg=$reason"}
}

# ---- run: the loop -------------------------------------------------------------------------------

# sv_mine: the supervisor file still names this run (stop and a newer start take it away).
sv_mine() {
  sy_words "$SV_FILE"
  [[ "${SY_WORDS[0]:-} ${SY_WORDS[1]:-}" == "$$ $SV_ST" ]]
}

# sv_step NAME ARGS…: one step as a deploy runs it, its exit code in SV_RC; its lines go to the log.
sv_step() {
  local name=$1
  shift
  set +e
  "sy_run_$name" --deploy-to "$DEPLOY_TO" --site "$SITE" --socket-dir "$SOCKET_DIR" "$@" </dev/null
  SV_RC=$?
  set -e
}

# sv_cycle R AUDIT [--mark-bad]: make R live again through the deploy's own steps (prepare on R's
# own socket, health, switch, retire), as long as the live release is still the one seen.
sv_cycle() {
  local r=$1 audit=$2 mark=${3:-} env_bytes=0 rec
  local -a launch=() envs=()
  [[ -f $RELEASES/$r/.switchyard/launch ]] || { SV_RC=3 && echo "supervise: $r has no launch record (deployed by an older switchyard): cannot start it" >&2 && return 0; }
  mapfile -d '' launch <"$RELEASES/$r/.switchyard/launch"
  sv_socket_dir "${launch[@]}" || { SV_RC=3 && echo "supervise: $SV_SOCKDIR_WHY" >&2 && return 0; }
  mapfile -d '' envs <"$RELEASES/$r/.switchyard/env"
  local LC_ALL=C
  for rec in ${envs[@]+"${envs[@]}"}; do env_bytes=$((env_bytes + ${#rec} + 1)); done
  local -a eb=()
  ((env_bytes == 0)) || eb=(--env-bytes "$env_bytes")
  set +e
  sy_run_prepare --deploy-to "$DEPLOY_TO" --site "$SITE" --socket-dir "$SOCKET_DIR" --release "$r" --reuse \
    --lock-owner "supervisor pid $$ on ${HOSTNAME:-?}" --expect-live "$LIVE_R ${LIVE_W[*]}" \
    ${eb[@]+"${eb[@]}"} "${launch[@]}" <"$RELEASES/$r/.switchyard/env"
  SV_RC=$?
  set -e
  ((SV_RC == 0)) || return 0
  sv_step switch --release "$r" --instances "$INSTANCES"
  if ((SV_RC != 0)); then
    sv_step undo --release "$r" --grace "$GRACE" --instances "$INSTANCES"
    SV_RC=7
    return 0
  fi
  sv_step retire --release "$r" --grace "$GRACE" --drain "$DRAIN" --drain-mode "$DRAIN_MODE" --keep "$KEEP" --audit "$audit" --instances "$INSTANCES" ${mark:+"$mark"}
}

# sv_socket_dir LAUNCH-WORDS…: socketDir is there, or made again as setup makes it (with the
# launch record's --socket-group): under /run, a tmpfs, it is gone after every boot. 1, with
# SV_SOCKDIR_WHY saying why and what to do, when this user cannot make it.
sv_socket_dir() {
  local group='' w
  SV_SOCKDIR_WHY=''
  [[ ! -d $SOCKET_DIR ]] || return 0
  while (($# > 1)) && [[ $1 != -- ]]; do
    [[ $1 != --socket-group ]] || group=$2
    shift
  done
  if sy_make_socket_dir "$group" 2>/dev/null; then
    echo "supervise: socketDir $SOCKET_DIR was missing (emptied at boot?): made it again" >&2
    return 0
  fi
  w=$(id -un 2>/dev/null) || w=$UID
  SV_SOCKDIR_WHY="socketDir $SOCKET_DIR is missing (or not a directory) and $w cannot make it (under /run, a tmpfs, it is gone after every boot: have it made at boot, e.g. the systemd-tmpfiles line 'd $SOCKET_DIR 0750 $w ${group:-$w} -')"
  return 1
}

# sv_heal WHY: the live release is down: its standby back at once, or a new start after the backoff.
sv_heal() {
  sy_read_standby
  if [[ -n $SB_R && $SB_R != "$LIVE_R" ]] && sy_alive "$SB_PID" "$SB_ST"; then
    echo "supervise: $LIVE_R $1: switching back to the standby $SB_R" >&2
    sv_cycle "$SB_R" "supervisor: $LIVE_R $1: back to the standby $SB_R" --mark-bad
    ((SV_RC != 0)) || return 0
  fi
  sy_now
  if ((SV_LAST > 0 && SY_NOW - SV_LAST < SV_MIN_UP_MS)); then
    # down again within a second of our last start: a crash loop, so back off (PM2's min_uptime)
    SV_UNSTABLE=$((SV_UNSTABLE + 1))
    if ((SV_UNSTABLE >= MAX_RESTARTS)); then sv_errored "$1${SV_SOCKDIR_WHY:+; $SV_SOCKDIR_WHY}"; fi
    sy_sleep_ms "$SV_DELAY"
    SV_DELAY=$((SV_DELAY * 3 / 2 > 15000 ? 15000 : SV_DELAY * 3 / 2))
  else
    SV_DELAY=100 # it ran a while: at once (what a crash costs is only what was in flight)
  fi
  echo "supervise: $LIVE_R $1: starting it again" >&2
  sv_cycle "$LIVE_R" "supervisor: $LIVE_R $1: started again"
  sy_now
  SV_LAST=$SY_NOW
}

# sv_errored WHY: give up: the site is marked errored (status shows it), this run ends.
sv_errored() {
  sy_iso
  sy_write "$STATE/errored" "$SY_ISO $LIVE_R $1; $SV_UNSTABLE unstable restarts in a row: supervisor stopped"
  sy_audit supervise "release=$LIVE_R" "site=$SITE" state=errored "msg=$1; $SV_UNSTABLE unstable restarts in a row"
  echo "supervise: $LIVE_R $1 after $SV_UNSTABLE unstable restarts: giving up (errored)" >&2
  rm -f -- "$SV_FILE"
  exit 11
}

# sv_check: why the live release needs help (SV_WHY), or empty.
sv_check() {
  local i
  SV_WHY=''
  for ((i = 0; i < ${#LIVE_W[@]}; i += 2)); do
    if ! sy_alive "${LIVE_W[i]}" "${LIVE_W[i + 1]:-}"; then
      SV_WHY="died (its process ${LIVE_W[i]} is gone)"
      if ((i > 0)); then SV_WHY="died (instance $((i / 2 + 1)): its process ${LIVE_W[i]} is gone)"; fi
      return 0
    fi
  done
  SV_N=$((SV_N + 1))
  ((SV_N % HEALTH_EVERY == 0 || SV_BAD > 0)) || return 0
  for ((i = 1; i <= ${#LIVE_W[@]} / 2; i++)); do
    sy_sock "$i"
    sy_health "$LIVE_SOCK"
    [[ $SY_CODE == "$EXPECT_STATUS" ]] || break
  done
  sy_sock 1
  if [[ $SY_CODE == "$EXPECT_STATUS" ]]; then SV_BAD=0 && return 0; fi
  SV_BAD=$((SV_BAD + 1))
  ((SV_BAD < UNHEALTHY)) || SV_WHY="is unhealthy (GET $HEALTH_PATH answered $SY_CODE, $SV_BAD checks in a row)"
}

# sv_standby_due: retire the standby once its time is up, under the lock (a subshell: a refusal
# of sy_stop ends that step, not the supervisor).
sv_standby_due() {
  sy_read_standby
  [[ -n $SB_R && $SB_UNTIL =~ ^[0-9]+$ ]] && ((EPOCHSECONDS >= SB_UNTIL)) || return 0
  set +e
  (
    sy_lock_take "$SB_R" "supervisor pid $$: retiring the standby" || exit 4
    SY_ON_FAIL=sy_lock_release
    sy_retire_standby
    sy_audit retire "release=$SB_R" "site=$SITE" "msg=supervisor: the standby's time is up"
    sy_lock_release
  )
  set -e
}

sv_run() {
  sy_starttime "$$"
  SV_ST=$SY_START
  sy_supervisor_state "$VERSION"
  [[ $SY_SV_STATE != running ]] || { echo "supervise: already running as pid $SY_SV_PID" >&2 && exit 0; }
  sy_write "$SV_FILE" "$$ $SV_ST $VERSION"
  trap 'echo "supervise: stopped (pid $$)" >&2; exit 0' TERM INT HUP
  SV_DELAY=100 SV_UNSTABLE=0 SV_LAST=0 SV_N=0 SV_BAD=0 SV_MIN_UP_MS=1000 SV_SOCKDIR_WHY=''
  echo "supervise: watching $SITE in $DEPLOY_TO (pid $$, version $VERSION)" >&2
  while sv_mine; do
    if [[ -d $LOCK ]]; then
      sy_sleep_ms 100 # a deploy or restart is under way: watch closely, act after it
      continue
    fi
    sy_read_state
    sy_now
    if ((SV_LAST > 0 && SY_NOW - SV_LAST >= 30000)); then SV_DELAY=100 SV_UNSTABLE=0; fi
    sv_standby_due
    if [[ -n $LIVE_R && -n $LIVE_PID ]]; then # a files-only release runs nothing
      sv_check
      if [[ -n $SV_WHY ]]; then
        sv_heal "$SV_WHY"
        SV_BAD=0
        continue
      fi
    fi
    sy_sleep_ms "$INTERVAL_MS"
  done
}

case $ACTION in
  start) sv_start ;;
  stop)
    sv_stop
    if command -v crontab >/dev/null 2>&1; then sv_crontab ''; fi
    sy_emit supervisor state=stopped
    ;;
  status) sv_status ;;
  run) sv_run ;;
esac
