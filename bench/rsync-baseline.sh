#!/usr/bin/env bash
# rsync-baseline.sh: the large-build bench's minimum (bench/large.ts): upload with rsync, linking
# what is unchanged from the previous release, then release it by hand with the system ssh client.
#
# Usage: rsync-baseline.sh --ssh-config FILE --site S --release R --prev R0|'' --pause SECONDS
#          --node PATH --build DIR HOST…
#   HOST is ALIAS,PORT,DEPLOY_TO,SOCKET_DIR (PORT empty: the port from the ssh config).
#
# For every host in parallel: `rsync -a --link-dest=../R0 BUILD/ HOST:D/releases/R/` (what rsync
# finds unchanged by size and mtime is hard-linked from R0, the rest sent: its quick check), then
# ONE ssh that starts the app with nohup setsid on SOCK-S-R, waits for the socket, health-checks it
# (curl --unix-socket, Host header), `mv -T`s it over SOCK-S, pauses --pause seconds and SIGTERMs the
# previous process group (waits up to 5 s, then SIGKILL). No lock, no rollback: the minimum.
#
# Prints `sent HOST BYTES` (rsync's "Total bytes sent") and `mark HOST EVENT EPOCH_MS` (start,
# uploaded, switched, retired). Exit codes: 0 every host done; 1 a host failed; 2 usage.
set -euo pipefail

now_ms() {
  local t=${EPOCHREALTIME/./}
  printf '%s' "${t:0:13}"
}

ssh_config='' site='' release='' prev='-' pause='' node='' build=''
while (($#)) && [[ $1 == --* ]]; do
  (($# >= 2)) || {
    echo "rsync-baseline.sh: $1 needs a value" >&2
    exit 2
  }
  case $1 in
    --ssh-config) ssh_config=$2 ;;
    --site) site=$2 ;;
    --release) release=$2 ;;
    --prev) prev=$2 ;;
    --pause) pause=$2 ;;
    --node) node=$2 ;;
    --build) build=$2 ;;
    *)
      echo "rsync-baseline.sh: unknown option $1" >&2
      exit 2
      ;;
  esac
  shift 2
done
for v in ssh_config site release pause node build; do
  [[ -n ${!v} ]] || {
    echo "rsync-baseline.sh: --$v is required" >&2
    exit 2
  }
done
(($# > 0)) || {
  echo "rsync-baseline.sh: no hosts" >&2
  exit 2
}

# On each host: bash -c REMOTE release D SD S R PAUSE NODE.
# shellcheck disable=SC2016 # expanded on the host
REMOTE='set -euo pipefail
D=$1 SD=$2 S=$3 R=$4 PAUSE=$5 NODE=$6
mark() { local t=${EPOCHREALTIME/./}; echo "mark $1 ${t:0:13}"; }
alive() { local l r; { IFS= read -r l <"/proc/$1/stat"; } 2>/dev/null || return 1; r=${l##*") "}; [[ ${r:0:1} != [ZX] ]]; }
sock=$SD/SOCK-$S-$R live=$SD/SOCK-$S old=""
if [[ -f $D/rsync.pid ]]; then read -r old <"$D/rsync.pid" || true; fi
cd -- "$D/releases/$R"
nohup setsid env SWITCHYARD_RELEASE="$R" "$NODE" server.js --socket "$sock" >/dev/null 2>&1 </dev/null &
pid=$!
for ((i = 0; i < 300; i++)); do [[ -S $sock ]] && break; alive "$pid" || break; sleep 0.1; done
[[ -S $sock ]] || { echo "no socket $sock" >&2; exit 5; }
for ((i = 0; i < 25; i++)); do
  code=$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 --unix-socket "$sock" -H "Host: $S" http://localhost/health) || code=000
  [[ $code == 200 ]] && break
  sleep 0.2
done
[[ $code == 200 ]] || { echo "health: $code" >&2; kill -KILL -- "-$pid"; exit 6; }
mv -T -- "$sock" "$live"
echo "$pid" >"$D/rsync.pid"
mark switched
if [[ -n $old ]] && alive "$old"; then
  sleep "$PAUSE"
  kill -TERM -- "-$old" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$old" || break; sleep 0.1; done
  if alive "$old"; then kill -KILL -- "-$old" 2>/dev/null || true; fi
fi
mark retired'

sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sy-rsync.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
echo "mark - start $(now_ms)"
names=()
for spec in "$@"; do
  IFS=, read -r alias port deploy_to socket_dir <<<"$spec"
  names+=("$alias")
  ssh_cmd="ssh -F $ssh_config${port:+ -p $port}"
  link=()
  if [[ -n $prev && $prev != - ]]; then link=(--link-dest="../$prev"); fi
  (
    rc=0
    rsync -a --stats "${link[@]}" -e "$ssh_cmd" --rsync-path="mkdir -p $(sq "$deploy_to/releases") && rsync" -- "$build/" "$alias:$deploy_to/releases/$release/" >"$tmp/$alias.rsync" 2>"$tmp/$alias.err" || rc=$?
    echo "sent $alias $(sed -n 's/^Total bytes sent: \([0-9,]*\).*/\1/p' "$tmp/$alias.rsync" | tr -d ,)"
    echo "mark $alias uploaded $(now_ms)"
    if ((rc == 0)); then
      # shellcheck disable=SC2086 # ssh_cmd is words
      $ssh_cmd "$alias" "bash -c $(sq "$REMOTE") release $(sq "$deploy_to") $(sq "$socket_dir") $(sq "$site") $(sq "$release") $(sq "$pause") $(sq "$node")" \
        2>>"$tmp/$alias.err" | sed "s/^mark /mark $alias /" || rc=$?
    fi
    echo "mark $alias ssh-end $(now_ms)"
    echo "$rc" >"$tmp/$alias.rc"
  ) >"$tmp/$alias.out" &
done
wait

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
