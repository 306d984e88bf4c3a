"""The OpenAPI 3.1 document of the configured tracking paths, and ``/openapi.json``.

It is built with apispec's marshmallow plugin from the same request schemas that
validate requests (:func:`tracker.intake.fields.schema.build_schema`), so every parameter's
type, pattern, bounds, choices and required flag are those the tracker enforces.
Each operation lists what it can answer: its success (pixel, redirect, 204 or
JSON), the refusals with their reasons (400, 413, 414, 415, 431) and, on a
``durable`` path, 503. ``docs/openapi.yaml`` is this document for the shipped
config; ``/openapi.json`` serves it for the running one, built at start-up.
"""

from __future__ import annotations

import functools
import json
import math
import re
from importlib.metadata import version
from typing import Any

import falcon
import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from tracker.adtech import openrtb
from tracker.adtech.pricecrypto import TOKEN_SIZE
from tracker.config import Config, FieldConfig, PathConfig, RedirectConfig
from tracker.intake.fields.checks import Checks
from tracker.intake.fields.schema import AuctionPrice, Micros, build_schema

ERROR = {"$ref": "#/components/schemas/Error"}
NO_CACHE = {"Cache-Control": {"$ref": "#/components/headers/Cache-Control"}}
SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "A refusal: its HTTP title, a reason a caller can act on, field errors.",
        "required": ["title"],
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "reason": {"type": "string", "examples": ["invalid_fields", "body_too_large"]},
            "errors": {"type": "object", "description": "Messages per field name."},
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["status", "id"],
        "properties": {
            "status": {"const": "accepted"},
            "id": {"type": ["string", "null"], "description": "null if a preprocessor dropped it"},
        },
    },
}
HEADERS = {
    "Cache-Control": {
        "description": "Every tracking answer defeats caches.",
        "schema": {"const": "no-cache, no-store, must-revalidate, private"},
    },
    "X-Tracker-Error": {
        "description": "Why a request was refused, on answers that cannot carry a body.",
        "schema": {"type": "string"},
    },
}
#: Refusals every tracking path can give, before or after routing.
REFUSALS = {
    "400": "Invalid fields, a malformed URL or body, an unsubstituted macro.",
    "413": "The body is over the limit (`body_too_large`), or a batch has too many items.",
    "414": "Path and query over `server.max_url_length` (`uri_too_long`).",
    "431": "Headers over `server.max_header_bytes` (`headers_too_large`).",
}

#: What the HTTP server (meinheld) refuses itself, answered in plain text.
MEINHELD_REFUSALS = {
    "400": "A request that is not valid HTTP gets the HTTP server's own plain-text 400.",
    "413": "A body over the HTTP server's own limit gets its plain-text 413.",
    "414": "A request target over 8 KB gets the HTTP server's own plain-text 414.",
    "431": "A header field over 8 KB (or over 128 fields, 80 KB in all) gets the HTTP "
    "server's own plain-text 431.",
}


def _decimal(minimum: float | None, maximum: float | None) -> str:
    """A regex of decimal texts with at most 6 places, inside [minimum, maximum].

    JSON Schema cannot bound the value a numeric text spells, so the regex
    bounds its integer digits instead: with ``maximum`` 1000000 it allows up to
    999999.999999. The document is so narrower than the tracker at the edge of a
    range, never wider; the description states the exact bounds. Bounds that
    digits cannot follow (a positive minimum, a maximum under 1) leave only the
    shape.
    """
    fraction = r"(?:\.[0-9]{1,6})?"

    def integer(bound: float | None) -> str:
        # Integer parts of fewer digits than |bound| has stay below 10**k <= |bound|.
        if bound is None:
            return "[0-9]+"
        k = len(str(int(abs(bound)))) - 1
        return f"[0-9]{{1,{k}}}" if k else "0"

    if (minimum is not None and minimum > 0) or (maximum is not None and maximum < 1):
        return f"-?[0-9]+{fraction}"
    positive = integer(maximum) + fraction
    if minimum is not None and minimum > -1:
        return positive
    return f"(?:{positive}|-{integer(minimum)}{fraction})"


