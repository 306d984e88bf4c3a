"""The invariants of the rendered chart, each a function yielding sentences.

Each sentence names what is wrong, so that a test can break one value (or edit the
render) and see its check speak up (tests/test_chart.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from tests.chart import env_of, is_hook, one, release, server

#: gunicorn's graceful_timeout (config/gunicorn.conf.py).
GRACEFUL_TIMEOUT = 25
CHECKS: list[Callable[[dict[str, list[dict]]], Iterator[str]]] = []


def problems(by_kind: dict[str, list[dict]]) -> list[str]:
    """Every invariant the render breaks, one sentence each."""
    return [problem for check in CHECKS for problem in check(by_kind)]


def check(fn: Callable[[dict[str, list[dict]]], Iterator[str]]):
    """Register an invariant."""
    CHECKS.append(fn)
    return fn


def subset(small: dict | None, big: dict) -> bool:
    """Whether every label of ``small`` is in ``big``."""
    return bool(small) and all(big.get(k) == v for k, v in small.items())


def replicas(by_kind: dict[str, list[dict]]) -> int:
    """The fewest pods the release runs: the HPA's minimum, or the Deployment's count."""
    hpa = one(by_kind, "HorizontalPodAutoscaler")
    if hpa is not None:
        return hpa["spec"].get("minReplicas", 1)
    return server(by_kind)[0]["spec"].get("replicas", 1)


@check
def selectors(by_kind):
    """Deployment, Services and PDB select the server pods, by labels without versions."""
    deploy, pod, _ = server(by_kind)
    labels = pod["metadata"]["labels"]
    selecting = [("Deployment", deploy["spec"]["selector"]["matchLabels"])]
    selecting += [
        (f"Service {s['metadata']['name']}", s["spec"]["selector"])
        for s in release(by_kind, "Service")
    ]
    selecting += [
        ("PDB", p["spec"]["selector"]["matchLabels"])
        for p in release(by_kind, "PodDisruptionBudget")
    ]
    for what, selector in selecting:
        if not subset(selector, labels):
            yield f"{what} selector {selector} does not match the pod labels {labels}"
        for key in selector or {}:
            if key in ("helm.sh/chart", "app.kubernetes.io/version"):
                yield f"{what} selector has {key}, which changes with every version"
    for job in by_kind.get("Job", []):
        job_labels = job["spec"]["template"]["metadata"]["labels"]
        for what, selector in selecting:
            if subset(selector, job_labels):
                yield f"{what} selector also selects the pod of the Job {job['metadata']['name']}"


@check
def probes(by_kind):
    """Liveness and readiness on the public listener, where traffic goes; ports as bound."""
    _, _, container = server(by_kind)
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if sorted(ports) != ["admin", "http"]:
        yield f"container ports {sorted(ports)}, not admin and http"
    env = env_of(container)
    for var, name in (("TRACKER_BIND", "http"), ("TRACKER_ADMIN_BIND", "admin")):
        if env.get(var) != f"0.0.0.0:{ports.get(name)}":
            yield f"{var} is {env.get(var)}, not 0.0.0.0:<the {name} port>"
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        got = container.get(probe, {}).get("httpGet", {})
        if got.get("path") != path:
            yield f"{probe} path is {got.get('path')}, not {path}"
        # A worker that stops serving the public port must fail them.
        if got.get("port") not in ("http", ports.get("http")):
            yield f"{probe} port is {got.get('port')}, not the public port http"


@check
def scaling(by_kind):
    """An HPA owns the count (no ``replicas``), min <= max; else a fixed count."""
    deploy, _, _ = server(by_kind)
    spec = deploy["spec"]
    hpa = one(by_kind, "HorizontalPodAutoscaler")
    if hpa is None:
        if "replicas" not in spec:
            yield "Deployment has no replicas and there is no HPA"
        return
    if "replicas" in spec:
        yield "Deployment has replicas although the HPA owns the count"
    if hpa["apiVersion"] != "autoscaling/v2":
        yield f"HPA is {hpa['apiVersion']}, not autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    if (target["kind"], target["name"]) != ("Deployment", deploy["metadata"]["name"]):
        yield f"HPA scales {target['kind']} {target['name']}, not the Deployment"
    low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    if not 1 <= low <= high:
        yield f"HPA minReplicas {low} > maxReplicas {high}"
    if not hpa["spec"].get("metrics"):
        yield "HPA has no metric to scale on"


def disruptions(pdb: dict, pods: int) -> int:
    """How many of ``pods`` the PDB lets a drain take at once (Kubernetes' rounding)."""

    def count(value, round_up):
        if isinstance(value, str) and value.endswith("%"):
            share = pods * int(value[:-1]) / 100
            return math.ceil(share) if round_up else math.floor(share)
        return int(value)

    spec = pdb["spec"]
    if "minAvailable" in spec:
        return max(0, pods - count(spec["minAvailable"], True))
    return count(spec["maxUnavailable"], True)


@check
def disruption_budget(by_kind):
    """The PDB lets a node drain go on (one pod at least) and never takes every pod."""
    for pdb in release(by_kind, "PodDisruptionBudget"):
        if pdb["apiVersion"] != "policy/v1":
            yield f"PDB is {pdb['apiVersion']}, not policy/v1"
        pods = replicas(by_kind)
        allowed = disruptions(pdb, pods)
        if allowed < 1:
            yield f"PDB allows no disruption of {pods} replicas: node drains block"
        elif allowed >= pods:
            yield f"PDB lets {allowed} of {pods} replicas go at once: nothing keeps serving"


@check
def security(by_kind):
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities."""
    jobs = [(f"Job {j['metadata']['name']}", j["spec"]["template"]) for j in by_kind.get("Job", [])]
    others = [
        (f"Deployment {d['metadata']['name']}", d["spec"]["template"])
        for d in by_kind.get("Deployment", [])[1:]  # the reporting loader's
    ]
    for what, pod in [("Deployment", server(by_kind)[1]), *others, *jobs]:
        for container in pod["spec"]["containers"]:
            sc = container.get("securityContext", {})
            name = f"{what} container {container['name']}"
            if sc.get("readOnlyRootFilesystem") is not True:
                yield f"{name}: root filesystem is not read-only"
            if sc.get("allowPrivilegeEscalation") is not False:
                yield f"{name}: privilege escalation allowed"
            if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
                yield f"{name}: capabilities not dropped (ALL)"
            pod_sc = pod["spec"].get("securityContext") or {}
            non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            if non_root is not True or sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                yield f"{name}: may run as root (runAsNonRoot not true)"


@check
def shutdown(by_kind):
    """The grace period outlasts preStop + drain + flush, and they fit in graceful_timeout."""
    _, pod, container = server(by_kind)
    env = env_of(container)
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    pre_stop = int(command[1]) if command else 0
    drain, flush = env.get("TRACKER_DRAIN_SECONDS"), env.get("TRACKER_CLOSE_TIMEOUT")
    if drain is None or flush is None:
        yield "TRACKER_DRAIN_SECONDS or TRACKER_CLOSE_TIMEOUT unset"
        return
    drain, flush = float(drain), float(flush)
    if grace <= pre_stop + drain + flush:
        yield (
            f"terminationGracePeriodSeconds {grace} <= preStop {pre_stop} + drain {drain:g}"
            f" + flush {flush:g}"
        )
    elif grace <= pre_stop + GRACEFUL_TIMEOUT:
        yield f"terminationGracePeriodSeconds {grace} <= preStop {pre_stop} + graceful_timeout"
    if drain + flush >= GRACEFUL_TIMEOUT:
        yield f"drain {drain:g} + flush {flush:g} s >= gunicorn's graceful_timeout"


@check
def services(by_kind):
    """The public Service carries port http alone; the admin port only a ClusterIP Service."""
    deploy, _, _ = server(by_kind)
    name = deploy["metadata"]["name"]
    found = {s["metadata"]["name"]: s for s in release(by_kind, "Service")}
    public, admin = found.get(name), found.get(f"{name}-admin")
    if public is None or admin is None:
        yield f"Services {sorted(found)}, not {name} and {name}-admin"
        return
    targets = [p["targetPort"] for p in public["spec"]["ports"]]
    if targets != ["http"]:
        yield f"the public Service targets {targets}, not http alone"
    targets = [p["targetPort"] for p in admin["spec"]["ports"]]
    if admin["spec"].get("type", "ClusterIP") != "ClusterIP" or targets != ["admin"]:
        kind = admin["spec"].get("type")
        yield f"the admin Service is a {kind} of {targets}, not a ClusterIP of admin"
    for monitor in by_kind.get("ServiceMonitor", []):
        labels = monitor["spec"]["selector"]["matchLabels"]
        if not subset(labels, admin["metadata"]["labels"]) or subset(
            labels, public["metadata"]["labels"]
        ):
            yield "the ServiceMonitor does not select the admin Service alone"
        ports = [e.get("port") for e in monitor["spec"]["endpoints"]]
        if ports != ["admin"]:
            yield f"the ServiceMonitor scrapes ports {ports}, not admin"


@check
def volumes(by_kind):
    """Writable places of the read-only root are emptyDirs; the spool has its own volume."""
    _, pod, container = server(by_kind)
    env = env_of(container)
    declared = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    for path in ("/tmp", env.get("TRACKER_LOG_DIR"), env.get("PROMETHEUS_MULTIPROC_DIR")):
        if "emptyDir" not in declared.get(mounts.get(path), {}):
            yield f"{path} is not an emptyDir mount"
    spool_dir = env.get("TRACKER_SPOOL_DIR")
    if mounts.get(spool_dir) != "spool":
        yield f"TRACKER_SPOOL_DIR {spool_dir} is not the spool volume's mount"
    sources = sorted(set(declared.get("spool", {})) - {"name"})
    if len(sources) != 1:
        yield f"the spool volume has {sources or 'no'} sources, not one"
    config_dir = env.get("TRACKER_CONFIG", "").rsplit("/", 1)[0]
    if mounts.get(config_dir) != "config":
        yield f"TRACKER_CONFIG {env.get('TRACKER_CONFIG')} is not in the config mount"


@check
def secret_refs(by_kind):
    """The tracker's keys are optional references, all three or none, to one Secret."""
    names = ("TRACKER_CLICK_KEYS", "TRACKER_PRICE_ENCRYPTION_KEY", "TRACKER_PRICE_INTEGRITY_KEY")
    jobs = [(f"Job {j['metadata']['name']}", j["spec"]["template"]) for j in by_kind.get("Job", [])]
    for what, pod in [("Deployment", server(by_kind)[1]), *jobs]:
        env = pod["spec"]["containers"][0].get("env", [])
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in env
            if e["name"] in names and "valueFrom" in e
        }
        if sorted(refs) not in ([], sorted(names)):
            yield f"{what}: secret variables {sorted(refs)}, not all three"
        if any(ref.get("optional") is not True for ref in refs.values()):
            yield f"{what}: a key's secretKeyRef is not optional"
        if len({ref["name"] for ref in refs.values()}) > 1:
            yield f"{what}: the keys come from several Secrets"


