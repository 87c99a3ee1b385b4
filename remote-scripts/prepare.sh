#!/usr/bin/env bash
# prepare.sh: take the deploy lock and start release R on its own socket, then health-check it
# (with --files-only: unpack it, start nothing).
#
# Usage: prepare.sh --deploy-to D --release R --site S --socket-dir SD [--shared P]… [--env K=V]…
#          [--socket-mode 0660] [--socket-group G] [--start-timeout 30] [--health-path /health]
#          [--health-timeout 30] [--expect-status 200] [--health-protocol http|fastcgi] [--lock-owner TEXT] [--reuse]
#          [--env-bytes N] [--package-bytes N | --delta] [--expect-live 'R PID ST'] -- CMD ARG…
#        prepare.sh --files-only --deploy-to D --release R --site S --socket-dir SD [--shared P]…
#          [--lock-owner TEXT] [--reuse] [--package-bytes N | --delta]
#
# With --env-bytes N, stdin starts with the env block: N bytes of NAME=VALUE records, each ended
# by a NUL byte, the app's variables (the client never puts a value on a command line; --env K=V
# is for a person running this by hand). Then, without --reuse, the release package (a tar, or .tar.gz)
# comes on stdin and is unpacked into a new D/releases/R once the lock is taken: all of the rest of
# stdin, or exactly N bytes of it with --package-bytes (release.sh reads the client's words after
# it). With --delta the client sends only what this host lacks: once the lock is taken, prepare
# prints `::sy have release=B`, N lines `SHA256 MODE PATH` (the files of the live release B that
# are as B's manifest says), `::sy have-end files=N`; stdin then brings a line `LINK-BYTES PACKAGE-BYTES`,
# the paths to hard-link from B (one a line, each one of those N), and the package of the rest.
# With --reuse, an existing release is started again (restart, rollback) and stdin is not read
# past the env block; when R is the standby (retire.sh --standby), its running process is
# health-checked on its own socket and made R's staged one instead (`::sy prepared … standby=yes`).
# With --expect-live (the supervisor), nothing is done unless the live release is still that one.
# The app is started in D/releases/R with every variable of the env block and
# every --env, then SWITCHYARD_RELEASE, SWITCHYARD_SITE and SWITCHYARD_SOCKET set (only the app's
# own subshell exports them), `{socket}` and `{release}` in CMD ARG… replaced, and must listen on
# SD/SOCK-S-R (never on the live path).
# With --files-only (a host that runs no app, such as a db primary whose hook runs the migrations
# in the release) the same lock, upload and shared links, and nothing started: no command, no
# socket, no health check; `::sy prepared release=R mode=files`. Refused (3) while a release's
# process runs here (the host serves the app).
# Success: `::sy prepared release=R pid=P starttime=T socket=PATH status=CODE` and `::sy live …`.
# The lock stays held for switch/retire/undo. On failure the new process is stopped, its socket
# removed, D/releases/R removed (unless --reuse) and the lock released.
#
# Exit codes: 0 prepared; 1 unexpected failure (e.g. the package did not unpack); 2 usage, or a
# package member or shared path that would reach outside releases/R or shared/ (a symlink); 3 not
# set up, releases/R missing (--reuse) or already there (without), or with --files-only the app
# runs here; 4 deploy lock held by someone else; 5 app did not start; 6 health check failed; 11
# the live release is not --expect-live's.
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

