#!/usr/bin/env bash
# undo.sh: put the host back to how it was before the deploy of R, whatever phase R reached.
#
# Usage: undo.sh --deploy-to D --release R --site S --socket-dir SD [--grace 2] [--instances N]
#
# Only while R's deploy holds the lock. If R is live (switched): rename SOCK-S.prev back over the
# live socket (the previous process still listens), point current at the previous release and
# make it live again; on a cold deploy (no previous) remove the live socket and current. Then
# (if it had switched: once R's listener has had an empty accept queue for 20 ms, at most --grace
# seconds, as retire waits for an old release) stop R's process (pid and start time from its pid
# file; TERM, 5 s, KILL), remove SOCK-S-R, remove releases/R if this deploy unpacked it (`fresh`
# in the lock), and release the lock. Prints `::sy undone release=R restored=OLD|none|not-switched
# [waited_ms=N queue=empty|closed|pending|timer [queued=N]]`.
# Idempotent: when the lock is not R's and R is not live, there is nothing to undo (exit 0).
# A files-only release (switch.sh --files-only: live names R without a pid) has no socket and no
# process: undo points current back at the previous release (none: removes current) and removes
# releases/R as above.
#
# Exit codes: 0 undone (or nothing to undo); 1 unexpected failure; 2 usage; 3 not set up;
# 4 R is live but the lock is not R's (a finished deploy: roll back with a new one);
# 8 cannot restore (the previous process is gone or SOCK-S.prev is missing), or R's process
# still serves the live socket; R stays live and the lock stays held.
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

# undo_restore: R switched: every instance's .prev back over its live socket (the previous
# processes still listen), or on a first release the live sockets gone; then, by the inode each
# socket file had, R's listeners serve what their accept queues hold before R is stopped.
undo_restore() {
  local -a inos=()
  local k n=$((${#PREV_W[@]} / 2)) ino
  if [[ -n $PREV_R ]]; then
    for ((k = 1; k <= n; k++)); do
      sy_pick "$k"
      if ! sy_alive "$PREV_PID" "$PREV_ST" || [[ ! -S $PREV_SOCK ]]; then
        sy_die 8 "cannot restore $PREV_R: its process $PREV_PID is gone or $PREV_SOCK is missing; $RELEASE stays live"
      fi
    done
  fi
  for ((k = 1; k <= INSTANCES; k++)); do
    sy_pick "$k"
    ino=$(exec stat -c %i -- "$LIVE_SOCK" 2>/dev/null) || ino=''
    inos+=("$ino")
    if [[ -n $PREV_R && $k -le $n ]]; then mv -T -- "$PREV_SOCK" "$LIVE_SOCK"; else rm -f -- "$LIVE_SOCK"; fi
  done
  if [[ -n $PREV_R ]]; then
    sy_point_current "$PREV_R"
    sy_write "$STATE/live" "$PREV_R ${PREV_W[*]}"
    rm -f -- "$STATE/previous"
    restored=$PREV_R
  else
    rm -f -- "$DEPLOY_TO/current" "$STATE/live" "$STATE/previous"
    restored=none
  fi
  DRAIN_MODE=signal
  for ((k = 1; k <= INSTANCES; k++)); do
    sy_sock "$k"
    sy_old_listener_wait "$RELEASE" "${inos[k - 1]}"
  done
  sy_sock 1
}

sy_init undo
sy_parse 'deploy-to release site socket-dir grace instances' "$@"
sy_require deploy-to release site socket-dir
sy_validate
sy_check_setup
sy_read_pidfile
sy_read_state
switched=''
if [[ -n $PID_PID && "$LIVE_R ${LIVE_W[*]}" == "$RELEASE ${PID_W[*]}" ]]; then switched=1; fi
files=''
if [[ $LIVE_R == "$RELEASE" && -z $LIVE_PID ]]; then switched=1 files=1; fi

if ! sy_lock_held_by "$RELEASE"; then
  [[ -z $switched ]] || sy_die 4 "$RELEASE is live and its deploy is over (lock: ${LOCK_TEXT:-free}): nothing to undo"
  sy_emit undone "release=$RELEASE" restored=not-switched
  exit 0
fi

SY_STEP=restore
restored=not-switched
SY_WAIT_FIELDS=()
if [[ -n $files ]]; then
  # files only: no socket to rename back, no listener to wait for
  if [[ -n $PREV_R ]]; then
    sy_point_current "$PREV_R"
    sy_write "$STATE/live" "$PREV_R${PREV_W[*]:+ ${PREV_W[*]}}"
    rm -f -- "$STATE/previous"
    restored=$PREV_R
  else
    rm -f -- "$DEPLOY_TO/current" "$STATE/live" "$STATE/previous"
    restored=none
  fi
elif [[ -n $switched ]]; then
  undo_restore
fi

SY_STEP=stop
sy_read_state
for ((k = 1; k <= ${#PID_W[@]} / 2; k++)); do
  sy_pick "$k"
  # A standby that never switched (an instant rollback undone) was not started by us: it stays.
  if [[ -n $PID_PID && "$PID_PID $PID_ST" != "$LIVE_PID $LIVE_ST" ]] && [[ -n $switched || ! -f $LOCK/standby ]]; then
    sy_stop "$PID_PID" "$PID_ST" 5000 "$LIVE_SOCK"
  fi
done
for ((k = 1; k <= INSTANCES; k++)); do
  sy_sock "$k"
  rm -f -- "$STAGE_SOCK"
done
sy_sock 1
if [[ -f $LOCK/fresh ]] && ! sy_in_use "$RELEASE"; then
  rm -rf -- "$REL_DIR"
elif [[ $LIVE_R == "$RELEASE" ]]; then
  sy_write "$REL_DIR/.switchyard/pid" "${LIVE_W[*]}" # a restart undone: the old processes again
fi

SY_STEP=unlock
sy_audit undo "release=$RELEASE" "restored=$restored" "site=$SITE"
sy_lock_release
sy_emit undone "release=$RELEASE" "restored=$restored" ${SY_WAIT_FIELDS[@]+"${SY_WAIT_FIELDS[@]}"}
