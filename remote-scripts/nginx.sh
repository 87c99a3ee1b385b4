#!/usr/bin/env bash
# nginx.sh: start the private nginx under DIR with config TEXT, or reload the one running there.
#
# Usage: nginx.sh --prefix DIR --conf TEXT
#
# Runs a private nginx as the deploy user (no root; `gulp setup` with nginx.private, the config
# from lib/nginx/site.ts). Writes TEXT to DIR/nginx.conf.new and checks it with `nginx -t`: if
# nginx rejects it, the file is removed and nginx's words go to stderr (DIR/nginx.conf and a
# running nginx are left as they were). Otherwise it becomes DIR/nginx.conf, and nginx is reloaded
# (`-s reload`) when DIR/nginx.pid names a live process, else started (`nginx -p DIR/ -e
# DIR/error.log -c DIR/nginx.conf`, which daemonizes). When run as root, `user root;` goes first,
# so the workers run as root too and can open the deploy user's sockets.
# Prints `::sy nginx action=started|reloaded pid=P|unknown`.
#
# Exit codes: 0 running with this config; 1 unexpected failure; 2 usage; 3 nginx is not installed;
# 10 nginx rejected the config, or did not start or reload.
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

sy_init nginx
prefix='' conf=''
while (($#)); do
  [[ $1 == --prefix || $1 == --conf ]] || sy_usage "unknown option or argument: $1"
  (($# >= 2)) || sy_usage "$1 needs a value"
  if [[ $1 == --prefix ]]; then prefix=$2; else conf=$2; fi
  shift 2
done
[[ -n $prefix ]] || sy_usage "missing option --prefix"
[[ -n $conf ]] || sy_usage "missing option --conf"
sy_abspath "$prefix"
prefix=$SY_PATH

bin=$(command -v nginx) || bin=''
if [[ -z $bin && -x /usr/sbin/nginx ]]; then bin=/usr/sbin/nginx; fi
[[ -n $bin ]] || sy_die 3 "nginx is not installed (not on PATH, no /usr/sbin/nginx)"

SY_STEP=check
mkdir -p -- "$prefix"
if ((EUID == 0)); then conf="user root;"$'\n'$conf; fi
printf '%s\n' "$conf" >"$prefix/nginx.conf.new"
run=("$bin" -p "$prefix/" -e "$prefix/error.log" -c "$prefix/nginx.conf")
if ! out=$(exec "$bin" -t -q -p "$prefix/" -e "$prefix/error.log" -c "$prefix/nginx.conf.new" 2>&1); then
  rm -f -- "$prefix/nginx.conf.new"
  printf '%s\n' "$out" >&2
  out=${out%%$'\n'*}
  sy_die 10 "nginx rejected the generated config${out:+: $out}"
fi
mv -f -- "$prefix/nginx.conf.new" "$prefix/nginx.conf"

sy_words "$prefix/nginx.pid"
pid=${SY_WORDS[0]:-}
if [[ $pid =~ ^[1-9][0-9]*$ ]] && kill -0 "$pid" 2>/dev/null; then
  SY_STEP=reload
  "${run[@]}" -s reload || sy_die 10 "nginx reload failed (see $prefix/error.log)"
  sy_emit nginx action=reloaded "pid=$pid"
else
  SY_STEP=start
  "${run[@]}" </dev/null >/dev/null 2>&1 || sy_die 10 "nginx did not start (see $prefix/error.log)"
  sy_words "$prefix/nginx.pid"
  sy_emit nginx action=started "pid=${SY_WORDS[0]:-unknown}"
fi
