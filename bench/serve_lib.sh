# Sourced by the web benchmarks (run_web.sh, run_web_commits.sh): waiting on a `teiten serve`
# started with `--listen 127.0.0.1:0` and its stderr in a file.

# wait_serve_port ERRFILE: sets BASE to the address the server printed; exits if it printed none.
wait_serve_port() {
  local port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's#.*http://127.0.0.1:\([0-9]*\)/.*#\1#p' "$1")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$1" >&2; exit 1; }
  BASE=http://127.0.0.1:$port
}

# wait_log ERRFILE TEXT N: until TEXT is on N lines of ERRFILE, or 120 s have passed (status 1).
wait_log() {
  for _ in $(seq 1 1200); do
    [ "$(grep -c "$2" "$1" || true)" -ge "$3" ] && return 0
    sleep 0.1
  done
  return 1
}
