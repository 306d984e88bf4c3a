"""The Helm chart as rendered: invariants, and the values the chart refuses.

Renders with the default values, every ``helm/tracker/ci/*-values.yaml`` and a few
``--set`` variations (scripts/helm.sh lints the same sets) and checks the objects
with tests/chart_checks.py. Each invariant is also broken on purpose, by a value or
by an edit of the render, to show that its check names the fault.
"""

from __future__ import annotations

import pytest

from tests.chart import CHART, VALUE_SETS, is_hook, release, render, rendered, server
from tests.chart_checks import problems


@pytest.mark.parametrize("name, args, kinds", VALUE_SETS, ids=[v[0] for v in VALUE_SETS])
def test_every_value_set_keeps_the_invariants(helm, name, args, kinds):
    by_kind = rendered(helm, *args)
    assert sorted(kind for kind in by_kind for _ in release(by_kind, kind)) == kinds
    assert problems(by_kind) == []
    checksum = server(by_kind)[1]["metadata"]["annotations"]["checksum/config"]
    assert len(checksum) == 64


BROKEN_VALUES = [
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


def edit_shutdown_times(by_kind):
    for env in server(by_kind)[2]["env"]:
        if env["name"] in ("TRACKER_DRAIN_SECONDS", "TRACKER_CLOSE_TIMEOUT"):
            env["value"] = "20"


BROKEN_RENDERS = [
    (
        edit_shutdown_times,
        [
            "terminationGracePeriodSeconds 40 <= preStop 5 + drain 20 + flush 20",
            "drain 20 + flush 20 s >= gunicorn's graceful_timeout",
        ],
    ),
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
        ["--set-json", 'extraEnv=[{"name":"TRACKER_DRAIN_SECONDS","value":"20"}]'],
        "extraEnv sets TRACKER_DRAIN_SECONDS, which the chart sets from server.drainSeconds",
    ),
    (
        ["--set-json", 'extraEnv=[{"name":"TRACKER_BIND","value":"0.0.0.0:9999"}]'],
        "extraEnv sets TRACKER_BIND, which the chart sets from containerPort",
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
    (
        ["--set", "loader.enabled=true"],
        "loader.database.existingSecret is required: a Secret whose key loader.database.key",
    ),
]


def test_the_loader_reads_its_database_from_the_secret_and_is_probed_on_its_port(helm):
    by_kind = rendered(helm, "-f", str(CHART / "ci" / "loader-values.yaml"))
    (loader,) = [
        d for d in release(by_kind, "Deployment") if d["metadata"]["name"].endswith("-loader")
    ]
    pod = loader["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "loader"
    assert loader["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "loader"
    (container,) = pod["spec"]["containers"]
    assert container["args"][:3] == ["load", "--admin-bind", "0.0.0.0:9091"]
    env = {e["name"]: e for e in container["env"]}
    assert env["TRACKER_REPORTING_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tracker-clickhouse",
        "key": "url",
    }
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "loader-admin"}
    assert "TRACKER_KAFKA_BOOTSTRAP" in env
    assert "loader" not in str(rendered(helm)), "the loader is off by default"


@pytest.mark.parametrize("args, message", REFUSED, ids=[" ".join(r[0][1::2]) for r in REFUSED])
def test_the_chart_refuses_values_that_break_a_pod(helm, args, message):
    done = render(helm, *args)
    assert done.returncode != 0
    assert message in done.stderr
