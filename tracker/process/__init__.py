"""Process plumbing: the CLI, building the WSGI app, gunicorn workers, lifecycle, logs, replay."""
