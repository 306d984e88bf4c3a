#!/usr/bin/env bash
# Lint and render the Helm chart helm/tracker, then check the rendered manifests.
#
#   bash scripts/helm.sh          # quiet on success: one summary line
#
# For the default values, each helm/tracker/ci/*-values.yaml, config/tracker.yaml
# copied into the `config` value, and a few --set variations it runs `helm lint
# --strict` and `helm template`, then checks with Python + PyYAML that every manifest
# parses and that the kinds and invariants hold (selectors without the chart version,
# checksum/config, no `replicas` under an HPA, probes on the public port, /metrics on
# an admin ClusterIP Service only, read-only root with writable emptyDirs
# and the spool volume, optional secretKeyRefs, no secret in the ConfigMap, the
# shipped config/tracker.yaml verbatim in the ConfigMap by default...). Values that
# must be refused are tried too, and `helm package` must store config/tracker.yaml
# (files/tracker.yaml is a symlink to it). When $PYTHON can also import `tracker`,
# the rendered tracker.yaml is validated by the tracker itself, with the environment
# of the Deployment and of the topics Job (secretKeyRef variables unset), and the
# volumes' sizeLimits are checked against its spool and log caps.
#
# helm: $HELM if set, else var/bin/helm, installed there on first use with
# `go install` from the Go module proxy (a few minutes, once per machine).
#
# Environment: HELM (a helm binary to use), HELM_VERSION (v3.22.0),
# KUBE_VERSION (1.30.0), PYTHON (python3; needs PyYAML).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART=$ROOT/helm/tracker
BIN=$ROOT/var/bin
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# Tried only when the Go module proxy refuses HELM_VERSION.
HELM_FALLBACK_VERSION=v3.21.4
PYTHON=${PYTHON:-python3}
# The Kubernetes version to lint and render for (capabilities, deprecations and the
# chart's kubeVersion): a helm built by `go install` otherwise assumes v1.20.0.
KUBE_VERSION=${KUBE_VERSION:-1.30.0}
RELEASE=tracker
NAMESPACE=tracker

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

die() {
    echo "helm.sh: $*" >&2
    exit 1
}

# Run a command quietly; on failure print its output and stop.
quiet() {
    local what=$1
    shift
    if ! "$@" >"$WORK/out.log" 2>&1; then
        cat "$WORK/out.log" >&2
        die "$what failed"
    fi
}

install_helm() {
    command -v go >/dev/null || die "helm is not installed and go is not available to build it"
    mkdir -p "$BIN"
    local version
    for version in "$HELM_VERSION" "$HELM_FALLBACK_VERSION"; do
        echo "helm.sh: installing helm $version into var/bin (go install, once per machine)..." >&2
        if GOBIN=$BIN go install "helm.sh/helm/v3/cmd/helm@$version" >"$WORK/go.log" 2>&1; then
            echo "$version" >"$BIN/helm.version"
            return 0
        fi
        cat "$WORK/go.log" >&2
    done
    die "go install of helm failed"
}

find_helm() {
    if [ -n "${HELM:-}" ]; then
        HELM_USED="$HELM ($("$HELM" version --template '{{.Version}}'))"
        return
    fi
    HELM=$BIN/helm
    mkdir -p "$BIN"
    # One installer at a time; the others wait and then find it installed.
    exec 9>"$BIN/.helm.lock"
    command -v flock >/dev/null && flock 9
    local stamp=""
    [ -f "$BIN/helm.version" ] && stamp=$(cat "$BIN/helm.version")
    if [ ! -x "$HELM" ] || { [ "$stamp" != "$HELM_VERSION" ] && [ "$stamp" != "$HELM_FALLBACK_VERSION" ]; }; then
        install_helm
        stamp=$(cat "$BIN/helm.version")
    fi
    exec 9>&-
    HELM_USED="helm $stamp"
}

find_helm
"$PYTHON" -c 'import yaml' 2>/dev/null || die "$PYTHON cannot import yaml (PyYAML); set PYTHON"

# Each case: a name, the kinds its render must contain (exactly), then helm arguments.
CASES=()
add_case() {
    CASES+=("$1|$2|${3:-}")
}
add_case default "ConfigMap Deployment Job PodDisruptionBudget Service Service ServiceAccount"
for file in "$CHART"/ci/*-values.yaml; do
    [ -e "$file" ] || continue
    kinds=$(sed -n 's/^# kinds: *//p' "$file")
    [ -n "$kinds" ] || die "$file: no '# kinds: ...' line"
    add_case "ci/$(basename "$file")" "$kinds" "-f $file"
