"""Schemathesis against a live tracker: real gunicorn, the shipped config, the test broker.

Every operation of the served ``/openapi.json`` is called with generated requests,
valid and invalid ones; no answer may be a 5xx, nor have a status, content type,
header or body that the document does not allow, and a request the document calls
valid must not be refused as invalid. The number of examples per
operation is bounded (``EXAMPLES``) so that the run fits the test budget.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 40
# Every phase that applies: the document has no links, so there is no stateful phase.
# The coverage phase sends unknown methods (QUERY) with a body and oversize values;
# meinheld refuses those itself, with a clear 4xx and a clean close
# (scripts/meinheld/lingering-close.patch), which the document describes.
PHASES = "examples,coverage,fuzzing"
CHECKS = (
    "not_a_server_error",
    # Requests the document calls valid are accepted (no 400 for them).
    "positive_data_acceptance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# What a request of valid values may still get: Schemathesis's defaults, and the
# size refusals, which the document states for the request as a whole (the URL,
# the body, the headers) where no one parameter can carry them.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "413", "414", "431"]


def test_no_answer_contradicts_the_document(server_factory, tmp_path):
    server = server_factory(TRACKER_WORKERS="2").start()
    server.setup_topics()
    config = tmp_path / "schemathesis.toml"
    # Any warning fails the run too: "Schema validation mismatch" (most generated data
    # refused) is how a document looser than the tracker shows itself.
    config.write_text(
        "[warnings]\nfail-on = true\n"
        f"[checks.positive_data_acceptance]\nexpected-statuses = {json.dumps(ACCEPTED)}\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"http://127.0.0.1:{server.port}/openapi.json",
            "--phases",
            PHASES,
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "12",
            # One worker: Schemathesis builds Hypothesis strategies per worker thread, and
            # Hypothesis describes their lambdas with ast.parse, which is not thread-safe on
            # CPython 3.11 (python/cpython#106905: "AST constructor recursion depth
            # mismatch", seen in CI with two workers).
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--no-color",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout
