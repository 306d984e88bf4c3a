"""The Helm chart's topics hook and the tracker config it renders."""

from __future__ import annotations

import base64

import pytest
import yaml

from tests import ROOT
from tests.chart import CHART, VALUE_SETS, env_of, is_hook, one, quantity, release, rendered, server
from tracker.config import ConfigError, load_text

SHIPPED = (ROOT / "config" / "tracker.yaml").read_text(encoding="utf-8")
SHIPPED_HEADER = (
    "# The tracker chart's files/tracker.yaml: the repository's config/tracker.yaml, verbatim.\n"
)
VALUE_HEADER = "# Rendered by the tracker chart from the `config` value"


def hooks(by_kind):
    return sorted(
        (int(d["metadata"]["annotations"]["helm.sh/hook-weight"]), d["kind"], d["metadata"]["name"])
        for docs in by_kind.values()
        for d in docs
        if is_hook(d)
    )


def test_the_topics_hook_runs_before_the_release_after_what_it_reads(helm):
    # Helm creates a hook event's objects by ascending weight, waits for each Job,
    # then creates the release: with --wait, the pods find their topics.
    with_secret = rendered(helm, "-f", str(CHART / "ci" / "secrets-values.yaml"))
    assert hooks(with_secret) == [
        (-10, "ConfigMap", "tracker-topics"),
        (-10, "Secret", "tracker-topics"),
        (-10, "ServiceAccount", "tracker-topics"),
        (0, "Job", "tracker-topics"),
    ]
    job = with_secret["Job"][0]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    for docs in with_secret.values():
        for doc in filter(is_hook, docs):
            assert doc["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == (
                "before-hook-creation,hook-succeeded"
            )
    # The hook's copies hold what the release's objects hold.
    hook_config = next(d for d in with_secret["ConfigMap"] if is_hook(d))
    assert hook_config["data"] == one(with_secret, "ConfigMap")["data"]
    hook_secret = next(d for d in with_secret["Secret"] if is_hook(d))
    assert hook_secret["data"] == one(with_secret, "Secret")["data"]
    # An existing Secret and service account exist before the install: no copies.
    minimal = rendered(
        helm, "--set", "serviceAccount.create=false", "--set", "secrets.existingSecret=keys"
    )
    assert hooks(minimal) == [(-10, "ConfigMap", "tracker-topics"), (0, "Job", "tracker-topics")]
    pod = minimal["Job"][0]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "default"
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in pod["containers"][0]["env"]
        if "valueFrom" in e
    }
    assert refs == {"keys"}
    assert hooks(rendered(helm, "--set", "kafka.createTopics=false")) == []


def environments(by_kind):
    """The Deployment's and the Job's variables, and the Deployment's with the chart's Secret."""
    _, _, container = server(by_kind)
    found = [("Deployment", env_of(container))]
    found += [
        (f"Job {j['metadata']['name']}", env_of(j["spec"]["template"]["spec"]["containers"][0]))
        for j in by_kind.get("Job", [])
    ]
    for secret in release(by_kind, "Secret"):
        values = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
        env = dict(found[0][1])
        for e in container["env"]:
            ref = e.get("valueFrom", {}).get("secretKeyRef", {})
            if ref.get("name") == secret["metadata"]["name"] and ref.get("key") in values:
                env[e["name"]] = values[ref["key"]]
        found.append(("Deployment with the Secret", env))
    return found


@pytest.mark.parametrize("name, args, kinds", VALUE_SETS, ids=[v[0] for v in VALUE_SETS])
def test_the_rendered_config_is_valid_for_the_tracker_and_fits_the_volumes(helm, name, args, kinds):
    by_kind = rendered(helm, *args)
    text = one(by_kind, "ConfigMap")["data"]["tracker.yaml"]
    if not text.startswith(VALUE_HEADER):
        assert text == SHIPPED_HEADER + SHIPPED
    for secret in release(by_kind, "Secret"):
        for value in secret["data"].values():
            assert base64.b64decode(value).decode() not in text
    config = None
    for what, env in environments(by_kind):
        try:
            config = load_text(text, env)
        except ConfigError as ex:
            pytest.fail(f"the rendered tracker.yaml is invalid for the {what}: {ex.errors}")
    _, pod, container = server(by_kind)
    env = env_of(container)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    spool_caps = log_bytes = 0
    for plugin in config.collectors.values():
        options = plugin.options
        spool = getattr(options, "spool", None)
        if spool and spool.directory.startswith(env["TRACKER_SPOOL_DIR"] + "/"):
            spool_caps += spool.max_bytes
        if plugin.type == "log" and options.path.startswith(env["TRACKER_LOG_DIR"] + "/"):
            log_bytes += options.max_bytes * (options.backup_count + 1)
    # The kubelet evicts a pod past an emptyDir's sizeLimit, before the tracker's caps.
    limit = volumes["spool"].get("emptyDir", {}).get("sizeLimit")
    assert limit is None or quantity(limit) > spool_caps
    limit = volumes["logs"]["emptyDir"].get("sizeLimit")
    workers = env.get("TRACKER_WORKERS")
    assert limit is None or not workers or quantity(limit) >= int(workers) * log_bytes


def test_the_copied_config_recipe_renders_the_same_config(helm, tmp_path):
    values = tmp_path / "copied.yaml"
    values.write_text("config:\n" + "".join(f"  {line}\n" for line in SHIPPED.splitlines()))
    text = one(rendered(helm, "-f", str(values)), "ConfigMap")["data"]["tracker.yaml"]
    assert text.startswith(VALUE_HEADER)
    assert yaml.safe_load(text) == yaml.safe_load(SHIPPED)
