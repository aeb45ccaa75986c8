"""Give the memory HiGHS frees back to the operating system: ``release_free_memory()``, ``trimming()``.

Why. HiGHS allocates its working memory per run and frees it at the end: a MIP round's presolved
copy, search tree, cut and conflict pools; an LP's factorization and row-wise copies. On the large
benchmark (206k columns, 229k rows) that is about 1 GB a run. glibc's allocator keeps what is
freed in its arenas for reuse, so the resident size stays at its high-water mark and the next
phase (the next round, the repair LP, the plan's evaluation) adds its own on top of memory
nobody uses. ``malloc_trim(0)`` returns the free pages of every arena to the system (it only
releases what is already free: nothing the program holds changes).

Within a run too: a MIP search frees what its sub-MIP heuristics and presolve copies took, and
allocates again. ``trimming()`` wraps a HiGHS run (which releases the GIL) with a thread that
trims every ``TRIM_EVERY_S`` seconds, and once at its end when the run lasted ``TRIM_AFTER_S``; a
shorter run (every sweep point of the demo) is left alone: it freed little, and what it freed is
what the next run reuses, while a trimmed page has to be faulted in again (trimming after every
run made a persistent demo sweep ~4 % slower).

Measured (`benchmarks/memory.py`, RSS sampled every 0.25 s; benchmarks/README.md, seventh pass).
Large benchmark, seed 0, 300 s: after the first MIP round the process held 1,865 MB untrimmed and
1,005 MB trimmed, against 992 MB before the round; peak growth (ru_maxrss) 2,129 MB without trims,
1,847 MB trimming every second, 1,940 MB every 5 s (one run each: the search's path, and its
memory, move by ~100 MB from run to run). A trim took 1.6 ms (median of 297) and at most 46 ms on
that 2 GB heap. Trimming every second cost the 27-leaf tree benchmark 2-3 % (the pages HiGHS frees
and takes again within a second are faulted in again: benchmarks/trees.py, tree 13.2 / 12.5 /
12.0 s and two-stage 17.2 / 16.3 / 16.3 s, against 12.5 / 12.1 / 11.9 and 16.0 / 15.9 / 16.0 s
for the code before trims); every 5 s, nothing measurable (11.8 / 12.2 and 16.2 / 16.2 s).

Elsewhere than glibc (macOS, musl, Windows) there is no ``malloc_trim``: nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time
from contextlib import contextmanager

TRIM_EVERY_S = 5.0  # seconds between two trims while a HiGHS run goes on (trimming())
TRIM_AFTER_S = 1.0  # a run (or a hand-off) that lasted this long is trimmed at its end


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim`` (int malloc_trim(size_t pad)), or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the allocator's free memory to the system; True when something was returned
    (glibc's ``malloc_trim(0)`` said so), False otherwise or where it does not exist."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


@contextmanager
def trimming(every_s: float = TRIM_EVERY_S, after_s: float = TRIM_AFTER_S):
    """While the block runs, return the free memory to the system every ``every_s`` seconds from a
    background thread (the block must release the GIL, as a HiGHS run does), and once at its end
    when it lasted ``after_s``. A shorter block is left alone: it freed little, and what it freed
    is what the next one reuses (a trimmed page must be faulted in again: a persistent sweep of the
    demo was ~4 % slower trimming after every run)."""
    trim = _malloc_trim()
    if trim is None:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            trim(0)

    thread = threading.Thread(target=loop, daemon=True, name="heap-trim")
    t0 = time.perf_counter()
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if time.perf_counter() - t0 >= after_s:
            trim(0)
