#!/usr/bin/env bash
# A single-node Apache Kafka 4.x broker (KRaft: broker and controller in one JVM) on 127.0.0.1, for tests,
# benchmarks and local runs. The broker and its whole runtime classpath come from Maven Central
# (org.apache.kafka:kafka_2.13), resolved by Maven itself and cached per version, so only the first run
# downloads anything. Needs Java 17+ and Maven; nothing else.
#
#   scripts/kafka.sh install   fetch the broker classpath into the cache (a no-op once cached)
#   scripts/kafka.sh format    format the KRaft storage in the data dir, unless already formatted
#   scripts/kafka.sh start     install, format, start in the background, wait until ready, print the bootstrap
#   scripts/kafka.sh stop      SIGTERM, wait for a clean shutdown, then SIGKILL
#   scripts/kafka.sh status    print "running <pid> <bootstrap>" (exit 0) or "stopped" (exit 1)
#
# Environment (defaults in brackets):
#   KAFKA_VERSION                     [4.3.1] a 4.x release of org.apache.kafka:kafka_2.13; "latest" picks the
#                                     newest 4.x on Maven Central whose whole classpath resolves there (asks
#                                     Central on every run). 4.4.0 is listed but its kafka-tools-api is not.
#   WAITGRAPH_KAFKA_PORT              [9092]  PLAINTEXT listener, the bootstrap address clients use
#   WAITGRAPH_KAFKA_CONTROLLER_PORT   [9093]  KRaft controller listener
#   WAITGRAPH_KAFKA_DATA_DIR          [~/.cache/waitgraph/kafka-data/<port>] log dirs, config, server.log
#   WAITGRAPH_KAFKA_PID_FILE          [<data dir>/kafka.pid]
#   WAITGRAPH_KAFKA_HEAP              [512m]  -Xmx of the broker JVM
#   WAITGRAPH_KAFKA_PARTITIONS        [1]     num.partitions of auto-created topics
#   WAITGRAPH_KAFKA_START_TIMEOUT     [90]    seconds to wait for the broker to answer
#   WAITGRAPH_KAFKA_CDS               [1]     0: skip the class-data-sharing archive made at install
#   WAITGRAPH_CACHE_DIR               [~/.cache/waitgraph]
set -euo pipefail
# shellcheck source=lib/daemon.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/daemon.sh"

CACHE_ROOT="${WAITGRAPH_CACHE_DIR:-$HOME/.cache/waitgraph}"
KAFKA_VERSION="${KAFKA_VERSION:-4.3.1}"
PORT="${WAITGRAPH_KAFKA_PORT:-9092}"
CPORT="${WAITGRAPH_KAFKA_CONTROLLER_PORT:-9093}"
DATA_DIR="${WAITGRAPH_KAFKA_DATA_DIR:-$CACHE_ROOT/kafka-data/$PORT}"
PID_FILE="${WAITGRAPH_KAFKA_PID_FILE:-$DATA_DIR/kafka.pid}"
HEAP="${WAITGRAPH_KAFKA_HEAP:-512m}"
PARTITIONS="${WAITGRAPH_KAFKA_PARTITIONS:-1}"
START_TIMEOUT="${WAITGRAPH_KAFKA_START_TIMEOUT:-90}"
# The binding that lets the broker's slf4j 1.7 logging reach a file; Kafka's own tarball ships the same pair.
LOG4J_VERSION=2.24.3
MAVEN_CENTRAL=https://repo.maven.apache.org/maven2

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The 4.x releases listed on Maven Central, newest first.
releases_4x() {
  curl -fsSL "$MAVEN_CENTRAL/org/apache/kafka/kafka_2.13/maven-metadata.xml" |
    sed -n 's:.*<version>\(4\.[0-9]*\.[0-9]*\)</version>.*:\1:p' | sort -rV
}

version_dir() { echo "$CACHE_ROOT/kafka/$KAFKA_VERSION"; }

cmd_install() {
  if [[ "$KAFKA_VERSION" == latest ]]; then
    local v
    for v in $(releases_4x); do
      KAFKA_VERSION="$v"
      install_version && return 0
      log "Kafka $v is listed but incomplete on Maven Central; trying the release before it"
    done
    die "no 4.x release of kafka_2.13 could be fetched from Maven Central"
  fi
  install_version || die "Maven could not fetch Kafka $KAFKA_VERSION (log: $(version_dir)/mvn.log)"
}

# Writes a throwaway pom whose runtime dependency tree is exactly the broker's, then lets Maven copy every jar
# of it. The ".complete" marker is written last, so an interrupted download is redone rather than trusted.
install_version() {
  [[ "$KAFKA_VERSION" == 4.* ]] || die "KAFKA_VERSION must be a 4.x release or latest, not $KAFKA_VERSION"
  local dir
  dir="$(version_dir)"
  if [[ ! -f "$dir/.complete" ]]; then
    command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka from Maven Central"
    command -v java >/dev/null || die "Java 17+ is needed to run Kafka"
    mkdir -p "$dir"
    # Brokers may be started side by side (test files do): one process installs, the others wait for it.
    exec 9>"$dir.lock"
    flock 9
  fi
  if [[ ! -f "$dir/.complete" ]]; then
    log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies from Maven Central"
    rm -rf "$dir/libs"
    cat >"$dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.waitgraph</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
    if ! mvn -B -q -f "$dir/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$dir/libs" >"$dir/mvn.log" 2>&1; then
      grep -m 1 -E 'Could not|Failed' "$dir/mvn.log" >&2 || true
      return 1
    fi
    ls "$dir/libs"/kafka_2.13-*.jar >/dev/null 2>&1 || { log "kafka_2.13 jar missing after the Maven run"; return 1; }
    touch "$dir/.complete"
    log "cached $(ls "$dir/libs" | wc -l) jars in $dir/libs"
  fi
  ensure_class_archive
}

