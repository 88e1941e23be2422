# shellcheck shell=bash
# Port choice for a state dir. Every port is recorded in "$KB_STATE/ports" ("name port" lines)
# and reserved machine-wide by a file "$KB_PORTS_DIR/<port>" naming the state dir, so two runs
# in parallel (or a run whose member is briefly stopped) never pick the same port.
# Requires KB_STATE and proc.sh. Sourced, never executed.

: "${KB_PORTS_DIR:=${TMPDIR:-/tmp}/kube-bind-rs-ports}"

declare -gA PORTS=()

ports_file() { printf '%s/ports\n' "$KB_STATE"; }

ports_load() {
  local n p
  PORTS=()
  [[ -f $(ports_file) ]] || return 0
  while read -r n p; do
    [[ -n $n ]] && PORTS[$n]=$p
  done <"$(ports_file)"
}

ports_save() {
  local file tmp n
  file=$(ports_file)
  tmp="$file.tmp.$$"
  : >"$tmp"
  for n in "${!PORTS[@]}"; do
    printf '%s %s\n' "$n" "${PORTS[$n]}" >>"$tmp"
  done
  sort -o "$tmp" "$tmp"
  mv -f "$tmp" "$file"
}

# True when something listens on TCP port P (any address).
port_listening() {
  local out
  out=$(ss -Htln "sport = :$1") || return 1
  [[ -n $out ]]
}

# True when another state dir holds a live reservation for port P. A reservation is live while
# it is fresh (< 120 s: its owner may still be starting) or while the owner's ports file still
# lists P and one of its recorded processes runs. Stale reservations are removed.
port_reserved_by_other() {
  local p=$1 f owner n pid
  f="$KB_PORTS_DIR/$p"
  [[ -f $f ]] || return 1
  owner=$(cat "$f" 2>/dev/null) || return 1
  [[ $owner == "$KB_STATE" ]] && return 1
  if [[ -n $(find "$f" -newermt '120 seconds ago' 2>/dev/null) ]]; then
    return 0
  fi
  if [[ -f $owner/ports && -f $owner/pids ]]; then
    local listed=false
    while read -r _ n; do [[ $n == "$p" ]] && listed=true; done <"$owner/ports"
    if $listed; then
      while read -r _ pid; do
        if proc_owned "$pid" "$owner"; then return 0; fi
      done <"$owner/pids"
    fi
  fi
  rm -f "$f"
  return 1
}

port_usable() { ! port_listening "$1" && ! port_reserved_by_other "$1"; }

_PORTS_LOCK_FD=
ports_lock() {
  mkdir -p "$KB_PORTS_DIR"
  exec {_PORTS_LOCK_FD}>"$KB_PORTS_DIR/.lock"
  flock -w 120 "$_PORTS_LOCK_FD" || die "timed out waiting for the port lock $KB_PORTS_DIR/.lock"
}
ports_unlock() {
  if [[ -n $_PORTS_LOCK_FD ]]; then
    exec {_PORTS_LOCK_FD}>&-
    _PORTS_LOCK_FD=
  fi
}

# port_allocate NAME DEFAULT [FORCED]: choose the port of NAME and reserve it (call between
# ports_lock and ports_unlock). FORCED (from an env var) must be usable or this dies; else the
# port recorded by an earlier run is kept if usable; else the first usable port from DEFAULT up.
port_allocate() {
  local name=$1 default=$2 forced=${3:-} p taken
  if [[ -n $forced ]]; then
    port_usable "$forced" || die "port $forced for $name (from the environment) is in use"
    p=$forced
  elif [[ -n ${PORTS[$name]:-} ]] && port_usable "${PORTS[$name]}"; then
    p=${PORTS[$name]}
  else
    [[ -n ${PORTS[$name]:-} ]] && log "port ${PORTS[$name]} of $name is taken now; choosing another"
    taken=" ${PORTS[*]} "
    for ((p = default; p < default + 4000; p++)); do
      # Skip ports given to other components of this run.
      [[ $taken == *" $p "* && ${PORTS[$name]:-} != "$p" ]] && continue
      port_usable "$p" && break
    done
    ((p < default + 4000)) || die "no free port found in $default..$((default + 3999)) for $name"
  fi
  PORTS[$name]=$p
  printf '%s\n' "$KB_STATE" >"$KB_PORTS_DIR/$p"
}

# Drop this state dir's reservations (after `down`).
ports_release() {
  local n f
  for n in "${!PORTS[@]}"; do
    f="$KB_PORTS_DIR/${PORTS[$n]}"
    if [[ -f $f && $(cat "$f" 2>/dev/null) == "$KB_STATE" ]]; then rm -f "$f"; fi
  done
}
