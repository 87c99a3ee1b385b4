#!/usr/bin/env bash
# lib.sh: helpers shared by the switchyard remote scripts (see docs/REMOTE-PROTOCOL.md).
#
# Usage: the client runs `bash -c '<lib.sh><script>' NAME ARGS…`; a script run as a file sources
#        it: if ! declare -F sy_emit >/dev/null; then . "${BASH_SOURCE[0]%/*}/lib.sh"; fi
#
# Defines functions and defaults only; running it does nothing.
#
# Exit codes: every code a script exits with, and which scripts use it. Each code means one thing,
# so a new failure of a script's own gets a new number (the client acts on codes: 3, 4 and 9 in
# lib/release/flow.ts).
#   0  done: every script.
#   1  unexpected failure (a command failed under set -e), or SIGTERM/SIGINT/SIGHUP (sy_init's
#      traps): every script but release.sh, which runs the steps and sets no traps of its own.
#   2  usage or bad value: every script (release.sh: also an unexpected word on stdin).
#   3  not set up (D/releases missing): prepare switch retire undo status unlock; releases/R
#      missing or already there: prepare switch; setup: a tool or the socket group is missing;
#      nginx.sh: nginx is not installed.
#   4  deploy lock held by someone else: prepare; not held by R: switch retire, unlock --release R;
#      undo: R is live but its deploy is over.
#   5  app did not start: prepare.
#   6  health check failed: prepare.
#   7  switch refused (no staged socket or pid file): switch; R is not live: retire.
#   8  kill refused (the process still serves the live socket, or that cannot be checked): retire
#      undo; undo: cannot restore the previous release.
#   9  no word from the client (stdin ended or WAIT passed): release.sh.
#   10 nginx rejected the config, or did not start or reload: nginx.sh.
#   release.sh also ends with the code of the step that ended it.
#   Not a script's own: 128+N when signal N ends bash with no trap run (KILL, the client's second
#   signal: 137; release.sh sets no traps, so TERM there: 143); the client reports its time limit
#   as 124, and a user's `session.run` command may end with anything (124: its server `timeout`).
#
# shellcheck disable=SC2034  # the option variables below are read by the scripts, not here.
set -euo pipefail

# ---- options (sy_parse fills these; defaults are the protocol's) ---------------------------------
DEPLOY_TO='' RELEASE='' SITE='' SOCKET_DIR='' SOCKET_GROUP='' SOCKET_MODE='0660'
START_TIMEOUT='30' HEALTH_PATH='/health' HEALTH_TIMEOUT='30' EXPECT_STATUS='200'
GRACE='2' DRAIN='30' KEEP='5' AUDIT='' LOCK_OWNER='' REUSE='' PACKAGE_BYTES=''
SHARED=() ENVS=() SY_CMD=()
SY_STEP='init' SY_ON_FAIL='' SY_FAILED='' SY_ERR_LINE='' SY_ERR_CMD=''

# ---- result lines and failure --------------------------------------------------------------------

