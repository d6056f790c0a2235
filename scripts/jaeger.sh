#!/usr/bin/env bash
# Builds, starts and stops the Jaeger that shows waitgraph's trace links.
#
#   scripts/jaeger.sh build   go install Jaeger from the Go module proxy (cached; instant when warm)
#   scripts/jaeger.sh start   build if needed, start it detached on loopback with in-memory storage, and
#                             wait until GET /api/services answers
#   scripts/jaeger.sh stop    stop the Jaeger that `start` started
#   scripts/jaeger.sh path    print the binary's path (after building it if needed)
#
# Why Jaeger v1.42.0's all-in-one and not Jaeger v2: v2 (cmd/jaeger) lives in the module
# github.com/jaegertracing/jaeger without a /v2 suffix, so the Go proxy can serve it only as v1.x
# aliases or pseudo-versions. Here the proxy refuses every pseudo-version of the v2.14..v2.20 tags
# (403, "This module version is not available"), and the versions it does serve that contain
# cmd/jaeger (v1.61.0 = v2.0.0-rc1, v1.62.0 = v2.0.0-rc2, v1.76.0 = v2.13.0) all carry a `replace`
# directive in go.mod, which `go install module@version` refuses. v1.42.0 is the newest release that
# installs as plain `go install`; its all-in-one takes OTLP and serves the same /api/traces HTTP API and
# UI. Switch to v2 by changing JAEGER_VERSION/JAEGER_CMD and deploy/jaeger.yaml once the proxy serves it.
#
# Environment (all optional):
#   WAITGRAPH_JAEGER_UI_PORT          query UI and HTTP API on 127.0.0.1   (default 16686)
#   WAITGRAPH_JAEGER_OTLP_GRPC_PORT   OTLP/gRPC receiver on 127.0.0.1      (default 4317)
#   WAITGRAPH_JAEGER_OTLP_HTTP_PORT   OTLP/HTTP receiver on 127.0.0.1      (default 4318)
#   WAITGRAPH_JAEGER_OTHER_PORTS      `fixed` keeps the other listeners (agent, collector, admin, query
#                                     gRPC) on deploy/jaeger.yaml's ports; `ephemeral` binds them to
#                                     127.0.0.1:0 so parallel runs cannot clash (default fixed)
#   WAITGRAPH_RUN_DIR                 where `start` keeps jaeger.pid and jaeger.log
#                                     (default ~/.cache/waitgraph/run)
#   WAITGRAPH_CACHE_DIR               cache root (default ~/.cache/waitgraph)
set -euo pipefail

readonly JAEGER_VERSION=v1.42.0
readonly JAEGER_CMD=all-in-one

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/lib/daemon.sh"
cache=${WAITGRAPH_CACHE_DIR:-$HOME/.cache/waitgraph}/jaeger/$JAEGER_VERSION
bin=$cache/$JAEGER_CMD
run_dir=${WAITGRAPH_RUN_DIR:-$HOME/.cache/waitgraph/run}
pid_file=$run_dir/jaeger.pid
log_file=$run_dir/jaeger.log
ui_port=${WAITGRAPH_JAEGER_UI_PORT:-16686}

log() { echo "jaeger: $*" >&2; }

compile() {
  command -v go >/dev/null || { log "needs Go (https://go.dev/dl) on PATH"; exit 1; }
  local started=$SECONDS
  log "go install github.com/jaegertracing/jaeger/cmd/$JAEGER_CMD@$JAEGER_VERSION (a cold build takes minutes)"
  # Into a scratch GOBIN first, so an interrupted build never leaves a binary that looks finished.
  local work=$cache/tmp.$$
  rm -rf "$work"
  if ! GOBIN=$work go install "github.com/jaegertracing/jaeger/cmd/$JAEGER_CMD@$JAEGER_VERSION" >"$cache/build.log" 2>&1; then
    tail -n 40 "$cache/build.log" >&2
    log "build failed; full log in $cache/build.log"
    exit 1
  fi
  mv "$work/$JAEGER_CMD" "$bin"
  rm -rf "$work"
  log "built $bin in $((SECONDS - started)) s"
}

build() { build_once "$cache/build.lock" "$bin" compile; }

answers() { curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$ui_port/api/services"; }

start() {
  build
  # Jaeger reads every flag from the environment too (dots and dashes become underscores), and the
  # environment wins over --config-file: that is how the WAITGRAPH_* ports reach it.
  local env=(SPAN_STORAGE_TYPE=memory JAEGER_DISABLED=true) # JAEGER_DISABLED: no self-traces in the UI
  [[ -n ${WAITGRAPH_JAEGER_UI_PORT:-} ]] && env+=(QUERY_HTTP_SERVER_HOST_PORT=127.0.0.1:$ui_port)
  [[ -n ${WAITGRAPH_JAEGER_OTLP_GRPC_PORT:-} ]] &&
    env+=(COLLECTOR_OTLP_GRPC_HOST_PORT=127.0.0.1:$WAITGRAPH_JAEGER_OTLP_GRPC_PORT)
  [[ -n ${WAITGRAPH_JAEGER_OTLP_HTTP_PORT:-} ]] &&
    env+=(COLLECTOR_OTLP_HTTP_HOST_PORT=127.0.0.1:$WAITGRAPH_JAEGER_OTLP_HTTP_PORT)
  case ${WAITGRAPH_JAEGER_OTHER_PORTS:-fixed} in
    fixed) ;;
    ephemeral)
      local any=127.0.0.1:0
      env+=(COLLECTOR_GRPC_SERVER_HOST_PORT=$any COLLECTOR_HTTP_SERVER_HOST_PORT=$any
        QUERY_GRPC_SERVER_HOST_PORT=$any ADMIN_HTTP_HOST_PORT=$any HTTP_SERVER_HOST_PORT=$any
        PROCESSOR_JAEGER_COMPACT_SERVER_HOST_PORT=$any PROCESSOR_JAEGER_BINARY_SERVER_HOST_PORT=$any
        PROCESSOR_ZIPKIN_COMPACT_SERVER_HOST_PORT=$any)
      ;;
    *) log "WAITGRAPH_JAEGER_OTHER_PORTS must be fixed or ephemeral"; exit 2 ;;
  esac
  daemon_start jaeger "$pid_file" "$log_file" answers 30 -- env "${env[@]}" "$bin" --config-file "$root/deploy/jaeger.yaml"
  log "UI and API on http://127.0.0.1:$ui_port; pid $(cat "$pid_file"), log $log_file"
}

daemon_cli jaeger "$pid_file" "$bin" "$@"