# On any failure once the lock is ours: stop what we started and leave the host as it was.
prepare_cleanup() {
  local i k
  for ((i = 0; i < ${#PIDS[@]}; i += 2)); do sy_stop "${PIDS[i]}" "${PIDS[i + 1]}" 5000; done
  for ((k = 1; k <= INSTANCES; k++)); do
    sy_sock "$k"
    rm -f -- "$STAGE_SOCK"
  done
  if [[ -z $REUSE ]]; then
    rm -rf -- "$REL_DIR"
  elif [[ -n ${old_pidfile:-} ]]; then
    sy_write "$REL_DIR/.switchyard/pid" "$old_pidfile"
  else
    rm -f -- "$REL_DIR/.switchyard/pid"
  fi
  sy_lock_release
}

# prepare_fail CODE MSG: show the end of the app's log, then fail (prepare_cleanup runs).
prepare_fail() {
  if [[ -s $REL_DIR/.switchyard/app.log ]]; then
    echo "last lines of $REL_DIR/.switchyard/app.log:" >&2
    tail -n 20 -- "$REL_DIR/.switchyard/app.log" >&2 || true
  fi
  sy_die "$@"
}

# prepare_read_env N: the env block, N bytes of NUL-ended NAME=VALUE records, into ENVS. `read -d ''`
# takes stdin a byte at a time, so nothing after the block (the package) is consumed; the C locale
# makes ${#rec} count bytes. An error never shows a value.
prepare_read_env() {
  local LC_ALL=C left=$1 rec
  while ((left > 0)); do
    IFS= read -r -d '' rec || sy_usage "the env block ended before its $1 bytes (--env-bytes)"
    left=$((left - ${#rec} - 1))
    [[ $rec =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || sy_usage "bad env block: a record is not NAME=VALUE"
    [[ $rec != SWITCHYARD_* ]] || sy_usage "bad env block: ${rec%%=*} is reserved"
    ENVS+=("$rec")
  done
  ((left == 0)) || sy_usage "bad env block: its records do not end at --env-bytes $1"
}

# ---- what a release has, for the next deploy's --delta (docs/REMOTE-PROTOCOL.md) ----------------
# releases/R/.switchyard/manifest: `SHA256  PATH` (sha256sum's lines); .switchyard/stat: `INODE SIZE
# MTIME MODE PATH`, find's view once R was unpacked. A file counts as unchanged only while find
# still shows it so. Plain names only (no control character, no backslash); of .switchyard/, only
# bin/ (the scripts: the same from one deploy to the next of a switchyard version).
DELTA_FIND=(-type f '(' ! -path './.switchyard/*' -o -path './.switchyard/bin/*' ')' ! -path '*[[:cntrl:]]*' ! -path '*\\*')

# prepare_have BASE: the listing (`::sy have release=BASE|none`, then `SHA MODE PATH` for each file of
# releases/BASE that is as it was unpacked, then `::sy have-end files=N`) on stdout, its lines also
# into $LOCK/have; none without BASE, its manifest or its stat. One awk writes both: no wc, no cat.
prepare_have() {
  local dir=$RELEASES/$1
  : >"$LOCK/have"
  sy_emit have "release=${1:-none}"
  if ! [[ -n $1 && -f $dir/.switchyard/manifest && -f $dir/.switchyard/stat ]]; then
    sy_emit have-end files=0
    return 0
  fi
  (cd -- "$dir" && exec find . "${DELTA_FIND[@]}" -printf '%i %s %T@ %m %P\n') >"$LOCK/have.stat"
  # 1: the stat recorded; 2: the stat now (same line: unchanged, its MODE kept); 3: the manifest.
  LC_ALL=C awk -v out="$LOCK/have" '
    FILENAME == ARGV[1] { rec[$0] = 1; next }
    FILENAME == ARGV[2] { if ($0 in rec) { p = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ [^ ]+ /, "", p); mode[p] = $4 }; next }
    { p = substr($0, 67); if (p in mode) { line = substr($0, 1, 64) " " mode[p] " " p; print line; print line > out; n++ } }
    END { print "::sy have-end files=" (n + 0) }
  ' "$dir/.switchyard/stat" "$LOCK/have.stat" "$dir/.switchyard/manifest"
}

# prepare_delta: say what the live release has, then take the client's list of links (checked
# with the package: sy_check_package) into $LOCK/links; LINK_BASE: the release they come from,
# PACKAGE_BYTES: the rest's size.
prepare_delta() {
  local header list='' LC_ALL=C
  sy_read_state
  LINK_BASE=$LIVE_R
  [[ -n $LINK_BASE && -d $RELEASES/$LINK_BASE ]] || LINK_BASE=''
  prepare_have "$LINK_BASE"
  IFS= read -r header || sy_die 1 "stdin ended before the upload's header line (--delta)"
  [[ $header =~ ^(0|[1-9][0-9]{0,11})\ ([1-9][0-9]{0,11})$ ]] || sy_usage "bad upload header line (--delta): '${header:0:60}'"
  LINK_BYTES=${BASH_REMATCH[1]} PACKAGE_BYTES=${BASH_REMATCH[2]}
  ((LINK_BYTES > 0)) || return 0
  if ((LINK_BYTES <= 8192)); then
    # a short list by read (one byte per read(2) from a pipe: no program), exactly LINK-BYTES
    IFS= read -r -N "$LINK_BYTES" list || true
    # (NUL bytes, which no name has, are dropped: such a list is short too)
    ((${#list} == LINK_BYTES)) || sy_die 2 "refusing the upload: the list of files to link from $LINK_BASE has ${#list} bytes, not $LINK_BYTES"
    printf '%s' "$list" >"$LOCK/links"
  else
    head -c "$LINK_BYTES" >"$LOCK/links" || sy_die 1 "the list of files to link could not be read from stdin"
  fi
}

# prepare_link: the listed files hard-linked from LINK_BASE into releases/R, before the package:
# its members then replace links (tar unlinks a file first, so the base keeps its own) and
# nothing the package brings is followed. A short list: one cp with the names as its words, no
# xargs (64 KiB of names stays far below the kernel's limit for a command line); a long one goes
# through xargs.
prepare_link() {
  local dest=$REL_DIR
  [[ $dest == /* ]] || dest=$PWD/$dest
  if ((LINK_BYTES <= 65536)); then
    local -a names
    mapfile -t names <"$LOCK/links"
    (cd -- "$RELEASES/$LINK_BASE" && exec cp -l --parents -t "$dest" -- "${names[@]}") ||
      sy_die 1 "the unchanged files could not be linked from $RELEASES/$LINK_BASE"
  else
    (cd -- "$RELEASES/$LINK_BASE" && exec xargs -d '\n' -r cp -l --parents -t "$dest" -- <"$LOCK/links") ||
      sy_die 1 "the unchanged files could not be linked from $RELEASES/$LINK_BASE"
  fi
}

# prepare_manifest: releases/R's manifest and stat, for the next deploy (see above): the linked
# files' checksums as the host had them (written there by sy_check_package's check of the links),
# the others' computed here, added to it. The upload's files stay in the lock directory, which
# goes with the lock (no rm of its own), but a large package goes now.
prepare_manifest() {
  local new=$LOCK/new
  [[ $new == /* ]] || new=$PWD/$new # find writes it from inside releases/R
  {
    # ONE find: every file's stat line, and the names of those not linked (-links 1) to checksum
    (cd -- "$REL_DIR" && exec find . "${DELTA_FIND[@]}" -printf '%i %s %T@ %m %P\n' -links 1 -fprintf "$new" '%P\0') >"$REL_DIR/.switchyard/stat"
    if [[ -s $new ]]; then (cd -- "$REL_DIR" && exec xargs -0 sha256sum -- <"$new"); fi
  } >>"$REL_DIR/.switchyard/manifest"
  if [[ -z $PACKAGE_BYTES ]] || ((PACKAGE_BYTES > 1048576)); then rm -f -- "$LOCK/package.tar"; fi
}

# prepare_live: what is live here (`::sy live release=L pid=P starttime=T`; a files-only release
# has pid=none starttime=none), or `::sy live release=none`.
prepare_live() {
  sy_read_state
  if [[ -n $LIVE_R ]]; then
    sy_emit live "release=$LIVE_R" "pid=${LIVE_PID:-none}" "starttime=${LIVE_ST:-none}"
  else
    sy_emit live release=none
  fi
}

# prepare_start K: start instance K of the app (app.instances) on its own staged socket and wait for
# that socket; its pid and start time go into PIDS and the pid file (every instance started so far).
# setsid: the app leaves our process group, so a signal to this script's group (the client's
# time limit) never reaches it; the redirections let the SSH exec end while the app runs on. The
# variables are exported in the background subshell itself (no `env` program, no value in any
# argv), each record as one word, taken literally; SWITCHYARD_* last, so they always win.
prepare_start() {
  local a e p st log=.switchyard/app.log started deadline
  local -a argv=()
  sy_sock "$1"
  if (($1 > 1)); then log=.switchyard/app@$1.log; fi
  for a in "${SY_CMD[@]}"; do
    a=${a//"{socket}"/"$STAGE_SOCK"}
    argv+=("${a//"{release}"/"$RELEASE"}")
  done
  if [[ -e $STAGE_SOCK || -L $STAGE_SOCK ]]; then rm -f -- "$STAGE_SOCK"; fi
  {
    for e in ${ENVS[@]+"${ENVS[@]}"}; do export -- "${e?}"; done
    export SWITCHYARD_RELEASE="$RELEASE" SWITCHYARD_SITE="$SITE" SWITCHYARD_SOCKET="$STAGE_SOCK" SWITCHYARD_INSTANCE="$1"
    exec nohup setsid -- "${argv[@]}" # --: an app.start[0] such as -x is the program, not an option
  } >"$log" 2>&1 </dev/null &
  p=$!
  sy_starttime "$p"
  st=$SY_START
  [[ -n $st ]] || prepare_fail 5 "the app exited at once: ${argv[*]}"
  PIDS+=("$p" "$st")
  if [[ -n $REUSE ]] || (($1 > 1)); then
    sy_write "$REL_DIR/.switchyard/pid" "${PIDS[*]}" # replaces the running start's: atomically
  else
    printf '%s\n' "$p $st" >"$REL_DIR/.switchyard/pid" # a new file in our own new directory: no mv
  fi
  sy_now
  started=$SY_NOW deadline=$((SY_NOW + START_MS))
  until [[ -S $STAGE_SOCK ]]; do
    sy_alive "$p" "$st" || prepare_fail 5 "the app exited before its socket $STAGE_SOCK appeared"
    sy_now
    ((SY_NOW < deadline)) || prepare_fail 5 "socket $STAGE_SOCK did not appear within ${START_TIMEOUT}s"
    sy_poll "$started" 100
    sy_sleep_ms "$SY_POLL"
  done
  chmod -- "$SOCKET_MODE" "$STAGE_SOCK"
  if [[ -n $SOCKET_GROUP ]]; then chgrp -- "$SOCKET_GROUP" "$STAGE_SOCK"; fi
}

# prepare_health PID ST: health-check the staged socket until it answers --expect-status.
prepare_health() {
  SY_STEP=health
  sy_now
  local deadline=$((SY_NOW + HEALTH_MS))
  while :; do
    sy_health "$STAGE_SOCK"
    [[ $SY_CODE != "$EXPECT_STATUS" ]] || break
    sy_alive "$1" "$2" || prepare_fail 5 "the app exited during the health check (last status $SY_CODE)"
    sy_now
    ((SY_NOW < deadline)) ||
      prepare_fail 6 "GET $HEALTH_PATH (Host: $SITE) answered $SY_CODE, want $EXPECT_STATUS, for ${HEALTH_TIMEOUT}s"
    sy_sleep_ms 200
  done
}

# prepare_done PID ST [standby=yes]: the success lines; the lock stays ours.
prepare_done() {
  SY_ON_FAIL=''
  sy_emit prepared "release=$RELEASE" "pid=$1" "starttime=$2" "socket=$STAGE_SOCK" "status=$SY_CODE" ${3:+"$3"}
  prepare_live
}

# prepare_record: how R was started, for the supervisor to start it again the same way
# (supervise.sh): .switchyard/launch (the options and command, NUL-ended words) and .switchyard/env
# (the env block's records), both 0600: the app's secrets live as its config files do, the
# deploy user's alone.
prepare_record() {
  local m=$REL_DIR/.switchyard p
  local -a args=(--socket-mode "$SOCKET_MODE" --start-timeout "$START_TIMEOUT" --health-path "$HEALTH_PATH"
    --health-timeout "$HEALTH_TIMEOUT" --expect-status "$EXPECT_STATUS")
  [[ -z $SOCKET_GROUP ]] || args+=(--socket-group "$SOCKET_GROUP")
  [[ $HEALTH_PROTOCOL == http ]] || args+=(--health-protocol "$HEALTH_PROTOCOL")
  ((INSTANCES == 1)) || args+=(--instances "$INSTANCES")
  for p in ${SHARED[@]+"${SHARED[@]}"}; do args+=(--shared "$p"); done
  # A new releases/R (no --reuse) without them: nobody reads them before it goes live, and a failed
  # prepare removes it: created in place (0600), no mv. Existing ones (--reuse, or a package that
  # brings such a file, whatever its mode) are replaced by rename(2).
  local t=.tmp
  if [[ -z $REUSE && ! -e $m/launch && ! -L $m/launch && ! -e $m/env && ! -L $m/env ]]; then t=''; fi
  # 077 for these two, then back to the scripts' own: no subshell to fork
  umask 077
  printf '%s\0' "${args[@]}" -- "${SY_CMD[@]}" >"$m/launch$t"
  : >"$m/env$t"
  if ((${#ENVS[@]})); then printf '%s\0' "${ENVS[@]}" >"$m/env$t"; fi
  umask "$SY_UMASK"
  [[ -z $t ]] || mv -f -- "$m/launch$t" "$m/launch"
  [[ -z $t ]] || mv -f -- "$m/env$t" "$m/env"
}

# prepare_is_standby: with --reuse, R is the standby release: retire.sh --standby kept its process
# running after the last deploy, on the socket SOCK-S.prev links to (checked by inode).
prepare_is_standby() {
  sy_read_standby
  sy_read_state
  [[ $INSTANCES == 1 && $SB_R == "$RELEASE" && $RELEASE != "$LIVE_R" && -S $PREV_SOCK ]] || return 1
  [[ "$PID_PID $PID_ST" == "$SB_PID $SB_ST" ]] && sy_alive "$SB_PID" "$SB_ST" && sy_owns_socket "$SB_PID" "$PREV_SOCK"
}

# prepare_standby: nothing starts: the standby's socket is linked as R's staged one and
# health-checked, and switch.sh renames it over the live path as for any prepare (an instant
# rollback: no start, no wait for a socket).
prepare_standby() {
  rm -f -- "$STAGE_SOCK"
  ln -- "$PREV_SOCK" "$STAGE_SOCK"
  : >"$LOCK/standby" # for undo: this process was not started by us, so it is not ours to stop
  prepare_health "$SB_PID" "$SB_ST"
  prepare_done "$SB_PID" "$SB_ST" standby=yes
}

sy_init prepare
# --env-bytes is prepare's own (lib.sh's sy_parse reads the options the scripts share): taken out
# here, every other option passed on with its value (a value that looks like an option stays one).
ENV_BYTES='' env_given='' DELTA='' LINK_BYTES=0 LINK_BASE='' EXPECT_LIVE='' prepare_opts=() PIDS=()
while (($#)) && [[ $1 != -- ]]; do
  case $1 in
    --env-bytes)
      (($# >= 2)) || sy_usage "--env-bytes needs a value"
      ENV_BYTES=$2 env_given=1
      shift 2
      ;;
    --reuse)
      prepare_opts+=("$1")
      shift
      ;;
    --files-only)
      FILES_ONLY=1 # prepare's own here: it decides whether a command must follow
      shift
      ;;
    --delta)
      DELTA=1
      shift
      ;;
    --expect-live)
      (($# >= 2)) || sy_usage "--expect-live needs a value"
      EXPECT_LIVE=$2
      shift 2
      ;;
    *)
      prepare_opts+=("${@:1:2}")
      shift "$(($# >= 2 ? 2 : 1))"
      ;;
  esac
done
allowed='deploy-to release site socket-dir shared env socket-mode socket-group start-timeout health-path health-timeout expect-status health-protocol lock-owner reuse package-bytes instances'
if [[ -n $FILES_ONLY ]]; then
  (($# == 0)) || sy_usage "--files-only starts nothing: no -- CMD"
else
  allowed+=' --'
fi
sy_parse "$allowed" ${prepare_opts[@]+"${prepare_opts[@]}"} "$@"
sy_require deploy-to release site socket-dir
((${#SY_CMD[@]} > 0)) || [[ -n $FILES_ONLY ]] || sy_usage "missing the app command after --"
[[ -z $DELTA || -z $PACKAGE_BYTES$REUSE ]] || sy_usage "--delta goes with neither --package-bytes nor --reuse"
if [[ -n $env_given ]]; then
  [[ $ENV_BYTES =~ ^[1-9][0-9]{0,8}$ ]] || sy_usage "bad --env-bytes: '$ENV_BYTES'"
  prepare_read_env "$ENV_BYTES"
fi
sy_validate
sy_check_setup
if [[ -n $REUSE ]]; then
  [[ -d $REL_DIR ]] || sy_die 3 "release directory $REL_DIR is missing"
elif sy_in_use "$RELEASE"; then
  sy_die 3 "release $RELEASE is already deployed here (live, previous or current): start it again with --reuse"
fi
if [[ -n $FILES_ONLY ]]; then
  # its process would run on unrecorded once the files-only switch replaced .switchyard/live
  sy_read_state
  if sy_alive "$LIVE_PID" "$LIVE_ST"; then
    sy_die 3 "$LIVE_R serves $SITE here (pid $LIVE_PID): a host that runs the app takes no files-only release (give it an app role again, or stop that release)"
  fi
fi

SY_STEP=lock
sy_lock_take "$RELEASE" "$LOCK_OWNER" || sy_die 4 "locked by: $LOCK_TEXT"
if [[ -n $EXPECT_LIVE ]]; then
  # the supervisor's relaunch: only if nothing changed since it looked (a deploy may have finished)
  sy_read_state
  SY_ON_FAIL=sy_lock_release
  [[ "$LIVE_R ${LIVE_W[*]}" == "$EXPECT_LIVE" ]] ||
    sy_die 11 "the live release changed (now: ${LIVE_R:-none} ${LIVE_PID:-} ${LIVE_ST:-}, expected: $EXPECT_LIVE): nothing started"
fi
if [[ -z $REUSE ]]; then
  SY_STEP=unpack
  SY_ON_FAIL=sy_lock_release
  # Under the lock: a refused deploy never unpacks, and nobody else creates releases/R meanwhile.
  # Its .switchyard with it (one mkdir), for the manifest the check of the links begins.
  if [[ -e $REL_DIR || -L $REL_DIR ]] || ! mkdir -m 0750 -- "$REL_DIR" "$REL_DIR/.switchyard" 2>/dev/null; then
    sy_die 3 "release directory $REL_DIR already exists"
  fi
  SY_ON_FAIL=prepare_cleanup
  # Into the lock directory first (it goes with the lock, whatever ends this), so that the listing
  # is checked before tar writes anything: nothing of the package may land outside releases/R.
  pkg=$LOCK/package.tar
  if [[ -n $DELTA ]]; then prepare_delta; fi
  if [[ -n $PACKAGE_BYTES ]]; then
    # head -c reads no further than N bytes: what follows on stdin is not ours.
    head -c "$PACKAGE_BYTES" >"$pkg" || sy_die 1 "the package could not be read from stdin"
  else
    cat >"$pkg" || sy_die 1 "the package could not be read from stdin"
  fi
  if ((LINK_BYTES > 0)); then
    sy_check_package "$pkg" "$LOCK/package.list" "$LOCK/have" "$LOCK/links" "$LINK_BYTES" "$REL_DIR/.switchyard/manifest" "$LINK_BASE"
    prepare_link
  else
    sy_check_package "$pkg" "$LOCK/package.list"
  fi
  # Never -P (absolute names, `..`); into the new, empty releases/R; the archive's owners and
  # modes give way to ours (umask 027, also for root), and R keeps its own mode (./ entry).
  tar -xf "$pkg" -C "$REL_DIR" --no-same-owner --no-same-permissions --no-overwrite-dir ||
    sy_die 1 "the package did not unpack into $REL_DIR"
fi
# The app's log and pid file go in there: a link shipped as .switchyard would take them anywhere.
if [[ -L $REL_DIR/.switchyard ]]; then
  [[ -z $REUSE ]] || SY_ON_FAIL=sy_lock_release # nothing of ours to put back in there
  sy_die 2 "$REL_DIR/.switchyard is a symlink: refusing to write through it"
fi
[[ -d $REL_DIR/.switchyard ]] || mkdir -m 0750 -- "$REL_DIR/.switchyard" # the package brings it
if [[ -z $REUSE ]]; then prepare_manifest; fi
sy_read_pidfile
old_pidfile="${PID_W[*]}"
SY_ON_FAIL=prepare_cleanup
# In the lock: undo (while the lock is ours) removes what this deploy unpacked; retire's unlock
# removes the marker with the lock, no program of its own.
if [[ -z $REUSE ]]; then : >"$LOCK/fresh"; fi
if [[ -n $REUSE ]] && prepare_is_standby; then
  prepare_standby
  exit 0
fi

SY_STEP=shared
# Every path checked before anything changes (a refusal changes nothing, also with --reuse), and
# nothing followed: a symlink shipped in the build, or made under shared/, could point anywhere,
# and `rm -rf R/a/b` through `R/a -> /x` deletes /x/b. Refused (2): a symlink among the components
# above R/P or shared/P; R/P itself a symlink, unless it is our link to shared/P (--reuse);
# shared/P a dangling symlink (mkdir would follow it); P below another shared path (its link).
# shared/P itself may be a symlink you made (another disk): the app follows it, we only link to it.
seen=()
for p in ${SHARED[@]+"${SHARED[@]}"}; do
  p=${p%/}
  for q in ${seen[@]+"${seen[@]}"}; do
    [[ $p != "$q"/* && $q != "$p"/* ]] || sy_die 2 "shared paths '$q' and '$p' overlap: one is inside the other"
  done
  seen+=("$p")
  sy_check_parents "$REL_DIR" "$p" "shared path '$p'"
  if [[ -L $REL_DIR/$p ]] && ! [[ $REL_DIR/$p -ef $DEPLOY_TO/shared/$p ]]; then
    to=$(exec readlink -- "$REL_DIR/$p") || true
    sy_die 2 "shared path '$p': $REL_DIR/$p is a symlink (to $to) in the release: remove it from the build or from shared"
  fi
  sy_check_parents "$DEPLOY_TO/shared" "$p" "shared path '$p'"
  if [[ -L $DEPLOY_TO/shared/$p && ! -e $DEPLOY_TO/shared/$p ]]; then
    sy_die 2 "shared path '$p': $DEPLOY_TO/shared/$p is a dangling symlink: refusing to create its target"
  fi
done
for p in ${SHARED[@]+"${SHARED[@]}"}; do
  p=${p%/}
  [[ -e $DEPLOY_TO/shared/$p ]] || mkdir -p -- "$DEPLOY_TO/shared/$p"
  rm -rf -- "${REL_DIR:?}/$p" # a file, a real directory or our own link: its parents are real
  if [[ $p == */* ]]; then mkdir -p -- "$REL_DIR/${p%/*}"; fi # no $(dirname): one program less
  ln -s -- "$DEPLOY_TO/shared/$p" "$REL_DIR/$p"
done
if [[ -n $FILES_ONLY ]]; then
  # The files are in place and nothing starts: a hook may work in releases/R, and switch points
  # `current` at it.
  SY_ON_FAIL=''
  sy_emit prepared "release=$RELEASE" mode=files
  prepare_live
  exit 0
fi

SY_STEP=start
cd -- "$REL_DIR"

for ((k = 1; k <= INSTANCES; k++)); do prepare_start "$k"; done
for ((k = 1; k <= INSTANCES; k++)); do
  sy_sock "$k"
  prepare_health "${PIDS[2 * k - 2]}" "${PIDS[2 * k - 1]}"
done
sy_sock 1
prepare_record
prepare_done "${PIDS[0]}" "${PIDS[1]}"
