#!/usr/bin/env bash
# Redis for development and tests, from Debian's redis-server package (installed
# with apt-get when missing). No Docker. A single node, or a three-master Redis
# Cluster on loopback for the banker's cluster test.
#
# Usage: scripts/redis/redis.sh up|down|status|kill|cluster-up|cluster-down|cluster-restart|
#                               cluster-status|install
#   up              start the single node (idempotent) and wait until it answers PING
#   down            stop it with SHUTDOWN (the append-only file is fsynced first)
#   status          print "running pid N on 127.0.0.1:PORT" and exit 0, or exit 1
#   kill            SIGKILL the single node (fault tests); exit 0 even if it was not running
#   cluster-up      start three masters on REDIS_CLUSTER_PORT..+2 and join them (idempotent)
#   cluster-down    stop the three masters and forget the cluster (data removed)
#   cluster-restart stop the three masters (data kept) and start them again
#   cluster-status  print the cluster state and exit 0 when it is ok, else 1
#   install         only install redis-server (and redis-tools) if missing
#
# Environment (defaults):
#   REDIS_PORT=6379                 single node, on 127.0.0.1
#   REDIS_DATA_DIR=<repo>/var/redis config, append-only file, log, pid file
#   REDIS_CLUSTER_PORT=7001         first master; the others are +1, +2; bus ports +10000
#   REDIS_CLUSTER_DIR=<repo>/var/redis-cluster
#   REDIS_STARTUP_TIMEOUT=20        seconds `up` and `cluster-up` wait
# Relative directories are taken relative to the current directory.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
HOST=127.0.0.1
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_CLUSTER_PORT=${REDIS_CLUSTER_PORT:-7001}
REDIS_STARTUP_TIMEOUT=${REDIS_STARTUP_TIMEOUT:-20}

die() { echo "redis.sh: $*" >&2; exit 1; }

abspath() {
  case $1 in
    /*) printf '%s\n' "${1%/}" ;;
    *) printf '%s\n' "$PWD/${1%/}" ;;
  esac
}

DATA_DIR=$(abspath "${REDIS_DATA_DIR:-$REPO_ROOT/var/redis}")
CLUSTER_DIR=$(abspath "${REDIS_CLUSTER_DIR:-$REPO_ROOT/var/redis-cluster}")

for v in REDIS_PORT REDIS_CLUSTER_PORT REDIS_STARTUP_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done

install_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  echo "redis.sh: installing redis-server from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  # RUNLEVEL=1: the package's init script must not start a system Redis on 6379.
  if ! RUNLEVEL=1 apt-get install -y -qq -o DPkg::Lock::Timeout=300 redis-server redis-tools >/dev/null; then
    apt-get update -qq -o DPkg::Lock::Timeout=300
    RUNLEVEL=1 apt-get install -y -qq -o DPkg::Lock::Timeout=300 redis-server redis-tools >/dev/null
  fi
  command -v redis-server >/dev/null || die "redis-server is still missing after apt-get install"
}

cli() { # cli PORT ARGS...
  local port=$1
  shift
  redis-cli -h "$HOST" -p "$port" "$@"
}

answers() { [[ $(cli "$1" PING 2>/dev/null) == PONG ]]; }

# Start one redis-server in directory $1 on port $2; extra config lines follow.
start_node() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  if answers "$port"; then
    [[ $(cli "$port" CONFIG GET dir | sed -n 2p) == "$dir" ]] \
      || die "port $port is taken by another Redis (dir $(cli "$port" CONFIG GET dir | sed -n 2p))"
    return 0
  fi
  {
    echo "bind $HOST"
    echo "port $port"
    echo "dir $dir"
    echo "daemonize yes"
    echo "pidfile $dir/redis.pid"
    echo "logfile $dir/redis.log"
    echo "appendonly yes"
    echo "appendfsync everysec"
    echo 'save ""'
    echo "protected-mode yes"
    printf '%s\n' "$@"
  } >"$dir/redis.conf"
  redis-server "$dir/redis.conf" || die "redis-server failed to start on $port (see $dir/redis.log)"
}

wait_answers() {
  local port=$1 dir=$2 deadline=$((SECONDS + REDIS_STARTUP_TIMEOUT))
  until answers "$port"; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$dir/redis.log" >&2 || true
      die "Redis on $port did not answer within ${REDIS_STARTUP_TIMEOUT}s"
    fi
    sleep 0.1
  done
}

stop_node() { # stop_node PORT DIR
  local port=$1 dir=$2 pid
  if answers "$port" && [[ $(cli "$port" CONFIG GET dir | sed -n 2p) == "$dir" ]]; then
    pid=$(cli "$port" INFO server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
    cli "$port" SHUTDOWN >/dev/null 2>&1 || true
    for _ in $(seq 100); do
      [[ -d /proc/$pid ]] || return 0
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

cmd_up() {
  install_redis
  start_node "$DATA_DIR" "$REDIS_PORT"
  wait_answers "$REDIS_PORT" "$DATA_DIR"
  cmd_status
}

cmd_down() { stop_node "$REDIS_PORT" "$DATA_DIR"; }

cmd_status() {
  if answers "$REDIS_PORT" && [[ $(cli "$REDIS_PORT" CONFIG GET dir | sed -n 2p) == "$DATA_DIR" ]]; then
    echo "running pid $(cli "$REDIS_PORT" INFO server | sed -n 's/^process_id:\([0-9]*\).*/\1/p') on $HOST:$REDIS_PORT"
    return 0
  fi
  echo "not running on $HOST:$REDIS_PORT" >&2
  return 1
}