done
add_case "--set autoscaling.enabled=true" \
    "ConfigMap Deployment HorizontalPodAutoscaler Job PodDisruptionBudget Service Service ServiceAccount" \
    "--set autoscaling.enabled=true"
# The spool on another volume source: the default emptyDir must give way.
add_case "--set spool.volume.hostPath.path=/x" \
    "ConfigMap Deployment Job PodDisruptionBudget Service Service ServiceAccount" \
    "--set spool.volume.hostPath.path=/x"
add_case "--set-json spool.volume=<hostPath>" \
    "ConfigMap Deployment Job PodDisruptionBudget Service Service ServiceAccount" \
    '--set-json spool.volume={"hostPath":{"path":"/var/lib/tracker-spool","type":"Directory"}}'
# The README's recipe for changing the config: config/tracker.yaml copied under `config:`.
{
    echo "config:"
    sed 's/^/  /' "$ROOT/config/tracker.yaml"
} >"$WORK/copied-config-values.yaml"
add_case "config=<copy of config/tracker.yaml>" \
    "ConfigMap Deployment Job PodDisruptionBudget Service Service ServiceAccount" \
    "-f $WORK/copied-config-values.yaml"

names=()
for case in "${CASES[@]}"; do
    IFS='|' read -r name kinds args <<<"$case"
    # shellcheck disable=SC2086  # args is a list of words without spaces inside
    quiet "helm lint --strict ($name)" "$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART" $args
    out=$WORK/render-${#names[@]}.yaml
    # shellcheck disable=SC2086
    if ! "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" \
        --kube-version "$KUBE_VERSION" $args >"$out" 2>"$WORK/err.log"; then
        cat "$WORK/err.log" >&2
        die "helm template ($name) failed"
    fi
    echo "$name|$kinds|$out" >>"$WORK/cases"
    names+=("$name")
done

# Values that must be refused, each with why.
refuse() {
    local why=$1
    shift
    if "$HELM" template "$RELEASE" "$CHART" --kube-version "$KUBE_VERSION" "$@" >/dev/null 2>&1; then
        die "helm template accepted $* ($why)"
    fi
}
refuse "below preStop + graceful_timeout" --set terminationGracePeriodSeconds=30
refuse "drain + close reach graceful_timeout" --set server.drainSeconds=5 --set server.closeTimeoutSeconds=20
refuse "a partial config would replace the whole file" --set config.server.max_body_bytes=1024
refuse "two Secrets" --set secrets.create=true --set secrets.existingSecret=keys
refuse "two volume sources" --set spool.volume.hostPath.path=/x --set spool.volume.nfs.server=nfs
refuse "no volume source" --set spool.volume=null

# The packaged chart must hold config/tracker.yaml itself, not a dangling symlink.
quiet "helm package" "$HELM" package "$CHART" --destination "$WORK/package"
"$PYTHON" - "$WORK/package" "$ROOT/config/tracker.yaml" <<'PY' || die "helm package: files/tracker.yaml is not config/tracker.yaml"
import glob
import sys
import tarfile

(archive,) = glob.glob(sys.argv[1] + "/*.tgz")
with tarfile.open(archive) as tar:
    member = tar.getmember("tracker/files/tracker.yaml")
    packaged = tar.extractfile(member).read() if member.isfile() else b""
with open(sys.argv[2], "rb") as fh:
    sys.exit(0 if packaged == fh.read() else 1)
PY

"$PYTHON" - "$WORK/cases" "$ROOT/config/tracker.yaml" <<'PY'
"""Check the rendered manifests; one line per problem, exit 1 if any."""

import base64
import re
import sys

import yaml

try:
    from tracker.config import ConfigError, load_text
except Exception:  # noqa: BLE001 - the tracker is optional here
    load_text = None

problems = []
total = 0
# gunicorn's graceful_timeout (config/gunicorn.conf.py).
GRACEFUL_TIMEOUT = 25
# The first line of the ConfigMap's tracker.yaml: the `config` value, or the shipped file.
VALUE_HEADER = "# Rendered by the tracker chart from the `config` value"
SHIPPED_HEADER = "# The tracker chart's files/tracker.yaml: the repository's config/tracker.yaml, verbatim.\n"
with open(sys.argv[2], encoding="utf-8") as fh:
    shipped = fh.read()
UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
         "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text):
    """Bytes of a Kubernetes quantity such as 2Gi or 500M."""
    match = re.fullmatch(r"([0-9.]+)([kMGT]i?|)", str(text))
    if not match or match.group(2) not in UNITS:
        raise ValueError(f"unsupported quantity {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def env_of(container, secrets=None):
    """Literal variables. valueFrom ones are unknown, so unset, except secretKeyRefs to
    a key of `secrets` ({(secret name, key): value}, the chart's own Secret)."""
    env = {}
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef", {})
        if "value" in e:
            env[e["name"]] = e["value"]
        elif secrets and (ref.get("name"), ref.get("key")) in secrets:
            env[e["name"]] = secrets[ref["name"], ref["key"]]
    return env


def check_secret_refs(case, what, container, secret_names):
    refs = {}
    names = ("TRACKER_CLICK_KEYS", "TRACKER_PRICE_ENCRYPTION_KEY", "TRACKER_PRICE_INTEGRITY_KEY")
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        refs[e["name"]] = ref
        # The chart's own keys are optional; extraEnv's (Kafka credentials) are the user's.
        if e["name"] in names:
            check(ref.get("optional") is True, case, f"{what}: secretKeyRef {e['name']} not optional")
    got = [n for n in names if n in refs]
    check(got in ([], list(names)), case, f"{what}: secret variables {got}, not all three")
    for name in got:
        if secret_names:
            check(refs[name]["name"] in secret_names, case, f"{what}: {name} misses the Secret")


def check(ok, case, message):
    if not ok:
        problems.append(f"{case}: {message}")


def is_subset(small, big):
    return all(big.get(k) == v for k, v in (small or {}).items())


def check_selector(case, kind, selector, chart_version):
    check(bool(selector), case, f"{kind} has no selector")
    for key, value in (selector or {}).items():
        check(key != "helm.sh/chart", case, f"{kind} selector has helm.sh/chart")
        check(
            key != "app.kubernetes.io/version" and chart_version not in str(value),
            case,
            f"{kind} selector has a version: {key}={value}",
        )


for line in open(sys.argv[1], encoding="utf-8"):
    case, kinds, path = line.rstrip("\n").split("|")
    with open(path, encoding="utf-8") as fh:
        try:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
        except yaml.YAMLError as ex:
            problems.append(f"{case}: not valid YAML: {ex}")
            continue
    total += len(docs)
    by_kind = {}
    for doc in docs:
        check(isinstance(doc, dict), case, f"a document is not a mapping: {doc!r:.80}")
        if not isinstance(doc, dict):
            continue
        for key in ("apiVersion", "kind"):
            check(key in doc, case, f"a document has no {key}")
        check(bool(doc.get("metadata", {}).get("name")), case, f"{doc.get('kind')} has no name")
        by_kind.setdefault(doc.get("kind"), []).append(doc)
    got_kinds = sorted(doc.get("kind") for doc in docs if isinstance(doc, dict))
    check(
        got_kinds == sorted(kinds.split()),
        case,
        f"kinds {got_kinds} != expected {sorted(kinds.split())}",
    )

    deploy = by_kind.get("Deployment", [None])[0]
    if deploy is None:
        continue
    chart_version = deploy["metadata"]["labels"]["helm.sh/chart"].rsplit("-", 1)[-1]
    spec = deploy["spec"]
    pod = spec["template"]
    pod_labels = pod["metadata"]["labels"]
    selector = spec["selector"]["matchLabels"]
    check_selector(case, "Deployment", selector, chart_version)
    check(is_subset(selector, pod_labels), case, "Deployment selector does not match its pods")
    checksum = pod["metadata"].get("annotations", {}).get("checksum/config", "")
    check(re.fullmatch(r"[0-9a-f]{64}", checksum), case, "no checksum/config pod annotation")

    hpa = by_kind.get("HorizontalPodAutoscaler", [None])[0]
    if hpa:
        check("replicas" not in spec, case, "Deployment has replicas although an HPA exists")
        check(hpa["apiVersion"] == "autoscaling/v2", case, "HPA is not autoscaling/v2")
        target = hpa["spec"]["scaleTargetRef"]
        check(
            target["kind"] == "Deployment" and target["name"] == deploy["metadata"]["name"],
            case,
            "HPA does not target the Deployment",
        )
    else:
        check("replicas" in spec, case, "Deployment has no replicas and no HPA")

    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    name = deploy["metadata"]["name"]
    service, admin_service = services.get(name), services.get(name + "-admin")
    check(service and admin_service, case, f"Services {sorted(services)}, not {name}(-admin)")
    if not (service and admin_service):
        continue
    for svc in (service, admin_service):
        check_selector(case, "Service", svc["spec"]["selector"], chart_version)
        check(is_subset(svc["spec"]["selector"], pod_labels), case, "Service misses the pods")
    # The admin port (/metrics) is never behind the public Service or a load balancer.
    check(
        [p["targetPort"] for p in service["spec"]["ports"]] == ["http"],
        case,
        f"the public Service targets {service['spec']['ports']}, not http alone",
    )
    check(
        admin_service["spec"]["type"] == "ClusterIP"
        and [p["targetPort"] for p in admin_service["spec"]["ports"]] == ["admin"],
        case,
        "the admin Service is not a ClusterIP Service of the admin port alone",
    )
    for job in by_kind.get("Job", []):
        job_labels = job["spec"]["template"]["metadata"]["labels"]
        check(
            not is_subset(service["spec"]["selector"], job_labels),
            case,
            "the Service selects the topics Job's pod",
        )
        check("helm.sh/hook" in job["metadata"].get("annotations", {}), case, "Job is no hook")
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        check(args[0] == "setup", case, f"Job does not run `tracker setup`: {args}")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        check(pdb["apiVersion"] == "policy/v1", case, "PDB is not policy/v1")
        check_selector(case, "PDB", pdb["spec"]["selector"]["matchLabels"], chart_version)
        check(is_subset(pdb["spec"]["selector"]["matchLabels"], pod_labels), case, "PDB misses")
    for monitor in by_kind.get("ServiceMonitor", []):
        labels = monitor["spec"]["selector"]["matchLabels"]
        check_selector(case, "ServiceMonitor", labels, chart_version)
        check(
            is_subset(labels, admin_service["metadata"]["labels"])
            and not is_subset(labels, service["metadata"]["labels"]),
            case,
            "the ServiceMonitor does not select the admin Service alone",
        )
        ports = [e.get("port") for e in monitor["spec"]["endpoints"]]
        check(ports == ["admin"], case, f"the ServiceMonitor scrapes ports {ports}, not admin")

    # Security and the writable places of a read-only root filesystem.
    podspec = pod["spec"]
    container = podspec["containers"][0]
    env = env_of(container)
    # Shutdown: the pod is done preStop + graceful_timeout after it is told to stop, and
    # each worker's drain and flush must fit in graceful_timeout.
    grace = podspec.get("terminationGracePeriodSeconds", 30)
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    pre_stop = int(pre_stop[1]) if pre_stop else 0
    check(
        grace > pre_stop + GRACEFUL_TIMEOUT,
        case,
        f"terminationGracePeriodSeconds {grace} <= preStop {pre_stop} + graceful_timeout",
    )
    drain, close = env.get("TRACKER_DRAIN_SECONDS"), env.get("TRACKER_CLOSE_TIMEOUT")
    check(drain is not None and close is not None, case, "TRACKER_DRAIN_SECONDS/CLOSE_TIMEOUT unset")
    if drain is not None and close is not None:
        check(
            float(drain) + float(close) < GRACEFUL_TIMEOUT,
            case,
            f"drain {drain} + close {close} s >= graceful_timeout",
        )
    sc = container.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, case, "root filesystem is not read-only")
    check(sc.get("allowPrivilegeEscalation") is False, case, "privilege escalation allowed")
    check("ALL" in sc.get("capabilities", {}).get("drop", []), case, "capabilities not dropped")
    check(
        sc.get("runAsNonRoot") or podspec.get("securityContext", {}).get("runAsNonRoot"),
        case,
        "runAsNonRoot not set",
    )
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        got = container.get(probe, {}).get("httpGet", {})
        check(got.get("path") == path, case, f"{probe} path is {got.get('path')}, not {path}")
        # Probes go to the port traffic goes to: a worker that stops serving it fails them.
        check(got.get("port") == "http", case, f"{probe} port is {got.get('port')}, not http")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    check(sorted(ports) == ["admin", "http"], case, f"container ports {sorted(ports)}")
    check(
        env.get("TRACKER_BIND") == f"0.0.0.0:{ports.get('http')}"
        and env.get("TRACKER_ADMIN_BIND") == f"0.0.0.0:{ports.get('admin')}",
        case,
        "TRACKER_BIND / TRACKER_ADMIN_BIND do not match the container ports",
    )
    volumes = {v["name"]: v for v in podspec.get("volumes", [])}
    empty_dirs = {name for name, v in volumes.items() if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    for writable in ("/tmp", env.get("TRACKER_LOG_DIR"), env.get("PROMETHEUS_MULTIPROC_DIR")):
        check(mounts.get(writable) in empty_dirs, case, f"{writable} is not an emptyDir mount")
    spool_volume = volumes.get(mounts.get(env.get("TRACKER_SPOOL_DIR")), {})
    check(
        mounts.get(env.get("TRACKER_SPOOL_DIR")) == "spool",
        case,
        f"TRACKER_SPOOL_DIR {env.get('TRACKER_SPOOL_DIR')} is not the spool volume's mount",
    )
    check(len(spool_volume) == 2, case, f"the spool volume has not one source: {spool_volume}")
    check(
        env.get("TRACKER_BIND", "").startswith("0.0.0.0:"), case, "TRACKER_BIND not 0.0.0.0"
    )
    check(bool(env.get("TRACKER_KAFKA_BOOTSTRAP")), case, "TRACKER_KAFKA_BOOTSTRAP unset")

    # Secrets: optional references only, never values in the ConfigMap.
    secrets = by_kind.get("Secret", [])
    secret_names = {s["metadata"]["name"] for s in secrets}
    check_secret_refs(case, "Deployment", container, secret_names)
    jobs = [j["spec"]["template"]["spec"]["containers"][0] for j in by_kind.get("Job", [])]
    for job_container in jobs:
        check_secret_refs(case, "Job", job_container, secret_names)
    if secrets:
        check(
            "checksum/secret" in pod["metadata"].get("annotations", {}),
            case,
            "no checksum/secret pod annotation",
        )

    # The tracker config: mounted where TRACKER_CONFIG points, valid for the tracker.
    configmap = by_kind["ConfigMap"][0]
    text = configmap["data"]["tracker.yaml"]
    data = yaml.safe_load(text)
    check(isinstance(data, dict), case, "tracker.yaml is not a mapping")
    if not text.startswith(VALUE_HEADER):
        check(
            text == SHIPPED_HEADER + shipped,
            case,
            "the ConfigMap's tracker.yaml is not config/tracker.yaml verbatim",
        )
    elif case.startswith("config=<copy"):
        check(data == yaml.safe_load(shipped), case, "the copied config differs from the file")
    secret_values = {}
    for secret in secrets:
        for key, value in (secret.get("data") or {}).items():
            plain = base64.b64decode(value).decode()
            secret_values[secret["metadata"]["name"], key] = plain
            check(plain not in text, case, f"the ConfigMap holds the secret {key}")
    config_dir = env.get("TRACKER_CONFIG", "").rsplit("/", 1)[0]
    check(mounts.get(config_dir) == "config", case, "TRACKER_CONFIG is not in the config mount")
    if load_text is None:
        continue
    # With the secrets unset (unknown here; a Secret or key may be missing), and with
    # the values of the chart's own Secret when it renders one.
    environs = [("Deployment", env)] + [("Job", env_of(c)) for c in jobs]
    if secret_values:
        environs.append(("Deployment with the Secret", env_of(container, secret_values)))
    config = None
    for what, environ in environs:
        try:
            config = load_text(text, environ)
        except ConfigError as ex:
            problems.append(f"{case}: rendered tracker.yaml is invalid for the {what}: {ex.errors}")
    if config is None:
        continue

    # Volume sizes against the config's caps (eviction comes before the tracker's limits).
    spool_dir, log_dir = env["TRACKER_SPOOL_DIR"], env["TRACKER_LOG_DIR"]
    spool_caps = log_bytes = 0
    for name, plugin in config.collectors.items():
        options = plugin.options
        spool = options.get("spool") if isinstance(options.get("spool"), dict) else None
        if spool and spool.get("directory", "").startswith(spool_dir + "/"):
            spool_caps += spool["max_bytes"]
        if plugin.type == "log" and options["path"].startswith(log_dir + "/"):
            log_bytes += options["max_bytes"] * (options["backup_count"] + 1)
    limit = spool_volume.get("emptyDir", {}).get("sizeLimit")
    if limit is not None:
        check(
            quantity(limit) > spool_caps,
            case,
            f"spool emptyDir sizeLimit {limit} <= the spools' max_bytes ({spool_caps})",
        )
    limit = volumes.get("logs", {}).get("emptyDir", {}).get("sizeLimit")
    workers = env.get("TRACKER_WORKERS")
    if limit is not None and workers:
        check(
            quantity(limit) >= int(workers) * log_bytes,
            case,
            f"logs sizeLimit {limit} < {workers} workers x {log_bytes} bytes of rotated logs",
        )

for problem in problems:
    print(f"helm.sh: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
with open(sys.argv[1] + ".total", "w") as fh:
    fh.write(f"{total} {'yes' if load_text else 'no'}\n")
PY

read -r total validated <"$WORK/cases.total"
note=""
[ "$validated" = yes ] || note=" (tracker not importable by $PYTHON: config not validated by it)"
echo "helm.sh: $HELM_USED: chart OK: lint --strict and template for ${#names[@]} value sets" \
    "(${names[*]}), $total manifests checked$note"
