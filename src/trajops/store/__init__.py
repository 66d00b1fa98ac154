"""Operational store: SQLAlchemy models, Alembic migrations, sessions.

SQLite under ``TRAJOPS_HOME`` by default, PostgreSQL in production, through the same code.
"""

from trajops.store.db import Store, migrate
from trajops.store.models import Alert, Base, DriftReport, Feedback, PredictionRecord

__all__ = [
    "Alert",
    "Base",
    "DriftReport",
    "Feedback",
    "PredictionRecord",
    "Store",
    "migrate",
]
