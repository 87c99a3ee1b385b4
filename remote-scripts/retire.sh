#!/usr/bin/env bash
# retire.sh: finish the deploy of live release R: stop the previous process, prune, unlock.
#
# Usage: retire.sh --deploy-to D --release R --site S --socket-dir SD [--grace 2] [--drain 30]
#          [--keep 5] [--audit TEXT]
#
# If the previous release's process (pid AND start time, from .switchyard/previous) still runs:
# wait --grace seconds (connections already in its accept queue), refuse if it still owns the live
# socket's inode, then SIGTERM it (and its process group), wait up to --drain seconds, SIGKILL.
# Prints `::sy retired release=OLD|none pid=P signal=TERM|KILL|gone`. Then removes R's `fresh`
# marker, keeps the newest --keep release directories (never R, the previous one, or one whose
# process still runs): `::sy pruned release=X` each, appends to the audit log, and releases the
# lock: `::sy unlocked`.
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

sy_init retire
sy_parse 'deploy-to release site socket-dir grace drain keep audit' "$@"
sy_require deploy-to release site socket-dir
sy_validate
sy_check_setup
sy_lock_held_by "$RELEASE" || sy_die 4 "the deploy lock is not held by $RELEASE: ${LOCK_TEXT:-free}"
sy_read_state
[[ $LIVE_R == "$RELEASE" ]] || sy_die 7 "$RELEASE is not live (live: ${LIVE_R:-none}): switch first"

SY_STEP=retire
signal=gone
if [[ -z $PREV_R ]]; then
  sy_emit retired release=none
else
  if sy_alive "$PREV_PID" "$PREV_ST"; then
    sy_sleep_ms "$GRACE_MS"
    # The live socket cannot be the old process's when switch.sh's traces are all there: R's
    # staged name is gone (renamed over the live path), and .prev (the old live inode, linked by
    # switch) is a socket other than the live one; one inode is bound by one socket only. In any
    # other state (undo ran, files moved by hand), the full check: who listens on the live inode.
    check=$LIVE_SOCK
    if [[ ! -e $STAGE_SOCK && -S $LIVE_SOCK && -S $PREV_SOCK && ! $LIVE_SOCK -ef $PREV_SOCK ]]; then check=''; fi
    sy_stop "$PREV_PID" "$PREV_ST" "$DRAIN_MS" "$check"
    signal=$SY_SIGNAL
  fi
  sy_emit retired "release=$PREV_R" "pid=$PREV_PID" "signal=$signal"
fi

SY_STEP=prune
# The glob is already sorted (byte order under LC_ALL=C), so no subshell and no `sort`: walk
# it from the end for newest first.
LC_ALL=C
shopt -s nullglob
dirs=("$RELEASES"/*/)
shopt -u nullglob
pruned=0
for ((i = ${#dirs[@]} - 1 - KEEP; i >= 0; i--)); do
  name=${dirs[i]%/}
  name=${name##*/}
  [[ $name != "$RELEASE" && $name != "$PREV_R" ]] || continue
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
