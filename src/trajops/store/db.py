"""Engine, migrations and sessions of the operational store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from trajops.errors import ConfigError, ServiceUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"


def _orjson_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


# The prediction log stores (T, 2) coordinate lists as JSON: orjson, not the stdlib encoder,
# since the writer shares its interpreter with the rows it decodes.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _orjson_dumps, "json_deserializer": orjson.loads}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` with short connect timeouts, so an outage is noticed quickly."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"invalid database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **_JSON_CODEC)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed, pool_pre_ping=True, connect_args={"connect_timeout": 3}, **_JSON_CODEC
    )


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the packaged Alembic migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            f"cannot migrate the store: {exc.__class__.__name__}: {exc}"
        ) from None


class Store:
    """The operational store: an engine, migrations and a session factory."""

    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if run_migrations:
            migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def opened_store(url: str) -> Iterator[Store]:
    """The store for one unit of work (a command, a pipeline task), disposed afterwards.

    Raises:
        ServiceUnavailable: the database failed inside the block (unreachable, gone away).
    """
    store = Store(url)
    try:
        yield store
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            f"operational store unreachable: {exc.__class__.__name__}"
        ) from None
    finally:
        store.dispose()


def insert_rows(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *, skip_conflicts: bool
) -> None:
    """Insert ``rows`` into ``table`` in the session's transaction (one ``executemany``).

    Args:
        skip_conflicts: rows that violate a unique constraint are skipped (idempotent
            replay); otherwise a conflict raises and fails the transaction.
    """
    if not rows:
        return
    connection = session.connection()
    statement: Any = table.insert()
    if skip_conflicts:
        dialect = connection.dialect.name
        if dialect == "postgresql":
            statement = postgresql.insert(table).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite.insert(table).on_conflict_do_nothing()
    connection.execute(statement, list(rows))
