#!/usr/bin/env bash
# Install meinheld 1.0.2 from its source, with its Server header naming no server.
#
#   bash scripts/meinheld.sh PYTHON
#
# meinheld writes "Server: meinheld/1.0.2" on every answer and drops the one an app
# sets; the value is a C macro (meinheld/server/meinheld.h), so it is changed in the
# source before the build: answers then say "Server: tracker". Its metadata pins
# greenlet<0.5, which does not build on Python 3.11; greenlet>=3 works with it, so it
# goes in with --no-deps after greenlet (PYTHON -m pip install 'greenlet>=3' first).
set -euo pipefail

PYTHON=${1:?usage: meinheld.sh PYTHON}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m pip download -q --no-deps --no-binary :all: -c "$ROOT/constraints.txt" \
    -d "$WORK" meinheld==1.0.2
tar -xzf "$WORK"/meinheld-1.0.2.tar.gz -C "$WORK"
header=$WORK/meinheld-1.0.2/meinheld/server/meinheld.h
grep -q '^#define SERVER "meinheld/1.0.2"$' "$header" || {
    echo "meinheld.sh: $header has no SERVER macro to change" >&2
    exit 1
}
sed -i 's|^#define SERVER "meinheld/1.0.2"$|#define SERVER "tracker"|' "$header"
"$PYTHON" -m pip install -q --no-deps "$WORK/meinheld-1.0.2"
