"""trajops: production MLOps for trajectory forecasting."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trajops")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

T_OBS = 8
"""Observed steps per window."""
T_PRED = 12
"""Predicted steps per window."""
STEP_S = 0.4
"""Seconds between two steps."""

__all__ = ["STEP_S", "T_OBS", "T_PRED", "__version__"]
