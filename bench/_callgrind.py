"""Instruction counts under ``valgrind --tool=callgrind`` for the benches.

A child process runs with instrumentation off (``--instr-atstart=no``) and switches it on and
off around the part to count with :func:`counting`. Counting the same work at two sizes and
dividing the difference by the difference in size cancels what every run does once (imports,
set-up, warm-up). Instruction counts do not depend on what else the machine is doing, so they
settle differences that its noise hides.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SIZES = (1000, 3000)
"""Work sizes (requests) counted; per request = (count at 3000 - count at 1000) / 2000."""


def available() -> bool:
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


@contextlib.contextmanager
def counting() -> Iterator[None]:
    """Instrument the body only (inside a child started by :func:`instructions`)."""
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)


def instructions(argv: list[str], out: Path, env: Mapping[str, str] | None = None) -> int:
    """Instructions that ``argv`` (a Python child using :func:`counting`) counted."""
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
        *argv,
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**(env if env is not None else os.environ), "PYTHONHASHSEED": "0"},
    )
    found = [line for line in done.stderr.splitlines() if "Collected :" in line]
    if done.returncode != 0 or not found:
        raise SystemExit(f"callgrind run of {argv[-2:]} failed:\n{done.stderr[-2000:]}")
    return int(found[-1].split(":")[-1])


def per_request(
    argv_for: dict[int, list[str]], out_dir: Path, tag: str, env: Mapping[str, str] | None = None
) -> int:
    """Instructions per request from the counts at both :data:`SIZES`, run side by side."""
    with ThreadPoolExecutor(len(SIZES)) as pool:
        few, many = pool.map(
            lambda n: instructions(argv_for[n], out_dir / f"callgrind-{tag}-{n}.out", env), SIZES
        )
    return round((many - few) / (SIZES[1] - SIZES[0]))
