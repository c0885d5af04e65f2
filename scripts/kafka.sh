#!/usr/bin/env bash
# A real Apache Kafka broker on loopback, in KRaft mode (one node that is broker and controller),
# without Docker: its jars come from Maven Central. Used by scripts/test.sh (integration tests and
# the chaos suite on a real broker) and by chaos::Broker (chaos/broker.cc), which runs
# `kafka.sh run` as its child so that it can SIGKILL and restart the JVM.
#
#   scripts/kafka.sh install                 fetch the pinned version's jars (once; idempotent)
#   scripts/kafka.sh start --dir D [--port P] [--controller-port C] [--heap-mb N]
#                                            start in the background; prints "bootstrap: HOST:PORT"
#   scripts/kafka.sh stop --dir D            SIGTERM (SIGKILL after 20 s) the broker started in D
#   scripts/kafka.sh run --dir D --port P --controller-port C [--heap-mb N]
#                                            format D/data if new, then exec the broker (foreground)
#   scripts/kafka.sh libs                    print the jar folder
#
# The version is pinned here and in chaos/broker.h (kKafkaVersion); docs/chaos.md says why.
# Where the jars go: $XDC_KAFKA_LIBS, else $HOME/.cache/xdc/kafka-<version>/libs.
set -euo pipefail

readonly KAFKA_VERSION=3.9.1
readonly SCALA_VERSION=2.13
readonly SLF4J_VERSION=1.7.36
readonly START_TIMEOUT_S=90
readonly STOP_GRACE_S=20
LIBS="${XDC_KAFKA_LIBS:-${HOME:-/root}/.cache/xdc/kafka-${KAFKA_VERSION}/libs}"
readonly LIBS

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

installed() { [ -f "$LIBS/kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar" ]; }

install() {
  if installed; then
    echo "kafka.sh: Apache Kafka $KAFKA_VERSION is installed in $LIBS"
    return
  fi
  command -v java >/dev/null || die "java is missing: run scripts/install-deps.sh"
  command -v mvn >/dev/null || die "mvn is missing: run scripts/install-deps.sh"
  local pom_dir
  pom_dir="$(mktemp -d)"
  # The broker and its runtime dependencies, plus an slf4j binding so its logs reach log4j.
  cat >"$pom_dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>xdc</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_${SCALA_VERSION}</artifactId>
      <version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId>
      <version>${SLF4J_VERSION}</version></dependency>
  </dependencies>
</project>
EOF
  echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS"
  mkdir -p "$LIBS.partial"
  (cd "$pom_dir" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$LIBS.partial") || die "mvn could not fetch the broker's jars (see above)"
  rm -rf "$pom_dir" "$LIBS"
  mv "$LIBS.partial" "$LIBS"
  installed || die "the jars arrived but kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar is not among them"
  echo "kafka.sh: installed $(ls "$LIBS" | wc -l) jars"
}

# Writes D/server.properties and D/log4j.properties for the given ports.
write_config() {
  local dir="$1" port="$2" controller_port="$3"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller_port}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=${dir}/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# One node: a restarted broker re-registers only after its previous session expired (9 s by
# default), so keep sessions short and restarts after SIGKILL quick.
broker.session.timeout.ms=2000
broker.heartbeat.interval.ms=500
EOF
  # Everything goes to D/broker.log; the line saying the server started also to stdout, where
  # `start` and chaos::Broker wait for it.
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${dir}/broker.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO, stdout
EOF
}

# Sets dir, port, controller_port and heap_mb (callers set the defaults) from the arguments of
# `run` or `start`.
parse_broker_args() {
  local command="$1"
  shift
  while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "$command: $1 needs a value"
    case "$1" in
      --dir) dir="$2" ;;
      --port) port="$2" ;;
      --controller-port) controller_port="$2" ;;
      --heap-mb) heap_mb="$2" ;;
      *) die "$command: unknown argument '$1'" ;;
    esac
    shift 2
  done
}

run() {
  local dir="" port="" controller_port="" heap_mb=512
  parse_broker_args run "$@"
  [ -n "$dir" ] && [ -n "$port" ] && [ -n "$controller_port" ] ||
    die "run needs --dir, --port and --controller-port"
  installed || die "Apache Kafka $KAFKA_VERSION is not installed in $LIBS: run scripts/kafka.sh install"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  write_config "$dir" "$port" "$controller_port"
  local log_flag="-Dlog4j.configuration=file:$dir/log4j.properties"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # A KRaft cluster id: 16 random bytes in URL-safe base64 without padding. One that starts
    # with '-' would read as an option to StorageTool (1 start in 64 failed): draw again.
    local cluster_id="-"
    while [[ "$cluster_id" == -* ]]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    java -Xmx256m -cp "$LIBS/*" "$log_flag" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$dir/server.properties" --ignore-formatted
  fi
  exec java "-Xmx${heap_mb}m" "-Xms${heap_mb}m" -XX:+UseG1GC -Djava.awt.headless=true \
    "$log_flag" -cp "$LIBS/*" kafka.Kafka "$dir/server.properties"
}

start() {
  local dir="" port=19092 controller_port=19093 heap_mb=512
  parse_broker_args start "$@"
  [ -n "$dir" ] || die "start needs --dir"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/broker.pid" ] && kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
    die "a broker already runs in $dir (pid $(cat "$dir/broker.pid")): kafka.sh stop --dir $dir"
  fi
  : >"$dir/broker.out"
  setsid "$0" run --dir "$dir" --port "$port" --controller-port "$controller_port" \
    --heap-mb "$heap_mb" >>"$dir/broker.out" 2>&1 </dev/null &
  echo $! >"$dir/broker.pid"
  local waited=0
  until grep -q "Kafka Server started" "$dir/broker.out"; do
    if ! kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
      tail -20 "$dir/broker.out" >&2
      die "the broker exited while starting (logs: $dir/broker.out, $dir/broker.log)"
    fi
    if [ "$waited" -ge $((START_TIMEOUT_S * 10)) ]; then
      die "the broker did not start within ${START_TIMEOUT_S}s (logs: $dir/broker.log)"
    fi
    sleep 0.1  # polling the log for the start line, with the deadline above
    waited=$((waited + 1))
  done
  echo "bootstrap: 127.0.0.1:$port"
}

stop() {
  local dir=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) dir="$2"; shift 2 ;;
      *) die "stop: unknown argument '$1'" ;;
    esac
  done
  [ -n "$dir" ] || die "stop needs --dir"
  [ -f "$dir/broker.pid" ] || { echo "kafka.sh: no broker was started in $dir"; return; }
  local pid
  pid="$(cat "$dir/broker.pid")"
  if kill -TERM "$pid" 2>/dev/null; then
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((STOP_GRACE_S * 10)) ]; do
      sleep 0.1  # polling for the exit, with the deadline above
      waited=$((waited + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/broker.pid"
  echo "kafka.sh: stopped the broker in $dir"
}

case "${1:-}" in
  install) install ;;
  run) shift; run "$@" ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  libs) echo "$LIBS" ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
