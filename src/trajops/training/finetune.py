"""Fine-tuning: a training that starts from a registered version's weights (``--init-from``).

Only the neural model has weights to start from: the linear model is ridge regression solved
in closed form (a warm start changes nothing but the regulariser's centre) and constant
velocity has no parameters, so ``--init-from`` with either is a :class:`ValidationError`.
The source is resolved through the registry (a version ``3`` / ``v3`` or an alias such as
``champion``) and loaded the one way, :func:`~trajops.models.pyfunc.load_forecaster`. The new
model keeps the source's architecture and feature scaling and trains, unless told otherwise,
for :data:`FINE_TUNE_EPOCHS` epochs at :data:`FINE_TUNE_LR_FACTOR` times the source's learning
rate; early stopping counts the source's own weights as a candidate, so a fine-tuning never
returns a model worse on its validation split than where it started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trajops.errors import ValidationError
from trajops.models.base import Forecaster
from trajops.registry.adapter import Registry
from trajops.settings import Settings

FINE_TUNE_EPOCHS = 20
"""Epochs of a fine-tuning when none are given (a fresh neural model trains for 60)."""
FINE_TUNE_LR_FACTOR = 0.3
"""A fine-tuning's default learning rate is the source's times this: smaller steps adapt the
weights to the new data without first undoing what the source learnt."""
FINE_TUNABLE = ("neural",)
"""Model types that can start from a registered version's weights."""


@dataclass(frozen=True)
class InitSource:
    """The registered version a fine-tuning starts from.

    Attributes:
        version: its version number.
        ref: how the caller named it (``champion``, ``v3``).
        forecaster: the loaded forecaster.
    """

    version: int
    ref: str
    forecaster: Forecaster


def check_fine_tunable(model: str, init_from: str | None) -> None:
    """Refuse ``init_from`` for a model type without weights to start from.

    Raises:
        ValidationError: ``init_from`` with a model other than the neural one.
    """
    if init_from is not None and model not in FINE_TUNABLE:
        raise ValidationError(
            f"--init-from fine-tunes the neural model; a {model!r} model is fitted from scratch "
            "in closed form: train it without --init-from",
            details=[{"loc": ["init_from"], "msg": f"not with model {model!r}"}],
        )


def resolve_init(settings: Settings, *, model: str, init_from: str | None) -> InitSource | None:
    """Load the version ``init_from`` names (``None`` when it is ``None``).

    Raises:
        ValidationError: a model type that cannot be fine-tuned, or a source of another type.
        ModelNotFoundError: no such version or alias (or no registered model).
        ModelLoadError: the version does not load.
    """
    if init_from is None:
        return None
    check_fine_tunable(model, init_from)
    from trajops.models.pyfunc import load_forecaster

    info = Registry.from_settings(settings).resolve(init_from)
    source = load_forecaster(info.uri, tracking_uri=settings.resolved_tracking_uri)
    if source.name != model:
        raise ValidationError(
            f"--init-from {init_from}: v{info.version} is a {source.name!r} model, not "
            f"{model!r}; fine-tune it with --model {source.name}",
            details=[{"loc": ["init_from"], "msg": f"a {source.name!r} model"}],
        )
    return InitSource(version=info.version, ref=init_from, forecaster=source)


def fine_tuned_model(init: InitSource, params: dict[str, Any]) -> Forecaster:
    """An unfitted model of ``init``'s type whose fit starts from its weights; ``params``
    override training knobs (defaults: :data:`FINE_TUNE_EPOCHS`, the scaled learning rate).

    Raises:
        ValidationError: ``params`` change the source's architecture.
    """
    from trajops.models.neural import NeuralForecaster

    source = init.forecaster
    if not isinstance(source, NeuralForecaster):  # resolve_init admits only fine-tunable types
        raise ValidationError(f"v{init.version} cannot be fine-tuned (a {source.name!r} model)")
    params = {"epochs": FINE_TUNE_EPOCHS, "lr": source.config.lr * FINE_TUNE_LR_FACTOR, **params}
    return NeuralForecaster.fine_tune(source, **params)
