"""Where one pipeline run keeps its files, and the settings each task builds when it starts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from trajops.errors import ConfigError, NotFoundError, ValidationError
from trajops.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MANIFEST = "manifest.json"


def pipeline_settings() -> Settings:
    """Settings from the task's environment; a bad ``TRAJOPS_*`` value is a clear ConfigError."""
    try:
        return Settings()
    except PydanticValidationError as exc:
        lines = [
            f"TRAJOPS_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        ]
        raise ConfigError(
            "invalid configuration: " + "; ".join(lines),
            details=[{"loc": list(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()],
        ) from None


def safe_key(run_key: str) -> str:
    """``run_key`` as a file-name-safe string (Airflow run ids hold ``:`` and ``+``)."""
    key = _UNSAFE.sub("_", run_key.strip()).strip("._")
    if not key:
        raise ValidationError(
            f"invalid pipeline run key {run_key!r}", details=[{"loc": ["run_key"], "msg": "empty"}]
        )
    if key != run_key or len(key) > 200:
        # Replacing characters or cutting can map two run keys to one (``a:b`` and ``a_b``):
        # a digest of the raw key keeps their workspaces and MLflow runs apart.
        return f"{key[:190]}-{hashlib.sha256(run_key.encode()).hexdigest()[:8]}"
    return key


def seed_of(run_key: str) -> int:
    """A stable seed per run key: a rerun simulates the same data, a new run new data."""
    return int.from_bytes(hashlib.sha256(run_key.encode()).digest()[:4], "big") % (2**31)


def write_json(path: Path, document: Any) -> Path:
    """Write ``document`` atomically (temp file + rename): a killed task leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2, sort_keys=True, default=str)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class Workspace:
    """The folder of one pipeline run: ``<pipeline_root>/<run key>/``.

    Attributes:
        key: the file-name-safe run key (also the prefix of the run's MLflow run names).
        root: the folder.
    """

    key: str
    root: Path

    @classmethod
    def of(cls, settings: Settings, run_key: str) -> Workspace:
        """The workspace of ``run_key`` under ``settings.pipeline_root`` (default home/pipelines)."""
        key = safe_key(run_key)
        base = settings.pipeline_root or settings.home / "pipelines"
        return cls(key, (base / key).resolve())

    def split(self, name: str) -> Path:
        """Tracks of one split (``train``, ``val``, ``test``) as Parquet."""
        return self.root / "data" / f"{name}.parquet"

    def windows(self, name: str) -> Path:
        """Windows of one split (``.npz``: traj, neighbours, scene, agent_id, start_frame)."""
        return self.root / "windows" / f"{name}.npz"

    def features(self, name: str) -> Path:
        """Kinematic features of one split's observed windows (Parquet)."""
        return self.root / "features" / f"{name}.parquet"

    def file(self, name: str) -> Path:
        return self.root / name

    def read(self, name: str) -> dict[str, Any]:
        """A JSON document an earlier task wrote.

        Raises:
            NotFoundError: the document is missing (the upstream task has not run here).
        """
        path = self.file(name)
        if not path.exists():
            raise NotFoundError(
                f"{path} is missing: run the upstream task of pipeline run {self.key} first",
                details=[{"loc": ["workspace", name], "msg": "missing"}],
            )
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document

    def write(self, name: str, document: dict[str, Any]) -> Path:
        return write_json(self.file(name), document)