def _decimal_pattern(minimum: float | None, maximum: float | None) -> str:
    """:func:`_decimal`, as a whole-value pattern."""
    return f"^{_decimal(minimum, maximum)}$"


#: What ``parse_price`` reads: AUDIT in any case, or a clear decimal CPM under its cap.
_AUDIT = "[Aa][Uu][Dd][Ii][Tt]"
_CLEAR_CPM = _decimal(0, openrtb.MAX_CPM_MICROS / 1_000_000)
#: An encrypted price: the unpadded web-safe base64 of a token.
_ENCRYPTED = f"[A-Za-z0-9_-]{{{math.ceil(TOKEN_SIZE * 4 / 3)}}}"


def _wire_format(spec: FieldConfig) -> dict[str, Any]:
    """What a field's text must look like, for types the tracker reads from text.

    An empty value of such a field counts as absent, so a required one must not
    be empty; the patterns below never match the empty text.
    """
    if spec.type == "micros":
        bounds = ", ".join(
            f"{name} {value}"
            for name, value in (("at least", spec.min), ("at most", spec.max))
            if value is not None
        )
        return {
            "pattern": _decimal_pattern(spec.min, spec.max),
            "description": f"`{spec.name}` (micros): a decimal amount, at most 6 places"
            + (f", {bounds}" if bounds else "")
            + "; stored as integer micro-units. A JSON body may send a number.",
        }
    if spec.type == "auction_price":
        crypto = spec.price_crypto is not None
        forms = [_AUDIT]
        if not (spec.require_encrypted and crypto):
            forms.append(_CLEAR_CPM)
        if crypto:
            forms.append(_ENCRYPTED)
        return {
            "pattern": "^(?:" + "|".join(forms) + ")$",
            "description": f"`{spec.name}` (auction_price): the clearing price CPM "
            "(`${AUCTION_PRICE}`): `AUDIT`"
            + ("" if spec.require_encrypted and crypto else ", a decimal like `1.25`")
            + (", or the exchange's encrypted price" if crypto else "")
            + ".",
        }
    if spec.type == "loss_reason":
        return {"minimum": 0}
    return {}


def _landing_format(redirect: RedirectConfig) -> dict[str, Any]:
    """The landing URL of a redirect: not empty, and on the allow-list when nothing else is.

    With signing keys a signed URL may go to any host, and with a fallback URL a
    refused click is redirected too: the pattern is only stated when neither
    applies, so the document never refuses what the tracker accepts.
    """
    extra: dict[str, Any] = {"minLength": 1}
    if redirect.signing_keys or redirect.fallback_url or not redirect.allowed_hosts:
        return extra
    label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    hosts = []
    for pattern in redirect.allowed_hosts:
        if pattern.startswith("*."):
            hosts.append(f"(?:{label}\\.)+" + re.escape(pattern[2:]))
        else:
            hosts.append(re.escape(pattern))
    # No whitespace, control characters, backslash or "$" (no unfilled macro).
    rest = r"(?:[/?#][!#%-\[\]-~]*)?"
    extra["pattern"] = f"^https?://(?:{'|'.join(hosts)})(?::[1-9][0-9]{{0,3}})?{rest}$"
    return extra


def _plain_validators(validators: list) -> list:
    plain = []
    for validator in validators:
        plain.extend(
            validator.validators.validators if isinstance(validator, Checks) else [validator]
        )
    return plain


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def _refusals() -> dict[str, Any]:
    answers = {code: _error(text) for code, text in REFUSALS.items()}
    # meinheld refuses some requests before the app sees them, with a one-line text
    # (scripts/meinheld/lingering-close.patch).
    for code, text in MEINHELD_REFUSALS.items():
        answers[code]["description"] += " " + text
        answers[code]["content"]["text/plain"] = {"schema": {"type": "string"}}
    return answers


