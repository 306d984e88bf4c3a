"""Where the reporting tables live: embedded chdb on disk, or a ClickHouse server.

Both speak SQL and take JSONEachRow inserts with an insert deduplication token,
so the loader and the report run one code path. The database is named by a URL:
``chdb:var/reporting`` (a directory, relative to the working directory) or
``http://user:password@host:8123/database`` (clickhouse-connect).

chdb lets one process hold a data directory (a second one gets ``Cannot lock
file .../status``): :class:`Busy` tells the caller to ask the process that holds
it (the loader's admin port) instead.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from . import schema

DEFAULT_URL = "chdb:var/reporting"

#: ClickHouse error codes that mean the data, not the database, is wrong: the rows
#: of the batch are inserted one by one and the refused ones become dead letters.
DATA_ERRORS = frozenset({6, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 130, 131, 321, 349, 469})
_CODE = re.compile(r"Code: (\d+)")


class StoreError(Exception):
    """A query or insert failed; ``data_error`` when the rows, not the database, are at fault."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def data_error(self) -> bool:
        """Whether ClickHouse refused the data itself (retrying cannot help)."""
        return self.code in DATA_ERRORS


class Unavailable(StoreError):
    """The database cannot be opened or reached (not installed, stopped, unwritable)."""


class Busy(Unavailable):
    """Another process holds the embedded database's directory."""


def database_url() -> str:
    """Return ``TRACKER_REPORTING_URL``, or the embedded default under ``var/``."""
    return os.environ.get("TRACKER_REPORTING_URL", "").strip() or DEFAULT_URL


def _error(ex: Exception) -> StoreError:
    text = str(ex)
    match = _CODE.search(text)
    return StoreError(text.strip()[:2000], int(match.group(1)) if match else None)


class Store:
    """The common interface: DDL, JSON rows out, JSONEachRow rows in."""

    url: str

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing."""
        raise NotImplementedError

    def rows(self, sql: str) -> list[dict[str, Any]]:
        """Run a query; one dict per row."""
        raise NotImplementedError

    def insert(self, table: str, rows: list[dict[str, Any]], token: str) -> None:
        """Insert ``rows`` into ``table`` once: a repeat with the same token is a no-op."""
        self.insert_raw(table, b"\n".join(orjson.dumps(r) for r in rows), token)

    def insert_raw(self, table: str, body: bytes, token: str) -> None:
        """Insert JSONEachRow lines (read with :data:`schema.INSERT_SETTINGS`) once per token."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the database."""

    def create_tables(self) -> None:
        """Create the reporting tables if they do not exist."""
        for ddl in schema.DDL:
            self.execute(ddl)


class EmbeddedStore(Store):
    """chdb in this process, on ``path``; one statement at a time (a lock)."""

    def __init__(self, path: str) -> None:
        self.url = f"chdb:{os.path.abspath(path)}"
        try:
            from chdb import session
        except ImportError:
            raise Unavailable("chdb is not installed: pip install 'tracker[reporting]'") from None
        try:
            os.makedirs(path, exist_ok=True)
            self._session = session.Session(path)
            self._session.query("SELECT 1")
        except Exception as ex:
            if _held(path):
                raise Busy(f"{path} is held by another process (a running loader?)") from None
            raise Unavailable(f"cannot open {path}: {ex}") from None
        self._lock = threading.Lock()

    def _query(self, sql: str, fmt: str = "CSV") -> Any:
        with self._lock:
            try:
                return self._session.query(sql, fmt)
            except Exception as ex:
                raise _error(ex) from None

    def execute(self, sql: str) -> None:
        self._query(sql)

    def rows(self, sql: str) -> list[dict[str, Any]]:
        data = self._query(sql, "JSONEachRow").bytes()
        return [orjson.loads(line) for line in data.splitlines() if line]

    def insert_raw(self, table: str, body: bytes, token: str) -> None:
        settings = ", ".join(f"{k}={v!r}" for k, v in schema.INSERT_SETTINGS.items())
        self._query(
            f"INSERT INTO {table} SETTINGS insert_deduplication_token='{_quote(token)}',"
            f" {settings} FORMAT JSONEachRow {body.decode('utf-8', 'replace')}"
        )

    def close(self) -> None:
        with self._lock:
            self._session.close()


def _held(path: str) -> bool:
    """Whether another process holds the lock on ``path``'s ``status`` file."""
    import fcntl

    try:
        with open(os.path.join(path, "status"), "rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


class ServerStore(Store):
    """A ClickHouse server over HTTP, through clickhouse-connect."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            import clickhouse_connect
        except ImportError:
            raise Unavailable(
                "clickhouse-connect is not installed: pip install 'tracker[reporting]'"
            ) from None
        parts = urlsplit(url)
        try:
            self._client = clickhouse_connect.get_client(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                username=unquote(parts.username or "default"),
                password=unquote(parts.password or ""),
                database=parts.path.strip("/") or "default",
                secure=parts.scheme == "https",
                connect_timeout=5,
                send_receive_timeout=60,
            )
        except Exception as ex:
            raise Unavailable(
                f"cannot open a session with {parts.hostname}:{parts.port}: {ex}"
            ) from None

    def execute(self, sql: str) -> None:
        try:
            self._client.command(sql)
        except Exception as ex:
            raise _server_error(ex) from None

    def rows(self, sql: str) -> list[dict[str, Any]]:
        try:
            data = self._client.raw_query(sql, fmt="JSONEachRow")
        except Exception as ex:
            raise _server_error(ex) from None
        return [orjson.loads(line) for line in data.splitlines() if line]

    def insert_raw(self, table: str, body: bytes, token: str) -> None:
        try:
            self._client.raw_insert(
                table,
                insert_block=body,
                settings={"insert_deduplication_token": token, **schema.INSERT_SETTINGS},
                fmt="JSONEachRow",
            )
        except Exception as ex:
            raise _server_error(ex) from None

    def close(self) -> None:
        self._client.close()


def _server_error(ex: Exception) -> StoreError:
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(ex, OperationalError):
        return Unavailable(str(ex)[:2000])
    return _error(ex)


def open_store(url: str | None = None) -> Store:
    """Open the database ``url`` names (default: :func:`database_url`).

    Raises:
        Unavailable: It cannot be opened now (:class:`Busy`: another process holds it).
        ValueError: The URL names no known kind of database.
    """
    url = url or database_url()
    if url.startswith("chdb:"):
        return EmbeddedStore(url[len("chdb:") :] or "var/reporting")
    if url.startswith(("http://", "https://")):
        return ServerStore(url)
    raise ValueError(f"TRACKER_REPORTING_URL must be chdb:PATH or http(s)://..., not {url!r}")
