#!/usr/bin/env bash
# baseline.sh: the same release done by hand with the system ssh client, for bench/deploy.ts.
#
# Usage: baseline.sh --ssh-config FILE --site S --release R --pause SECONDS --drain SECONDS
#          --node PATH --build DIR --scripts DIR [--kex ALGORITHMS] HOST…
#   HOST is ALIAS,PORT,DEPLOY_TO,SOCKET_DIR (PORT empty: the port from the ssh config).
#   --kex: ssh's KexAlgorithms (bench/deploy.ts passes the one switchyard's ssh2 client negotiates,
#   curve25519-sha256; without it, OpenSSH's default: sntrup761x25519 on OpenSSH 9.2, some 80 ms of
#   CPU more per connection on each side here).
#
# One tar.gz (the build dir + the remote scripts as .switchyard/bin, like switchyard's package),
# built once. Then for every host in parallel ONE ssh (one connection, one exec) that: streams the
# package into `mkdir releases/R && tar -xz -C releases/R`, starts the app with nohup setsid on its
# own socket SOCK-S-R, waits for the socket (polling every 0.1 s, as prepare.sh), health-checks it
# with curl --unix-socket and the Host header (every 0.2 s until 200, as prepare.sh), `mv -T`s it
# over the live socket SOCK-S, then, if the previous baseline process still runs, pauses --pause
# seconds (0.2 in bench/deploy.ts: a fixed pause before the kill, no look at the old listener),
# SIGTERMs its process group and waits for it to go (polling every 0.1 s, as switchyard's retire
# does), at most --drain seconds (then SIGKILL).
# No lock, no barrier between hosts, no rollback, no pruning: the minimum.
#
# Prints `mark HOST EVENT EPOCH_MS` lines (local: start, packaged, ssh-start, ssh-end; remote:
# unpacked, socket, healthy, switched, termed, retired) and `bytes N` (the package, sent to every
# host). Exit 0 when every host succeeded. bench/deploy.ts times it from spawn to exit under GNU
# time (peak memory, CPU), as it times switchyard.
set -euo pipefail

now_ms() {
  local t=${EPOCHREALTIME/./}
  printf '%s' "${t:0:13}"
}
T0=$(now_ms)

ssh_config='' site='' release='' pause='' drain='' node='' build='' scripts='' kex=''
while (($#)) && [[ $1 == --* ]]; do
  case $1 in
    --ssh-config) ssh_config=$2 ;;
    --site) site=$2 ;;
    --release) release=$2 ;;
    --pause) pause=$2 ;;
    --drain) drain=$2 ;;
    --node) node=$2 ;;
    --build) build=$2 ;;
    --scripts) scripts=$2 ;;
    --kex) kex=$2 ;;
    *)
      echo "baseline.sh: unknown option $1" >&2
      exit 2
      ;;
  esac
  shift 2
done
for v in ssh_config site release pause drain node build scripts; do
  [[ -n ${!v} ]] || {
    echo "baseline.sh: --${v//_/-} is required" >&2
    exit 2
  }
done
(($# > 0)) || {
  echo "baseline.sh: no hosts" >&2
  exit 2
}

# What runs on each host: bash -c REMOTE baseline D SD S R PAUSE DRAIN NODE, package on stdin.
# shellcheck disable=SC2016 # expanded on the host
REMOTE='set -euo pipefail
D=$1 SD=$2 S=$3 R=$4 PAUSE=$5 DRAIN=$6 NODE=$7
mark() { local t=${EPOCHREALTIME/./}; echo "mark $1 ${t:0:13}"; }
alive() { local l r; { IFS= read -r l <"/proc/$1/stat"; } 2>/dev/null || return 1; r=${l##*") "}; [[ ${r:0:1} != [ZX] ]]; }
rel=$D/releases/$R sock=$SD/SOCK-$S-$R live=$SD/SOCK-$S
mkdir -p -- "$D/releases"
mkdir -- "$rel"
tar -xz -C "$rel"
mark unpacked
old=""
if [[ -f $D/baseline.pid ]]; then read -r old <"$D/baseline.pid" || true; fi
cd -- "$rel"
nohup setsid env SWITCHYARD_RELEASE="$R" "$NODE" server.js --socket "$sock" >app.log 2>&1 </dev/null &
pid=$!
for ((i = 0; i < 300; i++)); do [[ -S $sock ]] && break; alive "$pid" || break; sleep 0.1; done
[[ -S $sock ]] || { echo "no socket $sock" >&2; kill -KILL -- "-$pid" 2>/dev/null; exit 5; }
chmod 0660 "$sock"
mark socket
for ((i = 0; i < 25; i++)); do
  code=$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 --unix-socket "$sock" -H "Host: $S" http://localhost/health) || code=000
  [[ $code == 200 ]] && break
  sleep 0.2
done
[[ $code == 200 ]] || { echo "health: $code" >&2; kill -KILL -- "-$pid" 2>/dev/null; rm -f "$sock"; exit 6; }
mark healthy
mv -T -- "$sock" "$live"
echo "$pid" >"$D/baseline.pid"
mark switched
if [[ -n $old ]] && alive "$old"; then
  sleep "$PAUSE"
  kill -TERM -- "-$old" 2>/dev/null || kill -TERM -- "$old" 2>/dev/null || true
  mark termed
  for ((i = 0; i < DRAIN * 10; i++)); do alive "$old" || break; sleep 0.1; done
  if alive "$old"; then kill -KILL -- "-$old" 2>/dev/null || true; fi
fi
mark retired'

# One word for the remote shell: single quotes, any ' inside closed and escaped.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sy-baseline.XXXXXX")
pids=()
# shellcheck disable=SC2317 # a trap
cleanup() {
  local p
  for p in ${pids[@]+"${pids[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pkg=$tmp/release.tar.gz
shopt -s nullglob
script_files=("$scripts"/*.sh)
shopt -u nullglob
tar -czf "$pkg" --transform 's,^\([^./][^/]*\.sh\)$,.switchyard/bin/\1,' \
  -C "$build" --exclude=./.switchyard . -C "$scripts" "${script_files[@]##*/}"
echo "mark - start $T0"
echo "mark - packaged $(now_ms)"
echo "bytes $(stat -c %s "$pkg")"

command="bash -c $(sq "$REMOTE") baseline"
names=()
for spec in "$@"; do
  IFS=, read -r alias port deploy_to socket_dir <<<"$spec"
  names+=("$alias")
  cmd="$command $(sq "$deploy_to") $(sq "$socket_dir") $(sq "$site") $(sq "$release") $(sq "$pause") $(sq "$drain") $(sq "$node")"
  (
    echo "mark $alias ssh-start $(now_ms)"
    rc=0
    ssh -F "$ssh_config" ${port:+-p "$port"} ${kex:+-o "KexAlgorithms=$kex"} "$alias" "$cmd" <"$pkg" 2>"$tmp/$alias.err" | sed "s/^mark /mark $alias /" || rc=$?
    echo "mark $alias ssh-end $(now_ms)"
    echo "$rc" >"$tmp/$alias.rc"
  ) >"$tmp/$alias.out" &
  pids+=($!)
done
wait "${pids[@]}" || true
pids=()

failed=0
for alias in "${names[@]}"; do
  cat -- "$tmp/$alias.out"
  rc=$(cat -- "$tmp/$alias.rc" 2>/dev/null || echo 255)
  if [[ $rc != 0 ]]; then
    failed=1
    echo "$alias: failed (exit $rc): $(tr '\n' ' ' <"$tmp/$alias.err")" >&2
  fi
done
exit "$failed"
