"""The app factory: the one place where config, plugins and HTTP are wired.

Read top to bottom, this is the request path: :class:`RequestLimits` refuses
what breaks a server limit -> a Falcon route per configured tracking path ->
:class:`~tracker.http.resources.TrackingResource` (read the request) ->
:class:`~tracker.intake.intake.Intake` (validate the fields, build the event, hand it
to the :class:`~tracker.intake.pipeline.Pipeline`: preprocessors, then collectors) ->
the configured response. A :class:`~tracker.intake.refusals.Rejected` raised anywhere on
the way is answered and counted by :class:`~tracker.http.errors.RejectionHandler`.
"""

from __future__ import annotations

import falcon

import tracker.metrics as metrics
from tracker.config import Config
from tracker.http.admin import AdminRoute
from tracker.http.batch import BatchResource
from tracker.http.clientip import ClientIp
from tracker.http.cors import Cors
from tracker.http.errors import ROUTING_ERRORS, RejectionHandler, handle_unexpected
from tracker.http.extract import ContextReader, device_header_callers
from tracker.http.health import HealthResource, MetricsResource, ReadyResource
from tracker.http.limits import ClientLimiter, RequestLimits, limited
from tracker.http.openapi.document import OpenApiResource
from tracker.http.resources import TrackingResource
from tracker.http.tag import add_tag_routes
from tracker.intake.intake import Intake
from tracker.intake.pipeline import ACCEPTED, DROPPED, UNSAFE, Pipeline
from tracker.intake.refusals import Rejected, RejectedStream


class Tracker:
    """A configured tracker: the WSGI app plus the plugins it feeds.

    Attributes:
        wsgi: The :class:`falcon.App` to serve.
        pipeline: The plugin instances; :meth:`open` after the fork.
    """

    def __init__(
        self, config: Config, pipeline: Pipeline | None = None, admin_port: int | None = None
    ) -> None:
        """Build every route; plugins are created but not opened.

        Args:
            config: A validated config.
            pipeline: Plugins to use instead of those the config names (tests
                inject in-memory collectors this way).
            admin_port: The port that alone serves the admin routes (``/metrics``);
                ``None`` serves them on every port, 0 on none (see :mod:`tracker.http.admin`).
        """
        self.config = config
        self.pipeline = pipeline or Pipeline.from_config(config)
        middleware: list = [RequestLimits(config.server)]
        if config.browser.cors.paths:
            middleware.append(Cors(config.browser.cors, config.paths.values()))
        self.wsgi = falcon.App(middleware=middleware)
        self.wsgi.req_options.auto_parse_qs_csv = False
        self.wsgi.req_options.strip_url_path_trailing_slash = True
        self.wsgi.add_error_handler(Exception, handle_unexpected)
        stream = RejectedStream(config.rejected, self.pipeline) if config.rejected else None
        if stream is not None:
            for collector in self.pipeline.collectors.values():
                collector.late_refusal = stream.offer_late  # type: ignore[method-assign]
        rejections = RejectionHandler(config.paths.values(), stream)
        self.wsgi.add_error_handler(Rejected, rejections)
        self.wsgi.add_error_handler(ROUTING_ERRORS, rejections.routing_refusal)
        client_ip = ClientIp(config.server.trusted_proxies)
        believed = device_header_callers(config.server.trusted_proxies, config.server.ad_inserters)
        intakes = {
            path.name: Intake(
                path,
                self.pipeline,
                config.server.field_errors == "first",
                config.server.user_cookie,
            )
            for path in config.paths.values()
            if path.batch is None
        }
        for path in config.paths.values():
            hints = any(
                getattr(config.preprocessors[n].cls, "reads_client_hints", False)
                for n in path.preprocessors
            )
            context = ContextReader(client_ip, path.device_headers, believed, hints)
            if path.batch is None:
                resource = TrackingResource(intakes[path.name], context, config.server.user_cookie)
            else:
                targets = {name: intakes[name] for name in path.batch.paths}
                resource = BatchResource(path, targets, context, stream)
            if path.rate_limit is not None:
                resource = limited(resource, ClientLimiter(path.rate_limit, client_ip))
            self.wsgi.add_route(path.route, resource)
        if config.browser.tag.route:
            add_tag_routes(self.wsgi, config.browser.tag.route, config.browser.tag.max_age)
        self.wsgi.add_route("/healthz", HealthResource())
        self.wsgi.add_route("/readyz", ReadyResource(self.pipeline))
        self.wsgi.add_route("/metrics", AdminRoute(MetricsResource(), admin_port))
        # The last route compiles the router now, in the master, and not on
        # each worker's first request (Falcon's default is lazy).
        self.wsgi.add_route("/openapi.json", OpenApiResource(config), compile=True)

    def open(self) -> None:
        """Open the plugins, then create the request path's counter series: once per worker.

        prometheus_client creates a labelled series on its first increment,
        and in multiprocess mode that writes a new entry into the worker's
        metric file (growing and re-mapping it now and then): work the first
        requests of each path would otherwise pay. Created here, each series
        reads 0 from the start.
        """
        self.pipeline.open()
        for path in self.config.paths.values():
            for outcome in (ACCEPTED, DROPPED, UNSAFE, "rejected"):
                metrics.inc(metrics.REQUESTS, path.name, outcome, amount=0)
            metrics.inc(metrics.EVENTS, path.event_type, amount=0)
            for name in path.preprocessors:
                metrics.inc(metrics.DROPPED, name, amount=0)
        for name in self.pipeline.collectors:
            metrics.inc(metrics.COLLECTED, name, amount=0)
            metrics.inc(metrics.DELIVERED, name, amount=0)
        for name, preprocessor in self.pipeline.preprocessors.items():
            for reason in preprocessor.failure_reasons:
                metrics.inc(metrics.ENRICH_FAILURES, name, reason, amount=0)

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
