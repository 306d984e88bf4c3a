#!/usr/bin/env bash
# Single-node Apache Kafka 4.x broker (KRaft, combined broker+controller) for
# development and tests. The jars come from Maven Central via
# scripts/kafka/pom.xml; no Docker, no Kafka tarball.
#
# Usage: scripts/kafka/kafka.sh up|down|status|kill|fetch
#   up      start the broker (idempotent) and wait until it answers requests
#   down    stop it: SIGTERM, then SIGKILL after $KAFKA_STOP_TIMEOUT s (idempotent)
#   status  print "running pid N on 127.0.0.1:PORT" and exit 0, or exit 1
#   kill    SIGKILL the broker (fault tests); exit 0 even if it was not running
#   fetch   only resolve/copy the jars into $KAFKA_LIBS_DIR
#
# Environment (defaults):
#   KAFKA_PORT=9092                 PLAINTEXT listener on 127.0.0.1
#   KAFKA_CONTROLLER_PORT=9093      KRaft controller listener on 127.0.0.1
#   KAFKA_DATA_DIR=<repo>/var/kafka config, data (data/), logs (logs/), pid file
#   KAFKA_LIBS_DIR=<repo>/var/kafka/libs  jars, shared by all data dirs
#   KAFKA_STARTUP_TIMEOUT=60        seconds `up` waits for the broker
#   KAFKA_STOP_TIMEOUT=30           seconds `down` waits before SIGKILL
#   KAFKA_HEAP_OPTS="-Xmx512m -Xms256m"
#   KAFKA_JVM_OPTS=                 extra JVM options
#   KAFKA_JIT=c1                    c1: compile with the JVM's quick C1 compiler only
#                                   (-XX:TieredStopAtLevel=1); full: C1 then C2. A fresh
#                                   broker's C2 compiles took 2-3 s of CPU per 10 s for its
#                                   first minute under load, on the cores the tracker serves
#                                   from (docs/performance.md, stalls); C1 costs the warm
#                                   broker about 0.3 s more CPU per 10 s at 500 events/s
#   KAFKA_NICE=0                    niceness of the broker (`make kafka-up` sets 10: on a
#                                   developer's cores its JIT must not starve the tracker)
#   KAFKA_EXTRA_CONFIG=             extra server.properties lines (newline-separated),
#                                   appended last so they override the defaults
#                                   (scripts/kafka/cluster.sh sets node.id and the voters)
#   KAFKA_CLUSTER_ID=               cluster id to format a new data dir with (random);
#                                   the nodes of one cluster must share it
#   JAVA_HOME                       java is $JAVA_HOME/bin/java, else `java` (17+)
# Relative KAFKA_DATA_DIR / KAFKA_LIBS_DIR are taken relative to the current
# directory. Brokers with different data dirs and ports can run side by side.
# shellcheck disable=SC2016  # single-quoted bash -c scripts are intentional
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
POM="$SCRIPT_DIR/pom.xml"
LOG4J_CONF="$SCRIPT_DIR/log4j2.properties"

KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_STARTUP_TIMEOUT=${KAFKA_STARTUP_TIMEOUT:-60}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:-}
KAFKA_NICE=${KAFKA_NICE:-0}
KAFKA_JIT=${KAFKA_JIT:-c1}
KAFKA_EXTRA_CONFIG=${KAFKA_EXTRA_CONFIG:-}
HOST=127.0.0.1

die() { echo "kafka.sh: $*" >&2; exit 1; }
[[ $KAFKA_JIT == c1 || $KAFKA_JIT == full ]] || die "KAFKA_JIT must be c1 or full, not '$KAFKA_JIT'"

abspath() { # make $1 absolute (relative to cwd) without requiring it to exist
  case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}

DATA_DIR=$(abspath "${KAFKA_DATA_DIR:-$REPO_ROOT/var/kafka}")
LIBS_DIR=$(abspath "${KAFKA_LIBS_DIR:-$REPO_ROOT/var/kafka/libs}")
DATA_DIR=${DATA_DIR%/}
LIBS_DIR=${LIBS_DIR%/}
PROPS="$DATA_DIR/server.properties"
LOG_DIRS="$DATA_DIR/data"
LOGS_DIR="$DATA_DIR/logs"
PIDFILE="$DATA_DIR/kafka.pid"
SERVER_LOG="$LOGS_DIR/server.log"
STDOUT_LOG="$LOGS_DIR/stdout.log"

