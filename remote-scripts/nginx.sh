#!/usr/bin/env bash
# Usage: nginx.sh --prefix DIR --conf TEXT
#
# Runs a private nginx as the deploy user (no root): writes DIR/nginx.conf, checks it with
# `nginx -t`, then starts nginx or reloads the running one (found by DIR/nginx.pid).
# When run as root, the workers run as root too, so they can open the deploy user's sockets.
#
# Exit codes: 0 running with this config; 2 usage; 3 nginx not installed; 9 config rejected or start failed.
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # shellcheck source=remote-scripts/lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

prefix=""
conf=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a value}"; shift 2 ;;
    --conf) conf="${2:?--conf needs a value}"; shift 2 ;;
    *) sy_fail 2 usage "unknown option $1 (usage: nginx.sh --prefix DIR --conf TEXT)" ;;
  esac
done
if [ -z "$prefix" ] || [ -z "$conf" ]; then sy_fail 2 usage "usage: nginx.sh --prefix DIR --conf TEXT"; fi

bin="$(command -v nginx || true)"
if [ -z "$bin" ] && [ -x /usr/sbin/nginx ]; then bin=/usr/sbin/nginx; fi
if [ -z "$bin" ]; then sy_fail 3 nginx "nginx is not installed"; fi

mkdir -p "$prefix"
if [ "$(id -u)" = 0 ]; then conf="user root;"$'\n'"$conf"; fi
printf '%s\n' "$conf" >"$prefix/nginx.conf.new"
run=("$bin" -p "$prefix/" -e "$prefix/error.log" -c "$prefix/nginx.conf")
if ! out="$("$bin" -t -q -p "$prefix/" -e "$prefix/error.log" -c "$prefix/nginx.conf.new" 2>&1)"; then
  rm -f "$prefix/nginx.conf.new"
  printf '%s\n' "$out" >&2
  sy_fail 9 nginx "nginx rejected the generated config"
fi
mv -f "$prefix/nginx.conf.new" "$prefix/nginx.conf"

pid=""
[ -f "$prefix/nginx.pid" ] && pid="$(cat "$prefix/nginx.pid")"
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  "${run[@]}" -s reload || sy_fail 9 nginx "nginx reload failed"
  sy_emit nginx action=reloaded pid="$pid"
else
  "${run[@]}" </dev/null >/dev/null 2>&1 || sy_fail 9 nginx "nginx did not start (see $prefix/error.log)"
  sy_emit nginx action=started pid="$(cat "$prefix/nginx.pid" 2>/dev/null || echo unknown)"
fi
