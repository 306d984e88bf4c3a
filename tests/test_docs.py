"""The examples in docs/ run as written."""

from __future__ import annotations

import re

import yaml

from collectors.memory import MemoryCollector, MemoryConfig
from tests import ROOT
from tracker.event import Event
from tracker.intake.pipeline import Pipeline


def code_blocks(doc: str, language: str) -> list[str]:
    text = (ROOT / "docs" / doc).read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_plugin_guide_collector_works_in_a_pipeline(delivery):
    (source,) = code_blocks("plugins.md", "python")
    namespace: dict = {}
    exec(compile(source, "docs/plugins.md", "exec"), namespace)
    cls = namespace["CountingCollector"]
    collector = cls("counter", namespace["CountOptions"]().load({"every": 10}))
    pipeline = Pipeline(
        {"counter": collector, "mem": MemoryCollector("mem", MemoryConfig(healthy=True))}, {}
    )
    pipeline.open()
    route = pipeline.route((), ("counter", "mem"), delivery())
    for kind in ("impression", "impression", "click"):
        pipeline.dispatch(route, Event(type=kind, path="p"))
    assert collector.counts == {"impression": 2, "click": 1}


def test_plugin_guide_yaml_is_valid_yaml():
    for block in code_blocks("plugins.md", "yaml"):
        assert isinstance(yaml.safe_load(block), dict)