for v in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_STARTUP_TIMEOUT KAFKA_STOP_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[[ $KAFKA_PORT != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"

if [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi

# ---------------------------------------------------------------- processes --

# True if $1 is a live broker process of *this* data dir (guards against stale
# pid files and pid reuse: the command line must name our server.properties).
pid_is_ours() {
  local pid=$1 args cmd
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  mapfile -d '' args <"/proc/$pid/cmdline" 2>/dev/null || return 1
  (( ${#args[@]} > 0 )) || return 1 # zombie or kernel thread
  cmd=" ${args[*]} "
  [[ $cmd == *" kafka.Kafka "* && $cmd == *" $PROPS "* ]]
}

# Print the pid of this data dir's broker; fail if none is running.
find_pid() {
  local pid d
  if [[ -f $PIDFILE ]]; then
    pid=$(<"$PIDFILE") || pid=
    if pid_is_ours "$pid"; then echo "$pid"; return 0; fi
  fi
  # pid file missing or stale: look for a broker started with our config.
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    if pid_is_ours "$pid"; then echo "$pid"; return 0; fi
  done
  return 1
}

# Port the data dir's broker was configured with (falls back to $KAFKA_PORT).
configured_port() {
  local p=""
  [[ -f $PROPS ]] && p=$(sed -n 's#^listeners=PLAINTEXT://[^:]*:\([0-9][0-9]*\).*#\1#p' "$PROPS" | head -n1)
  echo "${p:-$KAFKA_PORT}"
}

tcp_open() { # something accepts TCP connections on 127.0.0.1:$1
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# True if a Kafka broker on 127.0.0.1:$1 answers an ApiVersions v0 request
# (raw protocol over bash's /dev/tcp: size, api_key=18, version=0,
# correlation_id=0x7a117a11, null client_id; the response echoes the id).
kafka_answers() {
  local out
  out=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "\x00\x00\x00\x0a\x00\x12\x00\x00\x7a\x11\x7a\x11\xff\xff" >&3
    head -c 8 <&3 | od -An -tx1' "$HOST" "$1" 2>/dev/null) || return 1
  out=${out//[[:space:]]/}
  [[ ${#out} -eq 16 && ${out:8:8} == 7a117a11 ]]
}

lock_data_dir() { # serialise up/down/kill on one data dir
  mkdir -p "$DATA_DIR"
  exec 9>"$DATA_DIR/kafka.sh.lock"
  flock -w $((KAFKA_STARTUP_TIMEOUT + KAFKA_STOP_TIMEOUT + 30)) 9 \
    || die "another kafka.sh holds $DATA_DIR/kafka.sh.lock"
}

show_log_tail() {
  local f
  for f in "$STDOUT_LOG" "$SERVER_LOG"; do
    if [[ -s $f ]]; then
      echo "---- last lines of $f ----" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

# --------------------------------------------------------------------- jars --

libs_ok() {
  local want=$1
  [[ -f $LIBS_DIR/.stamp && "$(<"$LIBS_DIR/.stamp")" == "$want" ]] \
    && compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null
}

fetch_libs() {
  local want tmp
  want=$(sha256sum "$POM" | cut -d' ' -f1)
  libs_ok "$want" && return 0
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  mkdir -p "$LIBS_DIR"
  exec 8>"$LIBS_DIR/.lock"
  flock -w 900 8 || die "timed out waiting for another fetch into $LIBS_DIR"
  if ! libs_ok "$want"; then
    echo "kafka.sh: fetching Kafka jars with Maven into $LIBS_DIR ..."
    tmp=$(mktemp -d "$LIBS_DIR/.fetch.XXXXXX")
    # -B: batch mode, no colours/progress; Debian's Maven 3.8.7 still prints
    # bare ESC[0m resets, so its output is kept in a file and only shown,
    # de-coloured, on failure.
    if ! mvn -B -q -ntp -Dstyle.color=never -f "$POM" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$tmp" >"$tmp.log" 2>&1 </dev/null; then
      sed 's/\x1b\[[0-9;]*m//g' "$tmp.log" >&2
      rm -rf "$tmp" "$tmp.log"
      die "mvn dependency:copy-dependencies failed"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "mvn produced no kafka_2.13 jar in $tmp"
    rm -f "$LIBS_DIR/.stamp" "$LIBS_DIR"/*.jar
    mv "$tmp"/*.jar "$LIBS_DIR"/
    rm -rf "$tmp" "$tmp.log"
    echo "$want" >"$LIBS_DIR/.stamp"
    echo "kafka.sh: $(compgen -G "$LIBS_DIR/*.jar" | wc -l) jars in $LIBS_DIR"
  fi
  exec 8>&-
}

# ------------------------------------------------------------------- config --

check_java() {
  local v
  v=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n1) \
    || die "cannot run $JAVA"
  [[ -n $v ]] || die "cannot run $JAVA (set JAVA_HOME or install openjdk-17-jre-headless)"
  (( v >= 17 )) || die "Kafka 4.x needs Java 17+, $JAVA is $v"
}

write_config() {
  mkdir -p "$LOG_DIRS" "$LOGS_DIR"
  cat >"$PROPS.tmp" <<EOF
# Written by scripts/kafka/kafka.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$LOG_DIRS
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
# After a SIGKILL the restarted node cannot re-register until the controller
# expires the old broker session (default 9 s); 5 s keeps restarts quicker.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=5000
EOF
  if [[ -n $KAFKA_EXTRA_CONFIG ]]; then
    printf '# KAFKA_EXTRA_CONFIG\n%s\n' "$KAFKA_EXTRA_CONFIG" >>"$PROPS.tmp"
  fi
  mv "$PROPS.tmp" "$PROPS"
}

log4j_opts() {
  printf '%s\n' "-Dlog4j2.configurationFile=$LOG4J_CONF" "-Dkafka.logs.dir=$LOGS_DIR"
}

# Kafka uuid: 16 random bytes, url-safe base64 without padding, not starting
# with '-' (what org.apache.kafka.common.Uuid.randomUuid() produces).
random_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id != -* ]] && { echo "$id"; return; }
  done
}

format_storage() {
  [[ -f $LOG_DIRS/meta.properties ]] && return 0
  local cid opts
  cid=${KAFKA_CLUSTER_ID:-$(random_cluster_id)}
  mapfile -t opts < <(log4j_opts)
  echo "kafka.sh: formatting $LOG_DIRS (cluster id $cid)"
  if ! "$JAVA" -Xmx256m "${opts[@]}" -cp "$LIBS_DIR/*" kafka.tools.StorageTool \
      format --cluster-id "$cid" --config "$PROPS" --ignore-formatted \
      >"$LOGS_DIR/format.log" 2>&1 </dev/null; then
    cat "$LOGS_DIR/format.log" >&2
    die "kafka.tools.StorageTool format failed"
  fi
}

# ----------------------------------------------------------------- commands --

# Wait until broker $1 answers on $2; if $3 >= 0 also require the "started"
# line in server.log past byte offset $3. 0 = ready, 1 = timeout, 2 = died.
wait_ready() {
  local pid=$1 port=$2 offset=$3 deadline=$((SECONDS + KAFKA_STARTUP_TIMEOUT)) started=0 n
  while :; do
    pid_is_ours "$pid" || return 2
    if (( offset < 0 )); then
      started=1
    elif (( ! started )) && [[ -f $SERVER_LOG ]]; then
      if (( $(stat -c %s "$SERVER_LOG") < offset )); then offset=0; fi # rolled over
      # grep -c (not -q) reads all input, so tail never dies of SIGPIPE.
      n=$(tail -c +$((offset + 1)) "$SERVER_LOG" | grep -c 'Kafka Server started') || true
      (( ${n:-0} > 0 )) && started=1
    fi
    if (( started )) && kafka_answers "$port"; then return 0; fi
    (( SECONDS < deadline )) || return 1
    sleep 0.2
  done
}

cmd_up() {
  local pid port rc=0 offset=0 t0=$SECONDS heap jvm=()
  lock_data_dir
  if pid=$(find_pid); then
    port=$(configured_port)
    [[ $port == "$KAFKA_PORT" ]] \
      || die "broker of $DATA_DIR already running (pid $pid) on port $port, not $KAFKA_PORT; run down first"
    echo "$pid" >"$PIDFILE"
    wait_ready "$pid" "$port" -1 || rc=$?
    case $rc in
      0) echo "kafka already running pid $pid on $HOST:$port"; return 0 ;;
      2) die "broker pid $pid died while starting" ;;
      *) show_log_tail; die "broker pid $pid is running but does not answer on $HOST:$port" ;;
    esac
  fi
  rm -f "$PIDFILE"
  tcp_open "$KAFKA_PORT" && die "port $KAFKA_PORT is already in use by another process"
  tcp_open "$KAFKA_CONTROLLER_PORT" && die "port $KAFKA_CONTROLLER_PORT is already in use by another process"

  fetch_libs
  check_java
  write_config
  format_storage

  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  jvm+=("${heap[@]}")
  jvm+=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
        -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError
        "-XX:ErrorFile=$LOGS_DIR/hs_err_pid%p.log" -Djava.awt.headless=true)
  if [[ $KAFKA_JIT == c1 ]]; then jvm+=(-XX:TieredStopAtLevel=1); fi
  mapfile -t -O "${#jvm[@]}" jvm < <(log4j_opts)
  if [[ -n $KAFKA_JVM_OPTS ]]; then
    local extra; read -r -a extra <<<"$KAFKA_JVM_OPTS"; jvm+=("${extra[@]}")
  fi
  [[ -f $SERVER_LOG ]] && offset=$(stat -c %s "$SERVER_LOG")
  echo "=== $(date -u +%FT%TZ) kafka.sh up: starting on $HOST:$KAFKA_PORT" >>"$STDOUT_LOG"

  # New session (setsid) so the broker outlives this shell and its terminal;
  # the wrapper writes its own pid (== java's pid after exec) to the pid file;
  # fds 8/9 (our locks) are not inherited.
  ( cd "$DATA_DIR" && exec setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' \
      "$PIDFILE" nice -n "$KAFKA_NICE" "$JAVA" "${jvm[@]}" -cp "$LIBS_DIR/*" kafka.Kafka "$PROPS" ) \
      </dev/null >>"$STDOUT_LOG" 2>&1 8>&- 9>&- &
  local launcher=$!
  for _ in $(seq 50); do [[ -s $PIDFILE ]] && break; sleep 0.1; done
  pid=$(cat "$PIDFILE" 2>/dev/null) || pid=$launcher
  [[ -n $pid ]] || pid=$launcher

  wait_ready "$pid" "$KAFKA_PORT" "$offset" || rc=$?
  case $rc in
    0) echo "kafka started pid $pid on $HOST:$KAFKA_PORT in $((SECONDS - t0))s (data dir $DATA_DIR)" ;;
    2) show_log_tail; rm -f "$PIDFILE"; die "broker exited during startup" ;;
    *) show_log_tail
       kill -KILL "$pid" 2>/dev/null || true
       wait_gone "$pid" 10 || true
       rm -f "$PIDFILE"
       die "broker did not answer on $HOST:$KAFKA_PORT within ${KAFKA_STARTUP_TIMEOUT}s; killed it" ;;
  esac
}

wait_gone() { # pid seconds -> 0 if gone in time
  local pid=$1 deadline=$((SECONDS + $2))
  while pid_is_ours "$pid"; do
    (( SECONDS < deadline )) || return 1
    sleep 0.2
  done
}

cmd_down() {
  local pid t0=$SECONDS
  lock_data_dir
  if ! pid=$(find_pid); then
    rm -f "$PIDFILE"
    echo "kafka not running (data dir $DATA_DIR)"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if wait_gone "$pid" "$KAFKA_STOP_TIMEOUT"; then
    echo "kafka stopped pid $pid in $((SECONDS - t0))s"
  else
    echo "kafka.sh: pid $pid still running after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
    echo "kafka killed pid $pid"
  fi
  rm -f "$PIDFILE"
}

cmd_kill() {
  local pid
  lock_data_dir
  if ! pid=$(find_pid); then
    rm -f "$PIDFILE"
    echo "kafka not running (data dir $DATA_DIR)"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
  rm -f "$PIDFILE"
  echo "kafka killed pid $pid (SIGKILL)"
}

cmd_status() {
  local pid
  if pid=$(find_pid); then
    echo "running pid $pid on $HOST:$(configured_port)"
    return 0
  fi
  echo "not running (data dir $DATA_DIR)"
  return 1
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill) cmd_kill ;;
  fetch) fetch_libs ;;
  *) echo "usage: $0 up|down|status|kill|fetch" >&2; exit 2 ;;
esac
