#!/usr/bin/env bash
# switch.sh: make prepared release R the live one: rename its socket over the live path.
#
# Usage: switch.sh --deploy-to D --release R --site S --socket-dir SD [--instances N] [--files-only]
#
# Hard-links the live socket to SOCK-S.prev (instant undo while the old process runs), then
# `mv -T SOCK-S-R SOCK-S` (rename(2): nginx sees the old socket or the new one, never none),
# points D/current at releases/R, and records .switchyard/previous (the old live, or none) and
# .switchyard/live. Prints `::sy switched release=R previous=OLD|none`. Running it again after
# it succeeded prints the same line and changes nothing. With --instances N, the same for each
# instance K from the second on, its sockets named SOCK-S@K (SOCK-S@K-R, SOCK-S@K.prev).
# With --files-only (prepare.sh --files-only: no process, no socket) only `current` and the state
# move: .switchyard/live := "R" (a release id without a pid: files only).
#
# Exit codes: 0 switched; 1 unexpected failure; 2 usage; 3 not set up or releases/R missing;
# 4 deploy lock not held by R; 7 switch refused (SOCK-S-R missing or not a socket).
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

sy_init switch
sy_parse 'deploy-to release site socket-dir files-only instances' "$@"
sy_require deploy-to release site socket-dir
sy_validate
sy_check_setup
[[ -d $REL_DIR ]] || sy_die 3 "release directory $REL_DIR is missing"
sy_lock_held_by "$RELEASE" || sy_die 4 "the deploy lock is not held by $RELEASE: ${LOCK_TEXT:-free}"
sy_read_pidfile
sy_read_state

# What .switchyard/live will say; run again after it succeeded: the same line, nothing changed.
live="$RELEASE ${PID_W[*]}" again=''
if [[ -n $FILES_ONLY ]]; then
  live=$RELEASE # no pid: files only
  if [[ $LIVE_R == "$RELEASE" && -z $LIVE_PID ]]; then again=1; fi
elif [[ ! -e $STAGE_SOCK && -n $PID_PID && "$LIVE_R ${LIVE_W[*]}" == "$live" ]]; then
  again=1
fi
if [[ -n $again ]]; then
  sy_emit switched "release=$RELEASE" "previous=${PREV_R:-none}"
  exit 0
fi
if [[ -z $FILES_ONLY ]]; then
  ((${#PID_W[@]} == 2 * INSTANCES)) || sy_die 7 "$REL_DIR/.switchyard/pid does not hold $INSTANCES instance(s): was $RELEASE prepared?"
  for ((k = 1; k <= INSTANCES; k++)); do
    sy_sock "$k"
    [[ -S $STAGE_SOCK ]] || sy_die 7 "staged socket $STAGE_SOCK is missing or not a socket: was $RELEASE prepared?"
  done
  # instance by instance, each one rename(2): nginx finds every socket path served all along
  for ((k = 1; k <= INSTANCES; k++)); do
    sy_sock "$k"
    if [[ -e $LIVE_SOCK ]]; then ln -f -- "$LIVE_SOCK" "$PREV_SOCK"; fi
    mv -T -- "$STAGE_SOCK" "$LIVE_SOCK"
  done
  sy_sock 1
fi
sy_point_current "$RELEASE"
# Both state files with ONE mv: written under their own names into .switchyard/tmp, then renamed
# into .switchyard (still one atomic rename(2) per file, previous first). Hosts set up by an
# older setup.sh get the directory here once.
[[ -d $STATE/tmp ]] || mkdir -m 0750 -- "$STATE/tmp"
printf '%s\n' "$live" >"$STATE/tmp/live"
if [[ -n $LIVE_R ]]; then
  printf '%s\n' "$LIVE_R${LIVE_W[*]:+ ${LIVE_W[*]}}" >"$STATE/tmp/previous"
  mv -f -t "$STATE" -- "$STATE/tmp/previous" "$STATE/tmp/live"
else
  rm -f -- "$STATE/previous"
  mv -f -t "$STATE" -- "$STATE/tmp/live"
fi
if [[ ! -e $REL_DIR/.switchyard/live-at ]]; then
  sy_iso_us
  printf '%s\n' "$SY_ISO" >"$REL_DIR/.switchyard/live-at" # it went live once: a release a rollback may pick
fi
sy_emit switched "release=$RELEASE" "previous=${LIVE_R:-none}"
