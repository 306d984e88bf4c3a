"""The OpenAPI 3.1 document of the configured tracking paths, and ``/openapi.json``.

It is built with apispec's marshmallow plugin from the same request schemas that
validate requests (:func:`tracker.intake.fields.schema.build_schema`), so every parameter's
type, pattern, bounds, choices and required flag are those the tracker enforces.
Each operation lists what it can answer: its success (pixel, redirect, 204 or
JSON), the refusals with their reasons (400, 413, 414, 415, 431) and, on a
``durable`` path, 503. ``docs/openapi.yaml`` is this document for the shipped
config; ``/openapi.json`` serves it for the running one, built on its first request.

- :mod:`tracker.http.openapi.document`: ``OpenApi``, the operations of each
  path; the YAML file; the ``/openapi.json`` resource.
- :mod:`tracker.http.openapi.formats`: what a field's text must look like
  (decimal amounts, prices, landing URLs), as patterns.
- :mod:`tracker.http.openapi.answers`: what a path answers, and the shared
  components (the error body, the cache headers).
"""