# sy_emit EVENT KEY=VALUE… [msg=TEXT]: one machine-readable line on stdout.
sy_emit() {
  local line="::sy $*"
  line=${line//$'\n'/ }
  printf '%s\n' "${line//$'\r'/ }"
}

# sy_fail CODE STEP MSG…: run the registered cleanup, print the error line, exit CODE.
sy_fail() {
  local code=$1 step=$2 cleanup=$SY_ON_FAIL
  shift 2
  SY_FAILED=1 SY_ON_FAIL=''
  trap - ERR
  set +e
  if [[ -n $cleanup ]]; then "$cleanup"; fi
  sy_emit error "code=$code" "step=$step" "msg=$*"
  exit "$code"
}

# sy_die CODE MSG…: sy_fail at the current step.
sy_die() {
  local code=$1
  shift
  sy_fail "$code" "$SY_STEP" "$@"
}

sy_usage() { sy_die 2 "$@"; }

# A command failing under set -e lands here: report it as code 1, whatever its own status was.
sy_on_exit() {
  local rc=$?
  if ((rc != 0)) && [[ -z $SY_FAILED ]]; then
    sy_fail 1 "$SY_STEP" "unexpected failure (status $rc) at line ${SY_ERR_LINE:-?}: ${SY_ERR_CMD:-?}"
  fi
}

# sy_init STEP: install the traps; call once at the top of a script.
sy_init() {
  SY_STEP=$1
  # -E: the ERR trap also sees failures inside functions. It is inherited by `$(…)` too, where it
  # stops bash from exec'ing a lone program in place: so every `$(prog …)` here says `$(exec prog
  # …)`, one fork instead of two.
  set -E
  trap 'SY_ERR_LINE=$LINENO SY_ERR_CMD=$BASH_COMMAND' ERR
  trap sy_on_exit EXIT
  trap 'sy_die 1 "terminated by SIGTERM"' TERM
  trap 'sy_die 1 "terminated by SIGINT"' INT
  trap 'sy_die 1 "terminated by SIGHUP"' HUP
}

# ---- options -------------------------------------------------------------------------------------

# sy_parse 'ALLOWED NAMES…' "$@": reads --name value pairs (only the allowed names; `reuse` is a
# flag; `--` in ALLOWED lets a command follow in SY_CMD). Anything else is a usage error.
sy_parse() {
  local allowed=" $1 " opt
  shift
  while (($#)); do
    opt=$1
    if [[ $opt == -- && $allowed == *' -- '* ]]; then
      shift
      SY_CMD=("$@")
      return 0
    fi
    [[ $opt == --?* && $allowed == *" ${opt#--} "* ]] || sy_usage "unknown option or argument: $opt"
    if [[ $opt == --reuse ]]; then
      REUSE=1
      shift
      continue
    fi
    (($# >= 2)) || sy_usage "$opt needs a value"
    case $opt in
      --deploy-to) DEPLOY_TO=$2 ;;
      --release) RELEASE=$2 ;;
      --site) SITE=$2 ;;
      --socket-dir) SOCKET_DIR=$2 ;;
      --socket-group) SOCKET_GROUP=$2 ;;
      --socket-mode) SOCKET_MODE=$2 ;;
      --shared) SHARED+=("$2") ;;
      --env) ENVS+=("$2") ;;
      --start-timeout) START_TIMEOUT=$2 ;;
      --health-path) HEALTH_PATH=$2 ;;
      --health-timeout) HEALTH_TIMEOUT=$2 ;;
      --expect-status) EXPECT_STATUS=$2 ;;
      --grace) GRACE=$2 ;;
      --drain) DRAIN=$2 ;;
      --keep) KEEP=$2 ;;
      --audit) AUDIT=$2 ;;
      --lock-owner) LOCK_OWNER=$2 ;;
      --package-bytes) PACKAGE_BYTES=$2 ;;
      *) sy_usage "unknown option: $opt" ;;
    esac
    shift 2
  done
  [[ $allowed != *' -- '* ]] || sy_usage "missing: -- CMD ARG…"
}

# sy_require NAME…: each named option must have been given.
sy_require() {
  local name value
  for name in "$@"; do
    case $name in
      deploy-to) value=$DEPLOY_TO ;;
      release) value=$RELEASE ;;
      site) value=$SITE ;;
      socket-dir) value=$SOCKET_DIR ;;
      *) value=x ;;
    esac
    [[ -n $value ]] || sy_usage "missing option --$name"
  done
}

