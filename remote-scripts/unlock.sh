#!/usr/bin/env bash
# unlock.sh: remove the deploy lock (after a deploy died without undo), with an audit line.
#
# Usage: unlock.sh --deploy-to D [--release R]
#
# With --release, only a lock held by R is removed. Prints `::sy unlocked msg=<owner text>`, or
# `::sy unlock state=free` when there was no lock. Stops no process: run undo for that.
#
# Exit codes: 0 unlocked or already free; 1 unexpected failure; 2 usage; 3 not set up;
# 4 the lock is held by another release than R.
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

sy_init unlock
sy_parse 'deploy-to release' "$@"
sy_require deploy-to
sy_validate
sy_check_setup
sy_lock_read
if [[ -z $LOCK_TEXT ]]; then
  sy_emit unlock state=free
  exit 0
fi
if [[ -n $RELEASE && $LOCK_R != "$RELEASE" ]]; then
  sy_die 4 "the lock is not held by $RELEASE: $LOCK_TEXT"
fi
sy_lock_release
sy_audit unlock "release=${LOCK_R:-unknown}" "msg=$LOCK_TEXT"
sy_emit unlocked "msg=$LOCK_TEXT"
