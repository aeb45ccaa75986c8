"""Directories a reader can trust: every file written whole, and a manifest written last.

A process can die at any instant (kill -9, out of memory, a power cut, Ctrl-C twice). A reader
of a directory must then never mistake what was left for a finished result: a ``summary.json``
saying "optimal" next to missing plan tables once let ``report`` exit 0 and ``evaluate --plan``
score an empty plan. The rule, for every directory the optimizer writes as a unit (a result
directory, a ``plan/`` folder, a frontier or tornado output):

1. ``begin(dir, stale)``: create the marker ``.incomplete`` and delete ``manifest.json`` (from
   now on the directory is incomplete), then the previous run's files that this run will not
   rewrite (``stale``), and temporary files an earlier killed run left behind;
2. write each file under a temporary name in the same directory and ``os.replace`` it into
   place (``atomic_file``): a file is either absent, or the previous one, or the new one whole;
3. ``finish(dir, files, kind)``: check every listed file exists and write ``manifest.json``
   (itself atomically, fsync'ed with its directory) listing them, then remove the marker.

A reader calls ``check_complete(dir)``: no manifest, an unreadable one, or a listed file missing
is one ``InputError`` line saying the directory is incomplete and how to get a complete one.
Readers read only listed files; files edited after the run are read as they are (the manifest
proves completeness, not authorship). Without a manifest, the marker tells an interrupted write
from a folder made by hand (``Plan.from_dir`` accepts the latter). Sweep stores are append-only and resumable, so their
completeness lives in their own metadata (``optimizer.analysis.sweep``), not here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from optimizer.errors import InputError

MANIFEST = "manifest.json"
MARKER = ".incomplete"           # present from begin() to finish(): a write is (or was, if killed) under way
FORMAT = "optimizer-directory"
_TMP_MARK = ".tmp-"


def _tmp_name(path: Path) -> Path:
    """``.NAME.tmp-PID.EXT``: hidden, unique per process, and with the extension kept last for
    writers that infer the format from it (matplotlib)."""
    return path.with_name(f".{path.stem}{_TMP_MARK}{os.getpid()}{path.suffix}")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform without directory handles: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once the block finishes, fsync it and rename it to
    ``path`` (atomic on POSIX and Windows). If the block raises, the temporary file is removed."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: str | Path, text: str) -> Path:
    """``path`` with ``text``, written whole or not at all."""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def begin(directory: str | Path, stale: Iterable[str] = ()) -> Path:
    """Open ``directory`` for a new write: create it, delete its manifest, the ``stale`` entries
    (paths relative to it: files or folders of a previous run this run will not rewrite) and
    temporary files of interrupted writes."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise InputError(f"{d}: exists and is not a directory")
    d.mkdir(parents=True, exist_ok=True)
    (d / MARKER).write_text(f"written by process {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
    m = d / MANIFEST
    if m.exists():
        m.unlink()
    _fsync_dir(d)  # the directory is marked incomplete before anything else changes
    for name in stale:
        _remove(d / name)
    for tmp in d.glob(f".*{_TMP_MARK}*"):
        if tmp.is_file():
            tmp.unlink()
    return d


def finish(directory: str | Path, files: Iterable[str], kind: str) -> Path:
    """Write ``manifest.json`` listing ``files`` (relative paths, all present): the last write."""
    d = Path(directory)
    names = sorted(dict.fromkeys(str(f) for f in files))
    missing = [n for n in names if not (d / n).is_file()]
    if missing:
        raise RuntimeError(f"{d}: cannot seal: {', '.join(missing)} not written")
    body = {"format": FORMAT, "kind": kind, "complete": True,
            "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": names}
    write_text(d / MANIFEST, json.dumps(body, indent=1) + "\n")
    with contextlib.suppress(FileNotFoundError):
        (d / MARKER).unlink()
    _fsync_dir(d)
    return d / MANIFEST


def being_written(directory: str | Path) -> bool:
    """A write began here and has not finished (it was interrupted, or is still running)."""
    d = Path(directory)
    return (d / MARKER).is_file() and not (d / MANIFEST).is_file()


def has_manifest(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def kind_of(directory: str | Path) -> str | None:
    """The ``kind`` a directory's manifest records (None without a readable manifest)."""
    try:
        body = json.loads((Path(directory) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return body.get("kind") if isinstance(body, dict) else None


def check_complete(directory: str | Path, what: str = "result directory") -> list[str]:
    """The files ``manifest.json`` lists, after checking each is present; else one ``InputError``
    line naming the directory, what is wrong, and what to do."""
    d = Path(directory)
    m = d / MANIFEST
    redo = "re-run the command that wrote it"
    if not m.is_file():
        why = ("the run writing it was interrupted or is still running" if (d / MARKER).is_file()
               else "the run writing it was interrupted, or it predates manifests")
        raise InputError(f"{d}: incomplete {what}: no {MANIFEST} ({why}); {redo}")
    try:
        body = json.loads(m.read_text())
        files = body["files"]
        ok = body.get("complete") is True and isinstance(files, list) and all(isinstance(f, str) for f in files)
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise InputError(f"{m}: unreadable manifest; {redo}")
    missing = [f for f in files if not (d / f).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"{d}: incomplete {what}: {missing[0]}{more} listed in {MANIFEST} but missing; {redo}")
    return list(files)
