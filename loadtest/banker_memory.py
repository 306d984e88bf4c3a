"""Measure what the banker's remembered notice ids cost in Redis memory.

Applies N distinct notices (uuid ids, as the tracker derives them) to one
campaign through the banker's own Lua step and prints ``used_memory`` from
``INFO memory`` before and after, per million ids. Run against a scratch
Redis: ``bash scripts/redis/redis.sh up`` then
``.venv/bin/python loadtest/banker_memory.py --url redis://127.0.0.1:6379/15``.
"""

from __future__ import annotations

import argparse
import time
import uuid

from collectors.banker.ledger import Entry, Ledger, connect


def main() -> None:
    """Apply the notices and print the memory figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--campaign", default="summer-sale-2026")
    args = parser.parse_args()
    client = connect(args.url, args.cluster, 10.0)
    prefix = "mem" + uuid.uuid4().hex[:6]
    ledger = Ledger(client, prefix)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    # Warm up: the campaign's hashes and the script exist before the "before" figure.
    ledger.apply(args.campaign, [Entry("warm-up", args.campaign, "li-1", "USD", 1, False, day)])
    before = client.info("memory")["used_memory"]
    started = time.perf_counter()
    for start in range(0, args.count, args.batch):
        n = min(args.batch, args.count - start)
        entries = [
            Entry(str(uuid.uuid4()), args.campaign, "li-1", "USD", 1500, False, day)
            for _ in range(n)
        ]
        ledger.apply(args.campaign, entries)
    elapsed = time.perf_counter() - started
    after = client.info("memory")["used_memory"]
    per_million = (after - before) / args.count * 1_000_000
    print(f"ids remembered:       {args.count}")
    print(f"used_memory before:   {before} bytes")
    print(f"used_memory after:    {after} bytes")
    print(
        f"per million ids:      {per_million / 1e6:.1f} MB ({per_million / 1e6 / 1.048576:.1f} MiB)"
    )
    print(f"per id:               {(after - before) / args.count:.1f} bytes")
    print(f"apply rate:           {args.count / elapsed:,.0f} notices/s ({args.batch} per call)")
    print(f"key prefix to delete: {prefix}:*")


if __name__ == "__main__":
    main()
