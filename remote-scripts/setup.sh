#!/usr/bin/env bash
# setup.sh: prepare a host for switchyard deploys; safe to run again (idempotent).
#
# Usage: setup.sh --deploy-to D --socket-dir SD [--socket-group G] [--health-protocol http|fastcgi]
#
# Checks the tools the other scripts need (lib.sh's SY_TOOLS: one `::sy check tool=T ok=yes|no` line each;
# with --health-protocol fastcgi also cgi-fcgi, the FastCGI health check's client), and that
# the socket group exists and is usable by this user, then creates SD (0755, or 0750 and group G)
# and D/releases, D/shared, D/.switchyard (0750), whatever the umask, and takes world write off
# those (and the state files) where an older run left it. Prints `::sy setup deploy_to=D socket_dir=SD`.
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
sy_parse 'deploy-to socket-dir socket-group health-protocol' "$@"
sy_require deploy-to socket-dir
sy_validate

SY_STEP=check
sy_check_tools
((${#SY_MISSING[@]} == 0)) || sy_die 3 "missing tools: ${SY_MISSING[*]} (install them, then run setup again; tar: GNU tar; find: GNU findutils)"

if [[ -n $SOCKET_GROUP ]]; then
  getent group -- "$SOCKET_GROUP" >/dev/null || sy_die 3 "socket group $SOCKET_GROUP does not exist"
  if (($(id -u) != 0)) && [[ " $(id -Gn) " != *" $SOCKET_GROUP "* ]]; then
    sy_die 3 "user $(id -un) is not in the socket group $SOCKET_GROUP, so it cannot chgrp its sockets"
  fi
fi

SY_STEP=setup
# Explicit modes, whatever the login umask (sy_init set 027): socketDir as sy_make_socket_dir
# makes it (nginx's workers must reach the sockets). The rest is the deploy user's alone: 0750
# (nginx connects to sockets only, never reads a release).
sy_make_socket_dir "$SOCKET_GROUP" || sy_die 1 "cannot make socketDir $SOCKET_DIR"
mkdir -p -- "$DEPLOY_TO" # and its parents: 0750 (umask 027)
for d in "$RELEASES" "$DEPLOY_TO/shared" "$STATE" "$STATE/tmp"; do # tmp: see switch.sh
  [[ -d $d ]] || mkdir -m 0750 -- "$d"
done
# What an older setup or deploy made under a permissive umask: world write off, where it is ours
# (-O), and never on a shared sticky directory such as /tmp (-perm -1000).
mine=()
for f in "$DEPLOY_TO" "$RELEASES" "$DEPLOY_TO/shared" "$STATE" "$STATE/tmp" "$STATE/audit.log" "$STATE/live" "$STATE/previous" "$SOCKET_DIR"; do
  if [[ -O $f && ! -L $f ]]; then mine+=("$f"); fi
done
if ((${#mine[@]} > 0)); then # (find with no path would search the current directory)
  while IFS= read -r f; do
    chmod o-w -- "$f"
    echo "setup: $f was world-writable; it no longer is" >&2
  done < <(exec find "${mine[@]}" -maxdepth 0 -perm -0002 ! -perm -1000 ! -type l)
fi
sy_emit setup "deploy_to=$DEPLOY_TO" "socket_dir=$SOCKET_DIR"
