#!/usr/bin/env bash
# Builds, starts and stops waitgraph's OpenTelemetry Collector.
#
#   scripts/otelcol.sh build   build the Collector with the official builder (cached; instant when warm)
#   scripts/otelcol.sh start   build if needed, start it detached on loopback, wait until OTLP answers
#   scripts/otelcol.sh stop    stop the Collector that `start` started
#   scripts/otelcol.sh path    print the binary's path (after building it if needed)
#
# The builder (go.opentelemetry.io/collector/cmd/builder) is installed with `go install` from the Go
# module proxy, and the Collector is built from deploy/otelcol-builder.yaml with deploy/otelcol.yaml as
# its pipeline. Both are cached under ~/.cache/waitgraph/otelcol/<version>/, the binary keyed by the
# manifest's hash, so editing the manifest rebuilds and nothing else does. Needs only `go` on PATH.
#
# Environment (all optional):
#   WAITGRAPH_OTELCOL_GRPC_PORT      OTLP/gRPC receiver port on 127.0.0.1   (default 14317)
#   WAITGRAPH_OTELCOL_HTTP_PORT      OTLP/HTTP receiver port on 127.0.0.1   (default 14318)
#   WAITGRAPH_KAFKA_BOOTSTRAP        Kafka broker for the kafka exporter    (default 127.0.0.1:9092);
#                                    `none` runs without the kafka exporter
#   WAITGRAPH_JAEGER_OTLP_GRPC_PORT  Jaeger's OTLP/gRPC port on 127.0.0.1   (default 4317)
#   WAITGRAPH_RUN_DIR                where `start` keeps <instance>.pid and <instance>.log
#                                    (default ~/.cache/waitgraph/run)
#   WAITGRAPH_OTELCOL_INSTANCE       names the pid and log files, for several Collectors in one run
#                                    directory (default otelcol)
#   WAITGRAPH_CACHE_DIR              cache root (default ~/.cache/waitgraph)
set -euo pipefail

# The builder release; it must match the core versions pinned in the manifest.
readonly OTELCOL_VERSION=v0.160.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/lib/daemon.sh"
manifest=$root/deploy/otelcol-builder.yaml
cache=${WAITGRAPH_CACHE_DIR:-$HOME/.cache/waitgraph}/otelcol/$OTELCOL_VERSION
dist=$cache/$(sha256sum "$manifest" | cut -c1-16)
bin=$dist/waitgraph-otelcol
run_dir=${WAITGRAPH_RUN_DIR:-$HOME/.cache/waitgraph/run}
instance=${WAITGRAPH_OTELCOL_INSTANCE:-otelcol}
pid_file=$run_dir/$instance.pid
log_file=$run_dir/$instance.log

export WAITGRAPH_OTELCOL_GRPC_PORT=${WAITGRAPH_OTELCOL_GRPC_PORT:-14317}
export WAITGRAPH_OTELCOL_HTTP_PORT=${WAITGRAPH_OTELCOL_HTTP_PORT:-14318}
export WAITGRAPH_KAFKA_BOOTSTRAP=${WAITGRAPH_KAFKA_BOOTSTRAP:-127.0.0.1:9092}
export WAITGRAPH_JAEGER_OTLP_GRPC_PORT=${WAITGRAPH_JAEGER_OTLP_GRPC_PORT:-4317}

log() { echo "otelcol: $*" >&2; }

compile() {
  command -v go >/dev/null || { log "needs Go (https://go.dev/dl) on PATH"; exit 1; }
  local started=$SECONDS
  if [[ ! -x $cache/builder ]]; then
    log "installing the collector builder $OTELCOL_VERSION"
    GOBIN=$cache go install "go.opentelemetry.io/collector/cmd/builder@$OTELCOL_VERSION"
  fi
  # Build in a scratch directory and rename at the end, so an interrupted build never looks finished.
  local work=$dist.tmp.$$
  rm -rf "$work"
  mkdir -p "$work"
  sed "s|output_path: OUTPUT_PATH|output_path: $work/src|" "$manifest" >"$work/manifest.yaml"
  log "building the Collector (a cold build takes minutes; log in $work/build.log)"
  if ! "$cache/builder" --config "$work/manifest.yaml" >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    log "build failed; full log in $work/build.log"
    exit 1
  fi
  mv "$work/src/waitgraph-otelcol" "$work/waitgraph-otelcol"
  rm -rf "$work/src" "$dist"
  mv "$work" "$dist"
  log "built $bin in $((SECONDS - started)) s"
}

build() { build_once "$cache/build.lock" "$bin" compile; }

answers() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$WAITGRAPH_OTELCOL_HTTP_PORT/v1/traces"; }

start() {
  build
  local configs=(--config "$root/deploy/otelcol.yaml")
  if [[ $WAITGRAPH_KAFKA_BOOTSTRAP == none ]]; then
    configs+=(--config "$root/deploy/otelcol-without-kafka.yaml")
  fi
  daemon_start otelcol "$pid_file" "$log_file" answers 30 -- "$bin" "${configs[@]}"
  log "OTLP on 127.0.0.1:$WAITGRAPH_OTELCOL_GRPC_PORT (gRPC) and 127.0.0.1:$WAITGRAPH_OTELCOL_HTTP_PORT (HTTP)," \
    "kafka ${WAITGRAPH_KAFKA_BOOTSTRAP}, jaeger 127.0.0.1:$WAITGRAPH_JAEGER_OTLP_GRPC_PORT; pid $(cat "$pid_file"), log $log_file"
}

daemon_cli otelcol "$pid_file" "$bin" "$@"
