"""Operational store: SQLAlchemy models, Alembic migrations, the asynchronous log writer.

SQLite under ``TRAJOPS_HOME`` by default, PostgreSQL in production, through the same code.
"""

from trajops.store.db import Store, migrate
from trajops.store.models import Alert, Base, DriftReport, Feedback, PredictionRecord
from trajops.store.writer import LogWriter

__all__ = [
    "Alert",
    "Base",
    "DriftReport",
    "Feedback",
    "LogWriter",
    "PredictionRecord",
    "Store",
    "migrate",
]
