"""Safe click redirects: a signed landing URL, or a host on the allow-list.

The order matters. The signature covers the landing URL as the ad server
wrote it, macros unfilled; then the macros are filled (URL-encoded); then the
filled URL is checked for shape, and its host against the allow-list. A
macro value can never add a path, query or user part, but it could spell a
host, so the allow-list always sees the filled URL, and a template with a
macro in its host passes only the allow-list, signed or not.
"""

from __future__ import annotations

import time
from typing import Any

from tracker.adtech import clickurl, landing, signing
from tracker.config import RedirectConfig
from tracker.event import Event
from tracker.intake.refusals import Rejected


class Redirector:
    """Decide where a click may go."""

    def __init__(self, config: RedirectConfig) -> None:
        self.url_field = config.url_field
        self.signer = signing.UrlSigner(config.signing_keys) if config.signing_keys else None
        self.allowed = landing.compile_allow_list(config.allowed_hosts)
        self.whole_query = config.signature_scope == "query"

    def early(self, values: dict[str, Any], query: dict[str, Any]) -> str | None:
        """Decide a click whose landing URL has no macro, before its event is built.

        Returns its ``Location``, or ``None`` when macros need the event
        (then call :meth:`location`). Raises :class:`Rejected` as
        :meth:`location` would: a flood of clicks to unlisted hosts is refused
        without building an event each (about 20 µs of a refusal's 70).
        """
        template = _template(values, self.url_field)
        if clickurl.has_macro(template):
            return None
        return self._decide(template, template, query)

    def location(self, values: dict[str, Any], query: dict[str, Any], event: Event) -> str:
        """Return the ``Location`` for this click, or raise :class:`Rejected`.

        Args:
            values: The validated field values (the landing URL among them).
            query: The request's query parameters (``sig``, ``kid``, ``exp``).
            event: The click event; its id fills ``{click_id}``.
        """
        template = _template(values, self.url_field)
        filled = clickurl.fill_macros(
            template, {**event.dimensions, "click_id": event.id, "event_id": event.id}
        )
        return self._decide(template, filled, query)

    def _decide(self, template: str, filled: str, query: dict[str, Any]) -> str:
        """Check the signature of ``template`` and the shape and host of ``filled``."""
        problem = self._verify(template, query)
        try:
            host = landing.check_landing_url(filled)
        except landing.UnsafeUrl as ex:
            raise _refused(ex.reason, str(ex)) from None
        if problem is None and clickurl.macro_in_host(template):
            problem = ("unlisted_host", _MACRO_HOST)
        if problem is not None and not self.allowed(host):
            # Built here, never kept in a local: a refusal held by the frame its
            # traceback holds is a reference cycle, garbage only the cyclic GC
            # frees (a flood of clicks to unlisted hosts made 19 such objects a
            # request and a collection every 36 requests).
            raise _refused(*problem)
        return landing.to_location(filled)

    def _verify(self, landing: str, query: dict[str, Any]) -> tuple[str, str] | None:
        """Return None for a valid signature, else the refusal's reason and description.

        The refusal is raised only if the host is not listed either.
        """
        sig = _one(query.get("sig"))
        if self.signer is None or sig is None:
            return "unlisted_host", _UNSIGNED
        try:
            if self.whole_query:
                self.signer.verify_query(query, time.time())
            else:
                self.signer.verify(
                    landing, sig, _one(query.get("kid")), _one(query.get("exp")), time.time()
                )
        except signing.SignatureError as ex:
            return ex.reason, str(ex)
        return None


def _template(values: dict[str, Any], field: str) -> str:
    template = values.get(field)
    if not template:
        raise _refused("missing_landing_url", "The click carries no landing URL.")
    return template


def _one(value: Any) -> str | None:
    return value[0] if isinstance(value, list) else value


_UNSIGNED = "The landing URL is not signed and its host is not allowed."
_MACRO_HOST = "The landing URL's host comes from a macro and is not allowed."


def _refused(reason: str, description: str) -> Rejected:
    return Rejected(400, reason, description)
