#!/usr/bin/env bash
# Throughput and latency benchmark: real gunicorn + meinheld workers producing to a
# real Kafka broker, driven by wrk over loopback. Prints figures; asserts nothing.
#
# Usage: loadtest/run.sh            (defaults below; override by environment)
#   WORKERS=1 CONNECTIONS=32 DURATION=20s WORKER_CLASS=meinheld loadtest/run.sh
#
# On a 2-core machine wrk and the tracker share the CPUs, so WORKERS=1 with one
# wrk thread measures roughly "per core". Start from a clean broker for
# comparable numbers: make kafka-down; rm -rf var/kafka-bench.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-1}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-20s}
WORKER_CLASS=${WORKER_CLASS:-meinheld}
PORT=${PORT:-18080}
KAFKA_PORT=${KAFKA_PORT:-29092}

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  (apt-get install -y -qq wrk >/dev/null 2>&1) || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
fi
make -s install

export KAFKA_PORT KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1)) KAFKA_DATA_DIR=$PWD/var/kafka-bench
bash scripts/kafka/kafka.sh up

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; bash scripts/kafka/kafka.sh down >/dev/null; rm -rf "$work"' EXIT
export TRACKER_BIND=127.0.0.1:$PORT TRACKER_WORKERS=$WORKERS TRACKER_WORKER_CLASS=$WORKER_CLASS
export TRACKER_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT TRACKER_LOG_DIR=$work/log TRACKER_LOG_LEVEL=WARNING
.venv/bin/tracker setup >/dev/null
.venv/bin/tracker serve 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do curl -fs "http://$TRACKER_BIND/healthz" >/dev/null && break; sleep 0.1; done

# Warm up, then measure.
wrk -t1 -c"$CONNECTIONS" -d3s -s loadtest/requests.lua "http://$TRACKER_BIND" >/dev/null
echo "workers=$WORKERS worker_class=$WORKER_CLASS connections=$CONNECTIONS duration=$DURATION cores=$(nproc)"
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s loadtest/requests.lua "http://$TRACKER_BIND" | grep RESULT

rss=$(ps -o rss= --ppid "$server" | awk '{s+=$1} END {print s}')
echo "worker_rss_kib_total=$rss"
delivered=$(curl -fs "http://$TRACKER_BIND/metrics" | awk '/^tracker_collector_delivered_total\{collector="kafka"\}/ {print $2}')
failed=$(curl -fs "http://$TRACKER_BIND/metrics" | awk '/^tracker_collector_failures_total/ {s+=$2} END {print s+0}')
echo "kafka_delivered=$delivered collector_failures=$failed"
