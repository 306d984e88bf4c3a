"""gunicorn worker classes, kept at their documented names (``tracker.workers.MeinheldWorker``).

They are defined in :mod:`tracker.process.workers`; this module only re-exports them.
"""

from tracker.process.workers import MeinheldWorker, ThreadWorker

__all__ = ["MeinheldWorker", "ThreadWorker"]
