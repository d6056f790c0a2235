# Starting and stopping a local server in the background, for the scripts that run waitgraph's
# infrastructure (scripts/otelcol.sh, scripts/jaeger.sh). Sourced, never run.
#
# A server runs as the leader of its own process group (setsid), its pid in a pid file and its output in
# a log file. The pid file is what the test harness's global teardown and `daemon_stop` use to stop the
# whole group. Starting is idempotent and serialized by a lock beside the pid file.

# daemon_alive PID_FILE: true while the process named in PID_FILE runs.
daemon_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# daemon_start NAME PID_FILE LOG_FILE PROBE TIMEOUT_S -- COMMAND...
# Starts COMMAND detached unless it already runs, then waits until the function PROBE succeeds. Fails,
# with the log's tail, if the server exits first; stops it and fails if PROBE still fails after TIMEOUT_S s.
daemon_start() {
  local name=$1 pid_file=$2 log_file=$3 probe=$4 timeout_s=$5
  shift 6
  mkdir -p "$(dirname "$pid_file")"
  exec 8>"${pid_file%.pid}.lock"
  flock 8
  if daemon_alive "$pid_file"; then
    echo "$name: already running (pid $(cat "$pid_file"))" >&2
    flock -u 8
    return 0
  fi
  # 8>&- 9>&-: the server must not inherit lock descriptors, or it would hold the locks for life.
  setsid "$@" >"$log_file" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$pid_file"
  local deadline=$((SECONDS + timeout_s))
  until "$probe"; do
    if ! daemon_alive "$pid_file"; then
      tail -n 30 "$log_file" >&2
      echo "$name: exited during start-up; log in $log_file" >&2
      rm -f "$pid_file"
      return 1
    fi
    if ((SECONDS > deadline)); then
      echo "$name: not ready after $timeout_s s; stopping it; log in $log_file" >&2
      daemon_stop "$name" "$pid_file"
      return 1
    fi
    sleep 0.2
  done
  flock -u 8
}

# daemon_stop NAME PID_FILE: stops the server's process group (SIGTERM, SIGKILL after 10 s).
daemon_stop() {
  local name=$1 pid_file=$2 pid
  if ! daemon_alive "$pid_file"; then rm -f "$pid_file"; return 0; fi
  pid=$(cat "$pid_file")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  rm -f "$pid_file"
  echo "$name: stopped" >&2
}

# build_once LOCK_FILE TARGET FUNCTION: runs FUNCTION under LOCK_FILE unless TARGET is already executable,
# so parallel callers (test workers, a demo) wait for one build instead of racing.
build_once() {
  local lock=$1 target=$2 fn=$3
  [[ -x $target ]] && return 0
  mkdir -p "$(dirname "$lock")"
  exec 9>"$lock"
  flock 9
  [[ -x $target ]] || "$fn"
  flock -u 9
}

# daemon_cli NAME PID_FILE BIN [COMMAND]: the `build|start|stop|path` command line of a server script,
# which defines the functions `build` and `start` before calling this.
daemon_cli() {
  local name=$1 pid_file=$2 bin=$3
  case ${4:-} in
    build) build ;;
    start) start ;;
    stop) daemon_stop "$name" "$pid_file" ;;
    path) build && echo "$bin" ;;
    *) echo "usage: scripts/$name.sh build|start|stop|path" >&2; exit 2 ;;
  esac
}
