# shellcheck shell=bash
# Waiting with timeouts: poll a condition until it holds, the deadline passes, or the process
# that should make it hold has died. Sourced, never executed.

# wait_until TIMEOUT_S PID CMD...: poll CMD every 0.3 s. Returns 0 when CMD succeeds, 1 on
# timeout, 2 as soon as PID (if not empty) is no longer alive (see proc.sh: proc_alive).
wait_until() {
  local timeout=$1 pid=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  while true; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if [[ -n $pid ]] && ! proc_alive "$pid"; then
      return 2
    fi
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.3
  done
}

# url_ok URL [curl args...]: succeeds when URL answers 2xx within 3 s (TLS not verified:
# used for local health endpoints only).
url_ok() {
  local url=$1
  shift
  curl -fsk --max-time 3 -o /dev/null "$@" "$url"
}

# url_body_matches URL REGEX [curl args...]: succeeds when URL answers 2xx and the body matches
# REGEX. The body is captured first: piping into `grep -q` breaks under pipefail (SIGPIPE).
url_body_matches() {
  local url=$1 regex=$2 body
  shift 2
  body=$(curl -fsk --max-time 3 "$@" "$url") || return 1
  [[ $body =~ $regex ]]
}

# wait_for_url TIMEOUT_S URL [curl args...]: wait until URL answers 2xx.
wait_for_url() {
  local timeout=$1
  shift
  wait_until "$timeout" "" url_ok "$@"
}
