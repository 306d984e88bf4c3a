"""The bare Falcon reference: any path answers the tracker's pixel, nothing else is done.

Served by gunicorn with the tracker's own worker class
(``tracker.workers.MeinheldWorker``), so the gap between this and the tracker
is the cost of the tracker's own work, not of the framework or the server.
"""

from __future__ import annotations

import falcon

from tracker.http import responses


class Pixel:
    """Answer every request with the transparent GIF and the tracker's no-cache headers."""

    def __call__(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        """Respond as the tracker's ``pixel`` response does."""
        responses.pixel(resp)


app = falcon.App()
app.add_sink(Pixel(), "/")
