"""The ``banker`` collector: a real-time, exactly-once spend ledger and budget stop in Redis.

See ``docs/banker.md``. The entry point is :class:`BankerCollector`; the
``tracker banker`` commands live in :mod:`collectors.banker.cli`.
"""

from .collector import BankerCollector

__all__ = ["BankerCollector"]
