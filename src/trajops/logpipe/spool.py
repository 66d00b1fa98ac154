"""The local spool: fsynced JSON lines of log rows the store could not take yet.

Several processes share one spool folder (API workers, their writer processes, replicas on one
volume). Appends to ``spool.jsonl`` hold an exclusive ``flock`` on the folder's lock file; a
replay claims the spool by renaming it, under the same lock, to a name of its own
(``spool.replaying-<id>.jsonl``) and holds a ``flock`` on the claimed file until it has
inserted and removed it. No append can land in a file being replayed, two processes never
replay one file, and a claim left by a process that died (its lock is gone with it) is taken
over by the next replay. ``flock`` needs the processes on one host (a local or container
volume, not NFS).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from trajops._ids import ordered_hex

SPOOL_FILE = "spool.jsonl"
_CLAIMED = "spool.replaying*.jsonl"  # claimed by a replay (also the name before claims had ids)
_LOCK_FILE = ".spool.lock"
MAX_CLAIMS_PER_REPLAY = 64
"""Most files one replay claims in a row (others may keep spooling meanwhile)."""


def spool_files(spool_dir: Path) -> list[Path]:
    """The spool file and the files claimed by replays, those that exist."""
    try:
        claimed = sorted(spool_dir.glob(_CLAIMED))
    except OSError:
        claimed = []
    spool = spool_dir / SPOOL_FILE
    return [spool, *claimed] if spool.exists() else claimed


def count_spooled(spool_dir: Path) -> int:
    """Rows waiting in ``spool_dir``'s spool files."""
    total = 0
    for path in spool_files(spool_dir):
        try:
            with path.open("rb") as fh:
                total += sum(1 for _ in fh)
        except FileNotFoundError:  # renamed or removed by a replay meanwhile
            continue
    return total


@contextlib.contextmanager
def _folder_lock(spool_dir: Path) -> Iterator[None]:
    """Exclusive ``flock`` of ``spool_dir``: appends and claims of the spool, across processes
    and threads (each holder opens the lock file itself)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(spool_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def append_spool(spool_dir: Path, data: bytes) -> None:
    """Append JSON lines (``{"table", "row"}``) to the spool file, fsynced before returning."""
    with _folder_lock(spool_dir), (spool_dir / SPOOL_FILE).open("ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _lock_claim(path: Path) -> int | None:
    """An open descriptor holding ``path``'s ``flock``, or None when another process holds it
    (a replay in progress) or the file is gone (replayed meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == os.stat(path).st_ino:  # still the file at that name
            return fd
    except OSError:  # locked by a live replay, or removed since it was opened
        pass
    os.close(fd)
    return None


def claim_spool(spool_dir: Path) -> tuple[Path, int] | None:
    """A spool file for this caller alone to replay, with the descriptor holding its lock.

    Claims left by processes that died come first, oldest claim first (their rows are older);
    else the spool itself, renamed under the folder lock. The caller inserts the file's rows,
    removes the file and closes the descriptor; closing it without removing leaves the claim
    to the next replay.
    """
    for path in spool_files(spool_dir):
        if path.name != SPOOL_FILE and (fd := _lock_claim(path)) is not None:
            return path, fd
    with _folder_lock(spool_dir):
        spool = spool_dir / SPOOL_FILE
        if not spool.exists():
            return None
        # Locked before it is renamed: a claimed name is never seen without its lock. (Appends
        # lock the folder, not the file, and none is in progress while the folder is ours.)
        fd = os.open(spool, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        claimed = spool_dir / f"spool.replaying-{ordered_hex()}.jsonl"  # sorts by claim time
        os.replace(spool, claimed)
    return claimed, fd
