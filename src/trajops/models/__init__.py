"""Forecasters: the protocol, the baselines, the learned models, and their registry by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trajops.errors import ValidationError
from trajops.models.base import Forecaster
from trajops.models.constant_velocity import ConstantVelocity

_PLUGIN_TYPES: dict[str, type[Any]] = {}


def register_model_type(name: str, cls: type[Any]) -> None:
    """Let :func:`load_model` read saved forecasters of type ``name`` (a class with ``save``
    and a ``load`` classmethod). Only code running in this process can add a type: a model
    artifact names a type, it never brings one."""
    _PLUGIN_TYPES[name] = cls


def _model_types() -> dict[str, type[Any]]:
    # Imported lazily: the neural model pulls in torch, which the API need not pay for.
    from trajops.models.linear import LinearForecaster
    from trajops.models.neural import NeuralForecaster

    builtin = {"cv": ConstantVelocity, "linear": LinearForecaster, "neural": NeuralForecaster}
    return {**_PLUGIN_TYPES, **builtin}


MODEL_NAMES = ("cv", "linear", "neural")


def create_model(name: str, **params: Any) -> Forecaster:
    """A new, unfitted forecaster of type ``name`` (``cv``, ``linear`` or ``neural``)."""
    types = _model_types()
    if name not in types:
        raise ValidationError(
            f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}",
            details=[{"loc": ["model"], "msg": f"unknown model {name!r}"}],
        )
    model: Forecaster = types[name](**params)
    return model


def save_model(model: Forecaster, path: Path) -> None:
    """Save a model with a small header naming its type, so :func:`load_model` can read it."""
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / "model")
    (path / "forecaster.json").write_text(json.dumps({"type": model.name}))


def load_model(path: Path) -> Forecaster:
    """Load a model written by :func:`save_model`."""
    header = json.loads((path / "forecaster.json").read_text())
    cls = _model_types()[header["type"]]
    model: Forecaster = cls.load(path / "model")
    return model


__all__ = [
    "MODEL_NAMES",
    "ConstantVelocity",
    "Forecaster",
    "create_model",
    "load_model",
    "register_model_type",
    "save_model",
]
