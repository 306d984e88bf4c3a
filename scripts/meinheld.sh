#!/usr/bin/env bash
# Install meinheld 1.0.2 from its source, patched: no server name in its Server
# header, clear answers to the requests its own parser refuses, and no reset.
#
#   bash scripts/meinheld.sh PYTHON
#
# meinheld writes "Server: meinheld/1.0.2" on every answer and drops the one an app
# sets; the value is a C macro (meinheld/server/meinheld.h), so it is changed in the
# source before the build: answers then say "Server: tracker".
#
# meinheld's parser refuses some requests before the app sees them (a request line
# or header field over 8 KB, an unknown method such as QUERY). Unpatched, it answers
# an HTML "400 Bad Request" page and closes with the rest of the request unread, so
# the kernel sends a TCP reset and the client may see "connection reset" instead of
# the answer. scripts/meinheld/lingering-close.patch (its header says what it
# changes) answers 414, 431, 501 or 400 in plain text with "Connection: close", and
# closes as nginx does: write side shut, the rest of the request read and discarded
# for at most 2 s and 1 MB, then close.
#
# Unpatched, it writes the interim "100 Continue" to a client that sent "Expect:
# 100-continue" only after it has read the whole body, which that client sends only
# once it has the 100 (or after waiting for it: curl waits a second per POST).
# scripts/meinheld/expect-continue.patch answers it as soon as the header is complete.
#
# A keep-alive connection stays with the worker that accepted it, so a client that
# opens a burst of connections can leave most of them with one worker.
# scripts/meinheld/keepalive-requests.patch adds server.set_keepalive_requests(n), as
# nginx's keepalive_requests: the n-th request of a connection is answered with
# "Connection: close" (the worker sets TRACKER_KEEPALIVE_REQUESTS, 100).
#
# Every request runs in a new greenlet, and on Python 3.11 a new greenlet takes a
# fresh 16 KiB frame-stack block from CPython's arena allocator (mmap) and gives it
# back when it ends (munmap): two system calls and a page fault per request.
# scripts/meinheld/stack-chunk-cache.patch adds server.set_stack_chunk_cache(n),
# which keeps up to n freed blocks for the next greenlet (the worker sets 8).
#
# The patches apply in the order of PATCHES; the build fails if one does not apply.
# Running it again builds and installs the same thing again: it starts from a fresh
# copy of the source every time.
#
# Its metadata pins greenlet<0.5, which does not build on Python 3.11; greenlet>=3
# works with it, so it goes in with --no-deps after greenlet (PYTHON -m pip install
# 'greenlet>=3' first).
set -euo pipefail

PYTHON=${1:?usage: meinheld.sh PYTHON}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATCHES=(lingering-close.patch expect-continue.patch keepalive-requests.patch stack-chunk-cache.patch)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

command -v patch >/dev/null || {
    echo "meinheld.sh: patch not found (apt-get install patch)" >&2
    exit 1
}
"$PYTHON" -m pip download -q --no-deps --no-binary :all: -c "$ROOT/constraints.txt" \
    -d "$WORK" meinheld==1.0.2
tar -xzf "$WORK"/meinheld-1.0.2.tar.gz -C "$WORK"
src=$WORK/meinheld-1.0.2
header=$src/meinheld/server/meinheld.h
grep -q '^#define SERVER "meinheld/1.0.2"$' "$header" || {
    echo "meinheld.sh: $header has no SERVER macro to change" >&2
    exit 1
}
sed -i 's|^#define SERVER "meinheld/1.0.2"$|#define SERVER "tracker"|' "$header"
for name in "${PATCHES[@]}"; do
    patch -p1 --forward --batch --quiet -d "$src" < "$ROOT/scripts/meinheld/$name" || {
        echo "meinheld.sh: scripts/meinheld/$name does not apply to meinheld 1.0.2" >&2
        exit 1
    }
done
"$PYTHON" -m pip install -q --no-deps "$src"
