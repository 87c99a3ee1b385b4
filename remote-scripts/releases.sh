#!/usr/bin/env bash
# releases.sh: switchyard's own releases of site S on this host, newest first, and their state.
#
# Usage: releases.sh --deploy-to D --site S --socket-dir SD
#
# Prints one line per release (a release-id directory holding .switchyard/release.json; nothing
# else under releases/ is listed), newest name first: `::sy release id=R
# state=current|standby|previous|good|bad|failed|preparing live_at=ISO|none built=ISO|none git=SHA|none
# by=USER@HOST|none`.
# current: what serves now; previous: what served before the last switch (standby: and its
# process still runs, for an instant rollback); good: went live once
# (live_at, this host's clock), not rolled back from; bad: rolled back from (a plain rollback never
# picks it); failed: unpacked, never switched to (its deploy failed or was killed: undo removes
# what a failed deploy unpacked, so these are the ones left behind); preparing: the same while its
# deploy holds the lock; by: who deployed it (the client's user@host).
# Changes nothing.
#
# Exit codes: 0 listed; 1 unexpected failure; 2 usage; 3 not set up.
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

# releases_meta R: SY_GIT and SY_BUILT from R's release.json (the client writes it, one key a line).
releases_meta() {
  local line
  SY_GIT=none SY_BUILT=none SY_BY=none
  while IFS= read -r line; do
    if [[ $line =~ \"git\":\ \"([0-9a-f]{1,40})\" ]]; then SY_GIT=${BASH_REMATCH[1]}; fi
    if [[ $line =~ \"builtAt\":\ \"([0-9TZ:.-]{1,40})\" ]]; then SY_BUILT=${BASH_REMATCH[1]}; fi
    if [[ $line =~ \"deployedBy\":\ \"([A-Za-z0-9_.@-]{1,200})\" ]]; then SY_BY=${BASH_REMATCH[1]}; fi
  done <"$RELEASES/$1/.switchyard/release.json"
}

sy_init releases
sy_parse 'deploy-to site socket-dir' "$@"
sy_require deploy-to site socket-dir
sy_validate
[[ -d $RELEASES ]] || sy_die 3 "$RELEASES is missing: run setup first"
sy_read_state
sy_lock_read
sy_our_releases
for ((i = ${#SY_OURS[@]} - 1; i >= 0; i--)); do
  r=${SY_OURS[i]}
  sy_release_state "$r"
  sy_live_at "$r"
  releases_meta "$r"
  sy_emit release "id=$r" "state=$SY_RSTATE" "live_at=${SY_LIVE_AT:-none}" "built=$SY_BUILT" "git=$SY_GIT" "by=$SY_BY"
done