class OpenApi:
    """Build the document of a config's paths."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.plugin = MarshmallowPlugin()
        self.spec = APISpec(
            title="tracker",
            version=version("tracker"),
            openapi_version="3.1.0",
            plugins=[self.plugin],
            info={
                "description": "Tracking paths of this tracker's config (docs/config.md); "
                "generated from the request schemas that validate them."
            },
        )
        # Both read text (a decimal amount, a price or AUDIT), not JSON numbers.
        self.plugin.map_to_openapi_type(Micros, "string", None)
        self.plugin.map_to_openapi_type(AuctionPrice, "string", None)
        for name, schema in SCHEMAS.items():
            self.spec.components.schema(name, schema)
        for name, header in HEADERS.items():
            self.spec.components.header(name, header)

    def build(self) -> dict[str, Any]:
        """Return the whole document as a dict."""
        for path in self.config.paths.values():
            if path.batch is None:
                properties = self.properties(path)
                operations = {m.lower(): self.operation(path, m, properties) for m in path.methods}
            else:
                operations = {"post": self.batch_operation(path)}
            self.spec.path(path=path.route, operations=operations)
        self.spec.path(path="/healthz", operations={"get": _health("The process serves.")})
        self.spec.path(
            path="/readyz",
            operations={"get": _health("Every collector can take events.", unready=True)},
        )
        document = self.spec.to_dict()
        order = ("openapi", "info", "paths", "components")
        return {key: document[key] for key in order if key in document}

    def properties(self, path: PathConfig) -> dict[str, tuple[Any, dict[str, Any]]]:
        """Each field's wire name: its config and its JSON Schema."""
        schema = build_schema(path)
        converter = self.plugin.converter
        found = {}
        for spec in path.fields:
            field = schema.fields[spec.name]
            # The request path folds a field's validators into one Checks; the
            # document reads the marshmallow validators it holds (this schema is
            # built for the document alone, so changing it is safe).
            field.validators = _plain_validators(field.validators)
            prop = converter.field2property(field)
            prop.pop("default", None) if spec.required else None
            prop["description"] = f"`{spec.name}` ({spec.type})"
            prop.update(_wire_format(spec))
            if spec.required and spec.type == "string" and not prop.get("minLength"):
                # An empty value of a required field counts as absent (fields.gather).
                prop["minLength"] = 1
            found[spec.key] = (spec, prop)
        redirect = path.response.redirect
        if redirect is not None:
            # The config's checks make url_field one of the path's string fields.
            _, prop = next(v for v in found.values() if v[0].name == redirect.url_field)
            prop.update(_landing_format(redirect))
        return found

    def operation(
        self, path: PathConfig, method: str, properties: dict[str, tuple[Any, dict[str, Any]]]
    ) -> dict[str, Any]:
        """One method of a tracking path, given its :meth:`properties`."""
        parameters = []
        body: dict[str, Any] = {}
        body_required = []
        for key, (spec, prop) in properties.items():
            usable = [s for s in spec.sources if s != "body" or method == "POST"]
            for source in usable:
                if source == "body":
                    body[key] = prop
                    # A required field that a POST may send in the query or the body
                    # is documented as required in the body: a document cannot say
                    # "in one of the two", and the body is where a POST puts it.
                    if spec.required:
                        body_required.append(key)
                    continue
                parameters.append(
                    {
                        "name": key,
                        "in": source,
                        "required": source == "path" or (spec.required and len(usable) == 1),
                        "schema": prop,
                    }
                )
        operation: dict[str, Any] = {
            "operationId": f"{path.name}_{method.lower()}",
            "summary": f"Track an event of type `{path.event_type}`",
            "parameters": parameters,
            "responses": self.responses(path, method),
        }
        if body:
            schema = {"type": "object", "properties": body}
            if body_required:
                schema["required"] = body_required
            operation["requestBody"] = {
                "required": bool(body_required),
                "content": {
                    "application/json": {"schema": schema},
                    "application/x-www-form-urlencoded": {"schema": schema},
                },
            }
        return operation

    def responses(self, path: PathConfig, method: str) -> dict[str, Any]:
        """What a tracking path answers: its success, then its refusals."""
        response = path.response
        answers = _refusals()
        if method == "POST":
            answers["415"] = _error("A body that is neither JSON nor a form.")
        if response.type == "pixel":
            pixel = {
                "description": "The 1x1 transparent GIF.",
                "headers": dict(NO_CACHE),
                "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
            }
            if response.always:
                pixel["description"] += " Also for a refused request, with its reason."
                pixel["headers"]["X-Tracker-Error"] = {
                    "$ref": "#/components/headers/X-Tracker-Error"
                }
            answers["200"] = pixel
        elif response.type == "no_content":
            answers["204"] = {"description": "Accepted.", "headers": dict(NO_CACHE)}
        elif response.type == "json":
            answers["200"] = {
                "description": "Accepted.",
                "headers": dict(NO_CACHE),
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}
                },
            }
        else:
            # Falcon labels the empty body of a redirect with its default media type.
            answers["302"] = {
                "description": "To the landing URL; to the fallback URL if it is refused. "
                "The body is empty.",
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {}},
            }
        for name in path.collectors:  # what a collector's admit() may answer first
            for status, text in self.config.collectors[name].cls.refusals.items():
                if status in answers:
                    answers[status]["description"] += " " + text
                else:
                    answers[status] = _error(text)
        if path.delivery.mode == "durable":
            answers["503"] = {
                "description": "Not stored durably in time: send it again after `Retry-After`.",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                "content": {"application/json": {"schema": ERROR}},
            }
        return dict(sorted(answers.items()))

    def batch_operation(self, path: PathConfig) -> dict[str, Any]:
        """A batch path: a JSON array of items for other paths, answered per item."""
        names = sorted(path.batch.paths)
        item = {
            "type": "object",
            "required": ["event"],
            "properties": {"event": {"enum": names, "description": "The path of this item."}},
            "additionalProperties": True,
            "description": "The item's fields by their names on its path.",
        }
        result = {
            "type": "object",
            "required": ["index", "status"],
            "properties": {
                "index": {"type": "integer"},
                "status": {"enum": ["accepted", "rejected"]},
                "id": {"type": ["string", "null"]},
                "reason": {"type": "string"},
                "description": {"type": "string"},
                "errors": {"type": "object"},
            },
        }
        answers = _refusals()
        answers["415"] = _error("A body that is not JSON.")
        answers["200"] = {
            "description": "One result per item, in order.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["results"],
                        "properties": {"results": {"type": "array", "items": result}},
                    }
                }
            },
        }
        return {
            "operationId": f"{path.name}_post",
            "summary": f"Track up to {path.batch.max_items} events of {', '.join(names)}",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "array",
                            "items": item,
                            "maxItems": path.batch.max_items,
                        }
                    }
                },
            },
            "responses": dict(sorted(answers.items())),
        }


def _health(summary: str, unready: bool = False) -> dict[str, Any]:
    answers = {
        "200": {
            "description": summary,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
    if unready:
        answers["503"] = {
            "description": "Draining, or a collector cannot take events.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return {"summary": summary, "responses": answers}


def openapi_yaml(config: Config) -> str:
    """Return the document of ``config`` as YAML (``docs/openapi.yaml``)."""
    header = "# Generated by `tracker docs` (`make docs`) from config/tracker.yaml: do not edit.\n"
    text = yaml.dump(
        OpenApi(config).build(), Dumper=_NoAliases, sort_keys=False, allow_unicode=True
    )
    return header + text


class _NoAliases(yaml.SafeDumper):
    """Write shared parts out in full: a reader of the file should not chase anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class OpenApiResource:
    """``/openapi.json``: the document of the running config.

    It is built on the first request, once per worker (a few hundred milliseconds
    for the shipped config), then served from memory: an app built for a test or a
    tool does not pay for a document nobody asks for.
    """

    def __init__(self, config: Config) -> None:
        self.config = config

    @functools.cached_property
    def body(self) -> bytes:
        """The document as JSON."""
        return json.dumps(OpenApi(self.config).build()).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the document."""
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.body
