"""The benchmark suite: ``make bench`` and ``make bench-smoke`` (docs/performance.md)."""
