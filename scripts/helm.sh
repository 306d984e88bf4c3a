#!/usr/bin/env bash
# Lint and render the Helm chart helm/tracker, then check the rendered manifests.
#
#   bash scripts/helm.sh          # quiet on success: one summary line
#
# For the default values, each helm/tracker/ci/*-values.yaml and a few --set
# variations it runs `helm lint --strict` and `helm template`, then checks with
# Python + PyYAML that every manifest parses and that the kinds and invariants
# hold (selectors without the chart version, checksum/config, no `replicas` under
# an HPA, read-only root with writable emptyDirs...). When $PYTHON can also
# import `tracker`, the rendered tracker.yaml is validated by the tracker itself.
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
add_case default "ConfigMap Deployment Job PodDisruptionBudget Service ServiceAccount"
for file in "$CHART"/ci/*-values.yaml; do
    [ -e "$file" ] || continue
    kinds=$(sed -n 's/^# kinds: *//p' "$file")
    [ -n "$kinds" ] || die "$file: no '# kinds: ...' line"
    add_case "ci/$(basename "$file")" "$kinds" "-f $file"
done
add_case "--set autoscaling.enabled=true" \
    "ConfigMap Deployment HorizontalPodAutoscaler Job PodDisruptionBudget Service ServiceAccount" \
    "--set autoscaling.enabled=true"

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

# Values that must be refused.
if "$HELM" template "$RELEASE" "$CHART" --kube-version "$KUBE_VERSION" \
    --set terminationGracePeriodSeconds=20 >/dev/null 2>&1; then
    die "helm template accepted terminationGracePeriodSeconds=20 (below preStop + graceful_timeout)"
fi

"$PYTHON" - "$WORK/cases" <<'PY'
"""Check the rendered manifests; one line per problem, exit 1 if any."""

import re
import sys

import yaml

try:
    from tracker.config import ConfigError, load_text
except Exception:  # noqa: BLE001 - the tracker is optional here
    load_text = None

problems = []
total = 0


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
    check(
        sorted(by_kind) == sorted(kinds.split()),
        case,
        f"kinds {sorted(by_kind)} != expected {sorted(kinds.split())}",
    )
    check(all(len(v) == 1 for v in by_kind.values()), case, "a kind appears twice")

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

    service = by_kind["Service"][0]
    check_selector(case, "Service", service["spec"]["selector"], chart_version)
    check(is_subset(service["spec"]["selector"], pod_labels), case, "Service misses the pods")
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
        check(is_subset(labels, service["metadata"]["labels"]), case, "ServiceMonitor misses")

    # Security and the writable places of a read-only root filesystem.
    podspec = pod["spec"]
    grace = podspec.get("terminationGracePeriodSeconds", 30)
    check(grace > 25, case, f"terminationGracePeriodSeconds {grace} <= graceful_timeout 25")
    container = podspec["containers"][0]
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
        got = container.get(probe, {}).get("httpGet", {}).get("path")
        check(got == path, case, f"{probe} path is {got}, not {path}")
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    empty_dirs = {v["name"] for v in podspec.get("volumes", []) if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    for writable in ("/tmp", env.get("TRACKER_LOG_DIR"), env.get("PROMETHEUS_MULTIPROC_DIR")):
        check(mounts.get(writable) in empty_dirs, case, f"{writable} is not an emptyDir mount")
    check(
        env.get("TRACKER_BIND", "").startswith("0.0.0.0:"), case, "TRACKER_BIND not 0.0.0.0"
    )
    check(bool(env.get("TRACKER_KAFKA_BOOTSTRAP")), case, "TRACKER_KAFKA_BOOTSTRAP unset")

    # The tracker config: mounted where TRACKER_CONFIG points, valid for the tracker.
    configmap = by_kind["ConfigMap"][0]
    text = configmap["data"]["tracker.yaml"]
    check(isinstance(yaml.safe_load(text), dict), case, "tracker.yaml is not a mapping")
    config_dir = env.get("TRACKER_CONFIG", "").rsplit("/", 1)[0]
    check(mounts.get(config_dir) == "config", case, "TRACKER_CONFIG is not in the config mount")
    if load_text is not None:
        try:
            load_text(text, {k: v for k, v in env.items() if v is not None})
        except ConfigError as ex:
            problems.append(f"{case}: rendered tracker.yaml is invalid: {ex.errors}")

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
