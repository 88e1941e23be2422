# shellcheck shell=bash
# Logging for the hack/ scripts: timestamped progress on stderr, one-line fatal errors,
# step timing and a heartbeat for long commands. Sourced, never executed.

# Name shown in front of every line; callers may override before sourcing.
: "${KB_LOG_PREFIX:=$(basename "$0" .sh)}"

# Seconds since the epoch with one decimal, for elapsed-time arithmetic in awk.
kb_now() {
  local t
  t=$(date +%s.%N)
  printf '%s\n' "${t:0:-8}"
}

# Elapsed seconds since $1 (a kb_now value), one decimal.
kb_elapsed() {
  awk -v a="$1" -v b="$(kb_now)" 'BEGIN { printf "%.1f", b - a }'
}

log() {
  printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "$KB_LOG_PREFIX" "$*" >&2
}

# One clear line, then exit 1 (EXIT traps still run).
die() {
  printf '%s [%s] error: %s\n' "$(date +%H:%M:%S)" "$KB_LOG_PREFIX" "$*" >&2
  exit 1
}

# Print the last lines of a log file, indented, to stderr (for failure reports).
log_tail() {
  local file=$1 lines=${2:-25}
  if [[ -s $file ]]; then
    printf '    --- last %s lines of %s ---\n' "$lines" "$file" >&2
    tail -n "$lines" "$file" | sed 's/^/    | /' >&2 || true
  else
    printf '    (%s is empty or missing)\n' "$file" >&2
  fi
}

# Run "$@" in the background, printing a heartbeat every KB_HEARTBEAT seconds (default 15)
# until it ends; returns its exit status. $1 is a label, $2 a file whose line count is shown
# as progress (e.g. `go build -v` output), or "" for none.
run_with_heartbeat() {
  local label=$1 progress_file=$2
  shift 2
  local start pid rc=0 next every=${KB_HEARTBEAT:-15}
  start=$(kb_now)
  "$@" &
  pid=$!
  next=$every
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if awk -v e="$(kb_elapsed "$start")" -v n="$next" 'BEGIN { exit !(e >= n) }'; then
      local extra="" count
      if [[ -n $progress_file && -f $progress_file ]]; then
        count=$(wc -l <"$progress_file")
        extra=", ${count// /} packages compiled"
      fi
      log "  ... $label: $(kb_elapsed "$start") s$extra"
      next=$((next + every))
    fi
  done
  wait "$pid" || rc=$?
  return "$rc"
}

# Exit hooks: functions run (last registered first) when the script exits, with the exit
# status in KB_EXIT_RC. INT/TERM exit through them too.
declare -ga KB_EXIT_HOOKS=()
KB_EXIT_RC=0
kb_on_exit() {
  if ((${#KB_EXIT_HOOKS[@]} == 0)); then
    trap _kb_run_exit_hooks EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
  fi
  KB_EXIT_HOOKS+=("$1")
}
_kb_run_exit_hooks() {
  KB_EXIT_RC=$?
  local i
  for ((i = ${#KB_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
    "${KB_EXIT_HOOKS[i]}" || true
  done
  exit "$KB_EXIT_RC"
}
