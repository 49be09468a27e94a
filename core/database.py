"""Database set-up and the one way to write: :func:`write_transaction`.

On SQLite (the embedded default) every connection uses WAL with a busy
timeout, and writes start with ``BEGIN IMMEDIATE``: a transaction takes the
write lock before reading, so it can never fail later when upgrading a read
lock to a write lock. A burst of notes then queues on the lock instead of
failing with "database is locked".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db

BUSY_TIMEOUT_MS = 10_000
_BEGIN_OPTION = "palabre_begin"


def configure_engine(engine: Engine) -> None:
    """Apply Palabre's connection settings to ``engine`` (SQLite only)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current write transaction has committed.

    Used for live broadcasts and hooks, so nothing is announced that could
    still be rolled back.
    """
    db.session.info.setdefault("after_commit", []).append(callback)


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block as one write transaction, then its after-commit callbacks.

    Any read transaction still open is ended first, so that the write one
    starts with the write lock held (``BEGIN IMMEDIATE`` on SQLite). On an
    exception everything is rolled back and no callback runs.
    """
    db.session.commit()
    db.session.info.pop("after_commit", None)
    db.session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        db.session.info.pop("after_commit", None)
        raise
    for callback in db.session.info.pop("after_commit", []):
        callback()
