"""The tracking resource: one per configured path, on top of the shared intake."""

from __future__ import annotations

import functools
import logging
import uuid
import wsgiref.util
from typing import Any

import falcon

from tracker.config import UserCookieConfig
from tracker.event import Event, new_id
from tracker.http import responses
from tracker.http.clicks import Redirector
from tracker.http.extract import GPC_HEADER, ContextReader, read_body, request_lookup
from tracker.intake.intake import Intake
from tracker.intake.pipeline import ACCEPTED, UNSAFE
from tracker.intake.refusals import Rejected

log = logging.getLogger(__name__)


class TrackingResource:
    """Turn requests to one configured path into events.

    Only the configured methods get a responder, so Falcon answers any other
    with 405 and an ``Allow`` header. A :class:`~tracker.intake.refusals.Rejected`
    raised here is answered by :class:`~tracker.http.errors.RejectionHandler`.
    """

    def __init__(
        self, intake: Intake, context: ContextReader, user_cookie: UserCookieConfig
    ) -> None:
        self.intake = intake
        self.path = path = intake.path
        self.context = context
        self.user_cookie = user_cookie
        self.cookie_attributes = cookie_attributes(user_cookie)
        self.guard = intake.guard
        redirect = path.response.redirect
        self.redirector = Redirector(redirect) if redirect else None
        self.respond = {
            "pixel": lambda resp, event_id: responses.pixel(resp),
            "no_content": lambda resp, event_id: responses.no_content(resp),
            "json": responses.accepted_json,
            "redirect": None,
        }[path.response.type]
        for method in path.methods:
            setattr(self, f"on_{method.lower()}", self.handle)

    def handle(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        """Validate, build the event, dispatch it and respond."""
        body: Any = {}
        if req.method == "POST":
            # Kept for a refusal's copy in the rejected stream (see RejectionHandler).
            body = req.context.body = read_body(req, self.path.max_body_bytes)
        if not isinstance(body, dict):
            raise Rejected(400, "invalid_json", "The body must be a JSON object.")
        values = self.intake.validate(request_lookup(req, params, body))
        location = self.redirector.early(values, req.params) if self.redirector else None
        event = self.intake.build(values, self.context(req))
        if location is None and self.redirector:
            location = self.redirector.location(values, req.params, event)
        if self.guard is not None:
            self.identify(req, resp, values, event)
        outcome = self.intake.dispatch(event)
        if outcome == UNSAFE:
            raise unavailable(self.path.name, event, self.path.delivery.retry_after)
        if location is not None:
            raise falcon.HTTPFound(location, headers=dict(responses.NO_CACHE))
        self.respond(resp, event.id if outcome == ACCEPTED else None)

    def identify(
        self, req: falcon.Request, resp: falcon.Response, values: dict[str, Any], event: Event
    ) -> None:
        """Store identifiers only if the request may: the user id and its cookie, or none.

        Without consent (:class:`~tracker.intake.privacy.ConsentGuard`), the
        event also loses its ``personal: identifier`` fields and its URL queries.
        """
        if not self.guard.allows(values, req.env.get(GPC_HEADER) == "1"):
            self.guard.scrub(event)
            return
        if not self.path.user_id:
            return
        name = self.user_cookie.name
        user_id = _valid_uuid(req.cookies.get(name)) or new_id()
        event.dimensions["user_id"] = user_id
        # A canonical UUID needs no quoting: the header is Falcon's own text
        # (see cookie_attributes) without building a cookie jar per request.
        resp.append_header("Set-Cookie", f"{name}={user_id}{self.cookie_attributes}")


@functools.cache
def cookie_attributes(cookie: UserCookieConfig) -> str:
    """Return what follows ``name=value`` in the user cookie's ``Set-Cookie`` header.

    Rendered once, at start-up, by Falcon's own :meth:`~falcon.Response.set_cookie`
    answering a request through a scratch app's public WSGI interface, so the
    header is exactly what Falcon would write. Every path of a config shares
    one cookie block, so it is rendered once per config.
    """

    def set_cookie(req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        resp.set_cookie(
            cookie.name,
            "v",
            max_age=cookie.max_age,
            domain=cookie.domain,
            path="/",
            secure=True,
            http_only=True,
            same_site="None",
        )

    scratch = falcon.App()
    scratch.add_sink(set_cookie)
    environ: dict[str, Any] = {}
    wsgiref.util.setup_testing_defaults(environ)
    headers: list[tuple[str, str]] = []
    scratch(environ, lambda status, answer, exc_info=None: headers.extend(answer))
    (header,) = [value for name, value in headers if name.lower() == "set-cookie"]
    return header.removeprefix(f"{cookie.name}=v")


def unavailable(path: str, event: Event, retry_after: int) -> falcon.HTTPServiceUnavailable:
    """Return the 503 of a durable path whose event could not be made safe."""
    # Never a pixel here: the caller (an exchange) must see the failure and retry.
    log.error("event %s on %s could not be made durable", event.id, path)
    return falcon.HTTPServiceUnavailable(
        title="Service Unavailable",
        description="The event could not be stored durably; retry later.",
        retry_after=retry_after,
    )


def _valid_uuid(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
