"""The OpenAPI document of a config's tracking paths, as YAML and as ``/openapi.json``.

:class:`OpenApi` turns each configured path into its operations: the
parameters and body of each method from the path's request schema
(:func:`tracker.intake.fields.schema.build_schema`, the one that validates
requests) with each field's wire format (:mod:`tracker.http.openapi.formats`),
and what the path answers (:mod:`tracker.http.openapi.answers`).
"""

from __future__ import annotations

import functools
import json
from importlib.metadata import version
from typing import Any

import falcon
import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from tracker.config import Config, PathConfig
from tracker.http.openapi.answers import HEADERS, SCHEMAS, batch_responses, health, responses
from tracker.http.openapi.formats import landing_format, plain_validators, wire_format
from tracker.intake.fields.schema import AuctionPrice, Micros, build_schema


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
        # HEAD answers as GET does, without the body (for probes that send HEAD).
        healthz = health("The process serves.")
        self.spec.path(path="/healthz", operations={"get": healthz, "head": healthz})
        readyz = health("Every collector can take events.", unready=True)
        self.spec.path(path="/readyz", operations={"get": readyz, "head": readyz})
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
            field.validators = plain_validators(field.validators)
            prop = converter.field2property(field)
            prop.pop("default", None) if spec.required else None
            prop["description"] = f"`{spec.name}` ({spec.type})"
            prop.update(wire_format(spec))
            if spec.description:
                separator = ": " if prop["description"].endswith(")") else " "
                prop["description"] += separator + spec.description
            if spec.required and spec.type == "string" and not prop.get("minLength"):
                # An empty value of a required field counts as absent (schema.gather).
                prop["minLength"] = 1
            found[spec.key] = (spec, prop)
        redirect = path.response.redirect
        if redirect is not None:
            # The config's checks make url_field one of the path's string fields.
            _, prop = next(v for v in found.values() if v[0].name == redirect.url_field)
            prop.update(landing_format(redirect))
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
            "responses": responses(
                path,
                method,
                (self.config.collectors[name].cls.refusals for name in path.collectors),
            ),
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
            "responses": batch_responses(),
        }


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
