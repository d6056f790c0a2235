#!/usr/bin/env bash
# The whole waitgraph pipeline on this machine, on loopback, as a user would deploy it:
#
#   services (OTel SDK + waitgraph) --OTLP--> Collector --kafka exporter--> Kafka otlp_spans/otlp_logs
#                                                 |                                  |
#                                                 +--otlp exporter--> Jaeger         +--> waitgraph run
#                                                                     (trace links)       |
#                                                                                         +--> Kafka waitgraph.alerts
#
#   scripts/pipeline.sh build    install Kafka, build the Collector and Jaeger (in parallel; cached, so a
#                                second run takes a second or two); prints how long each took
#   scripts/pipeline.sh start    build, then start Kafka, Jaeger, the Collector and `waitgraph run`, wait
#                                until each answers, print where everything is. Idempotent: what already
#                                runs is left as it is. stdout gets KEY=value lines (for `eval`), people get
#                                the summary on stderr
#   scripts/pipeline.sh stop [part...]   stop them (or the parts named: waitgraph otelcol jaeger kafka)
#   scripts/pipeline.sh status   one line per part: `<part> running ...` or `<part> stopped`
#
# Environment (defaults in brackets), passed on to the scripts of the parts:
#   WAITGRAPH_KAFKA_PORT [9092]; WAITGRAPH_OTELCOL_GRPC_PORT [14317], WAITGRAPH_OTELCOL_HTTP_PORT [14318];
#   WAITGRAPH_JAEGER_UI_PORT [16686], WAITGRAPH_JAEGER_OTLP_GRPC_PORT [4317], WAITGRAPH_JAEGER_OTLP_HTTP_PORT [4318];
#   WAITGRAPH_PORT [14320] waitgraph's OTLP/HTTP receiver, /healthz and /metrics;
#   WAITGRAPH_RUN_DIR [~/.cache/waitgraph/run] pid and log files; WAITGRAPH_CACHE_DIR [~/.cache/waitgraph].
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/lib/daemon.sh"

export WAITGRAPH_RUN_DIR=${WAITGRAPH_RUN_DIR:-$HOME/.cache/waitgraph/run}
export WAITGRAPH_KAFKA_PORT=${WAITGRAPH_KAFKA_PORT:-9092}
export WAITGRAPH_OTELCOL_GRPC_PORT=${WAITGRAPH_OTELCOL_GRPC_PORT:-14317}
export WAITGRAPH_OTELCOL_HTTP_PORT=${WAITGRAPH_OTELCOL_HTTP_PORT:-14318}
export WAITGRAPH_JAEGER_UI_PORT=${WAITGRAPH_JAEGER_UI_PORT:-16686}
export WAITGRAPH_JAEGER_OTLP_GRPC_PORT=${WAITGRAPH_JAEGER_OTLP_GRPC_PORT:-4317}
export WAITGRAPH_JAEGER_OTLP_HTTP_PORT=${WAITGRAPH_JAEGER_OTLP_HTTP_PORT:-4318}
export WAITGRAPH_KAFKA_BOOTSTRAP=127.0.0.1:$WAITGRAPH_KAFKA_PORT
wg_port=${WAITGRAPH_PORT:-14320}
wg_pid=$WAITGRAPH_RUN_DIR/waitgraph.pid
wg_log=$WAITGRAPH_RUN_DIR/waitgraph.log
wg_alerts=$WAITGRAPH_RUN_DIR/waitgraph-alerts.jsonl
jaeger_url=http://127.0.0.1:$WAITGRAPH_JAEGER_UI_PORT
mkdir -p "$WAITGRAPH_RUN_DIR"

log() { echo "pipeline: $*" >&2; }

# Runs `scripts/<script> <command>`, quiet unless it fails; prints "<name> <seconds>" on success.
timed() {
  local name=$1 script=$2 cmd=$3 out started=$SECONDS
  out=$(mktemp)
  if bash "$root/scripts/$script" "$cmd" >"$out" 2>&1; then
    echo "$name $((SECONDS - started))"
    rm -f "$out"
  else
    tail -n 30 "$out" >&2
    rm -f "$out"
    log "$name: scripts/$script $cmd failed"
    return 1
  fi
}

