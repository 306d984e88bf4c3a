"""Logging set-up: JSON lines on stderr, for gunicorn and the tracker alike."""

from __future__ import annotations

from typing import Any

JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"


def logconfig_dict(level: str = "INFO") -> dict[str, Any]:
    """Return a ``logging.config.dictConfig`` that writes JSON to stderr.

    gunicorn's ``logconfig_dict`` setting takes it, so the master, the workers
    and the tracker's own loggers share one format.
    """
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": JSON_FORMAT,
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        },
    }
