"""The WSGI entry point for gunicorn: ``tracker.wsgi:application``.

Importing this module reads and validates the config named by
``TRACKER_CONFIG`` and builds the app, its admin routes served on the port of
``TRACKER_ADMIN_BIND`` alone, with its plugins created but not opened.
gunicorn imports it once in the master (``preload_app``); each worker opens the
plugins after the fork (see ``config/gunicorn.conf.py``).
"""

from __future__ import annotations

import sys

from tracker.config import ConfigError, config_path, load_file
from tracker.http.admin import admin_bind, bind_port
from tracker.http.app import Tracker

try:
    tracker = Tracker(load_file(config_path()), admin_port=bind_port(admin_bind()))
except ConfigError as _ex:
    print(f"{config_path()}: {_ex}", file=sys.stderr)
    raise SystemExit(2) from None
except ValueError as _ex:
    print(_ex, file=sys.stderr)
    raise SystemExit(2) from None

application = tracker.wsgi
