"""What a path's personal fields let out: to the rejected stream, and into events without consent.

A field's ``personal`` attribute in the config (``url``, ``identifier``,
``consent``; docs/config.md) says what personal data its value is. Two users of
it, both compiled per path at start-up:

- :class:`FieldCopy` builds the field part of a refusal's request copy for the
  rejected-requests stream: only the fields the path declares, a URL without
  its query, fragment or user part (a URL field's value that is not an absolute
  URL by name only), identifiers, consent strings and cookies by name only, and
  the parameters no field reads by name only.
- :class:`ConsentGuard` decides once per request whether it may store an
  identifier (:func:`tracker.adtech.consent.may_store_identifier`, cached) and,
  when it may not, takes the identifiers out of the event and the queries out
  of its URLs (but for ``server.user_cookie.keep_query_params``).

Nothing here knows HTTP.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tracker.adtech.consent import may_store_identifier
from tracker.config.model import PathConfig, UserCookieConfig
from tracker.event import Event
from tracker.intake.fields.schema import Lookup

#: At most this many values or names of each kind are copied into a refusal's copy.
MAX_COPIED = 32
#: Distinct consent signals whose decision is remembered per path.
CONSENT_CACHE_SIZE = 1024
#: How an undeclared parameter whose name is not a plain name (it may be data: an
#: address pasted as a key) is listed.
NOT_A_NAME = "?"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:\[\]-]{1,64}")
#: A URL field's value is copied (without query) only when it is an absolute URL.
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def url_without_query(url: str, keep: Callable[[str], bool] | None = None) -> str:
    """Return ``url`` without its fragment, its user part and its query.

    With ``keep``, the query parameters whose raw name it accepts stay, in order.
    """
    base, sep, query = url.partition("#")[0].partition("?")
    scheme, slashes, rest = base.partition("://")
    if slashes:
        authority, slash, path = rest.partition("/")
        if "@" in authority:
            base = f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
    if not sep or keep is None:
        return base
    kept = "&".join(pair for pair in query.split("&") if keep(pair.partition("=")[0]))
    return f"{base}?{kept}" if kept else base


def param_filter(patterns: Iterable[str]) -> Callable[[str], bool] | None:
    """Compile names and ``prefix*`` patterns into a predicate; None for no pattern."""
    patterns = tuple(patterns)
    if not patterns:
        return None
    exact = frozenset(p for p in patterns if not p.endswith("*"))
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
    return lambda name: name in exact or name.startswith(prefixes)


def copy_value(value: Any, limit: int) -> Any:
    """Copy one value: a string cut to ``limit``, a number kept, a list's first items copied.

    Anything else (an object) becomes its JSON type name.
    """
    if isinstance(value, str):
        return value[:limit]
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        return [copy_value(v, limit) for v in value[:MAX_COPIED] if not isinstance(v, list)]
    return "object"


class FieldCopy:
    """The fields of one path (or of none: a refusal before routing) as the stream may see them.

    Only the query, the body and the route parameters are read; a value that
    would come from a cookie is listed by name only, as an identifier is.
    """

    def __init__(self, path: PathConfig | None) -> None:
        fields = path.fields if path is not None else ()
        self.fields = tuple((f.name, f.sources, f.key, f.personal) for f in fields)
        self.query_keys = frozenset(f.key for f in fields if "query" in f.sources)
        self.body_keys = frozenset(f.key for f in fields if "body" in f.sources)

    def __call__(
        self, lookup: Lookup, query: Mapping[str, Any], body: Any, limit: int
    ) -> dict[str, Any]:
        """Return ``fields``, ``withheld`` and ``undeclared`` of a request's copy.

        Args:
            lookup: The request's values by source and key.
            query: The query parameters, for the names no field reads.
            body: The parsed body, if it was read (a dict's keys are named too).
            limit: Length strings and names are cut to.
        """
        copied: dict[str, Any] = {}
        withheld: list[str] = []
        for name, sources, key, personal in self.fields:
            for source in sources:
                value = lookup(source, key)
                if value is not None:
                    break
            else:
                continue
            if personal == "url" and isinstance(value, str) and _ABSOLUTE.match(value):
                copied[name] = url_without_query(value)[:limit]
            elif personal is not None or source == "cookie":
                withheld.append(name)
            else:
                copied[name] = copy_value(value, limit)
        names = [k for k in query if k not in self.query_keys]
        if isinstance(body, dict):
            names.extend(k for k in body if k not in self.body_keys)
        undeclared = [
            str(k)[:limit] if _PLAIN_NAME.fullmatch(str(k)) else NOT_A_NAME
            for k in names[:MAX_COPIED]
        ]
        return {"fields": copied, "withheld": withheld, "undeclared": undeclared}


class ConsentGuard:
    """Whether a request to one path may store an identifier, and the event when it may not.

    One decision covers the user id and its cookie, the ``personal: identifier``
    fields and the queries of ``personal: url`` fields and of the referer.
    """

    def __init__(self, path: PathConfig, consent: UserCookieConfig) -> None:
        kinds = {f.name: f.personal for f in path.fields}

        def dimensions(kind: str) -> tuple[str, ...]:
            return tuple(d for d, ref in path.dimensions if kinds.get(ref) == kind)

        self.identifiers = dimensions("identifier")
        self.urls = dimensions("url")
        self.keep = param_filter(consent.keep_query_params)
        require, vendor = consent.require_consent_signal, consent.vendor_id

        # Consent strings repeat across requests; decoding a TC string costs ~6 us.
        @functools.lru_cache(maxsize=CONSENT_CACHE_SIZE)
        def decide(gdpr, tc, us_privacy, gpp, gpp_sid, gpc) -> bool:
            return may_store_identifier(
                gdpr, tc, us_privacy, gpp, gpp_sid, require, vendor, gpc
            ).allowed

        self.decide = decide

    @classmethod
    def for_path(cls, path: PathConfig, consent: UserCookieConfig) -> ConsentGuard | None:
        """Return the path's guard, or None when it stores no identifier and no URL field."""
        personal = {f.personal for f in path.fields}
        if path.user_id or "identifier" in personal or "url" in personal:
            return cls(path, consent)
        return None

    def allows(self, values: Mapping[str, Any], gpc: bool) -> bool:
        """Return whether the request's signals (``gpc``: ``Sec-GPC: 1``) allow an identifier."""
        return self.decide(
            values.get("gdpr"),
            values.get("gdpr_consent"),
            values.get("us_privacy"),
            values.get("gpp"),
            values.get("gpp_sid"),
            gpc,
        )

    def scrub(self, event: Event) -> None:
        """Take the identifiers out of ``event``, and the queries out of its URLs."""
        dimensions = event.dimensions
        for name in self.identifiers:
            dimensions.pop(name, None)
        for name in self.urls:
            value = dimensions.get(name)
            if isinstance(value, str):
                dimensions[name] = url_without_query(value, self.keep)
        referer = event.context.get("referer")
        if referer:
            event.context["referer"] = url_without_query(referer, self.keep)
