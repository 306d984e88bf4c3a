#!/usr/bin/env bash
# Install Debian's clickhouse-server (18.16, the only ClickHouse server package the
# registries here offer) for tests/integration/test_clickhouse_kafka_engine.py, which
# starts its own server on free loopback ports. Idempotent and quiet when installed.
#
#   bash scripts/clickhouse.sh     # as root, or with sudo available
#
# The reporting loader itself needs no server: it uses embedded chdb (docs/reporting.md).
set -euo pipefail

[ -x /usr/sbin/clickhouse-server ] && command -v clickhouse-client >/dev/null && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
echo "clickhouse.sh: installing clickhouse-server from Debian" >&2
$SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends \
    clickhouse-server clickhouse-client >/dev/null \
  || { $SUDO apt-get update -qq \
       && $SUDO apt-get install -y -qq --no-install-recommends clickhouse-server clickhouse-client >/dev/null; }
