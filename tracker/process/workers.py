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

import math
import os
import signal
import threading
from typing import Any

from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker as StockThreadWorker
from meinheld import server
from meinheld.gmeinheld import MeinheldWorker as StockMeinheldWorker

from tracker.process import lifecycle


def drain_seconds() -> float:
    """Seconds a worker keeps serving after SIGTERM, answering 503 on /readyz."""
    return float(os.environ.get("TRACKER_DRAIN_SECONDS", "2"))


def close_timeout() -> float:
    """Seconds a stopping worker may spend flushing its collectors (``worker_exit``)."""
    return float(os.environ.get("TRACKER_CLOSE_TIMEOUT", "10"))


def keepalive_requests() -> int:
    """Requests one keep-alive connection may carry before the worker closes it (0: no bound).

    Every worker accepts on the same socket and a keep-alive connection stays
    with the worker that accepted it, so a worker that took a burst of a load
    balancer's connections keeps them and queues while another idles. Closing a
    connection now and then (``Connection: close`` on its last answer, as
    nginx's ``keepalive_requests``) lets the client reconnect to a worker that
    is waiting for one (scripts/meinheld/keepalive-requests.patch).
    """
    return int(os.environ.get("TRACKER_KEEPALIVE_REQUESTS", "100"))


#: Freed 16 KiB frame-stack blocks a worker keeps for its next request's greenlet
#: (scripts/meinheld/stack-chunk-cache.patch). A request runs to its end without
#: yielding, so one greenlet at a time is the rule; a few spare cover the rest.
STACK_CHUNKS = 8


def in_flight_budget(graceful_timeout: float) -> int:
    """Seconds left for in-flight requests once draining and flushing are paid for.

    The master SIGKILLs a worker ``graceful_timeout`` seconds after SIGTERM, and
    a killed worker loses what its producer still holds: drain, in-flight
    requests and the collectors' flush must all fit in that window.
    """
    return max(1, math.floor(graceful_timeout - drain_seconds() - close_timeout() - 1))


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
    """meinheld's worker without the logger monkey-patch, and with a graceful TERM.

    On SIGTERM the worker first drains: ``/readyz`` answers 503 while it keeps
    serving for ``TRACKER_DRAIN_SECONDS``, so a load balancer that still sends
    traffic stops doing so. Then it stops accepting, lets in-flight requests
    finish, and exits through gunicorn's ``worker_exit`` hook, which flushes
    the collectors.

    ``meinheld.server.run`` installs C handlers for SIGTERM and SIGINT that
    stop accepting at once and end the loop a second later, whatever gunicorn
    asked for. So once the loop runs, the worker puts its own Python handlers
    back, and keeps a one-second timer in the loop: Python runs a signal
    handler only when the main thread executes Python code, which an idle
    meinheld loop otherwise never does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Skip the stock __init__: it is exactly the monkey-patch we must avoid.
        Worker.__init__(self, *args, **kwargs)
        server.set_access_logger(_AccessLog(self.log) if self.cfg.accesslog else None)
        server.set_error_logger(_ErrorLog(self.log))
        self._stopping = False

    def run(self) -> None:
        """Serve until stopped, with the worker's own signal handlers."""
        server.schedule_call(0, self._take_signals)
        if hasattr(server, "set_keepalive_requests"):  # the project's build (meinheld.sh)
            server.set_keepalive_requests(keepalive_requests())
        else:
            self.log.warning("meinheld without keepalive-requests.patch: connections unbounded")
        if hasattr(server, "set_stack_chunk_cache"):  # scripts/meinheld/stack-chunk-cache.patch
            server.set_stack_chunk_cache(STACK_CHUNKS)
        else:
            self.log.warning("meinheld without stack-chunk-cache.patch: two syscalls per request")
        super().run()

    def _take_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.handle_exit)
        signal.signal(signal.SIGINT, self.handle_quit)
        self._tick()

    def _tick(self) -> None:
        # A pending timer keeps meinheld's loop alive, so stop ticking once stopping.
        if not self._stopping:
            server.schedule_call(1, self._tick)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Drain, then stop gracefully."""
        lifecycle.DRAINING.set()
        if self._stopping:
            return
        self._stopping = True
        self.log.info("worker %s draining for %.0f s", self.pid, drain_seconds())
        # Answer with "Connection: close" from now on: a client on a keep-alive
        # connection would otherwise keep the worker's loop busy past the master's
        # deadline, and the worker would be killed before it flushed.
        server.set_keepalive(0)
        delay = math.ceil(drain_seconds())
        budget = in_flight_budget(self.cfg.graceful_timeout)
        if delay <= 0:
            server.stop(budget)
        else:
            server.schedule_call(delay, server.stop, budget)


class ThreadWorker(StockThreadWorker):
    """gunicorn's ``gthread`` worker with the same drain on SIGTERM as :class:`MeinheldWorker`.

    Its answers say ``Server: tracker``, as meinheld's do (scripts/meinheld.sh):
    gunicorn takes the value from a module global and ignores the app's header.
    """

    def init_process(self) -> None:
        """Name no server in the ``Server`` header, then serve."""
        gunicorn_wsgi.SERVER = "tracker"
        super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Drain, then stop accepting and finish in-flight requests."""
        lifecycle.DRAINING.set()
        timer = threading.Timer(drain_seconds(), super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()
