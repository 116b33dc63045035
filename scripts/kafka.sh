#!/usr/bin/env bash
# Apache Kafka from Maven Central jars, without Docker or a tarball.
#
#   scripts/kafka.sh fetch                      gather the broker jars into the cache (idempotent);
#                                               prints the libs directory on its last line
#   scripts/kafka.sh libs                       print the libs directory if cached, else exit 1
#   scripts/kafka.sh start-single <dir> <port>  one KRaft broker+controller in the foreground
#                                               (controller listener on <port>+1000); Ctrl-C stops it
#   scripts/kafka.sh start-cluster <dir> <p1> <p2> <p3>
#                                               three combined brokers, 3-voter static quorum, RF 3,
#                                               min ISR 2; in the foreground until Ctrl-C
#
# Environment: QOE_KAFKA_VERSION (default 4.4.0), QOE_CACHE_DIR (default ~/.cache/qoe-stream),
# KAFKA_HEAP (default -Xmx512m). Needs java (17+) and, for fetch, mvn.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${QOE_KAFKA_VERSION:-4.4.0}"
cache="${QOE_CACHE_DIR:-$HOME/.cache/qoe-stream}/kafka-$version"
libs="$cache/libs"
# The cache is complete for one version of kafka/pom.xml: a changed POM (another jar) fetches again.
complete="$cache/.complete-$(sha256sum "$here/kafka/pom.xml" | cut -c1-16)"
heap="${KAFKA_HEAP:--Xmx512m}"

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
  if [[ -f "$complete" ]]; then echo "$libs"; return; fi
  command -v mvn >/dev/null || die "mvn (Maven) is not installed; it is needed once to fetch the Kafka jars"
  mkdir -p "$cache"
  # Two test files may start at once: one fetches, the other waits for it.
  exec 9>"$cache/.lock"
  flock 9
  if [[ ! -f "$complete" ]]; then
    local tmp="$cache/libs.tmp.$$"
    rm -rf "$tmp"
    echo "kafka.sh: fetching org.apache.kafka:kafka_2.13:$version and its dependencies" >&2
    mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" -Dkafka.version="$version" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 \
      || { rm -rf "$tmp"; die "mvn could not fetch Kafka $version (see the output above)"; }
    rm -rf "$libs"
    mv "$tmp" "$libs"
    touch "$complete"
  fi
  flock -u 9
  echo "$libs"
}

JAVA=()
java_cmd() { # fills JAVA with the java command line up to the main class
  command -v java >/dev/null || die "java (17+) is not installed"
  [[ -f "$complete" ]] || fetch >/dev/null
  JAVA=(java "$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -cp "$libs/*")
}

# write_props <file> <node id> <port> <controller port> <voters> <log dir> <rf> <min isr>
write_props() {
  cat >"$1" <<EOF
process.roles=broker,controller
node.id=$2
controller.quorum.voters=$5
listeners=PLAINTEXT://127.0.0.1:$3,CONTROLLER://127.0.0.1:$4
advertised.listeners=PLAINTEXT://127.0.0.1:$3
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$6
num.partitions=1
default.replication.factor=$7
min.insync.replicas=$8
offsets.topic.replication.factor=$7
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$7
transaction.state.log.min.isr=$8
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$7
share.coordinator.state.topic.min.isr=$8
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=4
log.cleaner.dedupe.buffer.size=16777216
EOF
}

format() { # format <props> <cluster id>
  "${JAVA[@]}" kafka.tools.StorageTool format -t "$2" -c "$1" --ignore-formatted >/dev/null
}

start_single() {
  local dir="$1" port="$2" cport=$(( $2 + 1000 ))
  mkdir -p "$dir"
  write_props "$dir/server.properties" 1 "$port" "$cport" "1@127.0.0.1:$cport" "$dir/data" 1 1
  java_cmd
  local id; id="$("${JAVA[@]}" kafka.tools.StorageTool random-uuid)"
  format "$dir/server.properties" "$id"
  echo "kafka.sh: broker on 127.0.0.1:$port (controller :$cport), data in $dir" >&2
  exec "${JAVA[@]}" kafka.Kafka "$dir/server.properties"
}

start_cluster() {
  local dir="$1"; shift
  (( $# == 3 )) || die "start-cluster needs a directory and three ports"
  local ports=("$@") voters="" i
  for i in 0 1 2; do voters+="${voters:+,}$(( i + 1 ))@127.0.0.1:$(( ports[i] + 1000 ))"; done
  java_cmd
  local id; id="$("${JAVA[@]}" kafka.tools.StorageTool random-uuid)"
  local pids=()
  for i in 0 1 2; do
    mkdir -p "$dir/broker-$i"
    write_props "$dir/broker-$i/server.properties" $(( i + 1 )) "${ports[i]}" $(( ports[i] + 1000 )) \
      "$voters" "$dir/broker-$i/data" 3 2
    format "$dir/broker-$i/server.properties" "$id"
  done
  for i in 0 1 2; do
    "${JAVA[@]}" kafka.Kafka "$dir/broker-$i/server.properties" >"$dir/broker-$i/server.log" 2>&1 &
    pids+=("$!")
  done
  trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
  echo "kafka.sh: brokers 127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}; logs in $dir/broker-*/server.log" >&2
  wait
}

case "${1:-}" in
  fetch) fetch ;;
  libs) [[ -f "$complete" ]] && echo "$libs" || exit 1 ;;
  start-single) (( $# == 3 )) || die "usage: $0 start-single <dir> <port>"; start_single "$2" "$3" ;;
  start-cluster) (( $# == 5 )) || die "usage: $0 start-cluster <dir> <port1> <port2> <port3>"; start_cluster "$2" "$3" "$4" "$5" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
