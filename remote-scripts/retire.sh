#!/usr/bin/env bash
# retire.sh: finish the deploy of live release R: stop the previous process, prune, unlock.
#
# Usage: retire.sh --deploy-to D --release R --site S --socket-dir SD [--grace 2] [--drain 30]
#          [--drain-mode signal|connections] [--keep 5] [--audit TEXT] [--mark-bad]
#          [--standby SECONDS] [--supervisor VERSION] [--instances N] [--switched-at EPOCH_MS]
#
# If the previous release's process (pid AND start time, from .switchyard/previous) still runs:
# wait until its listener (in `ss -xle`, by its bind name SOCK-S-OLD; in a restart, where the new
# process bound that name too, by the inode of the socket .prev links to) has had an empty
# accept queue for 20 ms (with --switched-at, when the rename was made, which release.sh passes:
# an empty queue 20 ms or more after it is enough), at most --grace seconds (no ss, no inode in a
# restart, the socket not listed: the full --grace, said on stderr); with --drain-mode connections (apps that exit at once on
# SIGTERM) then also until no connection it accepted is open (`ss -xae` ESTAB, same inode), at
# most --drain seconds. Refuse if it still owns the live socket's inode, then SIGTERM it (and its
# process group), wait up to --drain seconds, SIGKILL. Prints `::sy retired release=OLD|none
# pid=P|none signal=TERM|KILL|gone [waited_ms=N queue=empty|closed|pending|timer [queued=N]
# [connections=closed|open|timer] stop_ms=N]` (a files-only previous release: pid=none
# signal=gone, nothing to stop). With --standby N (and not --mark-bad) the previous
# process is not stopped: it stays on its socket (SOCK-S.prev) for N seconds as the standby
# (.switchyard/standby; `signal=standby until=EPOCH`), for an instant rollback; an older standby is
# stopped (`standby=ended`). With --mark-bad (a rollback) the previous release
# is marked bad (`::sy marked release=OLD state=bad`). Then removes R's `fresh`
# marker, keeps the newest --keep of switchyard's own releases (a release-id name holding
# .switchyard/release.json: nothing else under releases/ is counted or deleted) and deletes the
# older ones (never R, the previous one, current, the good one that went live last, or one whose
# process still runs):
# `::sy pruned release=X` each, appends to the audit log, and releases the
# lock: `::sy unlocked`. With --supervisor VERSION, then clears the errored mark and says
# whether the site's supervisor runs: `::sy supervisor state=running|outdated|stopped`.
#
# Exit codes: 0 done; 1 unexpected failure; 2 usage; 3 not set up; 4 deploy lock not held by R;
# 7 R is not live (switch first); 8 kill refused (the previous process serves the live socket).
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

# retire_old K: stop instance K of the previous release once its listener has nothing left to
# lose; `::sy retired …` for it (with instance=K when there are several). An instance the new
# release does not have (app.instances lowered) loses its live name first.
retire_old() {
  local sig=gone check stop_at
  sy_read_state
  sy_pick "$1"
  SY_WAIT_FIELDS=()
  if (($1 > INSTANCES)) && [[ -S $LIVE_SOCK ]]; then
    ln -f -- "$LIVE_SOCK" "$PREV_SOCK"
    rm -f -- "$LIVE_SOCK"
  fi
  if sy_alive "$PREV_PID" "$PREV_ST"; then
    # Not a blind timer: until the old listener's accept queue is empty (and, with --drain-mode
    # connections, its accepted connections closed); --grace and --drain only bound the wait.
    sy_old_listener_wait "$PREV_R"
    # The live socket cannot be the old process's when switch.sh's traces are all there: R's
    # staged name is gone (renamed over the live path), and .prev (the old live inode, linked by
    # switch) is a socket other than the live one; one inode is bound by one socket only. In any
    # other state (undo ran, files moved by hand), the full check: who listens on the live inode.
    check=$LIVE_SOCK
    if [[ ! -e $STAGE_SOCK && ( ! -e $LIVE_SOCK || ( -S $LIVE_SOCK && -S $PREV_SOCK && ! $LIVE_SOCK -ef $PREV_SOCK ) ) ]]; then check=''; fi
    sy_now
    stop_at=$SY_NOW
    sy_stop "$PREV_PID" "$PREV_ST" "$DRAIN_MS" "$check"
    sig=$SY_SIGNAL
    sy_now
    SY_WAIT_FIELDS+=("stop_ms=$((SY_NOW - stop_at))")
  fi
  if ((INSTANCES > 1 || $1 > 1)); then SY_WAIT_FIELDS+=("instance=$1"); fi
  sy_emit retired "release=$PREV_R" "pid=${PREV_PID:-none}" "signal=$sig" ${SY_WAIT_FIELDS[@]+"${SY_WAIT_FIELDS[@]}"}
  signal=$sig
}

