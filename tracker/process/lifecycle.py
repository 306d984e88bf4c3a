"""Process-wide lifecycle state shared by the worker class and the app.

One tracker app runs per process, so a module-level flag is the simplest
honest channel from the worker's SIGTERM handler to ``/readyz``.
"""

from __future__ import annotations

import threading

#: Set when the worker received SIGTERM: ``/readyz`` answers 503 while the
#: worker keeps serving for the drain period, then stops accepting.
DRAINING = threading.Event()
