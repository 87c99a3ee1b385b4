#!/usr/bin/env bash
# prepare.sh: take the deploy lock and start release R on its own socket, then health-check it.
#
# Usage: prepare.sh --deploy-to D --release R --site S --socket-dir SD [--shared P]… [--env K=V]…
#          [--socket-mode 0660] [--socket-group G] [--start-timeout 30] [--health-path /health]
#          [--health-timeout 30] [--expect-status 200] [--lock-owner TEXT] [--reuse]
#          [--package-bytes N] -- CMD ARG…
#
# Without --reuse, the release package (.tar.gz) comes on stdin and is unpacked into a new
# D/releases/R once the lock is taken: all of stdin, or exactly N bytes of it with --package-bytes
# (release.sh reads the client's words after it); with --reuse, an existing release is started
# again (restart, rollback) and stdin is not read. The app is started in D/releases/R with
# SWITCHYARD_RELEASE, SWITCHYARD_SITE, SWITCHYARD_SOCKET and every --env set, `{socket}` and
# `{release}` in CMD ARG… replaced, and must listen on SD/SOCK-S-R (never on the live path).
# Success: `::sy prepared release=R pid=P starttime=T socket=PATH status=CODE` and `::sy live …`.
# The lock stays held for switch/retire/undo. On failure the new process is stopped, its socket
# removed, D/releases/R removed (unless --reuse) and the lock released.
#
# Exit codes: 0 prepared; 1 unexpected failure (e.g. the package did not unpack); 2 usage; 3 not
# set up, releases/R missing (--reuse) or already there (without); 4 deploy lock held by someone
# else; 5 app did not start; 6 health check failed.
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
  if [[ -n ${pid:-} ]]; then sy_stop "$pid" "${st:-}" 5000; fi
  rm -f -- "$STAGE_SOCK"
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

sy_init prepare
sy_parse 'deploy-to release site socket-dir shared env socket-mode socket-group start-timeout health-path health-timeout expect-status lock-owner reuse package-bytes --' "$@"
sy_require deploy-to release site socket-dir
((${#SY_CMD[@]} > 0)) || sy_usage "missing the app command after --"
sy_validate
sy_check_setup
if [[ -n $REUSE ]]; then
  [[ -d $REL_DIR ]] || sy_die 3 "release directory $REL_DIR is missing"
elif sy_in_use "$RELEASE"; then
  sy_die 3 "release $RELEASE is already deployed here (live, previous or current): start it again with --reuse"
fi

SY_STEP=lock
sy_lock_take "$RELEASE" "$LOCK_OWNER" || sy_die 4 "locked by: $LOCK_TEXT"
if [[ -z $REUSE ]]; then
  SY_STEP=unpack
  SY_ON_FAIL=sy_lock_release
  # Under the lock: a refused deploy never unpacks, and nobody else creates releases/R meanwhile.
  mkdir -- "$REL_DIR" 2>/dev/null || sy_die 3 "release directory $REL_DIR already exists"
  SY_ON_FAIL=prepare_cleanup
  if [[ -n $PACKAGE_BYTES ]]; then
    # head -c reads no further than N bytes: what follows on stdin is not ours.
    head -c "$PACKAGE_BYTES" | tar -xzf - -C "$REL_DIR" || sy_die 1 "the package did not unpack into $REL_DIR"
  else
    tar -xzf - -C "$REL_DIR" || sy_die 1 "the package did not unpack into $REL_DIR"
  fi
fi
[[ -d $REL_DIR/.switchyard ]] || mkdir -p -- "$REL_DIR/.switchyard" # the package brings it
sy_read_pidfile
old_pidfile="${PID_PID:+$PID_PID $PID_ST}"
SY_ON_FAIL=prepare_cleanup
# In the lock: undo (while the lock is ours) removes what this deploy unpacked; retire's unlock
# removes the marker with the lock, no program of its own.
if [[ -z $REUSE ]]; then : >"$LOCK/fresh"; fi

SY_STEP=shared
for p in ${SHARED[@]+"${SHARED[@]}"}; do
  p=${p%/}
  [[ -e $DEPLOY_TO/shared/$p ]] || mkdir -p -- "$DEPLOY_TO/shared/$p"
  rm -rf -- "${REL_DIR:?}/$p"
  if [[ $p == */* ]]; then mkdir -p -- "$REL_DIR/${p%/*}"; fi # no $(dirname): one program less
  ln -s -- "$DEPLOY_TO/shared/$p" "$REL_DIR/$p"
done

SY_STEP=start
argv=()
for a in "${SY_CMD[@]}"; do
  a=${a//"{socket}"/"$STAGE_SOCK"}
  argv+=("${a//"{release}"/"$RELEASE"}")
done
if [[ -e $STAGE_SOCK || -L $STAGE_SOCK ]]; then rm -f -- "$STAGE_SOCK"; fi
cd -- "$REL_DIR"
# setsid: the app leaves our process group, so a signal to this script's group (the client's
# time limit) never reaches it; the redirections let the SSH exec end while the app runs on. The
# variables are exported in the background subshell itself: no `env` program.
{
  export SWITCHYARD_RELEASE="$RELEASE" SWITCHYARD_SITE="$SITE" SWITCHYARD_SOCKET="$STAGE_SOCK"
  for e in ${ENVS[@]+"${ENVS[@]}"}; do export -- "${e?}"; done
  exec nohup setsid "${argv[@]}"
} >.switchyard/app.log 2>&1 </dev/null &
pid=$!
sy_starttime "$pid"
st=$SY_START
[[ -n $st ]] || prepare_fail 5 "the app exited at once: ${argv[*]}"
if [[ -n $REUSE ]]; then
  sy_write "$REL_DIR/.switchyard/pid" "$pid $st" # replaces the running start's: atomically
else
  printf '%s\n' "$pid $st" >"$REL_DIR/.switchyard/pid" # a new file in our own new directory: no mv
fi

sy_now
deadline=$((SY_NOW + START_MS))
until [[ -S $STAGE_SOCK ]]; do
  sy_alive "$pid" "$st" || prepare_fail 5 "the app exited before its socket $STAGE_SOCK appeared"
  sy_now
  ((SY_NOW < deadline)) || prepare_fail 5 "socket $STAGE_SOCK did not appear within ${START_TIMEOUT}s"
  sy_sleep_ms 100
done
chmod -- "$SOCKET_MODE" "$STAGE_SOCK"
if [[ -n $SOCKET_GROUP ]]; then chgrp -- "$SOCKET_GROUP" "$STAGE_SOCK"; fi

SY_STEP=health
sy_now
deadline=$((SY_NOW + HEALTH_MS))
while :; do
  sy_health "$STAGE_SOCK"
  [[ $SY_CODE != "$EXPECT_STATUS" ]] || break
  sy_alive "$pid" "$st" || prepare_fail 5 "the app exited during the health check (last status $SY_CODE)"
  sy_now
  ((SY_NOW < deadline)) ||
    prepare_fail 6 "GET $HEALTH_PATH (Host: $SITE) answered $SY_CODE, want $EXPECT_STATUS, for ${HEALTH_TIMEOUT}s"
  sy_sleep_ms 200
done

SY_ON_FAIL=''
sy_emit prepared "release=$RELEASE" "pid=$pid" "starttime=$st" "socket=$STAGE_SOCK" "status=$SY_CODE"
sy_read_state
if [[ -n $LIVE_R ]]; then
  sy_emit live "release=$LIVE_R" "pid=$LIVE_PID" "starttime=$LIVE_ST"
else
  sy_emit live release=none
fi