# sy_seconds NAME VALUE: "2" or "0.25" seconds → milliseconds in SY_MS.
sy_seconds() {
  [[ $2 =~ ^([0-9]{1,6})(\.([0-9]{1,3}))?$ ]] || sy_usage "--$1: not a number of seconds: $2"
  local frac="${BASH_REMATCH[3]}000"
  SY_MS=$((10#${BASH_REMATCH[1]} * 1000 + 10#${frac:0:3}))
}

# sy_abspath VALUE: an absolute path without trailing slashes in SY_PATH (relative → from $PWD).
sy_abspath() {
  local p=$1
  [[ -n $p && $p != *[[:space:]]* ]] || sy_usage "bad path (empty or with white space): '$p'"
  [[ $p == /* ]] || p=$PWD/$p
  while [[ $p == */ && $p != / ]]; do p=${p%/}; done
  SY_PATH=$p
}

SY_ID='^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'

# sy_validate: check every option given, normalise paths, set the derived paths and *_MS values.
sy_validate() {
  local p e
  if [[ -n $DEPLOY_TO ]]; then
    sy_abspath "$DEPLOY_TO"
    DEPLOY_TO=$SY_PATH
  fi
  if [[ -n $SOCKET_DIR ]]; then
    sy_abspath "$SOCKET_DIR"
    SOCKET_DIR=$SY_PATH
  fi
  [[ -z $RELEASE || $RELEASE =~ $SY_ID ]] || sy_usage "bad release id: '$RELEASE'"
  [[ -z $SITE || $SITE =~ $SY_ID ]] || sy_usage "bad site name: '$SITE'"
  [[ $SOCKET_MODE =~ ^0?[0-7]{3}$ ]] || sy_usage "bad --socket-mode: '$SOCKET_MODE'"
  [[ -z $SOCKET_GROUP || $SOCKET_GROUP =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || sy_usage "bad --socket-group: '$SOCKET_GROUP'"
  [[ $HEALTH_PATH =~ ^/[^[:space:]]*$ ]] || sy_usage "bad --health-path (must start with /): '$HEALTH_PATH'"
  [[ $EXPECT_STATUS =~ ^[1-5][0-9][0-9]$ ]] || sy_usage "bad --expect-status: '$EXPECT_STATUS'"
  [[ $KEEP =~ ^[0-9]{1,4}$ ]] || sy_usage "bad --keep: '$KEEP'"
  [[ -z $PACKAGE_BYTES || $PACKAGE_BYTES =~ ^[1-9][0-9]{0,11}$ ]] || sy_usage "bad --package-bytes: '$PACKAGE_BYTES'"
  sy_seconds start-timeout "$START_TIMEOUT"
  START_MS=$SY_MS
  sy_seconds health-timeout "$HEALTH_TIMEOUT"
  HEALTH_MS=$SY_MS
  sy_seconds grace "$GRACE"
  GRACE_MS=$SY_MS
  sy_seconds drain "$DRAIN"
  DRAIN_MS=$SY_MS
  for p in ${SHARED[@]+"${SHARED[@]}"}; do
    [[ -n $p && $p != /* && $p != *[[:cntrl:]]* ]] || sy_usage "bad --shared path (empty or absolute): '$p'"
    [[ /$p/ != */../* && /$p/ != */./* && /$p/ != *//* ]] || sy_usage "bad --shared path (., .. or //): '$p'"
    [[ $p != .switchyard && $p != .switchyard/* ]] || sy_usage "bad --shared path (reserved): '$p'"
  done
  for e in ${ENVS[@]+"${ENVS[@]}"}; do
    [[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || sy_usage "bad --env (want KEY=VALUE): '$e'"
  done
  RELEASES=$DEPLOY_TO/releases STATE=$DEPLOY_TO/.switchyard LOCK=$DEPLOY_TO/.switchyard/lock
  REL_DIR=$RELEASES/$RELEASE
  LIVE_SOCK=$SOCKET_DIR/SOCK-$SITE PREV_SOCK=$SOCKET_DIR/SOCK-$SITE.prev STAGE_SOCK=$SOCKET_DIR/SOCK-$SITE-$RELEASE
  if [[ -n $SOCKET_DIR && -n $SITE ]]; then
    p=$LIVE_SOCK.prev
    if [[ -n $RELEASE ]] && ((${#STAGE_SOCK} > ${#p})); then p=$STAGE_SOCK; fi
    ((${#p} < 108)) || sy_usage "socket path too long for a unix socket (${#p} bytes, max 107): $p"
  fi
}

# sy_check_setup: exit 3 unless setup.sh ran for DEPLOY_TO.
sy_check_setup() {
  [[ -d $RELEASES ]] || sy_fail 3 "$SY_STEP" "$RELEASES is missing: run setup first"
  [[ -d $STATE ]] || mkdir -p -- "$STATE" # setup made it: no program started on every run
}

# ---- time ----------------------------------------------------------------------------------------

# sy_now: milliseconds since the epoch in SY_NOW.
sy_now() {
  local t=${EPOCHREALTIME//[!0-9]/}
  SY_NOW=$((10#$t / 1000))
}

SY_SLEEP_FD=''

# sy_sleep_ms MS: sleep without starting a program (the poll loops call it every 0.1 s): `read -t`
# on an fd nobody writes to just times out. That fd is a new pty master whose other side nobody
# opens (no process at all), or where there is no /dev/ptmx, a pipe from `<(:)` (one fork, once).
# Opened on first use, so an app started before (prepare) does not inherit it.
sy_sleep_ms() {
  local s rc=0
  printf -v s '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
  if [[ -z $SY_SLEEP_FD ]]; then
    { exec {SY_SLEEP_FD}<>/dev/ptmx; } 2>/dev/null || exec {SY_SLEEP_FD}<> <(:)
  fi
  read -r -t "$s" -u "$SY_SLEEP_FD" _ || rc=$?
  if ((rc <= 128)); then # data or EOF, not a timeout: this fd does not block here; use the pipe
    exec {SY_SLEEP_FD}<&- {SY_SLEEP_FD}<> <(:)
    read -r -t "$s" -u "$SY_SLEEP_FD" _ || true
  fi
}

# sy_iso: the UTC time now, ISO 8601, in SY_ISO (printf's %(…)T: no `date` program).
sy_iso() {
  local TZ=UTC
  printf -v SY_ISO '%(%Y-%m-%dT%H:%M:%SZ)T' -1
}

# ---- state files ---------------------------------------------------------------------------------

# sy_words FILE: the words of FILE's first line in SY_WORDS (empty if the file is missing).
sy_words() {
  local line=''
  SY_WORDS=()
  [[ -f $1 ]] || return 0
  { IFS= read -r line <"$1" || true; } 2>/dev/null
  read -ra SY_WORDS <<<"$line"
}

# sy_read_state: LIVE_R/PID/ST and PREV_R/PID/ST from .switchyard/live and .switchyard/previous.
sy_read_state() {
  sy_words "$STATE/live"
  LIVE_R=${SY_WORDS[0]:-} LIVE_PID=${SY_WORDS[1]:-} LIVE_ST=${SY_WORDS[2]:-}
  sy_words "$STATE/previous"
  PREV_R=${SY_WORDS[0]:-} PREV_PID=${SY_WORDS[1]:-} PREV_ST=${SY_WORDS[2]:-}
}

# sy_read_pidfile: PID_PID and PID_ST of release RELEASE's latest start (empty if none).
sy_read_pidfile() {
  sy_words "$REL_DIR/.switchyard/pid"
  PID_PID=${SY_WORDS[0]:-} PID_ST=${SY_WORDS[1]:-}
}

# sy_write FILE TEXT: replace FILE atomically.
sy_write() {
  printf '%s\n' "$2" >"$1.tmp.$$"
  mv -f -- "$1.tmp.$$" "$1"
}

# sy_point_current R: current -> releases/R, atomically.
sy_point_current() {
  ln -sfn -- "releases/$1" "$DEPLOY_TO/.current.tmp"
  mv -T -- "$DEPLOY_TO/.current.tmp" "$DEPLOY_TO/current"
}

# sy_is_current R: `current` points at releases/R (-ef compares device and inode of the targets:
# no readlink program; `current` is always a link to releases/<name>, and R's directory exists
# wherever this is asked).
sy_is_current() {
  [[ -L $DEPLOY_TO/current && $DEPLOY_TO/current -ef $RELEASES/$1 ]]
}

# sy_in_use R: true if R is live, previous or current (its directory must never be deleted).
sy_in_use() {
  sy_read_state
  [[ $1 == "$LIVE_R" || $1 == "$PREV_R" ]] || sy_is_current "$1"
}

# sy_audit EVENT KEY=VALUE… [msg=TEXT]: append `ISO EVENT user=U KEY=VALUE… [msg=TEXT]` to
# .switchyard/audit.log (an empty msg= is left out).
sy_audit() {
  local line a
  sy_iso
  line="$SY_ISO $1 user=${USER:-$(id -un)}"
  shift
  for a in "$@"; do
    if [[ $a != msg= ]]; then line+=" $a"; fi
  done
  line=${line//$'\n'/ }
  printf '%s\n' "${line//$'\r'/ }" >>"$STATE/audit.log"
}

# ---- the deploy lock -----------------------------------------------------------------------------

# sy_lock_read: LOCK_TEXT (owner line, empty when free) and LOCK_R (its release).
sy_lock_read() {
  LOCK_TEXT='' LOCK_R=''
  [[ -d $LOCK ]] || return 0
  { IFS= read -r LOCK_TEXT <"$LOCK/owner" || true; } 2>/dev/null
  [[ -n $LOCK_TEXT ]] || LOCK_TEXT='(no owner recorded yet)'
  if [[ $LOCK_TEXT =~ ^release=([^[:space:]]+) ]]; then LOCK_R=${BASH_REMATCH[1]}; fi
}

# sy_lock_take R TEXT: take the lock for R, or return 1 (LOCK_TEXT then names the holder).
sy_lock_take() {
  local owner=${2:-${USER:-$(id -un)}@${HOSTNAME:-?}}
  if ! mkdir -- "$LOCK" 2>/dev/null; then
    sy_lock_read
    return 1
  fi
  sy_iso
  owner="release=$1 since=$SY_ISO $owner"
  owner=${owner//$'\n'/ }
  # Straight into the new lock directory, no rename: one short write(2), and a reader who comes
  # before it already sees "(no owner recorded yet)".
  printf '%s\n' "${owner//$'\r'/ }" >"$LOCK/owner"
}

# sy_lock_held_by R
sy_lock_held_by() {
  sy_lock_read
  [[ -n $LOCK_R && $LOCK_R == "$1" ]]
}

sy_lock_release() { rm -rf -- "$LOCK"; }

# ---- processes -----------------------------------------------------------------------------------

# sy_proc PID: PROC_STATE, PROC_PGRP and PROC_START (field 22) from /proc/PID/stat; 1 if gone.
sy_proc() {
  local line='' rest
  local -a w
  PROC_STATE='' PROC_PGRP='' PROC_START=''
  [[ $1 =~ ^[1-9][0-9]*$ ]] || return 1
  { IFS= read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
  rest=${line##*") "}
  read -ra w <<<"$rest"
  PROC_STATE=${w[0]:-} PROC_PGRP=${w[2]:-} PROC_START=${w[19]:-}
}

# sy_starttime PID: the start time of PID in SY_START (empty if gone).
sy_starttime() {
  SY_START=''
  if sy_proc "$1"; then SY_START=$PROC_START; fi
}

# sy_alive PID STARTTIME: the same process still runs (not a zombie, not a reused pid).
sy_alive() {
  [[ -n $1 && -n $2 ]] || return 1
  sy_proc "$1" || return 1
  [[ $PROC_STATE != [ZX] && $PROC_START == "$2" ]]
}

# sy_group_scan PGID: the live (non-zombie) processes of process group PGID in SY_MEMBERS; returns
# 2 if they cannot be listed. ONE grep reads every /proc/N/stat: at ~400 processes that costs
# ~13 ms of CPU against ~58 ms for a bash loop. The line is matched whole: after the last `) ` of
# the comm come STATE PPID PGRP and numbers only, so a comm holding ") S 1 PGID " cannot fake it.
sy_group_scan() {
  local out='' rc=0 f
  SY_MEMBERS=()
  out=$(exec grep -lsE "^[0-9]+ \(.*\) [^ZX] [0-9]+ $1( -?[0-9]+)*\$" /proc/[0-9]*/stat) || rc=$?
  # 1: no match; 2: an error, i.e. a process that exited while grep ran (the rest is listed).
  ((rc <= 2)) || return 2
  for f in $out; do
    f=${f#/proc/}
    SY_MEMBERS+=("${f%/stat}")
  done
}

# sy_group_alive PGID: a live (non-zombie) process is still in process group PGID. Listing it reads
# every /proc/N/stat on the server, so first ask the kernel:
# `kill -0` on the group failing with "No such process" means it is empty (any other failure,
# e.g. a member of another user, and any success, which zombies also give, go on to the scan).
sy_group_alive() {
  local err
  err=$(LC_ALL=C; kill -0 -- "-$1" 2>&1) || [[ $err != *'No such process'* ]] || return 1
  sy_group_scan "$1" || return 0 # cannot tell: sy_stop ends in its "still running" error
  ((${#SY_MEMBERS[@]} > 0))
}

# sy_owns_socket PID PATH: PID (or a process of the group PID leads) listens on the socket file
# PATH, by inode. `ss -xlpe` would say so directly but reads the fds of every process on the
# server; instead ONE `find` prints PATH's inode and the candidates' `socket:[N]` fd links, and
# `ss -xle` (no -p: cheap) says which socket inode N listens on that file inode (`ino:`; the Port
# column is N). Only a group leader can have members (a pgid keeps its pid from being reused).
sy_owns_socket() {
  local pid=$1 ino='' out line p rc=0
  local -a dirs=("/proc/$pid/fd") links=()
  if sy_proc "$pid" && [[ $PROC_PGRP == "$pid" ]]; then
    sy_group_scan "$pid" || sy_die 8 "cannot list the process group of pid $pid to check the live socket"
    for p in ${SY_MEMBERS[@]+"${SY_MEMBERS[@]}"}; do
      [[ $p == "$pid" ]] || dirs+=("/proc/$p/fd")
    done
  fi
  # PATH is the only socket-type start point (-H: followed like stat would); fd entries are
  # symlinks, not followed.
  out=$(exec find -H "$2" "${dirs[@]}" -maxdepth 1 \( -type s -printf 'ino:%i\n' \) -o \
    \( -lname 'socket:\[*' -printf '%l\n' \) 2>/dev/null) || rc=$?
  while IFS= read -r line; do
    case $line in
      ino:*) ino=${line#ino:} ;;
      socket:*) links+=("$line") ;;
    esac
  done <<<"$out"
  # find failed: fine for PATH gone (nothing to own) or a process that exited meanwhile (its fds
  # are closed), but an fd table that still exists and we could not read would hide the answer.
  ((rc <= 1)) || sy_die 8 "cannot check who serves the live socket (find exited $rc)"
  if ((rc == 1)); then
    for p in "${dirs[@]}"; do
      if [[ -e $p ]] && ! [[ -r $p && -x $p ]]; then sy_die 8 "cannot read $p to check who serves the live socket"; fi
    done
  fi
  [[ -n $ino && ${#links[@]} -gt 0 ]] || return 1
  out=$(exec ss -xle) || sy_die 8 "cannot list listening sockets with ss -xle"
  while IFS= read -r line; do
    # … LISTEN RECVQ SENDQ BINDNAME SOCKINO * 0 <-> ino:FILEINO dev:…
    [[ $line =~ [[:space:]]([0-9]+)[[:space:]]+[*][[:space:]]+[0-9]+[[:space:]].*[[:space:]]ino:${ino}([[:space:]]|$) ]] || continue
    for p in "${links[@]}"; do
      [[ $p != "socket:[${BASH_REMATCH[1]}]" ]] || return 0
    done
  done <<<"$out"
  return 1
}

# sy_running PID STARTTIME: the process, or (when it leads its group) any of its group, runs.
sy_running() {
  if sy_alive "$1" "$2"; then return 0; fi
  [[ ${SY_GROUP:-} == "$1" ]] && sy_group_alive "$1"
}

# sy_wait_gone PID STARTTIME MS: wait up to MS for sy_running to turn false.
sy_wait_gone() {
  local deadline
  sy_now
  deadline=$((SY_NOW + $3))
  while sy_running "$1" "$2"; do
    sy_now
    ((SY_NOW < deadline)) || return 1
    sy_sleep_ms 100
  done
}

# sy_stop PID STARTTIME WAIT_MS [LIVE_SOCKET]: stop the recorded process and its process group:
# TERM, wait up to WAIT_MS, KILL. Does nothing if PID is gone or is another process now (start
# time differs). With LIVE_SOCKET, exits 8 if the process serves that socket. Sets SY_SIGNAL to
# TERM, KILL or gone.
sy_stop() {
  local pid=$1 st=$2 target
  SY_SIGNAL=gone SY_GROUP=''
  sy_alive "$pid" "$st" || return 0
  [[ $PROC_PGRP != "$pid" ]] || SY_GROUP=$pid
  if [[ -n ${4:-} ]] && sy_owns_socket "$pid" "$4"; then
    sy_die 8 "refusing to stop pid $pid: it still serves the live socket $4"
  fi
  target=$pid
  [[ -z $SY_GROUP ]] || target=-$pid
  kill -TERM -- "$target" 2>/dev/null || true
  SY_SIGNAL=TERM
  sy_wait_gone "$pid" "$st" "$3" && return 0
  kill -KILL -- "$target" 2>/dev/null || true
  SY_SIGNAL=KILL
  sy_wait_gone "$pid" "$st" 5000 || sy_die 1 "pid $pid is still running after SIGKILL"
}

# sy_health SOCKET: one health request; the HTTP status (000 when none) in SY_CODE.
sy_health() {
  SY_CODE=$(exec curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$1" \
    -H "Host: $SITE" "http://localhost$HEALTH_PATH" 2>/dev/null) || true
  [[ -n $SY_CODE ]] || SY_CODE=000
}
