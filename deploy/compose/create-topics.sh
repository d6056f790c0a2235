#!/usr/bin/env bash
# Creates the topics of the compose stack, if missing (run once by the kafka-init service).
#   otlp_spans, otlp_logs   what the Collector's kafka exporter writes; 3 partitions each
#   waitgraph.alerts        waitgraph's alerts, keyed by fingerprint; compacted, so the latest alert of each
#                           finding stays for good (a restarted processor reads them back)
#   waitgraph.deadletter    malformed messages waitgraph could not decode
set -euo pipefail
topics=/opt/kafka/bin/kafka-topics.sh
create() {
  "$topics" --bootstrap-server "${BOOTSTRAP:-kafka:9092}" --create --if-not-exists --topic "$@"
}
create otlp_spans --partitions 3
create otlp_logs --partitions 3
create waitgraph.alerts --partitions 3 --config cleanup.policy=compact
create waitgraph.deadletter --partitions 1
"$topics" --bootstrap-server "${BOOTSTRAP:-kafka:9092}" --list
