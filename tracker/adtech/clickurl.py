"""Click URLs: macros in landing URLs, and the signed click URLs ``tracker sign-url`` prints.

A landing URL template may hold ``{name}`` macros that the click fills from its
event (``{click_id}``, ``{campaign_id}``...). The signature
(:mod:`tracker.adtech.signing`) covers the template, macros unfilled, so the
filled URL is checked again on every click.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from tracker.adtech.landing import check_landing_url, split_url
from tracker.adtech.signing import SIGNATURE_PARAMS, UrlSigner

_MACRO = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def fill_macros(template: str, values: Mapping[str, str | int | None]) -> str:
    """Replace each ``{name}`` macro in ``template`` with its URL-encoded value.

    Values are percent-encoded as UTF-8 with no character kept safe, so a value
    cannot add a path, query or fragment. It can still spell part of a host
    (letters, digits, ``.`` and ``-`` pass through): check the filled URL. An
    unknown macro or a None value becomes empty; text that is not a macro
    (``{``, ``{Not-A-Macro}``) is kept.
    """

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return "" if value is None else quote(str(value), safe="")

    return _MACRO.sub(replace, template)


def has_macro(template: str) -> bool:
    """Return whether ``template`` holds a ``{name}`` macro: one :func:`fill_macros` fills."""
    return _MACRO.search(template) is not None


def macro_in_host(template: str) -> bool:
    """Return whether a macro stands in the authority (host, port) of a landing URL template.

    The signature covers the template, not the filled URL, so whoever fills
    such a macro chooses the host: the click must then pass the allow-list
    even when signed.
    """
    authority = template.partition("://")[2]
    for end in "/?#":
        authority = authority.partition(end)[0]
    return _MACRO.search(authority) is not None


def build_click_url(
    base: str,
    landing: str,
    params: Mapping[str, str],
    signer: UrlSigner,
    ttl: int | None,
    now: float,
    scope: str = "url",
) -> str:
    """Build a signed click URL for ad servers, as ``tracker sign-url`` prints it.

    Args:
        base: The click path's absolute URL, without query or fragment.
        landing: The landing URL, macros unfilled.
        params: The click's other query parameters (campaign id...), in order.
        signer: Signs with its default key.
        ttl: Seconds from ``now`` during which the signature is accepted;
            None for no expiry.
        now: The current unix time.
        scope: ``url`` signs the landing URL; ``query`` signs every parameter
            (``signature_scope`` of the click path).

    Returns:
        ``base?params&url=...&exp=...&kid=...&sig=...``, every value
        percent-encoded (a space as ``%20``, never ``+``).

    Raises:
        UnsafeUrl: ``base`` or ``landing`` fails
            :func:`~tracker.adtech.landing.check_landing_url`, for instance
            because a macro stands in the landing URL's host.
        ValueError: ``base`` has a query or fragment, a parameter takes the
            name of a signature parameter, or ``ttl`` is not positive.
    """
    split_url(base, "click URL base")
    if "?" in base or "#" in base:
        raise ValueError("The click URL base must not have a query or fragment.")
    check_landing_url(landing)
    reserved = SIGNATURE_PARAMS.intersection(params)
    if reserved:
        raise ValueError(f"Parameters reserved for the signature: {', '.join(sorted(reserved))}.")
    expires = None
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise ValueError("The ttl must be a positive whole number of seconds.")
        expires = int(now) + ttl
    if scope == "query":
        query = signer.sign_query({**params, "url": landing}, expires)
    else:
        query = {**params, **signer.sign(landing, expires)}
    return f"{base}?{urlencode(list(query.items()), quote_via=quote)}"