# Starts and stops a throwaway broker once with -XX:ArchiveClassesAtExit, leaving a class-data-sharing
# archive of the classes a broker loads: later JVM starts map it instead of loading and verifying thousands
# of classes from 46 jars, which cuts broker startup by about a third. Tried once per version, best effort:
# without the archive brokers only start slower.
ensure_class_archive() {
  [[ "${WAITGRAPH_KAFKA_CDS:-1}" == 1 ]] || return 0
  local dir jsa scratch
  dir="$(version_dir)"
  jsa="$dir/broker.jsa"
  [[ -s "$jsa" || -f "$dir/.cds-tried" ]] && return 0
  exec 9>"$dir.lock"
  flock 9
  [[ -s "$jsa" || -f "$dir/.cds-tried" ]] && return 0
  # Marked first: the training broker's own start passes through here and must not train again.
  touch "$dir/.cds-tried"
  log "training a class-data-sharing archive for faster broker starts (once)"
  scratch="$(mktemp -d)"
  if (
    PORT=$((20000 + RANDOM % 20000)) CPORT=$((PORT + 1)) DATA_DIR="$scratch/data" PID_FILE="$scratch/kafka.pid"
    CDS_DUMP="$jsa.tmp"
    cmd_start >/dev/null && cmd_stop
  ) && [[ -s "$jsa.tmp" ]]; then
    mv "$jsa.tmp" "$jsa"
  else
    rm -f "$jsa.tmp"
    log "no class-data-sharing archive (brokers only start slower)"
  fi
  # A training broker that never became ready is still running: it has no use now.
  [[ -f "$scratch/kafka.pid" ]] && kill -KILL "$(cat "$scratch/kafka.pid")" 2>/dev/null
  rm -rf "$scratch"
}

classpath() { echo "$(version_dir)/libs/*"; }

write_config() {
  mkdir -p "$DATA_DIR/logs"
  cat >"$DATA_DIR/server.properties" <<EOF
# Written by scripts/kafka.sh on every start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA_DIR/logs
num.partitions=$PARTITIONS
auto.create.topics.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Single node, two cores: fewer internal partitions and threads make startup and the first group join fast.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
num.network.threads=2
num.io.threads=4
# Tests join groups constantly; the default 3 s delay before the first rebalance would dominate them.
group.initial.rebalance.delay.ms=0
EOF
  cat >"$DATA_DIR/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $DATA_DIR/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

java_opts() {
  echo "-Xmx$HEAP -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true" \
    "-Dlog4j2.configurationFile=$DATA_DIR/log4j2.properties"
}

broker_opts() {
  local jsa
  jsa="$(version_dir)/broker.jsa"
  if [[ -n "${CDS_DUMP:-}" ]]; then
    echo "$(java_opts) -XX:ArchiveClassesAtExit=$CDS_DUMP"
  elif [[ -s "$jsa" ]]; then
    # -Xshare:auto (the default): an archive that no longer matches the JVM or the jars is ignored.
    echo "$(java_opts) -XX:SharedArchiveFile=$jsa"
  else
    java_opts
  fi
}

cmd_format() {
  cmd_install
  write_config
  [[ -f "$DATA_DIR/logs/meta.properties" ]] && return 0
  # A Kafka Uuid: 16 random bytes in URL-safe base64 without padding; not one starting with '-', which
  # the storage tool would read as an option.
  local cluster_id
  cluster_id="-"
  while [ "${cluster_id#-}" != "$cluster_id" ]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  # shellcheck disable=SC2046
  java $(java_opts) -cp "$(classpath)" kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$DATA_DIR/server.properties" >"$DATA_DIR/format.log" 2>&1 ||
    { cat "$DATA_DIR/format.log" >&2; die "formatting the storage in $DATA_DIR failed"; }
}

# ApiVersions v0 over a raw socket: the broker enables its client listener only once it is unfenced and
# ready, so a well-formed answer with our correlation id means producers and consumers can use it now.
probe() {
  local reply
  reply="$(timeout 2 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x2a\xff\xff" >&3
    head -c 10 <&3 | od -An -tx1 | tr -d " \n"' _ "$PORT" 2>/dev/null)" || return 1
  # size (4 bytes), correlation id 42, error code 0
  [[ "${reply:8:12}" == 0000002a0000 ]]
}

cmd_start() {
  cmd_format
  # shellcheck disable=SC2046
  daemon_start kafka "$PID_FILE" "$DATA_DIR/stdout.log" probe "$START_TIMEOUT" -- \
    java $(broker_opts) -cp "$(classpath)" kafka.Kafka "$DATA_DIR/server.properties" ||
    die "the broker did not start (logs in $DATA_DIR: stdout.log, server.log)"
  log "ready (pid $(cat "$PID_FILE"), data in $DATA_DIR)"
  echo "127.0.0.1:$PORT"
}

# A controlled shutdown of one node takes 2-3 s; daemon_stop forces it after 10 s.
cmd_stop() { daemon_stop kafka "$PID_FILE"; }

cmd_status() {
  if daemon_alive "$PID_FILE" && probe; then
    echo "running $(cat "$PID_FILE") 127.0.0.1:$PORT"
  elif daemon_alive "$PID_FILE"; then
    echo "starting $(cat "$PID_FILE") 127.0.0.1:$PORT"
    return 1
  else
    echo "stopped"
    return 1
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  format) cmd_format ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
