"""Finding plugins through entry points."""

from __future__ import annotations

import pytest

from collectors.kafka import KafkaCollector
from collectors.log import LogCollector
from tracker.plugins import (
    COLLECTOR_GROUP,
    PREPROCESSOR_GROUP,
    Collector,
    PluginLoadError,
    Preprocessor,
    load_plugin,
)
from tracker.preprocessors.ip import IpAnonymiser


def test_builtins_are_entry_points():
    assert load_plugin(COLLECTOR_GROUP, "kafka", Collector) is KafkaCollector
    assert load_plugin(COLLECTOR_GROUP, "log", Collector) is LogCollector
    assert load_plugin(PREPROCESSOR_GROUP, "ip_anonymise", Preprocessor) is IpAnonymiser


def test_unknown_plugin_lists_what_is_installed():
    with pytest.raises(PluginLoadError) as info:
        load_plugin(COLLECTOR_GROUP, "s3", Collector)
    assert str(info.value) == (
        "no plugin 's3' in entry-point group 'tracker.collectors' "
        "(installed: banker, kafka, log, memory)"
    )


def test_wrong_base_class_names_the_distribution():
    with pytest.raises(PluginLoadError) as info:
        load_plugin(COLLECTOR_GROUP, "kafka", Preprocessor)
    assert str(info.value) == (
        "plugin 'kafka' (collectors.kafka:KafkaCollector from distribution 'tracker') "
        "is not a subclass of tracker.plugins.Preprocessor"
    )
