#!/usr/bin/env bash
# lib.sh: helpers shared by the switchyard remote scripts (see docs/REMOTE-PROTOCOL.md).
#
# Usage: the client runs `bash -c '<lib.sh><script>' NAME ARGS…`; a script run as a file sources
#        it: if ! declare -F sy_emit >/dev/null; then . "${BASH_SOURCE[0]%/*}/lib.sh"; fi
#
# Defines functions and defaults only; running it does nothing.
#
# Exit codes: every code a script exits with, and which scripts use it. Each code means one thing,
# so a new failure of a script's own gets a new number (the client acts on codes: 3, 4, 9 and 12 in
# lib/release/flow.ts).
#   0  done: every script.
#   1  unexpected failure (a command failed under set -e), or SIGTERM/SIGINT/SIGHUP (sy_init's
#      traps): every script but release.sh, which runs the steps and sets no traps of its own.
#   2  usage or bad value: every script (release.sh: also an unexpected word on stdin; prepare:
#      also a package member or shared path that would reach outside releases/R or shared/).
#   3  not set up (D/releases missing): prepare switch retire undo status unlock; releases/R
#      missing or already there: prepare switch; prepare --files-only: the app runs here (its
#      live release's process); setup: a tool or the socket group is missing; nginx.sh: nginx is
#      not installed.
#   4  deploy lock held by someone else: prepare; not held by R: switch retire, unlock --release R;
#      undo: R is live but its deploy is over.
#   5  app did not start: prepare.
#   6  health check failed: prepare.
#   7  switch refused (no staged socket or pid file): switch; R is not live: retire.
#   8  kill refused (the process still serves the live socket, or that cannot be checked): retire
#      undo; undo: cannot restore the previous release.
#   9  no word from the client (stdin ended or WAIT passed): release.sh.
#   10 nginx rejected the config, or did not start or reload: nginx.sh.
#   11 the live release is not the one --expect-live names (it changed meanwhile): prepare.
#   12 `--release @standby`, and no standby runs here (nothing changed): release.sh.
#   release.sh also ends with the code of the step that ended it.
#   Not a script's own: 128+N when signal N ends bash with no trap run (KILL, the client's second
#   signal: 137; release.sh sets no traps, so TERM there: 143); the client reports its time limit
#   as 124, and a user's `session.run` command may end with anything (124: its server `timeout`).
#
# shellcheck disable=SC2034  # the option variables below are read by the scripts, not here.
set -euo pipefail

# ---- options (sy_parse fills these; defaults are the protocol's) ---------------------------------
DEPLOY_TO='' RELEASE='' SITE='' SOCKET_DIR='' SOCKET_GROUP='' SOCKET_MODE='0660'
START_TIMEOUT='30' HEALTH_PATH='/health' HEALTH_TIMEOUT='30' EXPECT_STATUS='200' HEALTH_PROTOCOL='http'
INSTANCES='1' GRACE='2' DRAIN='30' DRAIN_MODE='signal' KEEP='5' STANDBY='0' SWITCHED_AT='' SUPERVISOR='' AUDIT='' LOCK_OWNER='' REUSE='' MARK_BAD='' PACKAGE_BYTES=''
FILES_ONLY=''
NGINX_URL='' SHELL_UP=''
SHARED=() ENVS=() SY_CMD=()
SY_STEP='init' SY_ON_FAIL='' SY_FAILED='' SY_ERR_LINE='' SY_ERR_CMD=''
SY_UMASK=027 # the scripts' own (sy_init); a step that narrows it for a file puts this one back

# ---- the steps, for the scripts that run them (release.sh, supervise.sh) ---------------------------
# Run as files, they are the scripts beside the one that sourced this (sy_dir); the client's text
# defines them again after lib.sh, each a function whose body is the script (commands.ts scriptText).
sy_run_prepare() { bash "${sy_dir:-.}/prepare.sh" "$@"; }
sy_run_switch() { bash "${sy_dir:-.}/switch.sh" "$@"; }
sy_run_retire() { bash "${sy_dir:-.}/retire.sh" "$@"; }
sy_run_undo() { bash "${sy_dir:-.}/undo.sh" "$@"; }

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
  # A second signal must not cut the cleanup short (the client's time limit TERMs this script and
  # then its process group: two TERMs): noted, not acted on. A handler, not '': what the cleanup
  # starts keeps the default dispositions.
  trap 'SY_LATE_SIGNAL=1' TERM INT HUP
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
  # Whatever the login umask (000 included): nothing we create is group-writable or reachable by
  # others (dirs 0750, files 0640); where nginx must pass, setup.sh sets the mode itself. The app
  # prepare starts inherits it too, so its socket is never connectable by others before the
  # chmod to --socket-mode (docs/REMOTE-PROTOCOL.md, "Safety").
  umask "$SY_UMASK"
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

