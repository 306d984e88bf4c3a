"""The module paths docs/architecture.md and README.md name exist, so the map cannot go stale.

What counts as a name, in either file:

- a code span or a Mermaid label holding a path (``tracker/http/limits.py``,
  ``intake/fields/``): it exists from the checkout, from ``tracker/`` (the
  diagram's paths are relative to it) or from the package of its table row;
  ``var/`` is left out: the tracker and the scripts write it at run time;
- a code span with a dotted ``tracker.`` or ``collectors.`` name
  (``tracker.workers.MeinheldWorker``): it imports, or it is an entry-point
  group declared in setup.cfg (``tracker.commands``);
- in a table row whose first cell is a package (``tracker/http/``), a code
  span of one lower-case word in the second cell (``limits``, ``openapi/``):
  a module or package in it. Write anything else there so that it is not one
  bare word, and a module of a subpackage as its path (``fields/schema.py``).
"""

from __future__ import annotations

import configparser
import importlib
import re

import pytest

from tests import ROOT

DOCS = ("docs/architecture.md", "README.md")
SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
PATH = re.compile(r"^[\w.-]+(?:/[\w.-]+)*/?$")
LABEL_PATH = re.compile(r"[\w.-]+/[\w./-]*|[\w-]+\.py\b")
DOTTED = re.compile(r"^(?:tracker|collectors)(?:\.\w+)+$")
WORD = re.compile(r"^[a-z_]+/?$")


def entry_point_groups() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return set(parser["options.entry_points"])


def is_path(text: str) -> bool:
    if text.startswith(("/", "var/")) or "://" in text:
        return False  # a route (/imp), a URL, or what runs write (gitignored)
    return bool(PATH.match(text)) and ("/" in text or text.endswith(".py"))


def path_exists(text: str, base: str | None) -> bool:
    roots = [ROOT, ROOT / "tracker"] + ([ROOT / base] if base else [])
    return any((root / text).exists() for root in roots)


def in_package(word: str, base: str) -> bool:
    name = word.rstrip("/")
    return (ROOT / base / name).is_dir() or (ROOT / base / f"{name}.py").is_file()


def imports(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def names(doc: str) -> list[tuple[int, str, str | None, bool]]:
    """Each name in ``doc``: its line, its text, its table row's package, whether a bare word."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    found = []
    for fence in FENCE.finditer(text):
        if fence.group(1) == "mermaid":
            line = text.count("\n", 0, fence.start()) + 1
            labels = fence.group(2).replace("<br/>", " ")
            found += [(line, path, None, False) for path in LABEL_PATH.findall(labels)]
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for number, line in enumerate(prose.splitlines(), 1):
        cells = line.split("|")[1:] if line.startswith("|") else [line]
        first = SPAN.search(cells[0]) if len(cells) > 1 else None
        base = first.group(1) if first and first.group(1).endswith("/") else None
        for index, cell in enumerate(cells):
            for span in SPAN.findall(cell):
                bare = base is not None and index == 1 and bool(WORD.match(span))
                found.append((number, span, base, bare))
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_every_module_path_a_doc_names_exists(doc):
    groups = entry_point_groups()
    missing = []
    for line, text, base, bare in names(doc):
        if bare:
            ok = in_package(text, base)
        elif is_path(text):
            ok = path_exists(text, base)
        elif DOTTED.match(text):
            ok = text in groups or imports(text)
        else:
            continue
        if not ok:
            missing.append(f"{doc}:{line}: {text}")
    assert missing == []


def test_the_check_sees_the_names_of_each_kind():
    """The three kinds above are all found, so an empty list of misses means something."""
    found = {(text, bare) for doc in DOCS for _, text, _, bare in names(doc)}
    assert ("intake/pipeline.py", False) in found  # a Mermaid label
    assert ("tracker.workers.MeinheldWorker", False) in found  # a dotted name
    assert ("limits", True) in found  # a bare word in the rooms table
    assert ("collectors/", False) in found  # a path in README's table
