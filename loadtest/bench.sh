#!/usr/bin/env bash
# Install what the benchmark needs, then run it (loadtest/bench.py has the settings).
#   wrk, nginx-light   Debian packages (apt-get)
#   vegeta             from the Go module proxy into var/bin (go install)
#   matplotlib         the venv's [bench] extra (make bench-install)
# Usage: make bench | make bench-smoke   (or BENCH_SMOKE=1 bash loadtest/bench.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

VEGETA_VERSION=v12.13.0
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  local apt=(apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@")
  echo "bench.sh: installing $* (Debian packages)" >&2
  "${apt[@]}" >/dev/null 2>&1 || { apt-get update -qq && "${apt[@]}" >/dev/null; }
}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx-light)
if (( ${#missing[@]} )); then apt_install "${missing[@]}"; fi

if [[ ! -x var/bin/vegeta || "$(cat var/bin/.vegeta-version 2>/dev/null)" != "$VEGETA_VERSION" ]]; then
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || apt_install golang-go
  echo "bench.sh: installing vegeta $VEGETA_VERSION into var/bin (go install)" >&2
  mkdir -p var/bin
  GOBIN=$PWD/var/bin go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
  echo "$VEGETA_VERSION" >var/bin/.vegeta-version
fi

make -s bench-install
# The tracker's phases, then reporting's (loader throughput, report freshness; docs/reporting.md).
rc=0
.venv/bin/python -m loadtest.bench || rc=$?
.venv/bin/python -m loadtest.reporting || rc=1
exit "$rc"
