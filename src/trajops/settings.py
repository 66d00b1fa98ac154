"""One typed settings object (``TRAJOPS_*`` environment variables), built at startup, never at import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from trajops._settings_batching import BatchingSettings
from trajops._settings_loop import LoopSettings
from trajops._settings_security import SecuritySettings


class Settings(SecuritySettings, LoopSettings, BatchingSettings):
    """trajops configuration. Every field reads ``TRAJOPS_<FIELD>`` from the environment.

    The security fields (keys, users, sessions, single sign-on) are declared in
    :class:`trajops._settings_security.SecuritySettings`, the production loop's (tracks,
    production data) in :class:`trajops._settings_loop.LoopSettings`, micro-batching's in
    :class:`trajops._settings_batching.BatchingSettings`; this is the one settings object.
    """

    model_config = SettingsConfigDict(
        env_prefix="TRAJOPS_", env_file=None, extra="ignore", validate_default=True
    )

    # --- where things live -------------------------------------------------------------
    home: Path = Field(
        default=Path(".trajops"),
        description="Folder holding every embedded default's files (SQLite stores, artifacts, spool).",
    )
    data_root: Path | None = Field(
        default=None,
        description="ETH/UCY benchmark root (`<root>/<scene>/{train,val,test}/*.txt`), read by path.",
    )

    # --- tracking and registry ---------------------------------------------------------
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI. Empty: a SQLite store under `home` (embedded default).",
    )
    registry_uri: str | None = Field(
        default=None, description="MLflow registry URI. Empty: same as the tracking URI."
    )
    experiment_name: str = Field(
        default="trajectory-forecasting", description="MLflow experiment for training runs."
    )
    model_name: str = Field(
        default="trajectory-forecaster", description="Registered model name in the MLflow registry."
    )
    promotion_tolerance: float = Field(
        default=0.02,
        ge=0.0,
        description="Relative ADE a candidate may be worse than the champion and still be promoted.",
    )

    # --- serving -----------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address `trajops serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `trajops serve` binds.")
    workers: int = Field(default=1, ge=1, le=64, description="Uvicorn worker processes.")
    default_model: str = Field(
        default="champion",
        description="Registry alias or version number that serves unrouted traffic.",
    )
    exposed_models: list[str] = Field(
        default_factory=lambda: ["champion", "challenger"],
        description="Aliases or versions a `predict` key may name in a request, besides the running experiment's arms (JSON list in the environment); any other needs the `pin` scope.",
    )
    poll_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between checks of the registry for moved aliases."
    )
    max_agents: int = Field(
        default=1000, ge=1, description="Most agents accepted in one prediction request."
    )
    max_body_bytes: int = Field(
        default=2_000_000, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_coordinate: float = Field(
        default=1e4, gt=0, description="Largest absolute coordinate accepted, in metres."
    )
    timestamp_tolerance_s: float = Field(
        default=0.05,
        ge=0,
        description="Allowed deviation of given timestamps from the 0.4 s step, in seconds.",
    )

    # --- cache -------------------------------------------------------------------------
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL for the shared prediction cache. Empty: an in-process LRU.",
    )
    cache_size: int = Field(
        default=10_000,
        ge=0,
        description="Entries kept by the in-process LRU cache (0 disables it).",
    )
    cache_ttl_s: int = Field(default=300, ge=1, description="Seconds a cached prediction lives.")

    # --- operational store and prediction log ------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the operational store. Empty: SQLite under `home`.",
    )
    log_queue_size: int = Field(
        default=10_000,
        ge=1,
        description="Rows logged but not yet stored past which requests are slowed down (back-pressure); also the bound of the writer's in-memory queue.",
    )
    log_batch_size: int = Field(
        default=1000, ge=1, description="Most records the log writer inserts in one transaction."
    )
    log_flush_interval_s: float = Field(
        default=0.5, gt=0, description="Longest time a logged record waits before it is written."
    )
    log_gather_s: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="How long the log writer waits for more records before writing a batch that is not full (fewer, larger transactions; 0 writes each batch at once).",
    )
    log_writer: Literal["process", "thread"] = Field(
        default="process",
        description="Where prediction and audit rows are inserted from the write-ahead log: `process` = a writer process per API process (keeps database work off the API's interpreter lock), `thread` = a thread in the API process.",
    )
    log_fsync: bool = Field(
        default=True,
        description="Sync the write-ahead log to disk before a 2xx is sent (group commit). Off, an answered request's rows survive any process crash but not a power loss.",
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for pseudonymising agent ids. Empty: a random key kept in `home`.",
    )

    # --- drift monitoring -------------------------------------------------------------
    drift_window_size: int = Field(
        default=500,
        ge=50,
        description="Served inputs per drift window (the calibration's production window size).",
    )
    drift_min_inputs: int = Field(
        default=100, ge=10, description="Fewest served inputs a drift run accepts."
    )
    drift_interval_s: float = Field(
        default=0.0,
        ge=0,
        description="Seconds between drift runs inside the service (0: only `trajops drift run`).",
    )
    alert_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="Seconds between alert rule evaluations inside the service (0: off).",
    )
    drift_persistence_k: int = Field(
        default=2, ge=1, description="Drifted windows among the last m needed to raise an alert."
    )
    drift_persistence_m: int = Field(
        default=3, ge=1, description="Windows looked at by the drift persistence rule."
    )
    evidently_workspace: Path | None = Field(
        default=None,
        description="Local Evidently workspace folder; when set, every drift run's snapshot is "
        "added to its `trajops` project (browse with `evidently ui --workspace PATH`).",
    )

    # --- alerts ------------------------------------------------------------------------
    alert_cooldown_s: float = Field(
        default=900.0, ge=0, description="Seconds before a still-firing alert is notified again."
    )
    alert_webhook_url: str | None = Field(
        default=None, description="URL that receives each alert notification as a JSON POST."
    )
    smtp_host: str | None = Field(default=None, description="SMTP relay for alert e-mails.")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP relay port.")
    smtp_sender: str = Field(
        default="trajops@localhost", description="From address of alert e-mails."
    )
    smtp_recipients: list[str] = Field(
        default_factory=list,
        description="Recipients of alert e-mails (JSON list in the environment).",
    )
    alert_ade_ratio: float = Field(
        default=1.25,
        gt=1.0,
        description="Online ADE above this multiple of the offline ADE raises an accuracy alert.",
    )
    alert_min_feedback: int = Field(
        default=50, ge=1, description="Scored feedback needed before the accuracy rule can fire."
    )
    alert_p99_latency_ms: float = Field(
        default=250.0, gt=0, description="p99 prediction latency (ms) above which an alert fires."
    )
    alert_error_rate: float = Field(
        default=0.05, gt=0, le=1, description="Share of failed requests above which an alert fires."
    )

    # --- experiments -------------------------------------------------------------------
    experiment_interval_s: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between evaluations of the running A/B experiment inside the service (0: only `trajops experiments evaluate`).",
    )

    # --- privacy and audit -------------------------------------------------------------
    store_coordinate_decimals: int = Field(
        default=4,
        ge=0,
        le=8,
        description="Decimals kept of stored coordinates (4 = 0.1 mm; 1 = 10 cm for stronger minimisation).",
    )
    store_time_bucket_s: float = Field(
        default=0.0,
        ge=0,
        description="Stored prediction timestamps are floored to this many seconds (0 keeps them "
        "exact); when set, request ids the service makes are random, not time-ordered (a UUIDv7 "
        "would carry the time to the millisecond).",
    )
    retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Days predictions and feedback are kept before `privacy purge` deletes them.",
    )
    audit_retention_days: float = Field(
        default=365.0,
        gt=0,
        description="Days audit rows are kept (evidence; purged behind a chain anchor).",
    )
    audit_anchor_path: Path | None = Field(
        default=None,
        description="Append-only file of signed checkpoints of the audit chain's head (`audit verify` checks them). Empty: `audit-anchors.jsonl` under `home`; put it on other storage than the database.",
    )
    audit_anchor_key: SecretStr | None = Field(
        default=None,
        description="HMAC key that signs the audit checkpoints. Empty: a random key kept in `home`.",
    )
    audit_anchor_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="Seconds between checkpoints of the audit chain's head by each serving process (0: only `trajops audit verify` writes them).",
    )

    # --- batch -------------------------------------------------------------------------
    dask_scheduler: str | None = Field(
        default=None,
        description="Dask scheduler (`tcp://host:port`) for batch jobs. Empty: a local cluster per job.",
    )
    batch_root: Path | None = Field(
        default=None,
        description="Folder the API's batch jobs may read inputs from and write outputs to. Empty: `POST /v1/batch-jobs` is refused.",
    )

    # --- models ------------------------------------------------------------------------
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Torch device for the neural forecaster."
    )
    seed: int = Field(default=0, description="Default random seed for training and simulation.")

    # --- pipelines (Airflow DAGs in dags/, read when a DAG file is parsed) ---------------
    pipeline_root: Path | None = Field(
        default=None,
        description="Folder of the pipelines' per-run workspaces (data splits, windows, "
        "evaluations); every Airflow worker must see it. Empty: `home`/pipelines.",
    )
    pipeline_retries: int = Field(
        default=3, ge=0, le=20, description="Retries of a failed pipeline task before it fails."
    )
    pipeline_retry_delay_s: float = Field(
        default=60.0, gt=0, description="Seconds before the first retry of a failed pipeline task."
    )
    pipeline_retry_backoff: float = Field(
        default=2.0,
        ge=1.0,
        description="Multiplier of the retry delay after each failed try (1: constant delay).",
    )
    pipeline_max_retry_delay_s: float = Field(
        default=1800.0, gt=0, description="Longest delay between two tries of a pipeline task."
    )
    pipeline_task_timeout_s: float = Field(
        default=3600.0, gt=0, description="Seconds a pipeline task may run before it is killed."
    )

    # --- dashboard (`trajops dashboard`) ------------------------------------------------
    dashboard_api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the prediction service the operations dashboard reads.",
    )
    dashboard_api_key: SecretStr | None = Field(
        default=None,
        description="API key (admin scope) the dashboard sends to the service. Empty: no key "
        "(only works against a service with auth off).",
    )
    dashboard_host: str = Field(
        default="127.0.0.1", description="Address `trajops dashboard` binds."
    )
    dashboard_port: int = Field(
        default=8501, ge=1, le=65535, description="Port `trajops dashboard` binds."
    )
    dashboard_refresh_s: float = Field(
        default=15.0,
        ge=0,
        description="Seconds between automatic refreshes of the dashboard page (0: on demand only).",
    )
    dashboard_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of each call the dashboard makes to the service."
    )
    dashboard_mlflow_ui_url: str | None = Field(
        default=None,
        description="Base URL of the MLflow UI as operators' browsers reach it; the dashboard "
        "links model versions and runs there. Empty: the tracking URI when it is http(s), "
        "else no links.",
    )

    @field_validator("home", mode="after")
    @classmethod
    def _home_is_not_a_file(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError(f"TRAJOPS_HOME={value} exists and is not a directory")
        return value

    @field_validator("dashboard_mlflow_ui_url", mode="after")
    @classmethod
    def _ui_url_is_http(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"TRAJOPS_DASHBOARD_MLFLOW_UI_URL={value!r} is not an http(s) URL")
        return value.rstrip("/")

    # --- derived locations (not settings themselves) ------------------------------------
    @property
    def resolved_tracking_uri(self) -> str:
        """The tracking URI to use: the configured one or the embedded SQLite store."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def resolved_registry_uri(self) -> str:
        return self.registry_uri or self.resolved_tracking_uri

    @property
    def artifact_root(self) -> Path:
        """Artifact folder for the embedded tracking store."""
        return (self.home / "artifacts").resolve()

    @property
    def resolved_database_url(self) -> str:
        """The operational store URL: the configured one or the embedded SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.home / 'trajops.db').resolve()}"

    @property
    def spool_dir(self) -> Path:
        """Folder of the append-only spool files used while the store is unreachable."""
        return (self.home / "spool").resolve()

    @property
    def wal_dir(self) -> Path:
        """Folder of the serving processes' write-ahead logs (one folder per process)."""
        return (self.home / "wal").resolve()

    def ensure_home(self) -> Path:
        """Create ``home`` (and parents) if missing and return it.

        A new home is private (0700): it holds the stores, keys and logs. The embedded SQLite
        stores are created 0600 (tightened when found wider): SQLite and MLflow would create
        them world-readable under the usual umask."""
        if not self.home.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            os.chmod(self.home, 0o700)  # mkdir's mode is masked by the umask
        mlflow_embedded = self.tracking_uri is None and self.registry_uri is None
        for used, name in (
            (self.database_url is None, "trajops.db"),
            (mlflow_embedded, "mlflow.db"),
        ):
            if used:
                os.close(os.open(self.home / name, os.O_CREAT | os.O_WRONLY, 0o600))
                if (self.home / name).stat().st_mode & 0o077:
                    os.chmod(self.home / name, 0o600)
        return self.home
