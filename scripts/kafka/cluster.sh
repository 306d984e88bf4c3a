#!/usr/bin/env bash
# Three-node Apache Kafka KRaft cluster on loopback for failover tests: each
# node is a combined broker+controller started by scripts/kafka/kafka.sh with
# its own data dir and ports, one shared cluster id and a static voter set.
# Topics default to replication factor 3 with min.insync.replicas=2.
#
# Usage: scripts/kafka/cluster.sh up|down|status|kill N|start N|bootstrap
#   up         start every node (in parallel: a node waits for a quorum) and wait
#   down       stop every node (idempotent)
#   status     print each node's state; exit 1 unless all three run
#   kill N     SIGKILL node N (1-3), for failover tests
#   start N    start node N again (idempotent)
#   bootstrap  print the bootstrap servers (host:port,host:port,host:port)
#
# Environment (defaults):
#   KAFKA_CLUSTER_PORT=19192             node N listens on 127.0.0.1:PORT+N-1
#   KAFKA_CLUSTER_CONTROLLER_PORT=19292  node N's controller on PORT+N-1
#   KAFKA_CLUSTER_DIR=<repo>/var/kafka-cluster  node N's data dir is nodeN/
#   KAFKA_STARTUP_TIMEOUT=180            three JVMs on a small machine start slowly
#   KAFKA_HEAP_OPTS="-Xmx384m -Xms128m"  per node
# Other kafka.sh variables (KAFKA_LIBS_DIR, JAVA_HOME...) pass through.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
PORT=${KAFKA_CLUSTER_PORT:-19192}
CONTROLLER_PORT=${KAFKA_CLUSTER_CONTROLLER_PORT:-19292}
DIR=${KAFKA_CLUSTER_DIR:-$REPO_ROOT/var/kafka-cluster}
export KAFKA_STARTUP_TIMEOUT=${KAFKA_STARTUP_TIMEOUT:-180}
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx384m -Xms128m}
NODES=(1 2 3)
HOST=127.0.0.1

die() { echo "cluster.sh: $*" >&2; exit 1; }

for v in PORT CONTROLLER_PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done

voters() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$n@$HOST:$((CONTROLLER_PORT + n - 1))"); done
  local IFS=,; echo "${out[*]}"
}

bootstrap() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$HOST:$((PORT + n - 1))"); done
  local IFS=,; echo "${out[*]}"
}

cluster_id() { # one id for every node, kept with the cluster's data
  mkdir -p "$DIR"
  if [[ ! -s $DIR/cluster.id ]]; then
    head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | sed 's/^-/A/' >"$DIR/cluster.id.tmp"
    mv "$DIR/cluster.id.tmp" "$DIR/cluster.id"
  fi
  cat "$DIR/cluster.id"
}

node() { # node N COMMAND: run kafka.sh COMMAND for node N
  local n=$1 command=$2
  [[ $n =~ ^[1-3]$ ]] || die "node must be 1, 2 or 3, got '$n'"
  KAFKA_PORT=$((PORT + n - 1)) \
  KAFKA_CONTROLLER_PORT=$((CONTROLLER_PORT + n - 1)) \
  KAFKA_DATA_DIR="$DIR/node$n" \
  KAFKA_CLUSTER_ID=$(cluster_id) \
  KAFKA_EXTRA_CONFIG="node.id=$n
controller.quorum.voters=$(voters)
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2" \
    bash "$SCRIPT_DIR/kafka.sh" "$command"
}

cmd_up() {
  local n pids=() rc=0
  bash "$SCRIPT_DIR/kafka.sh" fetch
  cluster_id >/dev/null # before the nodes start in parallel: they must share it
  for n in "${NODES[@]}"; do node "$n" up & pids+=($!); done
  for n in "${!pids[@]}"; do wait "${pids[$n]}" || rc=1; done
  (( rc == 0 )) || die "a node did not start (logs in $DIR/node*/logs)"
  echo "cluster up: $(bootstrap)"
}

cmd_down() {
  local n pids=()
  for n in "${NODES[@]}"; do node "$n" down & pids+=($!); done
  for n in "${!pids[@]}"; do wait "${pids[$n]}" || true; done
}

cmd_status() {
  local n rc=0
  for n in "${NODES[@]}"; do
    printf 'node %s: ' "$n"
    node "$n" status || rc=1
  done
  return $rc
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill) node "${2:-}" kill ;;
  start) node "${2:-}" up ;;
  bootstrap) bootstrap ;;
  *) echo "usage: $0 up|down|status|kill N|start N|bootstrap" >&2; exit 2 ;;
esac
