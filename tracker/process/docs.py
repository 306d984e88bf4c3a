"""The documents generated from the code: ``tracker docs`` writes them, ``--check`` compares.

``docs/config.md`` comes from the config schemas (:mod:`tracker.config.reference`),
``docs/openapi.yaml`` from the paths of the shipped config and their field schemas
(:mod:`tracker.http.openapi`). Both are committed, and ``make test`` fails when
either differs from what the code generates.
"""

from __future__ import annotations

from tracker.config import load_file
from tracker.config.reference import render as config_reference


def generated(config_file: str) -> dict[str, str]:
    """Return each generated document's file name and text.

    Args:
        config_file: The config whose paths the OpenAPI document describes.
    """
    from tracker.http.openapi.document import openapi_yaml

    return {
        "config.md": config_reference(),
        "openapi.yaml": openapi_yaml(load_file(config_file, {})),
    }
