"""The model registry behind a small adapter: versions, aliases and tags of one registered model.

Serving, batch and experiments reuse it to resolve ``champion`` / ``challenger`` / a version
number to a loadable ``models:/`` URI without touching MLflow themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from trajops._refs import MAX_VERSION, parse_version
from trajops.errors import ModelNotFoundError, ValidationError
from trajops.settings import Settings
from trajops.tracking.backend import connect, translate_errors

METRIC_TAG_PREFIX = "metric."
"""Version tags holding a test metric of the version's training run (``metric.ade`` ...)."""
ALIASES = ("champion", "challenger")
"""The aliases trajops manages."""


@dataclass(frozen=True)
class ModelVersionInfo:
    """What trajops needs to know about one registered model version."""

    name: str
    version: int
    run_id: str | None
    source: str
    status: str
    aliases: tuple[str, ...]
    created_at: datetime
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """A ``models:/`` URI that loads exactly this version."""
        return f"models:/{self.name}/{self.version}"

    @property
    def metrics(self) -> dict[str, float]:
        """Test metrics recorded on the version as ``metric.*`` tags."""
        out: dict[str, float] = {}
        for key, value in self.tags.items():
            if key.startswith(METRIC_TAG_PREFIX):
                try:
                    out[key[len(METRIC_TAG_PREFIX) :]] = float(value)
                except ValueError:
                    continue
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (for ``trajops models list --json`` and the API)."""
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "source": self.source,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "metrics": self.metrics,
            "tags": {k: v for k, v in self.tags.items() if not k.startswith(METRIC_TAG_PREFIX)},
        }

    @classmethod
    def from_mlflow(cls, mv: ModelVersion) -> ModelVersionInfo:
        return cls(
            name=mv.name,
            version=int(mv.version),
            run_id=mv.run_id or None,
            source=mv.source or "",
            status=str(mv.status),
            aliases=tuple(sorted(mv.aliases or ())),
            created_at=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, tz=UTC),
            tags=dict(mv.tags or {}),
        )


class Registry:
    """One registered model (``settings.model_name``) in the MLflow model registry."""

    def __init__(self, client: MlflowClient, name: str, *, uri: str = "") -> None:
        self.client = client
        self.name = name
        self._where = f"model registry {uri}".strip()

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """Connect to the configured backend (raises ``TrackingUnavailable`` when it is down)."""
        return cls(connect(settings), settings.model_name, uri=settings.resolved_registry_uri)

    # --- the registered model ---------------------------------------------------------
    def exists(self) -> bool:
        """Whether the registered model exists yet (it appears with its first version)."""
        with translate_errors(self._where):
            return bool(self.client.search_registered_models(filter_string=f"name = '{self.name}'"))

    def ensure(self) -> None:
        """Create the registered model if missing (e.g. before recording an event on it)."""
        if not self.exists():
            with translate_errors(self._where):
                self.client.create_registered_model(self.name)

    def _missing_model(self) -> str:
        return f"no registered model {self.name!r}; train one with `trajops train --register`"

    def model_tags(self) -> dict[str, str]:
        """Tags of the registered model (where the alias history lives)."""
        with translate_errors(self._where, not_found=self._missing_model()):
            return dict(self.client.get_registered_model(self.name).tags or {})

    def set_model_tag(self, key: str, value: str) -> None:
        with translate_errors(self._where, not_found=self._missing_model()):
            self.client.set_registered_model_tag(self.name, key, value)

    # --- versions ---------------------------------------------------------------------
    def list_versions(self) -> list[ModelVersionInfo]:
        """Every version, oldest first (empty when the model does not exist yet)."""
        with translate_errors(self._where):
            found = self.client.search_model_versions(
                filter_string=f"name = '{self.name}'", max_results=10_000
            )
        # Search results do not carry aliases on every store: take them from the model.
        by_version: dict[int, list[str]] = {}
        for alias, number in (self.aliases() if found else {}).items():
            by_version.setdefault(number, []).append(alias)
        infos = [ModelVersionInfo.from_mlflow(mv) for mv in found]
        infos = [
            replace(v, aliases=tuple(sorted(set(v.aliases) | set(by_version.get(v.version, [])))))
            for v in infos
        ]
        return sorted(infos, key=lambda v: v.version)

    def get_version(self, version: int | str) -> ModelVersionInfo:
        """One version by number.

        Raises:
            ModelNotFoundError: no such version (or no such registered model).
        """
        number = parse_version(version)
        if number is None:
            raise ValidationError(f"not a version number: {version!r}")
        message = f"model {self.name!r} has no version {number}"
        if number > MAX_VERSION:  # no registry stores it; the query would overflow its column
            raise ModelNotFoundError(message)
        with translate_errors(self._where, not_found=message):
            return ModelVersionInfo.from_mlflow(
                self.client.get_model_version(self.name, str(number))
            )

    def alias_version(self, alias: str) -> ModelVersionInfo | None:
        """The version carrying ``alias``, or None when the alias is not set."""
        if not self.exists():
            return None
        with translate_errors(self._where):
            try:
                mv = self.client.get_model_version_by_alias(self.name, alias)
            except MlflowException as exc:  # a missing alias is a normal answer here
                if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                    return None
                raise
        return ModelVersionInfo.from_mlflow(mv)

    def resolve(self, ref: str | int) -> ModelVersionInfo:
        """A version number (``3``, ``v3``) or an alias (``champion``) -> that version.

        Raises:
            ModelNotFoundError: an unknown version, an unset alias or no registered model.
        """
        number = parse_version(ref)
        if number is not None:
            return self.get_version(number)
        found = self.alias_version(str(ref))
        if found is None:
            if not self.exists():
                raise ModelNotFoundError(self._missing_model())
            raise ModelNotFoundError(f"model {self.name!r} has no version with alias {ref!r}")
        return found

    def aliases(self) -> dict[str, int]:
        """Every alias of the model and the version it points at."""
        if not self.exists():
            return {}
        with translate_errors(self._where):
            model = self.client.get_registered_model(self.name)
        return {alias: int(version) for alias, version in (model.aliases or {}).items()}

    def download_run_artifact(self, version: ModelVersionInfo, path: str, dst: Path) -> Path:
        """Download ``path`` from the training run of ``version`` into ``dst``.

        Raises:
            ModelNotFoundError: the version has no run, or the run has no such artifact.
        """
        if not version.run_id:
            raise ModelNotFoundError(f"v{version.version} of {self.name!r} has no training run")
        message = f"the run of v{version.version} of {self.name!r} has no artifact {path!r}"
        with translate_errors(self._where, not_found=message):
            try:
                local = self.client.download_artifacts(version.run_id, path, str(dst))
            except OSError:
                raise ModelNotFoundError(message) from None
        if not Path(local).exists():
            raise ModelNotFoundError(message)
        return Path(local)

    def run_tags(self, version: ModelVersionInfo) -> dict[str, str]:
        """Tags of the training run of ``version`` (its data lineage); empty without a run."""
        if not version.run_id:
            return {}
        with translate_errors(self._where, not_found=f"the run of v{version.version} is gone"):
            return dict(self.client.get_run(version.run_id).data.tags)

    # --- writes -----------------------------------------------------------------------
    def create_version(
        self, *, model_id: str, run_id: str, tags: dict[str, str]
    ) -> ModelVersionInfo:
        """Register the logged model ``model_id`` (of run ``run_id``) as a new version."""
        self.ensure()
        with translate_errors(self._where):
            mv = self.client.create_model_version(
                self.name, source=f"models:/{model_id}", run_id=run_id, tags=tags, model_id=model_id
            )
        return ModelVersionInfo.from_mlflow(mv)

    def set_alias(self, alias: str, version: int) -> None:
        with translate_errors(
            self._where, not_found=f"model {self.name!r} has no version {version}"
        ):
            self.client.set_registered_model_alias(self.name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        with translate_errors(self._where, not_found=f"model {self.name!r} has no alias {alias!r}"):
            self.client.delete_registered_model_alias(self.name, alias)

    def set_version_tags(self, version: int, tags: dict[str, Any]) -> None:
        with translate_errors(
            self._where, not_found=f"model {self.name!r} has no version {version}"
        ):
            for key, value in tags.items():
                self.client.set_model_version_tag(self.name, str(version), key, str(value))
