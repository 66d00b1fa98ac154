"""Requirements a wheelhouse lacks for another interpreter (used by scripts/build-image.sh).

``pip wheel`` on the host resolves environment markers for the host's Python, so a wheelhouse
built with Python 3.11.7 lacks what the image's Python (Debian's 3.11.2) needs behind a marker
such as ``python_full_version < "3.11.3"``. This walks the project's dependencies through
every wheel's ``Requires-Dist``, evaluating the markers for the target interpreter, and prints,
one per line, each requirement whose project has no wheel in the folder. Usage::

    python deploy/wheelhouse_missing.py WHEELHOUSE pyproject.toml '<target environment JSON>'

The target environment is what ``packaging.markers.default_environment()`` returns there (the
script computes it without ``packaging`` when run with ``--environment``).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import zipfile
from email.parser import Parser
from pathlib import Path


def environment() -> dict[str, str]:
    """This interpreter's marker environment (PEP 508), with the standard library only."""
    impl = sys.implementation
    version = f"{impl.version.major}.{impl.version.minor}.{impl.version.micro}"
    return {
        "implementation_name": impl.name,
        "implementation_version": version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def missing(wheelhouse: Path, roots: list[str], target: dict[str, str]) -> list[str]:
    """Requirements reachable from ``roots`` for ``target`` that have no wheel in ``wheelhouse``."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename

    requires: dict[str, list[Requirement]] = {}
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name = canonicalize_name(parse_wheel_filename(wheel.name)[0])
        with zipfile.ZipFile(wheel) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            message = Parser().parsestr(zf.read(meta).decode("utf-8"))
        requires[name] = [Requirement(r) for r in message.get_all("Requires-Dist") or []]

    def applies(req: Requirement, extras: frozenset[str]) -> bool:
        return req.marker is None or any(
            req.marker.evaluate({**target, "extra": extra}) for extra in {"", *extras}
        )

    out: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in roots]
    todo = [r for r in todo if applies(r, frozenset())]
    while todo:
        req = todo.pop()
        name, extras = canonicalize_name(req.name), frozenset(req.extras)
        if name not in requires:
            req.marker = None
            out.add(str(req))
            continue
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        todo += [dep for dep in requires[name] if applies(dep, extras)]
    return sorted(out)


def roots_of(pyproject: Path) -> list[str]:
    """The project's own dependencies (what the image installs) plus the build backend."""
    import tomllib

    data = tomllib.loads(pyproject.read_text())
    return [*data["project"]["dependencies"], *data["build-system"]["requires"]]


def main(argv: list[str]) -> int:
    if argv == ["--environment"]:
        print(json.dumps(environment()))
        return 0
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    wheelhouse, pyproject, target = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    for line in missing(wheelhouse, roots_of(pyproject), target):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
