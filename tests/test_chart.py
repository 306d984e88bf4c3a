"""The Helm chart as rendered: invariants, refused values, the topics hook, the config.

Renders with the default values, every ``helm/tracker/ci/*-values.yaml`` and a few
``--set`` variations (scripts/helm.sh lints the same sets), and checks the objects
with tests/chart.py. Each invariant is also broken on purpose, by a value or by an
edit of the render, to show that its check names the fault.
"""

from __future__ import annotations

import base64

import pytest
import yaml

from tests import ROOT
from tests.chart import (
    CHART,
    HelmMissing,
    env_of,
    find_helm,
    is_hook,
    kinds_of,
    manifests,
    one,
    problems,
    quantity,
    release,
    render,
    server,
)
from tracker.config import ConfigError, load_text

SHIPPED = (ROOT / "config" / "tracker.yaml").read_text(encoding="utf-8")
SHIPPED_HEADER = (
    "# The tracker chart's files/tracker.yaml: the repository's config/tracker.yaml, verbatim.\n"
)
VALUE_HEADER = "# Rendered by the tracker chart from the `config` value"
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


@pytest.fixture(scope="session")
def helm():
    """helm from $HELM or scripts/helm.sh; the tests skip, saying why, if it cannot be had."""
    try:
        return find_helm()
    except HelmMissing as ex:
        pytest.skip(f"helm cannot be installed here (scripts/helm.sh: {ex})")


def rendered(helm, *args):
    done = render(helm, *args)
    assert done.returncode == 0, done.stderr
    return manifests(done.stdout)


@pytest.fixture(scope="session")
def default(helm):
    return rendered(helm)


@pytest.mark.parametrize("name, args, kinds", VALUE_SETS, ids=[v[0] for v in VALUE_SETS])
def test_every_value_set_keeps_the_invariants(helm, name, args, kinds):
    by_kind = rendered(helm, *args)
    assert sorted(kind for kind in by_kind for _ in release(by_kind, kind)) == kinds
    assert problems(by_kind) == []
    checksum = server(by_kind)[1]["metadata"]["annotations"]["checksum/config"]
    assert len(checksum) == 64


BROKEN_VALUES = [
    (
        "grace shorter than preStop + drain + flush (extraEnv gets past the chart's own check)",
        [
            "--set-json",
            'extraEnv=[{"name":"TRACKER_DRAIN_SECONDS","value":"20"},{"name":"TRACKER_CLOSE_TIMEOUT","value":"20"}]',
        ],
        [
            "terminationGracePeriodSeconds 40 <= preStop 5 + drain 20 + flush 20",
            "drain 20 + flush 20 s >= gunicorn's graceful_timeout",
        ],
    ),
    (
        "readiness on the admin port",
        ["--set", "readinessProbe.httpGet.port=admin"],
        ["readinessProbe port is admin, not the public port http"],
    ),
    (
        "pods relabelled away from their selectors",
        ["--set", "podLabels.app\\.kubernetes\\.io/component=web"],
        [
            "Deployment selector {'app.kubernetes.io/name': 'tracker', "
            "'app.kubernetes.io/instance': 'tracker', 'app.kubernetes.io/component': 'server'}"
            " does not match the pod labels",
        ],
    ),
    (
        "HPA minimum above its maximum",
        ["--set", "autoscaling.enabled=true", "--set", "autoscaling.maxReplicas=1"],
        ["HPA minReplicas 2 > maxReplicas 1"],
    ),
    (
        "one replica, PDB maxUnavailable 1",
        ["--set", "replicaCount=1"],
        ["PDB lets 1 of 1 replicas go at once"],
    ),
    (
        "PDB minAvailable equal to the replicas",
        ["--set", "podDisruptionBudget.minAvailable=2"],
        ["PDB allows no disruption of 2 replicas: node drains block"],
    ),
    (
        "writable root",
        ["--set", "securityContext.readOnlyRootFilesystem=false"],
        [
            "Deployment container tracker: root filesystem is not read-only",
            "Job tracker-topics container topics: root filesystem is not read-only",
        ],
    ),
    (
        "privilege escalation",
        ["--set", "securityContext.allowPrivilegeEscalation=true"],
        ["Deployment container tracker: privilege escalation allowed"],
    ),
    (
        "capabilities kept",
        ["--set", "securityContext.capabilities.drop=null"],
        ["Deployment container tracker: capabilities not dropped (ALL)"],
    ),
    (
        "root",
        [
            "--set",
            "securityContext.runAsNonRoot=false",
            "--set",
            "podSecurityContext.runAsNonRoot=false",
        ],
        ["Deployment container tracker: may run as root (runAsNonRoot not true)"],
    ),
]


@pytest.mark.parametrize("why, args, expected", BROKEN_VALUES, ids=[b[0] for b in BROKEN_VALUES])
def test_a_broken_value_is_named_by_its_check(helm, why, args, expected):
    found = problems(rendered(helm, *args))
    for sentence in expected:
        assert any(p.startswith(sentence) for p in found), (sentence, found)


