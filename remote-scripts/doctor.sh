#!/usr/bin/env bash
# doctor.sh: what a deploy on this host depends on, read only: it takes no lock and writes nothing.
#
# Usage: doctor.sh --deploy-to D --site S --socket-dir SD [--socket-group G] [--socket-mode 0660]
#          [--health-path /health] [--expect-status 200] [--health-protocol http|fastcgi] [--nginx-url URL]
#          [--shell-up UPTIME]
#
# Prints what it finds; the client judges it (lib/servers/doctor.ts):
#   ::sy shell login_ms=N|none script_ms=N|none shell=PATH   from sshd's fork of the login shell to
#        the command (--shell-up: /proc/uptime as the login shell read it, the command's first act),
#        and from then to this script's first line (`bash -c` reads the start-up files again)
#   ::sy check tool=T ok=yes|no [version=V]   every tool of lib.sh's SY_TOOLS, as setup checks them
#   ::sy version tool=curl|bash version=V
#   ::sy layout set_up=yes|no live=R|none
#   ::sy socketdir path=SD present=yes|no [searchable=yes|no mode=M owner=U group=G]   (searchable: by
#        this user, who must see and reach its own sockets)
#   ::sy socket path=SOCK present=yes|no|unknown [mode=M owner=U group=G]   (unknown: SD not searchable)
#   ::sy reach who=user:NAME|group:NAME uid=U found=listener|name|config traverse=yes|no blocked=PATH|none
#        blocked_mode=M|none blocked_owner=U:G|none connect=yes|no|none     whether nginx's workers (those holding the listener of --nginx-url's
#        port, else every `nginx: worker process`) and a member of G can reach the live socket
#   ::sy get via=socket|nginx code=CODE rc=N   GET of the health path with `Host: S`, on the live socket
#        and through nginx at URL (rc: curl's exit code); through nginx alone when SD is not searchable
#   ::sy route live=R|none same=yes|no|unstable|none   both answered alike (unstable: the socket's own
#        two answers differ, so only the status codes compare)
#
# Exit codes: 0 reported (a problem is a line, not a code); 1 unexpected failure; 2 usage.
set -euo pipefail
if ! declare -F sy_emit >/dev/null; then
  # ${…%/*}, not $(dirname …): one program less; a bare name means the current directory.
  sy_dir=.
  if [[ ${BASH_SOURCE[0]} == */* ]]; then sy_dir=${BASH_SOURCE[0]%/*}; fi
  # shellcheck source=SCRIPTDIR/lib.sh
  . "$sy_dir/lib.sh"
fi

# doc_uptime: /proc/uptime in centiseconds in DOC_CS (its two decimals: the clock tick's precision).
doc_uptime() {
  local up
  read -r up _ </proc/uptime
  DOC_CS=$((10#${up//./}))
}
doc_uptime
doc_first=$DOC_CS

sy_init doctor
sy_parse 'deploy-to site socket-dir socket-group socket-mode health-path expect-status health-protocol nginx-url shell-up' "$@"
sy_require deploy-to site socket-dir
sy_validate
[[ -z $SHELL_UP || $SHELL_UP =~ ^[0-9]+\.[0-9]{2}$ ]] || sy_usage "bad --shell-up (want /proc/uptime's first word): '$SHELL_UP'"
[[ -z $NGINX_URL || $NGINX_URL =~ ^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$ ]] ||
  sy_usage "bad --nginx-url (want http://HOST[:PORT]): '$NGINX_URL'"
NGINX_URL=${NGINX_URL%/}

# ---- the login shell -------------------------------------------------------------------------------
SY_STEP=shell
login=none script=none
if [[ -n $SHELL_UP ]] && sy_proc $$; then
  ticks=$(exec getconf CLK_TCK 2>/dev/null) || ticks=100
  up=$((10#${SHELL_UP//./}))
  login=$(((up - PROC_START * 100 / ticks) * 10)) script=$(((doc_first - up) * 10))
fi
sy_emit shell "login_ms=$login" "script_ms=$script" "shell=${SHELL:-unknown}"

# ---- tools -----------------------------------------------------------------------------------------
SY_STEP=tools
sy_check_tools
if command -v curl >/dev/null 2>&1; then
  v=$(exec curl --version 2>/dev/null) || v=''
  v=${v%%$'\n'*} v=${v#curl } v=${v%% *}
  sy_emit version tool=curl "version=${v:-unknown}"
fi
sy_emit version tool=bash "version=${BASH_VERSION%%(*}"

# ---- layout and the socket directory ---------------------------------------------------------------
SY_STEP=layout
set_up=no
if [[ -d $RELEASES ]]; then set_up=yes; fi
sy_read_state
sy_emit layout "set_up=$set_up" "live=${LIVE_R:-none}"

# Every directory from / down to SD, then the live socket: one stat for all of them.
dirs=(/) p=''
IFS=/ read -ra parts <<<"${SOCKET_DIR#/}"
for part in "${parts[@]}"; do
  p=$p/$part
  dirs+=("$p")
done
MODES=() UIDS=() GIDS=() NAMES=()
doc_stat() {
  local line m u g un gn
  while IFS= read -r line; do
    read -r m u g un gn _ <<<"$line"
    MODES+=("$m") UIDS+=("$u") GIDS+=("$g") NAMES+=("$un:$gn")
  done < <(exec stat -c '%a %u %g %U %G %n' -- "$@" 2>/dev/null)
}
sd_present=no sock_present=no
if [[ -d $SOCKET_DIR ]]; then sd_present=yes; fi
if [[ -S $LIVE_SOCK ]]; then sock_present=yes; fi
if [[ $sd_present == yes ]]; then
  if [[ $sock_present == yes ]]; then doc_stat "${dirs[@]}" "$LIVE_SOCK"; else doc_stat "${dirs[@]}"; fi
fi
n=${#dirs[@]}
# searchable: whether this user may search SD itself (else it cannot see, make or reach its sockets)
searchable=no
if [[ -x $SOCKET_DIR ]]; then searchable=yes; fi
if [[ $sd_present == yes && ${#MODES[@]} -ge $n ]]; then
  sy_emit socketdir "path=$SOCKET_DIR" present=yes "searchable=$searchable" "mode=${MODES[n - 1]}" "owner=${NAMES[n - 1]%%:*}" "group=${NAMES[n - 1]#*:}"
else
  sy_emit socketdir "path=$SOCKET_DIR" present=no
  sd_present=no
fi
if [[ $sock_present == yes && ${#MODES[@]} -gt $n ]]; then
  sy_emit socket "path=$LIVE_SOCK" present=yes "mode=${MODES[n]}" "owner=${NAMES[n]%%:*}" "group=${NAMES[n]#*:}"
elif [[ $sd_present == yes && $searchable == no ]]; then
  sy_emit socket "path=$LIVE_SOCK" present=unknown
else
  sy_emit socket "path=$LIVE_SOCK" present=no
  sock_present=no
fi

# doc_may UID GIDS BIT I: whether that user (GIDS: " g1 g2 ") has BIT (1 search, 2 write) on the
# I-th file stat'ed, as the kernel decides: the owner's bits, else the group's, else the others'.
doc_may() {
  local uid=$1 gids=$2 bit=$3 i=$4 mode
  mode=$((8#${MODES[i]}))
  ((uid != 0)) || return 0
  if ((uid == UIDS[i])); then
    ((mode >> 6 & bit))
  elif [[ $gids == *" ${GIDS[i]} "* ]]; then
    ((mode >> 3 & bit))
  else
    ((mode & bit))
  fi
}

# doc_reach WHO UID GIDS FOUND: one `::sy reach` line for that user.
doc_reach() {
  local i traverse=yes blocked=none bmode=none bowner=none connect=none
  for ((i = 0; i < n; i++)); do
    if ! doc_may "$2" "$3" 1 "$i"; then
      traverse=no blocked=${dirs[i]} bmode=${MODES[i]} bowner=${NAMES[i]}
      break
    fi
  done
  if [[ $sock_present == yes ]]; then
    connect=no
    if [[ $traverse == yes ]] && doc_may "$2" "$3" 2 "$n"; then connect=yes; fi
  fi
  sy_emit reach "who=$1" "uid=$2" "found=$4" "traverse=$traverse" "blocked=$blocked" \
    "blocked_mode=$bmode" "blocked_owner=$bowner" "connect=$connect"
}

# doc_listener_pids PORT: the processes holding a TCP listener on PORT, in DOC_PIDS (only those
# /proc lets this user see: its own, or all for root).
doc_listener_pids() {
  local hex ino x names=()
  DOC_PIDS=()
  printf -v hex '%04X' "$1"
  # awk, not a read loop: a busy host has tens of thousands of lines there (TIME_WAIT), which bash
  # reads a byte at a time (36 s for 15,000 lines here; awk: 30 ms)
  while IFS= read -r ino; do
    names+=(-o -lname "socket:\\[$ino\\]")
  done < <(exec awk -v port=":$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == port { print $10 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)
  ((${#names[@]})) || return 0
  while IFS= read -r x; do
    x=${x#/proc/}
    DOC_PIDS+=("${x%%/*}")
  done < <(exec find /proc/[0-9]*/fd -maxdepth 1 \( -false "${names[@]}" \) 2>/dev/null || true)
}