build() {
  local started=$SECONDS pids=() results
  results=$(mktemp)
  # The three are independent and mostly wait on the network or one compiler each: run them side by side.
  timed kafka kafka.sh install >>"$results" & pids+=($!)
  timed collector otelcol.sh build >>"$results" & pids+=($!)
  timed jaeger jaeger.sh build >>"$results" & pids+=($!)
  local failed=0 p
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  while read -r name secs; do log "$name ready in $secs s"; done <"$results"
  rm -f "$results"
  ((failed == 0)) || exit 1
  log "built in $((SECONDS - started)) s (cache: ${WAITGRAPH_CACHE_DIR:-$HOME/.cache/waitgraph})"
}

wg_answers() { curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$wg_port/healthz"; }

start_waitgraph() {
  # `waitgraph run` reads spans from Kafka and publishes alerts there; its /healthz answers 200 once it has
  # joined its consumer group and replayed the recent spans.
  daemon_start waitgraph "$wg_pid" "$wg_log" wg_answers 120 -- \
    node "$root/bin/waitgraph.js" run --kafka-brokers "$WAITGRAPH_KAFKA_BOOTSTRAP" --port "$wg_port" \
    --jaeger-url "$jaeger_url" --alert-file "$wg_alerts"
}

start() {
  local started=$SECONDS
  build
  # Kafka's JVM takes longest to come up: Jaeger starts meanwhile; the Collector needs both addresses only.
  timed kafka kafka.sh start >/dev/null & local kafka_pid=$!
  timed jaeger jaeger.sh start >/dev/null
  wait "$kafka_pid"
  timed collector otelcol.sh start >/dev/null
  start_waitgraph
  log "ready in $((SECONDS - started)) s"
  cat >&2 <<EOF

  services send OTLP to   http://127.0.0.1:$WAITGRAPH_OTELCOL_HTTP_PORT (HTTP) or 127.0.0.1:$WAITGRAPH_OTELCOL_GRPC_PORT (gRPC): the Collector
  Kafka                   $WAITGRAPH_KAFKA_BOOTSTRAP (topics otlp_spans, otlp_logs; alerts on waitgraph.alerts)
  waitgraph run           http://127.0.0.1:$wg_port/healthz and /metrics; alerts also in $wg_alerts
  Jaeger UI               $jaeger_url
  logs                    $WAITGRAPH_RUN_DIR/{otelcol,jaeger,waitgraph}.log, Kafka's in ~/.cache/waitgraph/kafka-data
  stop with               scripts/pipeline.sh stop

EOF
  cat <<EOF
WAITGRAPH_OTLP_ENDPOINT=http://127.0.0.1:$WAITGRAPH_OTELCOL_HTTP_PORT
WAITGRAPH_KAFKA_BOOTSTRAP=$WAITGRAPH_KAFKA_BOOTSTRAP
WAITGRAPH_ALERT_TOPIC=waitgraph.alerts
WAITGRAPH_JAEGER_URL=$jaeger_url
WAITGRAPH_HEALTH_URL=http://127.0.0.1:$wg_port/healthz
EOF
}

stop() {
  local parts=("$@") part
  ((${#parts[@]} > 0)) || parts=(waitgraph otelcol jaeger kafka)
  for part in "${parts[@]}"; do
    case $part in
      waitgraph) daemon_stop waitgraph "$wg_pid" ;;
      otelcol | jaeger | kafka) bash "$root/scripts/$part.sh" stop ;;
      *) log "no part named $part (waitgraph, otelcol, jaeger, kafka)"; exit 2 ;;
    esac
  done
}

status() {
  local name
  for name in otelcol jaeger waitgraph; do
    if daemon_alive "$WAITGRAPH_RUN_DIR/$name.pid"; then echo "$name running (pid $(cat "$WAITGRAPH_RUN_DIR/$name.pid"))"; else echo "$name stopped"; fi
  done
  echo "kafka $(bash "$root/scripts/kafka.sh" status 2>/dev/null || true)"
}

case ${1:-} in
  build) build ;;
  start) start ;;
  stop) shift; stop "$@" ;;
  status) status ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
