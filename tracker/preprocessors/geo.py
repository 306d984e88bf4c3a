"""Client address to country (and region), from a MaxMind-format database."""

from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

import tracker.metrics as metrics
from tracker.event import Event
from tracker.plugins import Health, Preprocessor

log = logging.getLogger(__name__)

#: Environment variable naming the database when the config does not.
ENV = "TRACKER_GEOIP_DB"
#: What a lookup found: ``(country, region)``, either None.
Place = tuple[str | None, str | None]
_NOWHERE: Place = (None, None)


class GeoIpOptions(Schema):
    """Options of the ``geoip`` preprocessor."""

    database = fields.String(
        load_default=None,
        allow_none=True,
        metadata={
            "description": (
                f"Path of a MaxMind-format (`.mmdb`) country or city database, GeoLite2 or "
                f"DB-IP, supplied by the operator; empty or absent: the `{ENV}` environment "
                "variable. "
                "Missing or unreadable: events get no country (one log line, counted)."
            )
        },
    )
    region = fields.Boolean(
        load_default=False,
        metadata={
            "description": (
                "Also set `region`, the ISO 3166-2 subdivision (`US-CA`), from a database "
                "that has subdivisions."
            )
        },
    )
    reload_interval = fields.Float(
        load_default=60.0,
        validate=validate.Range(min=1, max=86400),
        metadata={
            "description": (
                "Seconds between checks (one `stat`, per worker) of whether the database "
                "file was replaced; a replaced file is reopened."
            )
        },
    )
    cache_size = fields.Integer(
        load_default=16384,
        validate=validate.Range(min=16, max=1_000_000),
        metadata={"description": "Distinct addresses whose answer is kept, per worker."},
    )


class GeoIp(Preprocessor):
    """Set ``country`` (ISO 3166-1 alpha-2) and optionally ``region`` from ``context.ip``.

    The address is the one the tracker trusts (through ``server.trusted_proxies``
    and, on ``device_headers`` paths, the SSAI server's ``X-Device-IP``); it is
    looked up before ``ip_anonymise`` truncates it (the config check refuses
    the other order) and never stored by this preprocessor. City and
    coordinates are not offered.

    The database is opened in each worker; a timer thread checks every
    ``reload_interval`` seconds whether the file was replaced and reopens it,
    keeping the old one if the new one cannot be read. Failures are counted in
    ``tracker_enrichment_failures_total`` by kind: ``no_database`` (per event
    while there is none), ``invalid_ip``, ``not_found`` (private and unknown
    addresses), ``database_error`` (a failed open or lookup).
    """

    options_schema: ClassVar = GeoIpOptions
    failure_reasons: ClassVar = ("no_database", "invalid_ip", "database_error", "not_found")

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.path = options["database"] or os.environ.get(ENV) or None
        self.region = options["region"]
        self.interval = options["reload_interval"]
        self.cache_size = options["cache_size"]
        self.reader: Any = None
        self._signature: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self.lookup = self._cached(None)

    def open(self) -> None:
        """Open the database, and start the thread that watches for a replaced file."""
        if self.path is None:
            log.warning("%s: no GeoIP database (%s unset); events get no country", self.name, ENV)
            return
        self._load()
        if self.reader is None:
            log.warning("%s: no GeoIP database at %s; events get no country", self.name, self.path)
        self._timer = threading.Thread(target=self._watch, name=f"{self.name}-reload", daemon=True)
        self._timer.start()

    def close(self, timeout: float) -> int:
        """Stop the reload thread and close the database."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout)
        if self.reader is not None:
            self.reader.close()
        return 0

    def health(self) -> Health:
        """Say whether a database is loaded (readiness does not depend on it)."""
        return Health(True, "ok" if self.reader is not None else "no database")

    def process(self, event: Event) -> Event:
        """Add ``country`` (and ``region``) when the address is in the database."""
        ip = event.context.get("ip")
        if not ip:
            return event
        country, region = self.lookup(ip)
        if country is not None:
            event.dimensions["country"] = country
            if region is not None:
                event.dimensions["region"] = region
        return event

    def _cached(self, reader: Any):
        """Return a cached lookup function over ``reader`` (a new cache per database)."""
        name, with_region = self.name, self.region

        def lookup(ip: str) -> Place:
            if reader is None:
                metrics.inc(metrics.ENRICH_FAILURES, name, "no_database")
                return _NOWHERE
            try:
                record = reader.get(ip)
                if record is None and ip.startswith("::ffff:"):
                    # An IPv4 client of a dual-stack socket; the databases key it as IPv4.
                    record = reader.get(ip[7:])
            except ValueError:
                metrics.inc(metrics.ENRICH_FAILURES, name, "invalid_ip")
                return _NOWHERE
            except Exception:
                metrics.inc(metrics.ENRICH_FAILURES, name, "database_error")
                return _NOWHERE
            place = _place(record, with_region)
            if place[0] is None:
                metrics.inc(metrics.ENRICH_FAILURES, name, "not_found")
            return place

        if reader is None:
            # Nothing to remember: each event without a database is counted.
            return lookup
        return functools.lru_cache(maxsize=self.cache_size)(lookup)

    def _load(self) -> bool:
        """(Re)open the database if the file changed; return whether it was opened."""
        import maxminddb

        try:
            st = os.stat(self.path)
        except OSError:
            return False
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            reader = maxminddb.open_database(self.path)
        except Exception as ex:
            metrics.inc(metrics.ENRICH_FAILURES, self.name, "database_error")
            log.error("%s: cannot read GeoIP database %s: %s", self.name, self.path, ex)
            return False
        # One assignment: a request thread uses either the old lookup or the new.
        # The old reader is not closed here: a lookup may be using it right now;
        # it is released with the last reference to the old lookup.
        self.reader = reader
        self.lookup = self._cached(reader)
        log.info("%s: GeoIP database %s loaded (%s)", self.name, self.path, _describe(reader))
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._load()
            except Exception:
                log.exception("%s: GeoIP reload failed", self.name)


def _place(record: Any, with_region: bool) -> Place:
    """Return ``(country, region)`` of a database record (GeoLite2 and DB-IP layout)."""
    if not isinstance(record, dict):
        return _NOWHERE
    country = (record.get("country") or {}).get("iso_code")
    if not isinstance(country, str) or len(country) != 2:
        return _NOWHERE
    region = None
    if with_region:
        subdivisions = record.get("subdivisions") or ()
        code = subdivisions[0].get("iso_code") if subdivisions else None
        if isinstance(code, str) and code:
            region = f"{country}-{code}"
    return country, region


def _describe(reader: Any) -> str:
    meta = reader.metadata()
    return f"{meta.database_type}, built {meta.build_epoch}, IPv{meta.ip_version}"
