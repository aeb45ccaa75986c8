"""solve/heap.py: what the allocator holds free goes back to the system, nothing else changes."""

from __future__ import annotations

import platform
import sys
import threading
import time

import pytest

from optimizer.solve.heap import _malloc_trim, release_free_memory, trimming

heap = sys.modules["optimizer.solve.heap"]  # `optimizer.solve` the attribute is the solve() function

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's; elsewhere release_free_memory does nothing")
def test_free_memory_inside_the_heap_goes_back_to_the_system():
    # 3,200 blocks of 64 KiB (below glibc's 128 KiB mmap threshold: they come from the heap), then a
    # small block after them, so that freeing the big ones leaves ~200 MB free *inside* the heap,
    # which free() alone never returns (it trims only the heap's top). malloc_trim(0) does.
    pin = _free_inside_the_heap(200)
    before = _rss_mb()
    assert release_free_memory() is True
    assert before - _rss_mb() > 150  # MB; the 200 MB freed, less what glibc keeps
    assert len(pin) == 64 * 1024  # what the program holds is untouched


def _free_inside_the_heap(mb: int):
    """``mb`` MB freed inside the heap (a block kept after them); the kept block is returned."""
    blocks = [bytearray(64 * 1024) for _ in range(mb * 16)]
    pin = bytearray(64 * 1024)
    for b in blocks:
        b[::4096] = b"\x01" * len(b[::4096])
    del blocks
    return pin


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_trimming_returns_free_memory_while_the_block_runs():
    # the block frees 200 MB inside the heap, then waits (GIL released, as in a HiGHS run): the
    # thread trims within every_s, before the block ends
    with trimming(every_s=0.1):
        pin = _free_inside_the_heap(200)
        during = _rss_mb()
        for _ in range(50):
            time.sleep(0.05)
            if during - _rss_mb() > 150:
                break
        assert during - _rss_mb() > 150
    assert len(pin) == 64 * 1024
    assert not [t for t in threading.enumerate() if t.name == "heap-trim"]  # the thread is gone


def test_trimming_trims_at_the_end_of_a_long_block_only(monkeypatch):
    # who trims when: the background thread every every_s, the block's own thread once at its end
    # when the block lasted every_s; a shorter block (a sweep point) is left alone
    calls = []
    monkeypatch.setattr(heap, "_malloc_trim", lambda: lambda pad: calls.append(threading.current_thread().name) or 1)
    with trimming(every_s=3600.0, after_s=3600.0):
        pass
    assert calls == []
    with trimming(every_s=0.05, after_s=0.2):
        time.sleep(0.3)
    main = threading.current_thread().name
    assert calls.count(main) == 1 and calls[-1] == main  # once, at the end
    assert calls.count("heap-trim") >= 1  # and while it ran


def test_without_malloc_trim_it_does_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_malloc_trim", lambda: None)
    assert release_free_memory() is False
    with trimming(every_s=0.01):
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "heap-trim"]  # none was started


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_glibc_has_malloc_trim():
    assert _malloc_trim() is not None
