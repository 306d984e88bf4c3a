"""The app factory: the one place where config, plugins and HTTP are wired.

Read top to bottom, this is the request path: a Falcon route per configured
tracking path -> :class:`~tracker.resources.TrackingResource` (extract and
validate fields, build the event) -> :class:`~tracker.pipeline.Pipeline`
(preprocessors, then collectors) -> the configured response.
"""

from __future__ import annotations

import falcon

from tracker.clientip import ClientIp
from tracker.errors import handle_unexpected
from tracker.extract import ContextReader
from tracker.fields import build_schema
from tracker.middleware import RequestLimits
from tracker.model import Config
from tracker.pipeline import Pipeline
from tracker.resources import (
    BatchResource,
    HealthResource,
    MetricsResource,
    ReadyResource,
    TrackingResource,
)

RESERVED_ROUTES = ("/healthz", "/readyz", "/metrics")


class Tracker:
    """A configured tracker: the WSGI app plus the plugins it feeds.

    Attributes:
        wsgi: The :class:`falcon.App` to serve.
        pipeline: The plugin instances; :meth:`open` after the fork.
    """

    def __init__(self, config: Config, pipeline: Pipeline | None = None) -> None:
        """Build every route; plugins are created but not opened.

        Args:
            config: A validated config.
            pipeline: Plugins to use instead of those the config names (tests
                inject in-memory collectors this way).
        """
        self.config = config
        self.pipeline = pipeline or Pipeline.from_config(config)
        self.wsgi = falcon.App(middleware=[RequestLimits(config.server)])
        self.wsgi.req_options.auto_parse_qs_csv = False
        self.wsgi.req_options.strip_url_path_trailing_slash = True
        self.wsgi.add_error_handler(Exception, handle_unexpected)
        client_ip = ClientIp(config.server.trusted_proxies)
        resources: dict[str, TrackingResource] = {}
        for path in config.paths.values():
            if path.batch is not None:
                continue
            resources[path.name] = TrackingResource(
                path=path,
                schema=build_schema(path),
                route=self.pipeline.route(path.preprocessors, path.collectors, path.delivery),
                pipeline=self.pipeline,
                context=ContextReader(client_ip, path.device_headers),
                user_cookie=config.server.user_cookie,
            )
            self.wsgi.add_route(path.route, resources[path.name])
        for path in config.paths.values():
            if path.batch is not None:
                targets = {name: resources[name] for name in path.batch.paths}
                context = ContextReader(client_ip, path.device_headers)
                self.wsgi.add_route(path.route, BatchResource(path, targets, context))
        self.wsgi.add_route("/healthz", HealthResource())
        self.wsgi.add_route("/readyz", ReadyResource(self.pipeline))
        self.wsgi.add_route("/metrics", MetricsResource())

    def open(self) -> None:
        """Open the plugins: once per worker, after the fork."""
        self.pipeline.open()

    def max_body_bytes(self) -> int:
        """Return the largest body any path accepts (for the HTTP server's own limit)."""
        return max(
            [
                self.config.server.max_body_bytes,
                *(p.max_body_bytes for p in self.config.paths.values()),
            ]
        )

    def close(self, timeout: float) -> int:
        """Flush and close the plugins; returns the number of undelivered events."""
        return self.pipeline.close(timeout)
