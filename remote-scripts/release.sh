#!/usr/bin/env bash
# release.sh: one host's whole release in ONE exec: prepare, then switch and retire (or undo) when
# the client says so on stdin. The client waits for every host's prepare between the words: that
# barrier is the transaction (docs/REMOTE-PROTOCOL.md).
#
# Usage: release.sh WAIT NP NS NR PREPARE-ARGS(NP words)… SWITCH-ARGS(NS)… RETIRE-ARGS(NR)… UNDO-ARGS…
#   then on stdin: the env block (--env-bytes N of the prepare args: the app's variables, which
#   never travel on a command line), the package (--package-bytes N; not with --reuse), both read
#   by prepare, and one word a line: `switch`, then `retire`; or `undo` at any point after prepare.
#   WAIT: seconds to wait for a word. While it waits, the deploy lock's heartbeat goes on
#   (lock/heartbeat, every 5 s): the lock of a client that is gone ages, from any machine's view.
#
# `--release @standby` (a plain rollback, in ONE exec: no releases.sh first) is resolved here,
# before prepare, into every step's `--release`: the release this host has standing by, the
# previous one whose process retire.sh --standby kept running (.switchyard/standby: alive by pid
# and start time, not live, not rolled back from; prepare then takes its instant path); on a host
# that runs no app (--files-only), the previous release (nothing runs there). It prints
# `::sy resolved name=@standby release=R` first; none here: 12, nothing changed. It is read before
# prepare takes the lock: a standby retired just then (its window over) is started again by
# prepare --reuse R, the relaunch path, with the same guarantees.
#
# Each step is prepare.sh, switch.sh, retire.sh or undo.sh run as they are (the client sends them
# as the functions sy_run_prepare… before this text; run as a file, the scripts beside it), in a
# subshell of its own, with its own traps and exit code. After prepare and after switch it prints
# `::sy ready step=prepare|switch` and waits for the next word.
#
# Exit codes: those of the step that ended it (see each script); 0 after retire or undo;
# 2 usage or an unknown word; 3 @standby on a host not set up; 9 stdin ended, or WAIT seconds
# passed, without a word (the client is gone or stuck): the host is left as it was, its lock held.
# The client then runs the next step as an exec of its own, or `gulp unlock` / the next deploy
# names the lock; 12 @standby, and no standby runs here (nothing changed: the client falls back to
# releases.sh and a relaunch).
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

if ! { (($# >= 4)) && [[ "$1 $2 $3 $4" =~ ^[1-9][0-9]*\ [0-9]+\ [0-9]+\ [0-9]+$ ]] && (($# >= 4 + $2 + $3 + $4)); }; then
  sy_fail 2 release "usage: release.sh WAIT NP NS NR PREPARE-ARGS… SWITCH-ARGS… RETIRE-ARGS… UNDO-ARGS…"
fi
wait=$1 np=$2 ns=$3 nr=$4
shift 4
prepare_args=("${@:1:np}")
switch_args=("${@:np+1:ns}")
retire_args=("${@:np+ns+1:nr}")
undo_args=("${@:np+ns+nr+1}")

# release_standby: TARGET, the release @standby names here (see the header), or exit 12.
# Locals only (the step subshells inherit this shell's variables): the state is read, not changed.
release_standby() {
  # shellcheck disable=SC2034  # set by lib.sh's readers, declared here to keep them local
  local RELEASES STATE LIVE_R LIVE_PID LIVE_ST PREV_R PREV_PID PREV_ST SB_R SB_PID SB_ST SB_UNTIL SY_RSTATE SY_WORDS SY_PATH want=standby w
  [[ ${prepare_args[0]:-} == --deploy-to ]] || sy_fail 2 release "@standby: prepare's words must start with --deploy-to D"
  sy_abspath "${prepare_args[1]:-}"
  RELEASES=$SY_PATH/releases STATE=$SY_PATH/.switchyard
  [[ -d $RELEASES ]] || sy_fail 3 release "$RELEASES is missing: run setup first"
  for w in "${prepare_args[@]}"; do
    [[ $w != -- ]] || break
    if [[ $w == --files-only ]]; then want=previous; fi
  done
  sy_read_state
  SY_RSTATE=none
  if [[ -n $PREV_R && -d $RELEASES/$PREV_R ]]; then sy_release_state "$PREV_R"; fi
  [[ $SY_RSTATE == "$want" ]] ||
    sy_fail 12 release "@standby: no standby runs here (previous release: ${PREV_R:-none}, state: $SY_RSTATE): nothing changed"
  TARGET=$PREV_R
}

# release_name ARRAY: its `--release @standby` (before any `--`: the app's words are its own) made
# `--release $TARGET`.
release_name() {
  local -n a=$1
  local i
  for ((i = 0; i + 1 < ${#a[@]}; i++)); do
    [[ ${a[i]} != -- ]] || return 0
    if [[ ${a[i]} == --release && ${a[i + 1]} == @standby ]]; then a[i + 1]=$TARGET; fi
  done
}

TARGET=''
for ((i = 0; i + 1 < np; i++)); do
  [[ ${prepare_args[i]} != -- ]] || break
  if [[ ${prepare_args[i]} == --release && ${prepare_args[i + 1]} == @standby ]]; then
    release_standby
    for words in prepare_args switch_args retire_args undo_args; do release_name "$words"; done
    sy_emit resolved name=@standby "release=$TARGET"
    break
  fi
done

# release_word: the client's next word into WORD, read in 5 s slices so that the lock's heartbeat
# goes on meanwhile (a partial line is kept across slices); 1 at the end of stdin or after WAIT s.
release_word() {
  local rc part buf='' deadline slice t
  sy_now
  deadline=$((SY_NOW + wait * 1000))
  while :; do
    slice=$((deadline - SY_NOW < 5000 ? deadline - SY_NOW : 5000))
    printf -v t '%d.%03d' $((slice / 1000)) $((slice % 1000))
    rc=0
    IFS= read -r -t "$t" part || rc=$?
    if ((rc == 0)); then
      WORD=$buf$part
      return 0
    fi
    ((rc > 128)) || return 1
    buf+=$part
    sy_heartbeat
    sy_now
    ((SY_NOW < deadline)) || return 1
  done
}

# Plain calls, never `f || …`: bash ignores set -e inside a function called in a condition, and
# the steps rely on it. A failing step ends this script with its own code.
sy_run_prepare "${prepare_args[@]}"
sy_emit ready step=prepare
# prepare holds the lock now: its heartbeat, while we wait (the client puts --deploy-to D first)
if [[ ${prepare_args[0]:-} == --deploy-to ]]; then
  sy_abspath "${prepare_args[1]:-}"
  LOCK=$SY_PATH/.switchyard/lock SY_HB=1
fi
step=prepare
while release_word; do
  word=$WORD
  case $step:$word in
    prepare:switch)
      sy_run_switch "${switch_args[@]}" </dev/null
      # the rename is done by now: retire's quiet time for the old listener counts from here
      sy_now
      retire_args+=(--switched-at "$SY_NOW")
      sy_emit ready step=switch
      step=switch
      ;;
    switch:retire)
      sy_run_retire "${retire_args[@]}" </dev/null
      exit 0
      ;;
    *:undo)
      sy_run_undo "${undo_args[@]}" </dev/null
      exit 0
      ;;
    *) sy_fail 2 release "unexpected word after $step: '$word'" ;;
  esac
done
sy_fail 9 release "no word from the client after $step (stdin ended, or ${wait}s passed): the host is left as it is (locked)"