sy_init retire
sy_parse 'deploy-to release site socket-dir grace drain drain-mode keep audit mark-bad standby supervisor instances switched-at' "$@"
sy_require deploy-to release site socket-dir
sy_validate
sy_check_setup
sy_lock_held_by "$RELEASE" || sy_die 4 "the deploy lock is not held by $RELEASE: ${LOCK_TEXT:-free}"
sy_read_state
[[ $LIVE_R == "$RELEASE" ]] || sy_die 7 "$RELEASE is not live (live: ${LIVE_R:-none}): switch first"

SY_STEP=retire
signal=gone
SY_WAIT_FIELDS=()
# A standby left from an older deploy (or live again after an instant rollback) goes now.
sy_read_standby
if [[ -n $SB_R && "$SB_PID $SB_ST" != "$PREV_PID $PREV_ST" ]]; then sy_retire_standby; fi
if [[ -z $PREV_R ]]; then
  sy_emit retired release=none
elif ((STANDBY > 0)) && [[ -z $MARK_BAD ]] && sy_alive "$PREV_PID" "$PREV_ST"; then
  # kept running on its socket (.prev) for an instant rollback, until the supervisor retires it
  sy_write "$STATE/standby" "$PREV_R $PREV_PID $PREV_ST $((EPOCHSECONDS + STANDBY))"
  signal=standby
  sy_emit retired "release=$PREV_R" "pid=$PREV_PID" signal=standby "until=$((EPOCHSECONDS + STANDBY))"
else
  if [[ -e $STATE/standby || -L $STATE/standby ]]; then rm -f -- "$STATE/standby"; fi # no rm when none
  n=$((${#PREV_W[@]} / 2))
  for ((k = 1; k <= (n > 1 ? n : 1); k++)); do retire_old "$k"; done
  sy_sock 1
fi

if [[ -n $MARK_BAD && -n $PREV_R && -d $RELEASES/$PREV_R/.switchyard && ! -L $RELEASES/$PREV_R/.switchyard ]]; then
  # a rollback: what it rolled back from is never picked by a plain rollback again
  sy_iso
  printf 'rolled back from at %s: %s\n' "$SY_ISO" "$AUDIT" >"$RELEASES/$PREV_R/.switchyard/bad"
  sy_emit marked "release=$PREV_R" state=bad
fi

SY_STEP=prune
sy_our_releases
# Where a plain rollback goes (never pruned): the previous release unless it is bad (kept as
# previous anyway), else the good one that went live last.
good='' good_at=''
if [[ -z $PREV_R || -e $RELEASES/$PREV_R/.switchyard/bad ]]; then
  for name in ${SY_OURS[@]+"${SY_OURS[@]}"}; do
    sy_release_state "$name"
    [[ $SY_RSTATE == good ]] || continue
    sy_live_at "$name"
    if [[ -z $good || ! $SY_LIVE_AT < $good_at ]]; then good=$name good_at=$SY_LIVE_AT; fi # a tie: the later id
  done
fi
pruned=0
for ((i = ${#SY_OURS[@]} - 1 - KEEP; i >= 0; i--)); do
  name=${SY_OURS[i]}
  [[ $name != "$RELEASE" && $name != "$PREV_R" && $name != "$good" ]] || continue
  if sy_is_current "$name"; then continue; fi
  sy_words "$RELEASES/$name/.switchyard/pid"
  if sy_alive "${SY_WORDS[0]:-}" "${SY_WORDS[1]:-}"; then
    echo "not pruning $name: its process ${SY_WORDS[0]} still runs" >&2
    continue
  fi
  rm -rf -- "${RELEASES:?}/$name"
  sy_emit pruned "release=$name"
  pruned=$((pruned + 1))
done

SY_STEP=unlock
sy_audit deploy "release=$RELEASE" "previous=${PREV_R:-none}" "site=$SITE" "signal=$signal" "pruned=$pruned" "msg=$AUDIT"
sy_lock_release
sy_emit unlocked
if [[ -n $SUPERVISOR ]]; then
  # a release went live healthy: the supervisor may start over (no rm when there is no mark)
  if [[ -e $STATE/errored || -L $STATE/errored ]]; then rm -f -- "$STATE/errored"; fi
  sy_supervisor_state "$SUPERVISOR"
  sy_emit supervisor "state=$SY_SV_STATE"
fi
