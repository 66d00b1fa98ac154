"""Dataset lineage of a training run: ``mlflow.log_input`` per split plus fingerprint tags.

Each split is logged as an ``mlflow.data`` pandas dataset (name, source, digest) with the
context ``training`` / ``validation`` / ``testing``; the run carries the full SHA-256 fingerprint
of every split as tags (``data.<split>.digest``, counts, scenes), and ``data.digest`` (the
training split's) identifies the data a registered version was fitted on. The splits' own
:attr:`~trajops.tracking.datasets.DataSplits.lineage` (a harvest's ``harvest.*`` and
``base_data*``) is added to the tags as it is.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.pandas_dataset import from_pandas

from trajops.data.fingerprint import DatasetFingerprint, fingerprint
from trajops.tracking.datasets import DataSplits

CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}
"""MLflow input context of each split."""
DIGEST_CHARS = 32
"""MLflow stores dataset digests of at most 36 characters: the SHA-256 prefix logged."""
_MAX_TAG = 5000


def _source(raw: str) -> DatasetSource:
    if raw.startswith("simulator:"):
        return CodeDatasetSource(tags={"generator": "trajops.data.simulator", "config": raw})
    with warnings.catch_warnings():
        # MLflow registers the local-file source under both "" and "file" schemes and warns
        # that a path matches both; either is the same class.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        return resolve_dataset_source(raw)


def fingerprint_tags(split: str, fp: DatasetFingerprint) -> dict[str, str]:
    """Run tags describing one split's fingerprint."""
    tags = {
        f"data.{split}.digest": fp.digest,
        f"data.{split}.n_rows": str(fp.n_rows),
        f"data.{split}.n_agents": str(fp.n_agents),
        f"data.{split}.n_scenes": str(fp.n_scenes),
        f"data.{split}.n_frames": str(fp.n_frames),
        f"data.{split}.scenes": json.dumps(list(fp.scenes))[:_MAX_TAG],
    }
    return tags


def log_lineage(splits: DataSplits) -> dict[str, DatasetFingerprint]:
    """Log every split of ``splits`` as an input of the active run, with fingerprint tags.

    Returns:
        The fingerprint of each split (``train``, ``val``, ``test``).
    """
    fps: dict[str, DatasetFingerprint] = {}
    tags: dict[str, Any] = {"data.name": splits.name, "data.source": splits.source[:_MAX_TAG]}
    for split, tracks in splits.items():
        fp = fingerprint(tracks)
        fps[split] = fp
        with warnings.catch_warnings():
            # Frame ids are integers by contract and never missing: MLflow's hint about
            # integer columns and missing values (raised when the schema is inferred, at
            # construction and again at logging) does not apply.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            dataset = from_pandas(
                _canonical_frame(tracks),
                source=_source(splits.source),
                name=f"{splits.name}-{split}",
                digest=fp.digest[:DIGEST_CHARS],
            )
            mlflow.log_input(
                dataset,
                context=CONTEXTS[split],
                tags={"fingerprint": fp.digest, "n_agents": str(fp.n_agents)},
            )
        tags.update(fingerprint_tags(split, fp))
    tags["data.digest"] = fps["train"].digest
    if splits.fold:
        tags["data.fold"] = splits.fold
    tags.update({key: value[:_MAX_TAG] for key, value in splits.lineage.items()})
    mlflow.set_tags(tags)
    return fps


def _canonical_frame(tracks: pd.DataFrame) -> pd.DataFrame:
    # The dataset's schema and profile are computed from this frame: keep only the contract.
    return tracks[["scene", "frame", "agent_id", "x", "y"]]
