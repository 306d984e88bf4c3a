"""The project's meinheld keeps finished greenlets' frame-stack blocks (stack-chunk-cache.patch).

On Python 3.11 each new greenlet takes a 16 KiB block for its frames from
CPython's arena allocator (mmap) and gives it back when it ends (munmap): a
fresh mapping, so at least one page fault per greenlet, and meinheld starts a
greenlet per request. ``server.set_stack_chunk_cache(n)``, which each worker
calls (:mod:`tracker.process.workers`), keeps up to ``n`` freed blocks for
the next greenlet instead.
"""

from __future__ import annotations

import resource

import greenlet
import pytest
from meinheld import server

from tracker.process.workers import STACK_CHUNKS

GREENLETS = 2000


def request_like() -> int:
    return sum(range(10))


def page_faults_of_greenlets(count: int) -> int:
    """Minor page faults this process takes to run ``count`` greenlets, one after another."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(count):
        greenlet.greenlet(request_like).switch()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.fixture
def cache():
    yield server.set_stack_chunk_cache
    server.set_stack_chunk_cache(STACK_CHUNKS)


def test_with_the_cache_greenlets_cost_no_page_faults(cache):
    cache(0)
    page_faults_of_greenlets(100)
    assert page_faults_of_greenlets(GREENLETS) >= GREENLETS  # a fresh mapping each
    cache(STACK_CHUNKS)
    page_faults_of_greenlets(100)
    assert page_faults_of_greenlets(GREENLETS) < GREENLETS // 100


def test_nested_greenlets_beyond_the_cache_still_work(cache):
    """More live greenlets than slots: the extra blocks go back to the allocator."""
    cache(2)

    def nest(depth: int) -> int:
        if depth == 0:
            return 0
        return 1 + greenlet.greenlet(nest).switch(depth - 1)

    for _ in range(200):
        assert greenlet.greenlet(nest).switch(20) == 20


@pytest.mark.parametrize("slots", [-1, 65])
def test_a_slot_count_out_of_range_is_refused(cache, slots):
    with pytest.raises(ValueError, match="out of range"):
        cache(slots)
