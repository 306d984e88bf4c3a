"""gunicorn settings for the tracker; every knob has an environment variable.

TRACKER_BIND           address to listen on            (127.0.0.1:8080)
TRACKER_ADMIN_BIND     admin listener, /metrics        (127.0.0.1:9090; empty: none)
TRACKER_WORKERS        worker processes                (number of CPUs)
TRACKER_WORKER_CLASS   meinheld | gthread              (meinheld)
TRACKER_THREADS        threads per gthread worker      (4)
TRACKER_CONFIG         tracker YAML config             (config/tracker.yaml)
TRACKER_LOG_LEVEL      DEBUG | INFO | WARNING | ERROR  (INFO)
TRACKER_ACCESS_LOG     "-" to log each request         (off: it costs throughput)
TRACKER_CLOSE_TIMEOUT  seconds a worker may spend flushing collectors on exit (10)
TRACKER_DRAIN_SECONDS  seconds a worker keeps serving after SIGTERM, /readyz 503 (2)
TRACKER_SPOOL_DIR      spool directory used by the shipped config (var/spool)
PROMETHEUS_MULTIPROC_DIR  where workers keep metric files (a fresh temp dir)
"""

import gc
import os
import shutil
import tempfile

from tracker.http.admin import admin_bind as _admin_bind
from tracker.process.logs import logconfig_dict as _logconfig_dict

WORKER_CLASSES = {
    "meinheld": "tracker.workers.MeinheldWorker",
    "gthread": "tracker.workers.ThreadWorker",
}

# The public port, then the admin listener's (tracker.http.admin): every worker serves both.
bind = [a for a in (os.environ.get("TRACKER_BIND", "127.0.0.1:8080"), _admin_bind()) if a]
workers = int(os.environ.get("TRACKER_WORKERS") or os.cpu_count() or 1)
worker_class = WORKER_CLASSES[os.environ.get("TRACKER_WORKER_CLASS", "meinheld")]
threads = int(os.environ.get("TRACKER_THREADS", "4"))
worker_connections = 2000
wsgi_app = "tracker.wsgi:application"
# Read and validate the config once, in the master, before binding the port.
preload_app = True
timeout = 30
graceful_timeout = 25
keepalive = 5
limit_request_line = 8190
limit_request_fields = 64
limit_request_field_size = 8190
accesslog = os.environ.get("TRACKER_ACCESS_LOG") or None
logconfig_dict = _logconfig_dict(os.environ.get("TRACKER_LOG_LEVEL", "INFO"))
proc_name = "tracker"
# gunicorn's control socket defaults to ~/.gunicorn/gunicorn.ctl: shared by every
# instance on a host and unwritable on a read-only root filesystem.
control_socket_disable = True

CLOSE_TIMEOUT = float(os.environ.get("TRACKER_CLOSE_TIMEOUT", "10"))

# Workers are separate processes: prometheus_client's multiprocess mode keeps
# their counters in files that /metrics aggregates. It must be set before the
# app (and so prometheus_client) is imported, which is why it is done here.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
else:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tracker-metrics-")


def when_ready(server):
    """Put what the master loaded out of the cyclic GC's reach, before the first fork.

    The app, its config and every imported module are a few hundred thousand
    container objects that live as long as the process. Left in the GC's oldest
    generation, each full collection in a worker walks all of them (tens of
    milliseconds on a busy core: the stalls of docs/performance.md) and writes
    their headers, unsharing the pages the workers inherited from the master.
    Frozen, they are never scanned again.
    """
    gc.collect()
    gc.freeze()


def post_worker_init(worker):
    """Open this worker's collectors: after the fork, never in the master."""
    from tracker.wsgi import tracker

    if worker_class.endswith("MeinheldWorker"):
        # meinheld buffers a body before the app sees it: bound what it buffers. Bodies
        # between the app's limit and this one get the app's counted 413.
        from meinheld import server as meinheld_server

        meinheld_server.set_max_content_length(max(1 << 20, 2 * tracker.max_body_bytes()))
    tracker.open()
    # The collectors' clients, threads and buffers live as long as the worker too.
    gc.freeze()


def worker_exit(server, worker):
    """Flush and close this worker's collectors within TRACKER_CLOSE_TIMEOUT."""
    from tracker.wsgi import tracker

    lost = tracker.close(CLOSE_TIMEOUT)
    if lost:
        worker.log.error("worker %s exited with %d undelivered events", worker.pid, lost)


def child_exit(server, worker):
    """Let prometheus_client retire the dead worker's live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