cmd_kill() {
  local pid
  [[ -f $DATA_DIR/redis.pid ]] || return 0
  pid=$(<"$DATA_DIR/redis.pid")
  if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "redis-server $HOST:$REDIS_PORT"; then
    kill -9 "$pid" 2>/dev/null || true
    while [[ -d /proc/$pid ]]; do sleep 0.05; done
  fi
}

cluster_ports() { echo "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 1)) $((REDIS_CLUSTER_PORT + 2)); }

cmd_cluster_status() {
  local state
  state=$(cli "$REDIS_CLUSTER_PORT" CLUSTER INFO 2>/dev/null | sed -n 's/^cluster_state:\([a-z]*\).*/\1/p')
  echo "cluster state ${state:-down} on $HOST:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 2))"
  [[ $state == ok ]]
}

cmd_cluster_up() {
  install_redis
  local port nodes=() deadline
  for port in $(cluster_ports); do
    start_node "$CLUSTER_DIR/$port" "$port" "cluster-enabled yes" \
      "cluster-config-file $CLUSTER_DIR/$port/nodes.conf" "cluster-node-timeout 5000"
    nodes+=("$HOST:$port")
  done
  for port in $(cluster_ports); do wait_answers "$port" "$CLUSTER_DIR/$port"; done
  if [[ $(cli "$REDIS_CLUSTER_PORT" CLUSTER INFO | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p') != 3 ]]; then
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  fi
  deadline=$((SECONDS + REDIS_STARTUP_TIMEOUT))
  for port in $(cluster_ports); do
    until [[ $(cli "$port" CLUSTER INFO | sed -n 's/^cluster_state:\([a-z]*\).*/\1/p') == ok ]]; do
      ((SECONDS < deadline)) || die "cluster not ok within ${REDIS_STARTUP_TIMEOUT}s"
      sleep 0.1
    done
  done
  cmd_cluster_status
}

cmd_cluster_restart() {
  local port
  for port in $(cluster_ports); do stop_node "$port" "$CLUSTER_DIR/$port"; done
  cmd_cluster_up
}

cmd_cluster_down() {
  local port
  for port in $(cluster_ports); do stop_node "$port" "$CLUSTER_DIR/$port"; done
  rm -rf "$CLUSTER_DIR"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill) cmd_kill ;;
  cluster-up) cmd_cluster_up ;;
  cluster-down) cmd_cluster_down ;;
  cluster-restart) cmd_cluster_restart ;;
  cluster-status) cmd_cluster_status ;;
  install) install_redis ;;
  *) die "usage: redis.sh up|down|status|kill|cluster-up|cluster-down|cluster-restart|cluster-status|install" ;;
esac