# doc_title PID: the first word of its command line (nginx's process title) in DOC_TITLE.
doc_title() {
  DOC_TITLE=''
  { IFS= read -r -d '' DOC_TITLE <"/proc/$1/cmdline" || true; } 2>/dev/null
}

# doc_ids PID: its effective uid and its groups (" gid g1 g2 ") in DOC_UID and DOC_GIDS.
doc_ids() {
  local key rest
  local -a w
  DOC_UID='' DOC_GIDS=' '
  while read -r key rest; do
    read -ra w <<<"$rest"
    case $key in
      Uid:) DOC_UID=${w[1]:-} ;;
      Gid:) DOC_GIDS+="${w[1]:-} " ;;
      Groups:) DOC_GIDS+="${w[*]} " ;;
    esac
  done <"/proc/$1/status"
} 2>/dev/null

# doc_user UID: the user's name in DOC_USER (the uid itself when /etc/passwd does not name it).
doc_user() {
  local name uid
  DOC_USER=$1
  while IFS=: read -r name _ uid _; do
    if [[ $uid == "$1" ]]; then
      DOC_USER=$name
      return 0
    fi
  done </etc/passwd
}

# ---- who must reach the live socket ---------------------------------------------------------------
SY_STEP=reach
if [[ $sd_present == yes && -n $NGINX_URL ]]; then
  # nginx's workers: those holding the listener of the URL's port, else any `nginx: worker process`
  hostport=${NGINX_URL#*://}
  port=80
  if [[ $NGINX_URL == https:* ]]; then port=443; fi
  if [[ $hostport =~ :([0-9]+)$ ]]; then port=${BASH_REMATCH[1]}; fi
  doc_listener_pids "$((10#$port))"
  found=listener pids=()
  for pid in ${DOC_PIDS[@]+"${DOC_PIDS[@]}"}; do
    doc_title "$pid"
    if [[ $DOC_TITLE == 'nginx: worker process'* ]]; then pids+=("$pid"); fi
  done
  # no workers among them (master_process off, or not nginx): whatever holds the listener
  if ((${#pids[@]} == 0)); then pids=(${DOC_PIDS[@]+"${DOC_PIDS[@]}"}); fi
  if ((${#pids[@]} == 0)); then
    found=name
    for d in /proc/[0-9]*; do
      doc_title "${d#/proc/}"
      if [[ $DOC_TITLE == 'nginx: worker process'* ]]; then pids+=("${d#/proc/}"); fi
    done
  fi
  seen=' '
  for pid in ${pids[@]+"${pids[@]}"}; do
    doc_ids "$pid"
    [[ -n $DOC_UID && $seen != *" $DOC_UID "* ]] || continue
    seen+="$DOC_UID "
    doc_user "$DOC_UID"
    doc_reach "user:$DOC_USER" "$DOC_UID" "$DOC_GIDS" "$found"
  done
  if [[ $seen == ' ' ]]; then sy_emit reach who=none uid=none found=none traverse=none blocked=none connect=none; fi
fi
if [[ $sd_present == yes && -n $SOCKET_GROUP ]]; then
  # a member of the socket group who is nobody else (uid -1 owns nothing)
  entry=$(exec getent group -- "$SOCKET_GROUP" 2>/dev/null) || entry=''
  IFS=: read -r _ _ gid _ <<<"$entry"
  if [[ $gid =~ ^[0-9]+$ ]]; then
    doc_reach "group:$SOCKET_GROUP" -1 " $gid " config
  else
    sy_emit reach "who=group:$SOCKET_GROUP" uid=none found=missing traverse=no blocked=none connect=no
  fi
fi

# ---- does nginx route the site to the live socket? ------------------------------------------------
SY_STEP=route
# doc_get VIA CURL-ARGS…: one GET of the health path with the site's Host; DOC_CODE, DOC_BODY.
doc_get() {
  local via=$1 out rc=0
  shift
  if [[ $via == socket && $HEALTH_PROTOCOL == fastcgi ]]; then
    sy_health "$LIVE_SOCK" # a FastCGI app: its socket answers FastCGI, as prepare checks it
    DOC_CODE=$SY_CODE DOC_BODY=$SY_BODY
    sy_emit get "via=$via" "code=$DOC_CODE" rc=0
    return 0
  fi
  # -g --path-as-is: the path as given (see sy_health); the status after the body's last byte
  out=$(exec curl -g --path-as-is -s --max-time 5 -H "Host: $SITE" -w '\n%{http_code}' "$@" 2>/dev/null) || rc=$?
  DOC_CODE=${out##*$'\n'} DOC_BODY=${out%$'\n'*}
  [[ $DOC_CODE =~ ^[0-9]{3}$ ]] || DOC_CODE=000
  sy_emit get "via=$via" "code=$DOC_CODE" "rc=$rc"
}
same=none
if [[ $sd_present == yes && $searchable == no && -n $NGINX_URL ]] && command -v curl >/dev/null 2>&1; then
  doc_get nginx "$NGINX_URL$HEALTH_PATH" # the socket cannot be seen from here: nginx's answer alone
elif [[ $sock_present == yes ]] && command -v curl >/dev/null 2>&1; then
  doc_get socket --unix-socket "$LIVE_SOCK" "http://localhost$HEALTH_PATH"
  code=$DOC_CODE body=$DOC_BODY
  if [[ -n $NGINX_URL ]]; then
    doc_get nginx "$NGINX_URL$HEALTH_PATH"
    ncode=$DOC_CODE nbody=$DOC_BODY
    same=no
    if [[ $ncode == "$code" ]]; then
      if [[ $nbody == "$body" ]]; then
        same=yes
      else
        # a body that differs between two answers of the socket itself says nothing about nginx
        doc_get socket --unix-socket "$LIVE_SOCK" "http://localhost$HEALTH_PATH"
        if [[ $DOC_BODY != "$body" ]]; then same=unstable; fi
      fi
    fi
  fi
fi
sy_emit route "live=${LIVE_R:-none}" "same=$same"
