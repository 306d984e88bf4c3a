"""gunicorn worker classes.

meinheld's stock worker (``meinheld.gmeinheld.MeinheldWorker``) replaces
``gunicorn.glogging.Logger.error`` and ``.access`` with functions of another
signature, and it does so in ``__init__``, which gunicorn runs in the *master*
before forking. The first time the master logs an error, for example "Worker
was sent SIGKILL", it raises ``TypeError`` and the master dies with every
worker. :class:`MeinheldWorker` keeps gunicorn's logger intact and gives
meinheld small adapters instead.
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.base import Worker
from meinheld import server
from meinheld.gmeinheld import MeinheldWorker as StockMeinheldWorker


class _ErrorLog:
    """What meinheld's C server calls on an application error: ``error(type, value, tb)``."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def error(self, exc_type, exc_value, tb) -> None:
        self.log.error("meinheld: unhandled error", exc_info=(exc_type, exc_value, tb))


class _AccessLog:
    """What meinheld calls per request when access logging is on: ``access(environ)``."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def access(self, environ: dict) -> None:
        self.log.access_log.info(
            '%s "%s %s %s" %s %s "%s"',
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD", "-"),
            environ.get("PATH_INFO", "-"),
            environ.get("SERVER_PROTOCOL", "-"),
            environ.get("STATUS_CODE", "-"),
            environ.get("SEND_BYTES", "-"),
            environ.get("HTTP_USER_AGENT", "-"),
        )


class MeinheldWorker(StockMeinheldWorker):
    """meinheld's worker without the logger monkey-patch, and with a graceful TERM."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Skip the stock __init__: it is exactly the monkey-patch we must avoid.
        Worker.__init__(self, *args, **kwargs)
        server.set_access_logger(_AccessLog(self.log) if self.cfg.accesslog else None)
        server.set_error_logger(_ErrorLog(self.log))

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Stop accepting and let in-flight requests finish (the stock worker cuts them)."""
        server.stop(int(self.cfg.graceful_timeout))