@check
def topics_hook(by_kind):
    """The topics Job runs before the release's pods, after the hook objects it reads."""
    for job in by_kind.get("Job", []):
        yield from hook_order(by_kind, job)


def hook_order(by_kind: dict[str, list[dict]], job: dict) -> Iterator[str]:
    """Problems of one hook Job: its events, its weight and what it reads."""
    notes = job["metadata"].get("annotations", {})
    events = set(notes.get("helm.sh/hook", "").split(","))
    if events != {"pre-install", "pre-upgrade"}:
        yield f"the topics Job runs on {sorted(events)}, not pre-install and pre-upgrade"
    if "before-hook-creation" not in notes.get("helm.sh/hook-delete-policy", ""):
        yield "the topics Job has no before-hook-creation delete policy"
    weight = int(notes.get("helm.sh/hook-weight", 0))
    pod = job["spec"]["template"]["spec"]
    needs = [("ConfigMap", v["configMap"]["name"]) for v in pod["volumes"] if "configMap" in v]
    needs += [
        ("Secret", e["valueFrom"]["secretKeyRef"]["name"])
        for c in pod["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    needs.append(("ServiceAccount", pod.get("serviceAccountName", "default")))
    for kind, name in needs:
        made = {d["metadata"]["name"]: d for d in by_kind.get(kind, [])}
        doc = made.get(name)
        if doc is None:
            continue  # made outside the chart (an existing Secret or service account)
        if not is_hook(doc):
            yield f"the topics Job reads the {kind} {name}, which a pre-install hook runs before"
            continue
        their = doc["metadata"]["annotations"]
        if set(their["helm.sh/hook"].split(",")) != events:
            yield f"the {kind} {name} is made on {their['helm.sh/hook']}, not with the Job"
        if int(their.get("helm.sh/hook-weight", 0)) >= weight:
            yield f"the {kind} {name} has a weight not below the Job's {weight}: made after it"
        if "before-hook-creation" not in their.get("helm.sh/hook-delete-policy", ""):
            yield f"the {kind} {name} has no before-hook-creation delete policy"
