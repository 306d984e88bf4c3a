"""The WSGI entry point for gunicorn, kept at its documented name: ``tracker.wsgi:application``.

The app is built in :mod:`tracker.process.wsgi`; this module only re-exports it.
"""

from tracker.process.wsgi import application, tracker

__all__ = ["application", "tracker"]
