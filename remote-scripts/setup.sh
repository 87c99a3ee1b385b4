#!/usr/bin/env bash
# setup.sh: prepare a host for switchyard deploys; safe to run again (idempotent).
#
# Usage: setup.sh --deploy-to D --socket-dir SD [--socket-group G]
#
# Checks the tools the other scripts need (one `::sy check tool=T ok=yes|no` line each), and that
# the socket group exists and is usable by this user, then creates D/releases, D/shared,
# D/.switchyard and SD. Prints `::sy setup deploy_to=D socket_dir=SD`.
#
# Exit codes: 0 ready; 1 unexpected failure; 2 usage; 3 a tool or the socket group is missing.
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

sy_init setup
sy_parse 'deploy-to socket-dir socket-group' "$@"
sy_require deploy-to socket-dir
sy_validate

SY_STEP=check
missing=()
for tool in curl ss nohup setsid tar timeout mv ln stat; do
  if command -v "$tool" >/dev/null 2>&1; then
    sy_emit check "tool=$tool" ok=yes
  else
    sy_emit check "tool=$tool" ok=no
    missing+=("$tool")
  fi
done
((${#missing[@]} == 0)) || sy_die 3 "missing tools: ${missing[*]} (install them, then run setup again)"

if [[ -n $SOCKET_GROUP ]]; then
  getent group "$SOCKET_GROUP" >/dev/null || sy_die 3 "socket group $SOCKET_GROUP does not exist"
  if (($(id -u) != 0)) && [[ " $(id -Gn) " != *" $SOCKET_GROUP "* ]]; then
    sy_die 3 "user $(id -un) is not in the socket group $SOCKET_GROUP, so it cannot chgrp its sockets"
  fi
fi

SY_STEP=setup
mkdir -p -- "$RELEASES" "$DEPLOY_TO/shared" "$STATE/tmp" "$SOCKET_DIR" # tmp: see switch.sh
sy_emit setup "deploy_to=$DEPLOY_TO" "socket_dir=$SOCKET_DIR"
