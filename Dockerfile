# The tracker image: `docker build -t tracker .`, then
#   docker run --rm -p 8080:8080 -p 127.0.0.1:9090:9090 -e TRACKER_KAFKA_BOOTSTRAP=broker:9092 tracker
# It runs as uid 10001 and writes only to /tmp, $PROMETHEUS_MULTIPROC_DIR,
# $TRACKER_LOG_DIR and $TRACKER_SPOOL_DIR (mount a volume there: see
# docs/delivery.md), so it also runs with a read-only root filesystem
# (docker run --read-only --tmpfs /tmp --tmpfs /var/lib/tracker ..., or the Helm chart).

# Both stages use the same Python, so the venv's interpreter links stay valid.
ARG PYTHON_IMAGE=python:3.11-slim
# Extras to install: empty for the tracker, "reporting" for an image that also runs
# `tracker load` (clickhouse-connect, chdb; helm: loader.image).
ARG EXTRAS=""

# --- builder: compiles meinheld (no wheel for 3.11) and fills /opt/venv -----------
FROM ${PYTHON_IMAGE} AS builder
# The compiler is for this stage only and never reaches the runtime image; pinned
# Debian versions would break the build at each security update of the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev patch \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, so that a source change does not rebuild meinheld.
# meinheld's metadata pins greenlet<0.5, which does not build on 3.11: install
# greenlet>=3 first, then meinheld without its dependencies, from source with a
# Server header that names no server and clear refusals without a reset
# (scripts/meinheld.sh applies scripts/meinheld/*.patch).
COPY constraints.txt ./
COPY scripts/meinheld.sh ./scripts/
COPY scripts/meinheld ./scripts/meinheld
RUN pip install -c constraints.txt 'greenlet>=3' \
    && bash scripts/meinheld.sh python
COPY pyproject.toml setup.cfg setup.py README.md* ./
COPY tracker ./tracker
COPY collectors ./collectors
ARG EXTRAS
RUN pip install -c constraints.txt ".${EXTRAS:+[${EXTRAS}]}" \
    && tracker --help > /dev/null

# --- runtime -----------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 tracker \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin tracker \
    && mkdir -p /var/lib/tracker/log /var/lib/tracker/spool \
    && chown -R 10001:10001 /var/lib/tracker
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY config ./config
# The .pyc files were compiled at install time; none are written at run time.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TRACKER_BIND=0.0.0.0:8080 \
    TRACKER_ADMIN_BIND=0.0.0.0:9090 \
    TRACKER_GUNICORN_CONF=/app/config/gunicorn.conf.py \
    TRACKER_CONFIG=/app/config/tracker.yaml \
    TRACKER_LOG_DIR=/var/lib/tracker/log \
    TRACKER_SPOOL_DIR=/var/lib/tracker/spool \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
USER 10001:10001
# 8080: tracking paths, /healthz, /readyz; 9090: the admin listener (/metrics).
EXPOSE 8080 9090
# For plain Docker; Kubernetes ignores it and uses the chart's probes.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["tracker"]
CMD ["serve"]
