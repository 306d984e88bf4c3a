"""tracker: tracking URLs in, validated events out to Kafka and other collectors.

The public plugin API is :mod:`tracker.plugins` (``Collector``,
``Preprocessor``) and :mod:`tracker.event` (``Event``).
"""