# sy_parse 'ALLOWED NAMES…' "$@": reads --name value pairs (only the allowed names; `reuse`,
# `mark-bad` and `files-only` are flags; `--` in ALLOWED lets a command follow in SY_CMD). Anything
# else is a usage error.
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
    if [[ $opt == --reuse || $opt == --mark-bad || $opt == --files-only ]]; then
      if [[ $opt == --reuse ]]; then REUSE=1; elif [[ $opt == --mark-bad ]]; then MARK_BAD=1; else FILES_ONLY=1; fi
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
      --health-protocol) HEALTH_PROTOCOL=$2 ;;
      --expect-status) EXPECT_STATUS=$2 ;;
      --grace) GRACE=$2 ;;
      --drain) DRAIN=$2 ;;
      --drain-mode) DRAIN_MODE=$2 ;;
      --keep) KEEP=$2 ;;
      --standby) STANDBY=$2 ;;
      --switched-at) SWITCHED_AT=$2 ;;
      --instances) INSTANCES=$2 ;;
      --supervisor) SUPERVISOR=$2 ;;
      --audit) AUDIT=$2 ;;
      --lock-owner) LOCK_OWNER=$2 ;;
      --package-bytes) PACKAGE_BYTES=$2 ;;
      --nginx-url) NGINX_URL=$2 ;;
      --shell-up) SHELL_UP=$2 ;;
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
  [[ $HEALTH_PROTOCOL == http || $HEALTH_PROTOCOL == fastcgi ]] || sy_usage "bad --health-protocol (http or fastcgi): '$HEALTH_PROTOCOL'"
  # a FastCGI app is checked with cgi-fcgi (sy_health): setup refuses a host without it, doctor reports it
  [[ $HEALTH_PROTOCOL != fastcgi || $SY_TOOLS == *' cgi-fcgi'* ]] || SY_TOOLS+=' cgi-fcgi'
  [[ $KEEP =~ ^[0-9]{1,16}$ ]] || sy_usage "bad --keep: '$KEEP'" # any safe integer (keepReleases)
  [[ $STANDBY =~ ^[0-9]{1,7}$ ]] || sy_usage "bad --standby (whole seconds): '$STANDBY'"
  [[ -z $SWITCHED_AT || $SWITCHED_AT =~ ^[0-9]{1,16}$ ]] || sy_usage "bad --switched-at (epoch ms): '$SWITCHED_AT'"
  [[ $INSTANCES =~ ^[1-9][0-9]?$ ]] || sy_usage "bad --instances (1 to 99): '$INSTANCES'"
  [[ -z $SUPERVISOR || $SUPERVISOR =~ ^[0-9a-f]{8,64}$ ]] || sy_usage "bad --supervisor (a version hash): '$SUPERVISOR'"
  [[ -z $PACKAGE_BYTES || $PACKAGE_BYTES =~ ^[1-9][0-9]{0,11}$ ]] || sy_usage "bad --package-bytes: '$PACKAGE_BYTES'"
  sy_seconds start-timeout "$START_TIMEOUT"
  START_MS=$SY_MS
  sy_seconds health-timeout "$HEALTH_TIMEOUT"
  HEALTH_MS=$SY_MS
  sy_seconds grace "$GRACE"
  GRACE_MS=$SY_MS
  sy_seconds drain "$DRAIN"
  DRAIN_MS=$SY_MS
  [[ $DRAIN_MODE == signal || $DRAIN_MODE == connections ]] || sy_usage "bad --drain-mode (signal or connections): '$DRAIN_MODE'"
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
  sy_sock "$INSTANCES" # the longest names first, for the check below
  if [[ -n $SOCKET_DIR && -n $SITE ]]; then
    p=$LIVE_SOCK.prev
    if [[ -n $RELEASE ]] && ((${#STAGE_SOCK} > ${#p})); then p=$STAGE_SOCK; fi
    ((${#p} < 108)) || sy_usage "socket path too long for a unix socket (${#p} bytes, max 107): $p"
  fi
  sy_sock 1
}

# sy_check_setup: exit 3 unless setup.sh ran for DEPLOY_TO.
sy_check_setup() {
  [[ -d $RELEASES ]] || sy_fail 3 "$SY_STEP" "$RELEASES is missing: run setup first"
  [[ -d $STATE ]] || mkdir -m 0750 -- "$STATE" # setup made it: no program started on every run
}

# ---- time ----------------------------------------------------------------------------------------

# sy_now: milliseconds since the epoch in SY_NOW.
sy_now() {
  local t=${EPOCHREALTIME//[!0-9]/}
  SY_NOW=$((10#$t / 1000))
}

SY_SLEEP_FD=''

# sy_sleep_ms MS: sleep without starting a program (the poll loops call it every 20–100 ms): `read -t`
# on an fd nobody writes to just times out. That fd is a new pty master whose other side nobody
# opens (no process at all), or where there is no /dev/ptmx, a pipe from `<(:)` (one fork, once).
# Opened on first use, so an app started before (prepare) does not inherit it.
sy_sleep_ms() {
  local s rc=0
  sy_heartbeat
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

# sy_iso_us: SY_ISO to the microsecond (2026-12-01T11:44:08.123456Z): fixed width, so two of them
# compare as strings, also within one second. EPOCHREALTIME's radix follows the locale.
sy_iso_us() {
  local TZ=UTC t=${EPOCHREALTIME//,/.}
  printf -v SY_ISO '%(%Y-%m-%dT%H:%M:%S)T.%sZ' "${t%.*}" "${t#*.}"
}

# ---- splitting text ------------------------------------------------------------------------------
# Text already in a variable is split by word splitting, not fed back through a here-string:
# bash 5.1+ passes a small here-string through a pipe, and `read` and `mapfile` take a pipe one
# byte per read(2) (a 250-line `ss` listing: 31,000 system calls).

# sy_split TEXT [SEPARATORS]: TEXT's words in SY_SPLIT, split on SEPARATORS (default blanks and
# newlines; $'\n': its non-empty lines, spaces and backslashes kept), no globbing.
sy_split() {
  local - IFS=${2:-$' \t\n'}
  set -f
  # shellcheck disable=SC2206 # splitting is the point; globbing is off
  SY_SPLIT=($1)
}

# ---- socketDir -----------------------------------------------------------------------------------

# sy_make_socket_dir [GROUP]: SOCKET_DIR made when it is missing (setup; the supervisor after a
# boot emptied /run), whatever the umask: 0755, like each directory made above it, so nginx's
# workers reach the sockets; with a socket group, socketDir itself 0750 and that group. An
# existing socketDir keeps its mode. 1 when it cannot be made (a file in its place included).
sy_make_socket_dir() {
  [[ ! -d $SOCKET_DIR ]] || return 0
  (umask 022 && exec mkdir -p -- "$SOCKET_DIR") || return 1
  [[ -z ${1:-} ]] || { chgrp -- "$1" "$SOCKET_DIR" && chmod 0750 -- "$SOCKET_DIR"; }
}

# ---- state files ---------------------------------------------------------------------------------

# sy_words FILE: the words of FILE's first line in SY_WORDS (empty if the file is missing).
sy_words() {
  SY_WORDS=()
  [[ -f $1 ]] || return 0
  # straight from the file, read(2) in blocks (a here-string would be a pipe: see sy_split)
  { read -ra SY_WORDS <"$1" || true; } 2>/dev/null
}

# The state files hold one `PID ST` pair per instance of the app (app.instances; instance 1 first):
# .switchyard/live and .switchyard/previous `R PID ST [PID ST]…`, releases/R/.switchyard/pid
# `PID ST [PID ST]…`. LIVE_W, PREV_W and PID_W keep every pair; LIVE_PID/ST, PREV_PID/ST and
# PID_PID/ST are instance 1's, or instance K's after sy_pick K.
# sy_read_state: LIVE_R/PID/ST and PREV_R/PID/ST from .switchyard/live and .switchyard/previous.
sy_read_state() {
  sy_words "$STATE/live"
  LIVE_W=(${SY_WORDS[@]+"${SY_WORDS[@]:1}"})
  LIVE_R=${SY_WORDS[0]:-} LIVE_PID=${SY_WORDS[1]:-} LIVE_ST=${SY_WORDS[2]:-}
  sy_words "$STATE/previous"
  PREV_W=(${SY_WORDS[@]+"${SY_WORDS[@]:1}"})
  PREV_R=${SY_WORDS[0]:-} PREV_PID=${SY_WORDS[1]:-} PREV_ST=${SY_WORDS[2]:-}
}

# sy_read_pidfile: PID_PID and PID_ST of release RELEASE's latest start (empty if none).
sy_read_pidfile() {
  sy_words "$REL_DIR/.switchyard/pid"
  PID_W=(${SY_WORDS[@]+"${SY_WORDS[@]}"})
  PID_PID=${SY_WORDS[0]:-} PID_ST=${SY_WORDS[1]:-}
}

# sy_sock K: instance K's socket names: LIVE_SOCK (SOCK-S; SOCK-S@K from the second on),
# PREV_SOCK (its .prev) and STAGE_SOCK (its name while R is staged: <live>-R, the name it binds).
sy_sock() {
  LIVE_SOCK=$SOCKET_DIR/SOCK-$SITE
  if (($1 > 1)); then LIVE_SOCK+=@$1; fi
  PREV_SOCK=$LIVE_SOCK.prev STAGE_SOCK=$LIVE_SOCK-$RELEASE
}

# sy_pick K: instance K's sockets, and its pairs of the state read (sy_read_state, sy_read_pidfile).
sy_pick() {
  local i=$((2 * $1 - 2))
  sy_sock "$1"
  LIVE_PID=${LIVE_W[i]:-} LIVE_ST=${LIVE_W[i + 1]:-}
  PREV_PID=${PREV_W[i]:-} PREV_ST=${PREV_W[i + 1]:-}
  PID_PID=${PID_W[i]:-} PID_ST=${PID_W[i + 1]:-}
}

# sy_write FILE TEXT: replace FILE atomically.
sy_write() {
  printf '%s\n' "$2" >"$1.tmp.$$"
  mv -f -- "$1.tmp.$$" "$1"
}

# A release's own marks, in releases/R/.switchyard/: live-at (when it first went live, by this
# host's clock: switch.sh) and bad (rolled back from: retire.sh --mark-bad). A plain rollback never
# picks a bad release. Order is by live-at, never by name: the deploying machine's clock may be off.
# sy_release_state R: SY_RSTATE current|bad|standby|previous|good|failed|preparing (after
# sy_read_state; standby: the previous one, still running: retire.sh --standby); a
# release from before live-at existed counts as previous when the state file says so.
sy_release_state() {
  local m=$RELEASES/$1/.switchyard
  if [[ $1 == "$LIVE_R" ]]; then SY_RSTATE=current
  elif [[ -e $m/bad ]]; then SY_RSTATE=bad
  elif [[ $1 == "$PREV_R" ]]; then
    SY_RSTATE=previous
    sy_read_standby
    if [[ $SB_R == "$1" ]] && sy_alive "$SB_PID" "$SB_ST"; then SY_RSTATE=standby; fi
  elif [[ ! -e $m/live-at ]]; then
    SY_RSTATE=failed # never went live; preparing while its deploy holds the lock (after sy_lock_read)
    [[ $1 != "${LOCK_R:-}" ]] || SY_RSTATE=preparing
  else SY_RSTATE=good
  fi
}

# sy_live_at R: SY_LIVE_AT, when R first went live (ISO, this host's clock), or empty.
sy_live_at() {
  SY_LIVE_AT=''
  if [[ -e $RELEASES/$1/.switchyard/live-at ]]; then { IFS= read -r SY_LIVE_AT <"$RELEASES/$1/.switchyard/live-at" || true; } 2>/dev/null; fi
  [[ $SY_LIVE_AT =~ ^[0-9TZ:.-]{1,40}$ ]] || SY_LIVE_AT=''
}

# sy_our_releases: SY_OURS, switchyard's own releases (a real directory named like the client's
# release ids, RELEASE_ID in lib/remote/commands.ts, holding .switchyard/release.json), oldest first.
# A hand-made backup or copy under releases/ is never counted, listed or touched.
sy_our_releases() {
  local d name dirs
  SY_OURS=()
  # The glob is already sorted (byte order under LC_ALL=C), so no subshell and no `sort`.
  local LC_ALL=C
  shopt -s nullglob
  dirs=("$RELEASES"/*/)
  shopt -u nullglob
  for d in ${dirs[@]+"${dirs[@]}"}; do
    name=${d%/}
    name=${name##*/}
    d=$RELEASES/$name
    if [[ $name =~ $SY_RELEASE_ID && ! -L $d && ! -L $d/.switchyard && -f $d/.switchyard/release.json ]]; then SY_OURS+=("$name"); fi
  done
}

# The standby (retire.sh --standby): `R PID ST UNTIL` in .switchyard/standby, the previous release
# kept running after a deploy until the epoch second UNTIL, on the socket SOCK-S.prev links to,
# for an instant rollback (prepare.sh). The supervisor retires it at UNTIL, the next deploy if none.
# sy_read_standby: SB_R, SB_PID, SB_ST, SB_UNTIL (empty when none).
sy_read_standby() {
  sy_words "$STATE/standby"
  SB_R=${SY_WORDS[0]:-} SB_PID=${SY_WORDS[1]:-} SB_ST=${SY_WORDS[2]:-} SB_UNTIL=${SY_WORDS[3]:-}
}

# sy_retire_standby: stop the standby unless it is live again (pid, start time and, through
# sy_stop, the live socket's inode: never what serves), and forget it. The lock must be held.
sy_retire_standby() {
  sy_read_standby
  [[ -n $SB_R ]] || return 0
  sy_read_state
  if [[ "$SB_PID $SB_ST" != "$LIVE_PID $LIVE_ST" ]]; then
    sy_stop "$SB_PID" "$SB_ST" "$DRAIN_MS" "$LIVE_SOCK"
    sy_emit retired "release=$SB_R" "pid=$SB_PID" "signal=$SY_SIGNAL" standby=ended
  fi
  rm -f -- "$STATE/standby"
}

# The supervisor (supervise.sh): `PID ST VERSION` in .switchyard/supervisor while it runs;
# .switchyard/errored (`ISO reason`) once it gave up. sy_supervisor_state VERSION: SY_SV_STATE
# running|outdated (runs, another version; an empty VERSION: any)|errored|stopped, SY_SV_PID its
# pid or empty.
sy_supervisor_state() {
  sy_words "$STATE/supervisor"
  SY_SV_PID=${SY_WORDS[0]:-}
  if sy_alive "$SY_SV_PID" "${SY_WORDS[1]:-}"; then
    SY_SV_STATE=running
    [[ -z $1 || ${SY_WORDS[2]:-} == "$1" ]] || SY_SV_STATE=outdated
    return 0
  fi
  SY_SV_PID='' SY_SV_STATE=stopped
  [[ ! -f $STATE/errored ]] || SY_SV_STATE=errored
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

# ---- safety: nothing outside deployTo -------------------------------------------------------------

# The client's release ids (RELEASE_ID in lib/remote/commands.ts): only these are ever pruned.
SY_RELEASE_ID='^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z(-[0-9a-f]{1,12})?$'

# sy_check_parents BASE REL WHAT: every component of BASE/REL above the last one that exists is a
# real directory, none a symlink ([[ -L ]] first: nothing followed), so a mkdir, rm or ln of
# BASE/REL stays inside BASE. REL is clean ('/'-separated, no `.`, `..` or empty component).
# Otherwise exits 2: "WHAT: PATH is a symlink (to TARGET) …" or "… not a directory".
sy_check_parents() {
  local dir=$1 rest=$2 to
  while [[ $rest == */* ]]; do
    dir+=/${rest%%/*}
    rest=${rest#*/}
    if [[ -L $dir ]]; then
      to=$(exec readlink -- "$dir") || true
      sy_die 2 "$3: $dir is a symlink (to $to): refusing to follow it out of $1"
    fi
    [[ -e $dir ]] || return 0
    [[ -d $dir ]] || sy_die 2 "$3: $dir is not a directory"
  done
}

# sy_check_package FILE LIST: exits 2 unless every member of the tar FILE lands inside the
# directory it is unpacked into, whatever the tar: only files, directories and symlinks; names
# relative, without `.`, `..` or empty components (one leading `./` is fine); no member under a
# symlink of the package (`l -> /x` then `l/f` or `l/`, in any order). The listing (-P: names as
# stored, not as tar would fix them; C quoting: one line a member, the name the first "…") goes
# to LIST and is read by awk and grep only (a bash loop over 100 000 lines takes seconds); exits 1 if FILE
# does not list. FILE is a plain tar or a .tar.gz: GNU tar tells them apart by their first bytes
# (a small upload comes plain: no gzip process to start, here or at the unpack, which reads the
# same file the same way). Under LC_ALL=C (the caller's or set here: a byte is a character).
# With HAVE LINKS BYTES SUMS BASE (prepare.sh --delta), the same awk also checks the list of
# files to hard-link from release BASE: BYTES long, each one a name the host offered (HAVE: `SHA
# MODE PATH` lines), once; and writes their `SHA  PATH` lines, as the host had them, into SUMS
# (the new manifest).
sy_check_package() {
  local c='([^"\\/]|\\.)+' q='"([^"\\]|\\.)*"' line name ch bad='' found listed=1
  local at_state='^l[^"]*"(\./)?\.switchyard(/|")' # a symlink at or below .switchyard/
  local d2='[0-9][0-9]' # no {n} intervals: an older mawk has none
  local head="^[-dl][^ ]* +[0-9]+/[0-9]+ +[0-9]+ $d2$d2-$d2-$d2 $d2:$d2:$d2 "
  local -x LC_ALL=C
  # a package that does not list is said after the links' check: a bad list (2) comes first
  tar -tvf "$1" -P --quoting-style=c --numeric-owner --full-time >"$2" || listed=''
  # ONE awk over the listing: the first member that is not clean (line 1 of its output), the first
  # with a . or .. (line 2), and every symlink's line into LIST.links; with HAVE and LINKS first,
  # the first link not offered or listed twice (line 3). The patterns go in through ENVIRON: -v
  # would take their backslashes as escapes.
  found=$(SY_RE_CLEAN="$head\"(\\./|(\\./)?$c(/$c)*/?)\"( -> $q)?\$" \
    SY_RE_DOTS="^[^\"]*\"(($c/)*\\.\\.(/|\")|($c/)+\\.(/|\"))" exec awk -v links="$2.links" -v want="${5:-}" -v sums="${6:-}" '
    BEGIN { clean = ENVIRON["SY_RE_CLEAN"]; dots = ENVIRON["SY_RE_DOTS"]; printf "" > links; delta = ARGC == 4 }
    delta && FILENAME == ARGV[1] { p = $0; sub(/^[^ ]+ [^ ]+ /, "", p); ok[p] = substr($0, 1, 64); next }
    delta && FILENAME == ARGV[2] {
      n += length($0) + 1
      if (!n3) { if (!($0 in ok) || ($0 in seen)) { n3 = 1; b3 = "not offered, or twice: " $0 } else { seen[$0] = 1; print ok[$0] "  " $0 > sums } }
      next
    }
    !n1 && $0 !~ clean { n1 = 1; b1 = $0 }
    !n2 && $0 ~ dots { n2 = 1; b2 = $0 }
    /^l/ { print > links }
    END { if (delta && !n3 && n != want) b3 = "the list has " n " bytes, not " want; print "1" b1; print "2" b2; print "3" b3 }
  ' ${3:+"$3" "$4"} "$2") || sy_die 1 "cannot read the package listing $2"
  [[ $found == 1*$'\n'2*$'\n'3* ]] || sy_die 1 "cannot read the package listing $2"
  bad=${found#*$'\n'3}
  [[ -z $bad ]] || sy_die 2 "refusing the upload: a file to link from ${7:-} is ${bad:0:300}"
  [[ -n $listed ]] || sy_die 1 "the package did not unpack into $REL_DIR (it does not list as a tar or .tar.gz)"
  bad=${found%%$'\n'*} bad=${bad#1}
  [[ -z $bad ]] || sy_die 2 "refusing the package: a member that is not a file, directory or symlink, or whose name is absolute or not clean: $bad"
  bad=${found#*$'\n'2} bad=${bad%%$'\n'3*}
  [[ -z $bad ]] || sy_die 2 "refusing the package: a member with a . or .. in its name: $bad"
  # One pattern per symlink: any member named below it. And .switchyard/ holds the app log and pid
  # file the scripts write: no symlink of the package there (checked on the symlinks' lines, in
  # listing order: the first one is named, as grep -m1 did).
  while IFS= read -r line; do
    if [[ $line =~ $at_state ]]; then
      bad=$line # said after the loop: its stdout is the pattern file
      break
    fi
    [[ $line =~ ^[^\"]*\"(([^\"\\]|\\.)*)\" ]] || continue
    name=${BASH_REMATCH[1]#./}
    name=${name//\\/\\\\}
    for ch in . '[' ']' '(' ')' '*' + '?' '{' '}' '|' '^' '$'; do name=${name//"$ch"/\\"$ch"}; done
    printf '%s\n' "^[^\"]*\"(\\./)?$name/"
  done <"$2.links" >"$2.below"
  [[ -z $bad ]] || sy_die 2 "refusing the package: a symlink at or below .switchyard/: $bad"
  if [[ -s $2.below ]]; then
    sy_grep_first -E -f "$2.below" "$2"
    [[ -z $SY_FIRST ]] || sy_die 2 "refusing the package: a member below a symlink of the package: $SY_FIRST"
  fi
}

# sy_grep_first GREP-ARGS…: the first line grep matches in SY_FIRST (empty: none); grep failing
# otherwise (status 2): exit 1.
sy_grep_first() {
  local rc=0
  SY_FIRST=$(exec grep -m1 "$@") || rc=$?
  ((rc <= 1)) || sy_die 1 "grep failed (status $rc) reading the package listing"
}

# ---- the deploy lock -----------------------------------------------------------------------------

# sy_lock_read: LOCK_TEXT (owner line, empty when free; with ` (heartbeat N s ago)` when the lock
# has one) and LOCK_R (its release).
sy_lock_read() {
  local hb=''
  LOCK_TEXT='' LOCK_R=''
  [[ -d $LOCK ]] || return 0
  { IFS= read -r LOCK_TEXT <"$LOCK/owner" || true; } 2>/dev/null
  [[ -n $LOCK_TEXT ]] || LOCK_TEXT='(no owner recorded yet)'
  if [[ $LOCK_TEXT =~ ^release=([^[:space:]]+) ]]; then LOCK_R=${BASH_REMATCH[1]}; fi
  { IFS= read -r hb <"$LOCK/heartbeat" || true; } 2>/dev/null
  if [[ $hb =~ ^[0-9]{1,12}$ ]]; then LOCK_TEXT+=" (heartbeat $((EPOCHSECONDS - hb)) s ago)"; fi
}

# The deploy lock's heartbeat: the epoch seconds in lock/heartbeat, written while a client that
# holds the lock is connected (its waits call sy_heartbeat; release.sh between words). A lock
# whose heartbeat stopped has lost its deploy, whichever machine ran it (lib/release/lock.ts).
SY_HB='' SY_HB_AT=0
sy_heartbeat() {
  [[ -n $SY_HB ]] && ((EPOCHSECONDS - SY_HB_AT >= 5)) || return 0
  SY_HB_AT=$EPOCHSECONDS
  { printf '%s\n' "$EPOCHSECONDS" >"$LOCK/heartbeat"; } 2>/dev/null || true
}

# sy_lock_take R TEXT: take the lock for R, or return 1 (LOCK_TEXT then names the holder).
sy_lock_take() {
  local owner=${2:-${USER:-$(id -un)}@${HOSTNAME:-?}}
  if ! mkdir -m 0750 -- "$LOCK" 2>/dev/null; then
    sy_lock_read
    return 1
  fi
  sy_iso
  owner="release=$1 since=$SY_ISO $owner"
  owner=${owner//$'\n'/ }
  # Straight into the new lock directory, no rename: one short write(2), and a reader who comes
  # before it already sees "(no owner recorded yet)".
  printf '%s\n' "${owner//$'\r'/ }" >"$LOCK/owner"
  # a files-only host (--files-only: it runs no app) switches no socket: nothing to share there
  if [[ -n $SOCKET_DIR && -n $SITE && -z $FILES_ONLY ]] && ! sy_socket_lock_take "$owner"; then
    rm -rf -- "$LOCK"
    return 1
  fi
  SY_HB=1 SY_HB_AT=0
  sy_heartbeat
}

# sy_socket_lock_take TEXT: the live socket is what two environments (two deployTo) may name
# together; its own mkdir lock beside it lets one of them at a time switch it. Ours again when
# its owner is this deployTo. The deploy lock records where it is, for sy_lock_release.
sy_socket_lock_take() {
  local dir=$LIVE_SOCK.lock holder=''
  # recorded first: a TERM between the mkdir and the owner line leaves nothing unlock cannot find
  printf '%s\n' "$dir" >"$LOCK/socket"
  if ! mkdir -m 0750 -- "$dir" 2>/dev/null; then
    { IFS= read -r holder <"$dir/owner" || true; } 2>/dev/null
    if [[ $holder != "deploy_to=$DEPLOY_TO "* ]]; then
      LOCK_TEXT="the live socket $LIVE_SOCK is being deployed by another environment: ${holder:-(no owner recorded yet)}"
      rm -f -- "$LOCK/socket"
      return 1
    fi
  fi
  printf 'deploy_to=%s %s\n' "$DEPLOY_TO" "$1" >"$dir/owner"
}

# sy_lock_held_by R
sy_lock_held_by() {
  sy_lock_read
  [[ -n $LOCK_R && $LOCK_R == "$1" ]] || return 1
  SY_HB=1 # ours to keep alive while this step waits
}

# sy_lock_release: the deploy lock, and the live socket's lock when this deployTo holds it.
sy_lock_release() {
  local sock='' holder=''
  local -a dirs=("$LOCK")
  SY_HB=''
  { IFS= read -r sock <"$LOCK/socket" || true; } 2>/dev/null
  if [[ $sock == /*/SOCK-*.lock && -d $sock && ! -L $sock ]]; then
    { IFS= read -r holder <"$sock/owner" || true; } 2>/dev/null
    # ours, or made by us and stopped before its owner line (we recorded it before the mkdir)
    if [[ $holder == "deploy_to=$DEPLOY_TO "* || ( -z $holder && ! -e $sock/owner ) ]]; then dirs=("$sock" "$LOCK"); fi
  fi
  rm -rf -- "${dirs[@]}" # one rm, the socket's lock first (rm takes them in order)
}

# ---- processes -----------------------------------------------------------------------------------

# sy_proc PID: PROC_STATE, PROC_PGRP and PROC_START (field 22) from /proc/PID/stat; 1 if gone.
sy_proc() {
  local line='' rest
  PROC_STATE='' PROC_PGRP='' PROC_START=''
  [[ $1 =~ ^[1-9][0-9]*$ ]] || return 1
  { IFS= read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
  rest=${line##*") "}
  sy_split "$rest"
  PROC_STATE=${SY_SPLIT[0]:-} PROC_PGRP=${SY_SPLIT[2]:-} PROC_START=${SY_SPLIT[19]:-}
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
  sy_split "$out" $'\n'
  for line in "${SY_SPLIT[@]}"; do
    case $line in
      ino:*) ino=${line#ino:} ;;
      socket:*) links+=("$line") ;;
    esac
  done
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
  sy_split "$out" $'\n'
  for line in "${SY_SPLIT[@]}"; do
    # … LISTEN RECVQ SENDQ BINDNAME SOCKINO * 0 <-> ino:FILEINO dev:…
    [[ $line =~ [[:space:]]([0-9]+)[[:space:]]+[*][[:space:]]+[0-9]+[[:space:]].*[[:space:]]ino:${ino}([[:space:]]|$) ]] || continue
    for p in "${links[@]}"; do
      [[ $p != "socket:[${BASH_REMATCH[1]}]" ]] || return 0
    done
  done
  return 1
}

# sy_running PID STARTTIME: the process, or (when it leads its group) any of its group, runs.
sy_running() {
  if sy_alive "$1" "$2"; then return 0; fi
  [[ ${SY_GROUP:-} == "$1" ]] && sy_group_alive "$1"
}

# sy_poll STARTED_MS SLOW_MS: the next poll's wait into SY_POLL: 20 ms in the first second of a
# wait (an app starts or exits in ~100 ms: a 100 ms poll would add up to that to every deploy),
# SLOW_MS after.
sy_poll() {
  SY_POLL=$2
  if ((SY_NOW - $1 < 1000)); then SY_POLL=20; fi
}

# sy_wait_gone PID STARTTIME MS: wait up to MS for sy_running to turn false.
sy_wait_gone() {
  local deadline started
  sy_now
  started=$SY_NOW deadline=$((SY_NOW + $3))
  while sy_running "$1" "$2"; do
    sy_now
    ((SY_NOW < deadline)) || return 1
    sy_poll "$started" 100
    sy_sleep_ms "$SY_POLL"
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

# ---- the old listener: what it can still lose (retire) -------------------------------------------
# After switch.sh's rename no new connection reaches the old release's listener; what it can still
# lose is what the kernel shows: the connections in its accept queue (`ss -xl` Recv-Q) and, for an
# app that exits at once on SIGTERM, the connections it accepted and has not closed (`ss -x`
# ESTAB). Both keep the listener's bind name (SOCK-<site>-<R>) and, with -e, the socket file's
# inode (`ino:`), whatever the file is called now.

# Queue empty this long (polled every 10 ms: 3 polls) before the old listener counts as drained.
SY_SETTLE_MS=20

# sy_listener_scan INO BIND [queue]: ONE `ss -xae src BIND` (`-xle` with `queue`: listeners only)
# for the listening unix socket bound as BIND whose file has inode INO (INO empty: the one socket
# bound as BIND, a release's own name). SY_LQ: its accept queue (Recv-Q), empty when ss does not
# list it; SY_LCONN: the connections it accepted that are still open (0 with `queue`). Returns 1,
# SY_WHY saying why, when ss fails or prints no inodes, or (INO empty) two listeners have that name.
sy_listener_scan() {
  local out='' line rc=0 opt=-xae
  SY_LQ='' SY_LCONN=0 SY_WHY=''
  [[ ${3:-} != queue ]] || opt=-xle
  out=$(exec ss "$opt" src "$2" 2>/dev/null) || rc=$?
  if ((rc != 0)); then
    SY_WHY="ss $opt failed (exit $rc)"
    return 1
  fi
  # u_str LISTEN RECVQ SENDQ BIND PORT * 0 <-> ino:INO dev:…; an accepted one: ESTAB, same ino:.
  sy_split "$out" $'\n'
  for line in "${SY_SPLIT[@]}"; do
    [[ ( -z $1 || $line == *" ino:$1 "* ) && $line =~ ^[^[:space:]]+[[:space:]]+(LISTEN|ESTAB)[[:space:]]+([0-9]+)[[:space:]] ]] || continue
    if [[ ${BASH_REMATCH[1]} == LISTEN ]]; then
      if [[ -n $SY_LQ ]]; then
        SY_WHY="more than one listener bound as $2"
        return 1
      fi
      SY_LQ=${BASH_REMATCH[2]}
    else
      SY_LCONN=$((SY_LCONN + 1))
    fi
  done
  if [[ -z $SY_LQ && $out == *[[:space:]]LISTEN[[:space:]]* && $out != *" ino:"* ]]; then
    SY_WHY='ss gives no inode (ino:) for unix sockets'
    return 1
  fi
}

# sy_queue_wait INO BIND MAX_MS [SINCE_MS]: wait until the accept queue of that listener
# (sy_listener_scan) has been empty for SY_SETTLE_MS, one `ss` every 10 ms, at most MAX_MS. With
# SINCE_MS (when the listener's name was renamed away: nothing new can reach it after), an empty
# queue at a look SY_SETTLE_MS or more after it is settled too: a connect that could still land is
# one under way at the rename, which two looks SY_SETTLE_MS apart would not see either; so when
# the other hosts kept this one waiting after its switch, one `ss`. SY_QUEUE: empty;
# closed (the listener went away meanwhile: nothing can be queued); pending (MAX_MS ran out with
# SY_LQ connections queued); unknown (ss cannot tell, SY_WHY says why: wait a timer instead).
# SY_QMAX: the longest queue seen.
sy_queue_wait() {
  local deadline wait zero=${4:-}
  SY_QUEUE=unknown SY_QMAX=0
  sy_now
  deadline=$((SY_NOW + $3))
  while sy_listener_scan "$1" "$2" queue; do
    sy_now
    if [[ -z $SY_LQ ]]; then
      if [[ $SY_QUEUE == unknown ]]; then SY_WHY='ss shows no queue for the old socket'; else SY_QUEUE=closed; fi
      return 0
    fi
    SY_QUEUE=pending
    ((SY_LQ <= SY_QMAX)) || SY_QMAX=$SY_LQ
    if ((SY_LQ > 0)); then
      zero=''
    else
      [[ -n $zero ]] || zero=$SY_NOW
      if ((SY_NOW - zero >= SY_SETTLE_MS)); then
        SY_QUEUE=empty
        return 0
      fi
    fi
    ((SY_NOW < deadline)) || return 0
    wait=10
    if [[ -n $zero ]] && ((zero + SY_SETTLE_MS - SY_NOW < wait)); then wait=$((zero + SY_SETTLE_MS - SY_NOW)); fi
    sy_sleep_ms $((deadline - SY_NOW < wait ? deadline - SY_NOW : wait))
  done
  SY_QUEUE=unknown
}

# sy_conn_wait INO BIND MAX_MS: wait until no connection that listener accepted is still open
# (sy_listener_scan), one `ss` every 20 ms, at most MAX_MS. SY_CONNS: closed; open (MAX_MS ran
# out with SY_LCONN open); unknown (ss cannot tell: SY_WHY).
sy_conn_wait() {
  local deadline
  SY_CONNS=unknown
  sy_now
  deadline=$((SY_NOW + $3))
  while sy_listener_scan "$1" "$2"; do
    sy_now
    SY_CONNS=open
    if ((SY_LCONN == 0)); then
      SY_CONNS=closed
      return 0
    fi
    ((SY_NOW < deadline)) || return 0
    sy_sleep_ms $((deadline - SY_NOW < 20 ? deadline - SY_NOW : 20))
  done
  SY_CONNS=unknown
}

# sy_old_listener_wait OLD_R [INO]: before retire stops release OLD_R's process (the socket .prev
# links to is its listener; undo gives INO, the inode its socket file had before undo renamed the
# old one back over it): wait, at most GRACE_MS, until its accept queue has been empty for
# SY_SETTLE_MS; with DRAIN_MODE connections then, at most DRAIN_MS, until every connection it
# accepted is closed. Where ss cannot tell (no ss, no inodes, the socket not listed), wait the
# full grace instead and say so on stderr (the client shows it). One `ss` per poll; first one
# `stat` when OLD_R is the live release too (a restart: both processes bound the same name). With
# --switched-at (SWITCHED_AT: release.sh says when its switch step ended), sy_queue_wait counts the
# quiet time from then. SY_WAIT_FIELDS for the retired line: `waited_ms=N queue=empty|closed|pending|timer
# [queued=MAX] [connections=closed|open|timer]` (queued: the longest queue seen, when watched;
# timer: not watched, the grace waited instead, or none with --grace 0).
sy_old_listener_wait() {
  local bind=$LIVE_SOCK-$1 start ino=${2:-} why='' left # instance K's after sy_pick K
  SY_QUEUE=timer SY_CONNS=timer
  sy_now
  start=$SY_NOW
  if ((GRACE_MS > 0)) || [[ $DRAIN_MODE == connections ]]; then
    if ! command -v ss >/dev/null 2>&1; then
      why='no ss on PATH'
    elif [[ -n ${2+set} ]]; then
      [[ $ino =~ ^[0-9]+$ ]] || why="cannot read the inode of $1's socket"
    elif [[ ! -S $PREV_SOCK || $PREV_SOCK -ef $LIVE_SOCK ]]; then
      why="no old socket at $PREV_SOCK"
    elif [[ $1 == "$RELEASE" ]]; then
      # the same release started again (a restart): two processes bound the same name, so the
      # inode tells the old one's listener; any other release's bind name is its own alone
      ino=$(exec stat -c %i -- "$PREV_SOCK" 2>/dev/null) || ino=''
      [[ $ino =~ ^[0-9]+$ ]] || why="cannot read the inode of $PREV_SOCK"
    fi
  fi
  if ((GRACE_MS > 0)); then
    SY_QUEUE=unknown
    if [[ -z $why ]]; then
      sy_queue_wait "$ino" "$bind" "$GRACE_MS" "$SWITCHED_AT"
      why=$SY_WHY
    fi
    if [[ $SY_QUEUE == unknown ]]; then
      echo "$SY_STEP: $why: waiting the full grace of ${GRACE}s" >&2
      sy_now
      left=$((start + GRACE_MS - SY_NOW))
      ((left <= 0)) || sy_sleep_ms "$left"
      SY_QUEUE=timer
    elif [[ $SY_QUEUE == pending ]]; then
      echo "$SY_STEP: $SY_LQ connection(s) still queued on the old socket after the grace of ${GRACE}s: stopping it anyway" >&2
    fi
  fi
  if [[ $DRAIN_MODE == connections ]]; then
    SY_CONNS=unknown
    if [[ -z $why ]]; then
      sy_conn_wait "$ino" "$bind" "$DRAIN_MS"
      why=$SY_WHY
    fi
    if [[ $SY_CONNS == unknown ]]; then
      # the timer, as for the queue (said once: the queue's fallback already waited it in full)
      if [[ $SY_QUEUE != timer ]] || ((GRACE_MS == 0)); then
        echo "retire: $why: cannot see the old release's open connections: waiting the full grace of ${GRACE}s" >&2
        sy_now
        left=$((start + GRACE_MS - SY_NOW))
        ((left <= 0)) || sy_sleep_ms "$left"
      fi
      SY_CONNS=timer
    elif [[ $SY_CONNS == open ]]; then
      echo "retire: $SY_LCONN connection(s) of the old release still open after the drain of ${DRAIN}s: signalling it anyway" >&2
    fi
  fi
  sy_now
  SY_WAIT_FIELDS=("waited_ms=$((SY_NOW - start))" "queue=$SY_QUEUE")
  [[ $SY_QUEUE == timer ]] || SY_WAIT_FIELDS+=("queued=$SY_QMAX")
  [[ $DRAIN_MODE != connections ]] || SY_WAIT_FIELDS+=("connections=$SY_CONNS")
}

# sy_health SOCKET: one health request in the app's own protocol (--health-protocol); the HTTP
# status (000 when none) in SY_CODE (fastcgi: the body in SY_BODY). http: a GET with curl, `Host: SITE`. fastcgi: a real FastCGI
# request with cgi-fcgi (libfcgi-bin), the params nginx's generated config sends for that path
# (sy_fcgi_params), nothing else: `env -i` gives cgi-fcgi, which sends its whole environment as
# the params, only those. Its status is the response's `Status:` header (CGI: none is 200, none
# with a Location 302).
sy_health() {
  local out='' head
  if [[ $HEALTH_PROTOCOL == fastcgi ]]; then
    sy_fcgi_params
    # env -i clears PATH too: both programs by their full path, looked up once
    if [[ -z ${SY_FCGI_BIN:-} ]]; then SY_FCGI_BIN=$(type -P cgi-fcgi) || SY_FCGI_BIN=''; fi
    if [[ -z ${SY_TIMEOUT_BIN:-} ]]; then SY_TIMEOUT_BIN=$(type -P timeout) || SY_TIMEOUT_BIN=''; fi
    SY_CODE=000 SY_BODY=''
    [[ -n $SY_FCGI_BIN && -n $SY_TIMEOUT_BIN ]] || return 0
    # the x keeps the body's trailing newlines from $(…) (doctor compares it with nginx's answer)
    out=$(env -i "${SY_FCGI_PARAMS[@]}" "$SY_TIMEOUT_BIN" 5 "$SY_FCGI_BIN" -bind -connect "$1" </dev/null 2>/dev/null; printf x) || true
    out=${out%x}
    # the header lines: up to the blank line
    head=${out%%$'\r\n\r\n'*}
    head=${head%%$'\n\n'*}
    SY_BODY=${out#"$head"}
    SY_BODY=${SY_BODY#$'\r\n\r\n'}
    SY_BODY=${SY_BODY#$'\n\n'}
    [[ $head =~ ^[A-Za-z0-9_-]+: ]] || return 0 # no answer, or not CGI headers
    if [[ $'\n'$head =~ $'\n'[Ss]tatus:[[:space:]]*([1-5][0-9][0-9]) ]]; then SY_CODE=${BASH_REMATCH[1]}
    elif [[ $'\n'$head == *$'\n'[Ll]ocation:* ]]; then SY_CODE=302
    else SY_CODE=200
    fi
    return 0
  fi
  # -g --path-as-is: the path as given ([a] and {a,b} are not curl globs, /a/../b is not squashed)
  SY_CODE=$(exec curl -g --path-as-is -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$1" \
    -H "Host: $SITE" "http://localhost$HEALTH_PATH" 2>/dev/null) || true
  [[ -n $SY_CODE ]] || SY_CODE=000
}

# sy_fcgi_params: SY_FCGI_PARAMS, the FastCGI params of a GET of HEALTH_PATH as nginx's generated
# config sends them (lib/nginx/config.ts): the document root is the release's own directory (a
# staged release: RELEASE's; else the live one), as $realpath_root is once `current` points there.
# The path is sent as given: SCRIPT_NAME is the part before `?` (no fastcgi_index is added to a
# path ending in /, no PATH_INFO split): give a health path that names the page.
sy_fcgi_params() {
  local root=$DEPLOY_TO/current script=${HEALTH_PATH%%\?*} query=''
  if [[ -n $RELEASE ]]; then root=$REL_DIR; elif [[ -n ${LIVE_R:-} ]]; then root=$RELEASES/$LIVE_R; fi
  [[ $HEALTH_PATH != *\?* ]] || query=${HEALTH_PATH#*\?}
  SY_FCGI_PARAMS=(GATEWAY_INTERFACE=CGI/1.1 SERVER_SOFTWARE=switchyard SERVER_PROTOCOL=HTTP/1.1 REQUEST_SCHEME=http
    REQUEST_METHOD=GET "REQUEST_URI=$HEALTH_PATH" "DOCUMENT_URI=$script" "SCRIPT_NAME=$script"
    "SCRIPT_FILENAME=$root$script" "DOCUMENT_ROOT=$root" PATH_INFO= "QUERY_STRING=$query" CONTENT_TYPE= CONTENT_LENGTH=
    "SERVER_NAME=$SITE" "HTTP_HOST=$SITE" SERVER_ADDR=127.0.0.1 SERVER_PORT=80 REMOTE_ADDR=127.0.0.1 REMOTE_PORT=0
    REDIRECT_STATUS=200 HTTP_USER_AGENT=switchyard-health)
}

# ---- tools ---------------------------------------------------------------------------------------

# The programs the scripts run on a host: setup refuses a host that lacks one, doctor reports them.
# This list is the one place they are named (the client's docs and catalog say the same in words).
SY_TOOLS='curl ss nohup setsid tar timeout mv ln stat find xargs cp awk sha256sum'

# sy_check_tools: one `::sy check tool=T ok=yes|no [version=V]` line per tool of SY_TOOLS, the
# missing ones in SY_MISSING. tar must be GNU tar (prepare checks the package's listing with its
# options before unpacking) and find GNU find (the upload's listing uses -printf, which BusyBox's
# lacks): their --version, run for that check anyway, gives the version too.
sy_check_tools() {
  local tool gnu out ok
  SY_MISSING=()
  for tool in $SY_TOOLS; do
    gnu='' out='' ok=no
    case $tool in
      tar) gnu='GNU tar' ;;
      find) gnu='GNU findutils' ;;
    esac
    if command -v "$tool" >/dev/null 2>&1; then
      if [[ -z $gnu ]]; then
        ok=yes
      else
        out=$(exec "$tool" --version 2>/dev/null) || true
        out=${out%%$'\n'*}
        if [[ $out == *"$gnu"* ]]; then ok=yes; fi
      fi
    fi
    if [[ $ok == yes ]]; then
      sy_emit check "tool=$tool" ok=yes ${out:+"version=${out##* }"}
    else
      sy_emit check "tool=$tool" ok=no
      SY_MISSING+=("$tool")
    fi
  done
}
