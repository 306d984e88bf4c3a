"""Reporting: tracker events loaded into ClickHouse exactly once, and the campaign report.

``tracker load`` (:mod:`tracker.reporting.loader`) consumes the event topics and
writes them to ClickHouse, embedded (chdb, the default, under ``var/reporting``)
or a server (clickhouse-connect); ``tracker report`` (:mod:`tracker.reporting.query`)
counts distinct event ids per campaign and day. The design and the exactness
argument are in ``docs/reporting.md``. chdb and clickhouse-connect are the
optional ``[reporting]`` extra: nothing here imports them at module level.
"""
