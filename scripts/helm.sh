#!/usr/bin/env bash
# Lint and render the Helm chart helm/tracker; install helm for the chart tests.
#
#   bash scripts/helm.sh              # quiet on success: one summary line
#   bash scripts/helm.sh --print-helm # install helm if needed, print its path
#
# For the default values, each helm/tracker/ci/*-values.yaml, config/tracker.yaml
# copied into the `config` value, and a few --set variations it runs `helm lint
# --strict` and `helm template` (which must succeed), and `helm package`, which must
# store config/tracker.yaml itself (files/tracker.yaml is a symlink to it). What the
# rendered manifests must hold (selectors, probes, HPA, PDB, security context, grace
# period, Services, spool volume, the topics hook's order, the tracker config) and the
# values the chart must refuse are checked by tests/test_chart.py, which gets helm
# from --print-helm.
#
# helm: $HELM if set, else var/bin/helm, installed there on first use with
# `go install` from the Go module proxy (a few minutes, once per machine).
#
# Environment: HELM (a helm binary to use), HELM_VERSION (v3.22.0),
# KUBE_VERSION (1.30.0), PYTHON (python3, for the package check).
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
if [ "${1:-}" = --print-helm ]; then
    echo "$HELM"
    exit 0
fi

# Each case: a name, then helm arguments.
CASES=()
add_case() {
    CASES+=("$1|${2:-}")
}
add_case default
for file in "$CHART"/ci/*-values.yaml; do
    [ -e "$file" ] || continue
    add_case "ci/$(basename "$file")" "-f $file"
done
add_case "--set autoscaling.enabled=true" "--set autoscaling.enabled=true"
# The spool on another volume source: the default emptyDir must give way.
add_case "--set spool.volume.hostPath.path=/x" "--set spool.volume.hostPath.path=/x"
add_case "--set-json spool.volume=<hostPath>" \
    '--set-json spool.volume={"hostPath":{"path":"/var/lib/tracker-spool","type":"Directory"}}'
# The README's recipe for changing the config: config/tracker.yaml copied under `config:`.
{
    echo "config:"
    sed 's/^/  /' "$ROOT/config/tracker.yaml"
} >"$WORK/copied-config-values.yaml"
add_case "config=<copy of config/tracker.yaml>" "-f $WORK/copied-config-values.yaml"

names=()
for case in "${CASES[@]}"; do
    IFS='|' read -r name args <<<"$case"
    # shellcheck disable=SC2086  # args is a list of words without spaces inside
    quiet "helm lint --strict ($name)" "$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART" $args
    # shellcheck disable=SC2086
    if ! "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" \
        --kube-version "$KUBE_VERSION" $args >/dev/null 2>"$WORK/err.log"; then
        cat "$WORK/err.log" >&2
        die "helm template ($name) failed"
    fi
    names+=("$name")
done

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

echo "helm.sh: $HELM_USED: chart OK: lint --strict and template for ${#names[@]} value sets" \
    "(${names[*]}); package holds config/tracker.yaml"
