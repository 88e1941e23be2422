# shellcheck shell=bash
# Process bookkeeping for a state dir: a `pids` file of "name pid" lines, starting detached
# processes and stopping them safely. A recorded pid is only ever signalled while its command
# line still contains the state dir (pids get reused); processes are never looked up by name.
# Requires KB_STATE (absolute path). Sourced, never executed.

# True while PID exists and is not a zombie (stopped processes may linger as zombies until
# PID 1 reaps them; they count as gone).
proc_alive() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# proc_owned PID [DIR]: true when PID is alive and its command line mentions "DIR/"
# (default: "$KB_STATE/").
proc_owned() {
  local pid=$1 dir=${2:-$KB_STATE} cmdline
  proc_alive "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$dir/"* ]]
}

# state_dir_set DIR USAGE_FUNCTION: KB_STATE becomes DIR made absolute (command lines are matched
# against it); a missing DIR prints the usage and dies.
state_dir_set() {
  [[ -n ${1:-} ]] || { "$2" >&2; die "missing STATE_DIR"; }
  KB_STATE=$(realpath -m "$1")
  [[ $KB_STATE != / ]] || die "refusing / as state dir"
}

pids_file() { printf '%s/pids\n' "$KB_STATE"; }

# Recorded pid of NAME, or nothing.
pids_get() {
  local name=$1 n p
  [[ -f $(pids_file) ]] || return 0
  while read -r n p; do
    if [[ $n == "$name" ]]; then
      printf '%s\n' "$p"
      return 0
    fi
  done <"$(pids_file)"
}

# Rewrite the pids file atomically without NAME, then with "NAME PID" if PID is given.
_pids_write() {
  local name=$1 pid=${2:-} file tmp n p
  file=$(pids_file)
  tmp="$file.tmp.$$"
  : >"$tmp"
  if [[ -f $file ]]; then
    while read -r n p; do
      [[ -n $n && $n != "$name" ]] && printf '%s %s\n' "$n" "$p" >>"$tmp"
    done <"$file"
  fi
  [[ -n $pid ]] && printf '%s %s\n' "$name" "$pid" >>"$tmp"
  mv -f "$tmp" "$file"
}
pids_set() { _pids_write "$1" "$2"; }
pids_del() { _pids_write "$1"; }

# True when NAME has a recorded pid that is alive and ours.
component_running() {
  local pid
  pid=$(pids_get "$1")
  [[ -n $pid ]] && proc_owned "$pid"
}

_close_inherited_fds() {
  local fd n
  for fd in /proc/"$BASHPID"/fd/*; do
    n=${fd##*/}
    if ((n > 2)); then eval "exec $n>&-" 2>/dev/null || true; fi
  done
}

# proc_start NAME LOGFILE CMD...: start CMD detached (own session, stdin closed, output
# appended to LOGFILE) and record its pid under NAME. Sets START_PID.
proc_start() {
  local name=$1 logfile=$2
  shift 2
  printf '===== %s: starting %s\n' "$(date -Is)" "$*" >>"$logfile"
  # The subshell closes every inherited fd above 2 (else the component would hold our lock
  # files forever), then execs setsid, which (no process-group leader: no job control here)
  # execs the component in place, so $! is the component's own pid.
  (
    _close_inherited_fds
    exec setsid "$@" >>"$logfile" 2>&1 </dev/null
  ) &
  START_PID=$!
  pids_set "$name" "$START_PID"
}

# Sets ALIVE to those of the given pids that are still alive.
_alive_of() {
  local p
  ALIVE=()
  for p in "$@"; do
    if proc_alive "$p"; then ALIVE+=("$p"); fi
  done
}

# _wait_gone SECONDS PID...: wait until none of the pids is alive; 1 on timeout (ALIVE holds
# the survivors).
_wait_gone() {
  local deadline=$((SECONDS + $1))
  shift
  while true; do
    _alive_of "$@"
    ((${#ALIVE[@]} == 0)) && return 0
    ((SECONDS >= deadline)) && return 1
    sleep 0.2
  done
}

# proc_stop NAME...: TERM the recorded, still-owned pids (and CONT them: a frozen process only
# acts on TERM once it runs again), KILL what is left after KB_STOP_GRACE seconds (default 10),
# and drop the names from the pids file.
proc_stop() {
  local name pid
  local -a live=()
  for name in "$@"; do
    pid=$(pids_get "$name")
    if [[ -n $pid ]] && proc_owned "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      kill -CONT "$pid" 2>/dev/null || true
      live+=("$pid")
    fi
  done
  if ((${#live[@]})) && ! _wait_gone "${KB_STOP_GRACE:-10}" "${live[@]}"; then
    log "pids ${ALIVE[*]} still running ${KB_STOP_GRACE:-10} s after TERM; sending KILL"
    for pid in "${ALIVE[@]}"; do
      if proc_owned "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    _wait_gone 5 "${ALIVE[@]}" || log "warning: pids ${ALIVE[*]} survived KILL"
  fi
  for name in "$@"; do
    pids_del "$name"
  done
}
