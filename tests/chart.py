"""Render the Helm chart and read what it renders (tests/test_chart*.py).

helm comes from ``$HELM`` or from ``scripts/helm.sh --print-helm``, which installs
it into ``var/bin`` once. The invariants are in :mod:`tests.chart_checks`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from tests import ROOT

CHART = ROOT / "helm" / "tracker"
KUBE_VERSION = "1.30.0"
RELEASE = "tracker"
NAMESPACE = "tracker"
UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


class HelmMissing(Exception):
    """helm is not installed and cannot be installed here."""


def find_helm() -> str:
    """Return a helm binary: ``$HELM``, or the one scripts/helm.sh installs.

    Raises:
        HelmMissing: With the installer's own reason (no go, no module proxy...).
    """
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "helm.sh"), "--print-helm"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no reason"
        raise HelmMissing(reason.removeprefix("helm.sh: "))
    return done.stdout.strip().splitlines()[-1]


def render(helm: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``helm template`` of the chart with ``args``; the caller reads the outcome."""
    return subprocess.run(
        [
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            *args,
        ],
        capture_output=True,
        text=True,
    )


def manifests(text: str) -> dict[str, list[dict]]:
    """Parse a render into its objects by kind."""
    by_kind: dict[str, list[dict]] = {}
    for doc in yaml.safe_load_all(text):
        if doc is not None:
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def is_hook(doc: dict) -> bool:
    """Whether Helm runs ``doc`` as a hook rather than keeping it in the release."""
    return "helm.sh/hook" in doc["metadata"].get("annotations", {})


def release(by_kind: dict[str, list[dict]], kind: str) -> list[dict]:
    """The release's (not the hooks') objects of one kind."""
    return [doc for doc in by_kind.get(kind, []) if not is_hook(doc)]


def one(by_kind: dict[str, list[dict]], kind: str) -> dict | None:
    """The release's only object of ``kind``, or ``None``."""
    found = release(by_kind, kind)
    return found[0] if found else None


def quantity(text: str) -> float:
    """Bytes of a Kubernetes quantity such as 2Gi or 500M."""
    match = re.fullmatch(r"([0-9.]+)([kMGT]i?|)", str(text))
    if not match:
        raise ValueError(f"unsupported quantity {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def env_of(container: dict) -> dict[str, str]:
    """The container's literal variables; the last of a name wins, as in Kubernetes."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def server(by_kind: dict[str, list[dict]]) -> tuple[dict, dict, dict]:
    """The Deployment, its pod template and its tracker container."""
    deploy = one(by_kind, "Deployment")
    pod = deploy["spec"]["template"]
    return deploy, pod, pod["spec"]["containers"][0]


def rendered(helm: str, *args: str) -> dict[str, list[dict]]:
    """Render with ``args``, which must succeed, and parse it."""
    done = render(helm, *args)
    assert done.returncode == 0, done.stderr
    return manifests(done.stdout)


def kinds_of(path: Path) -> list[str]:
    """The kinds a ci/*-values.yaml says it renders (its ``# kinds:`` line)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# kinds:"):
            return sorted(line.split(":", 1)[1].split())
    raise AssertionError(f"{path}: no '# kinds: ...' line")


DEFAULT_KINDS = sorted(
    ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "Service", "ServiceAccount"]
)
VALUE_SETS = [("default", (), DEFAULT_KINDS)]
VALUE_SETS += [
    (f"ci/{path.name}", ("-f", str(path)), kinds_of(path))
    for path in sorted((CHART / "ci").glob("*-values.yaml"))
]
VALUE_SETS += [
    (
        "autoscaling",
        ("--set", "autoscaling.enabled=true"),
        sorted([*DEFAULT_KINDS, "HorizontalPodAutoscaler"]),
    ),
    ("spool hostPath", ("--set", "spool.volume.hostPath.path=/x"), DEFAULT_KINDS),
    ("createTopics off", ("--set", "kafka.createTopics=false"), DEFAULT_KINDS),
]
