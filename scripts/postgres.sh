#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1, for tests and benchmarks: Debian's postgresql package
# (installed with apt-get when missing), a fresh cluster made by initdb, trust authentication, run as the
# `postgres` user (the server refuses to run as root). Nothing is kept between runs.
#
#   scripts/postgres.sh install   apt-get install postgresql, unless its binaries are already there
#   scripts/postgres.sh start     install, initdb a new cluster, start it in the background, wait until it
#                                 accepts connections, print its URL (postgres://postgres@127.0.0.1:<port>/postgres)
#   scripts/postgres.sh stop      fast shutdown (clients are disconnected), then remove the cluster
#   scripts/postgres.sh status    print "running <pid> <url>" (exit 0) or "stopped" (exit 1)
#
# Environment (defaults in brackets):
#   WAITGRAPH_PG_PORT            [55432] the port, on 127.0.0.1 only
#   WAITGRAPH_PG_ROOT            [/tmp/waitgraph-pg] where clusters live, one dir per port; it must be
#                                reachable by the postgres user, which root's home is not
#   WAITGRAPH_PG_PID_FILE        [$WAITGRAPH_RUN_DIR/postgres-<port>.pid, else <root>/<port>.pid] the pid of
#                                the server's process group leader, which a test run's teardown signals
#   WAITGRAPH_PG_START_TIMEOUT   [60] seconds to wait for the server to accept connections
set -euo pipefail

PORT="${WAITGRAPH_PG_PORT:-55432}"
ROOT="${WAITGRAPH_PG_ROOT:-/tmp/waitgraph-pg}"
DATA_DIR="$ROOT/$PORT"
if [[ -n "${WAITGRAPH_PG_PID_FILE:-}" ]]; then
  PID_FILE="$WAITGRAPH_PG_PID_FILE"
elif [[ -n "${WAITGRAPH_RUN_DIR:-}" ]]; then
  PID_FILE="$WAITGRAPH_RUN_DIR/postgres-$PORT.pid"
else
  PID_FILE="$ROOT/$PORT.pid"
fi
START_TIMEOUT="${WAITGRAPH_PG_START_TIMEOUT:-60}"
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The bin dir of the newest PostgreSQL installed from Debian's packages, if any.
bin_dir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$d" && -x "$d/initdb" && -x "$d/postgres" ]] && echo "$d"
}

as_postgres() { runuser -u postgres -- "$@"; }

cmd_install() {
  if [[ -z "$(bin_dir)" ]]; then
    [[ "$(id -u)" == 0 ]] || die "PostgreSQL is not installed, and installing it needs root"
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    # Several test files may start servers at once: one apt-get at a time.
    exec 9>/tmp/waitgraph-pg-apt.lock
    flock 9
    if [[ -z "$(bin_dir)" ]]; then
      apt-get update -qq >&2
      apt-get install -y -qq postgresql >&2
    fi
    flock -u 9
  fi
  [[ -n "$(bin_dir)" ]] || die "apt-get install postgresql left no initdb/postgres under /usr/lib/postgresql"
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
}

pid_alive() { [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

# Clusters left by runs that were killed: a dir whose postmaster is gone.
sweep_stale() {
  local d
  for d in "$ROOT"/*/; do
    [[ -d "$d" ]] || continue
    if [[ -f "$d/postmaster.pid" ]] && kill -0 "$(head -n 1 "$d/postmaster.pid")" 2>/dev/null; then continue; fi
    [[ "$d" == "$DATA_DIR/" ]] && continue
    rm -rf "$d"
  done
}

cmd_start() {
  cmd_install
  if pid_alive; then
    log "already running (pid $(cat "$PID_FILE"))"
    echo "$URL"
    return 0
  fi
  local bin
  bin="$(bin_dir)"
  mkdir -p "$ROOT"
  chmod 1777 "$ROOT"
  sweep_stale
  rm -rf "$DATA_DIR"
  as_postgres "$bin/initdb" -D "$DATA_DIR" -U postgres --auth=trust --no-sync --encoding=UTF8 --locale=C >"$ROOT/$PORT.initdb.log" 2>&1 ||
    die "initdb failed: $(tail -n 20 "$ROOT/$PORT.initdb.log")"
  rm -f "$ROOT/$PORT.initdb.log"
  mkdir -p "$(dirname "$PID_FILE")"
  # setsid: the server gets a process group of its own, which stop (and a test run's teardown) signals whole.
  # Durability is of no use to a throwaway cluster, so fsync and friends are off.
  setsid runuser -u postgres -- "$bin/postgres" -D "$DATA_DIR" -k "$DATA_DIR" -h 127.0.0.1 -p "$PORT" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
    >"$DATA_DIR/server.log" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local waited=0
  until "$bin/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres; do
    pid_alive || die "the server exited: $(tail -n 20 "$DATA_DIR/server.log")"
    ((waited += 1))
    ((waited <= START_TIMEOUT * 5)) || die "not accepting connections after ${START_TIMEOUT}s: $(tail -n 20 "$DATA_DIR/server.log")"
    sleep 0.2
  done
  log "started on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"), data $DATA_DIR)"
  echo "$URL"
}

cmd_stop() {
  local bin
  bin="$(bin_dir || true)"
  if [[ -n "$bin" && -f "$DATA_DIR/postmaster.pid" ]]; then
    as_postgres "$bin/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t 30 >/dev/null 2>&1 || true
  fi
  if pid_alive; then
    local pid
    pid="$(cat "$PID_FILE")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  rm -rf "$DATA_DIR" "$ROOT/$PORT.initdb.log"
  log "stopped"
}

cmd_status() {
  if pid_alive; then
    echo "running $(cat "$PID_FILE") $URL"
  else
    echo stopped
    return 1
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) die "usage: $0 install|start|stop|status" ;;
esac