def edit_admin_monitor(by_kind):
    by_kind["ServiceMonitor"][0]["spec"]["endpoints"][0]["port"] = "http"


def edit_public_service(by_kind):
    by_kind["Service"][1]["spec"]["ports"].append(
        {"name": "admin", "port": 9090, "targetPort": "admin"}
    )


def edit_spool_volume(by_kind):
    volumes = server(by_kind)[1]["spec"]["volumes"]
    spool = next(v for v in volumes if v["name"] == "spool")
    spool["hostPath"] = {"path": "/x"}


def edit_spool_mount(by_kind):
    for mount in server(by_kind)[2]["volumeMounts"]:
        if mount["name"] == "spool":
            mount["mountPath"] = "/elsewhere"


def edit_hook_weight(by_kind):
    configmap = next(d for d in by_kind["ConfigMap"] if is_hook(d))
    configmap["metadata"]["annotations"]["helm.sh/hook-weight"] = "5"


def edit_job_reads_release_config(by_kind):
    job = by_kind["Job"][0]["spec"]["template"]["spec"]
    job["volumes"][0]["configMap"]["name"] = "tracker"


def edit_job_post_install(by_kind):
    by_kind["Job"][0]["metadata"]["annotations"]["helm.sh/hook"] = "post-install,post-upgrade"


BROKEN_RENDERS = [
    (edit_admin_monitor, ["the ServiceMonitor scrapes ports ['http'], not admin"]),
    (edit_public_service, ["the public Service targets ['http', 'admin'], not http alone"]),
    (edit_spool_volume, ["the spool volume has ['emptyDir', 'hostPath'] sources, not one"]),
    (
        edit_spool_mount,
        ["TRACKER_SPOOL_DIR /var/lib/tracker/spool is not the spool volume's mount"],
    ),
    (
        edit_hook_weight,
        ["the ConfigMap tracker-topics has a weight not below the Job's 0: made after it"],
    ),
    (
        edit_job_reads_release_config,
        ["the topics Job reads the ConfigMap tracker, which a pre-install hook runs before"],
    ),
    (
        edit_job_post_install,
        [
            "the topics Job runs on ['post-install', 'post-upgrade'],"
            " not pre-install and pre-upgrade",
            "the ConfigMap tracker-topics is made on pre-install,pre-upgrade, not with the Job",
        ],
    ),
]


@pytest.mark.parametrize(
    "edit, expected", BROKEN_RENDERS, ids=[b[0].__name__ for b in BROKEN_RENDERS]
)
def test_a_broken_render_is_named_by_its_check(helm, edit, expected):
    by_kind = rendered(helm, "-f", str(CHART / "ci" / "servicemonitor-values.yaml"))
    assert problems(by_kind) == []
    edit(by_kind)
    found = problems(by_kind)
    for sentence in expected:
        assert sentence in found, found


REFUSED = [
    (
        ["--set", "terminationGracePeriodSeconds=30"],
        "terminationGracePeriodSeconds (30) must exceed preStopSleepSeconds (5) + gunicorn's",
    ),
    (
        ["--set", "server.drainSeconds=5", "--set", "server.closeTimeoutSeconds=20"],
        "server.drainSeconds (5) + server.closeTimeoutSeconds (20) must stay below gunicorn's",
    ),
    (
        ["--set", "config.server.max_body_bytes=1024"],
        "config replaces the shipped tracker.yaml entirely",
    ),
    (
        ["--set", "secrets.create=true", "--set", "secrets.existingSecret=keys"],
        "set secrets.existingSecret",
    ),
    (
        ["--set", "spool.volume.hostPath.path=/x", "--set", "spool.volume.nfs.server=nfs"],
        "spool.volume must be exactly one volume source",
    ),
    (["--set", "spool.volume=null"], "spool.volume must be exactly one volume source"),
    (
        [
            "--set",
            "autoscaling.enabled=true",
            "--set",
            "autoscaling.targetCPUUtilizationPercentage=",
        ],
        "autoscaling.enabled needs targetCPUUtilizationPercentage or target",
    ),
]


@pytest.mark.parametrize("args, message", REFUSED, ids=[" ".join(r[0][1::2]) for r in REFUSED])
def test_the_chart_refuses_values_that_break_a_pod(helm, args, message):
    done = render(helm, *args)
    assert done.returncode != 0
    assert message in done.stderr


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
        spool = options.get("spool") if isinstance(options.get("spool"), dict) else None
        if spool and spool["directory"].startswith(env["TRACKER_SPOOL_DIR"] + "/"):
            spool_caps += spool["max_bytes"]
        if plugin.type == "log" and options["path"].startswith(env["TRACKER_LOG_DIR"] + "/"):
            log_bytes += options["max_bytes"] * (options["backup_count"] + 1)
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
