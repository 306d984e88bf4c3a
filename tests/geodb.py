"""A small MaxMind-format database for the geoip tests, written with mmdb-writer.

The layout is GeoLite2's (``country.iso_code``, ``subdivisions[].iso_code``),
with documentation and test addresses only: nothing here is real geography.
"""

from __future__ import annotations

from pathlib import Path

#: Network -> (country, subdivision or None).
NETWORKS: dict[str, tuple[str, str | None]] = {
    "198.51.100.0/24": ("DE", "BE"),
    "203.0.113.0/24": ("FR", None),
    "192.0.2.0/24": ("US", "CA"),
    "2001:db8::/32": ("JP", "13"),
}


def write_db(path: Path, networks: dict[str, tuple[str, str | None]] | None = None) -> Path:
    """Write a country database of ``networks`` (default :data:`NETWORKS`) to ``path``."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="Test-Country")
    for network, (country, subdivision) in (networks or NETWORKS).items():
        record: dict = {"country": {"iso_code": country, "names": {"en": country}}}
        if subdivision is not None:
            record["subdivisions"] = [{"iso_code": subdivision}]
        writer.insert_network(IPSet([network]), record)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    writer.to_db_file(str(tmp))
    # Replaced in one rename, as an operator (or geoipupdate) does.
    tmp.replace(path)
    return path
