"""The SQLite database file: health checks, ``palabre backup`` and ``palabre restore``.

On a laptop the instance's ``palabre.db`` is the whole installation. These
helpers make sure Palabre never quietly replaces a damaged or empty file
with a new, empty instance, copy the database consistently while a server is
running (SQLite's online backup API), and put a copy back only while no
server uses it.

A running ``palabre serve`` holds a shared lock on ``<database>.lock``;
``palabre restore`` takes it exclusively, so neither can start while the
other runs. The lock goes with the process, even after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import click
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import make_url

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no protection either
    fcntl = None

SQLITE_HEADER = b"SQLite format 3\x00"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Tables every Palabre database has, whatever its schema version.
PALABRE_TABLES = ("alembic_version", "palabre_session", "participant", "contribution")


class DatabaseFileError(click.ClickException):
    """A database file Palabre must not use, or an operation it must not do now."""


def sqlite_file() -> Path | None:
    """The configured SQLite database file, or ``None`` for another database."""
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def _connect(path: Path) -> sqlite3.Connection:
    """Open an existing database file without ever creating one."""
    return sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=10)


def database_problem(path: Path) -> str | None:
    """Why the SQLite file at ``path`` must not be used, or ``None`` when it may be.

    An absent file is fine (a new instance starts). An empty (0-byte) file,
    a file that is not SQLite, or one that fails ``PRAGMA quick_check`` is
    not: SQLite would silently treat an empty file as a new database.
    """
    if not path.exists():
        return None
    wal = Path(f"{path}-wal")
    if path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size):
        return "is empty (0 bytes)"
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        return "is not an SQLite database"
    try:
        with contextlib.closing(_connect(path)) as connection:
            verdict = [row[0] for row in connection.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as error:
        return f"is damaged ({error})"
    if verdict != ["ok"]:
        return "is damaged (" + "; ".join(verdict[:3]).replace("\n", " ") + ")"
    return None


def palabre_database_problem(path: Path) -> str | None:
    """Why ``path`` is not a Palabre database this version can use, or ``None``."""
    if not path.is_file():
        return "does not exist"
    if problem := database_problem(path):
        return problem
    with contextlib.closing(_connect(path)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        missing = [name for name in PALABRE_TABLES if name not in tables]
        if missing:
            return "is not a Palabre database (no " + ", ".join(missing) + " table)"
        versions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
    known = ScriptDirectory(str(MIGRATIONS))
    for version in versions:
        try:
            known.get_revision(version)
        except Exception:  # alembic raises several kinds for an unknown revision
            return f"was made by another version of Palabre (schema {version})"
    return None


def refusal(path: Path, problem: str) -> DatabaseFileError:
    """The message ``palabre serve`` stops with when the database file is unusable."""
    return DatabaseFileError(
        f"Palabre will not start: the database file {path} {problem}.\n"
        "It does not put a new, empty instance in its place. Either restore a backup:\n"
        "  palabre restore BACKUP_FILE\n"
        f"or, to start afresh, move {path} (and any {path.name}-wal beside it) out of\n"
        "the instance folder and keep it: it may still hold data someone can recover."
    )


def take_lock(database: Path, exclusive: bool) -> IO | None:
    """Lock ``database`` for a server (shared) or a restore (exclusive).

    Returns the open lock file, which holds the lock until it is closed or
    the process ends, or ``None`` when another process holds a conflicting
    lock.
    """
    handle = Path(f"{database}.lock").open("a")  # noqa: SIM115 (returned, held by the caller)
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def copy_database(source: Path, target: Path) -> None:
    """Copy the database ``source`` into the new file ``target``, consistently.

    Uses SQLite's online backup API, so a running server may go on writing;
    the copy is one self-contained file (no ``-wal`` beside it), written
    under a temporary name and checked before it takes its final name.
    """
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        with (
            contextlib.closing(_connect(source)) as origin,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            # Participants' notes: readable by this account only, like the secret key.
            partial.chmod(0o600)
            origin.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
        if problem := database_problem(partial):
            raise DatabaseFileError(f"The copy of {source} {problem}; nothing was written.")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def summary(path: Path) -> str:
    """Sessions and contributions in a Palabre database, for a confirmation line."""
    with contextlib.closing(_connect(path)) as connection:
        sessions = connection.execute("SELECT count(*) FROM palabre_session").fetchone()[0]
        notes = connection.execute("SELECT count(*) FROM contribution").fetchone()[0]
    return f"{sessions} sessions, {notes} contributions"


def _configured_sqlite_file() -> Path:
    database = sqlite_file()
    if database is None:
        raise DatabaseFileError(
            "This instance does not use SQLite: back up its database with that database's "
            "own tools (for PostgreSQL, pg_dump and pg_restore)."
        )
    return database


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(file: Path) -> None:
    """Copy the database into FILE, even while Palabre is serving."""
    database = _configured_sqlite_file()
    if problem := palabre_database_problem(database):
        raise DatabaseFileError(f"Nothing to back up: the database file {database} {problem}.")
    file = file.resolve()
    if not file.parent.is_dir():
        raise DatabaseFileError(f"There is no folder {file.parent}: create it first.")
    if file == database or file.name.startswith(f"{database.name}-"):
        raise DatabaseFileError(f"{file} is the live database: choose another file name.")
    copy_database(database, file)
    click.echo(f"Backed up {database} to {file} ({summary(file)}).")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def restore_command(file: Path) -> None:
    """Replace the database with the backup FILE; Palabre must not be running.

    What it replaces is kept beside it as ``palabre.db.replaced-<time>``.
    """
    database = _configured_sqlite_file()
    file = file.resolve()
    if problem := palabre_database_problem(file):
        raise DatabaseFileError(f"Nothing was restored: {file} {problem}.")
    lock = take_lock(database, exclusive=True)
    if lock is None:
        raise DatabaseFileError(
            f"Nothing was restored: a Palabre server is using {database}.\n"
            "Stop it first (Ctrl+C in its terminal), then run palabre restore again. "
            "Replacing the database under a running server would lose what it writes."
        )
    with lock:
        incoming = database.with_name(f".{database.name}.restoring")
        copy_database(file, incoming)
        kept = _set_aside(database)
        os.replace(incoming, database)
    click.echo(f"Restored {file} into {database} ({summary(database)}).")
    if kept:
        click.echo(f"The database it replaced is kept as {kept}.")


def _set_aside(database: Path) -> Path | None:
    """Rename ``database`` (and its ``-wal``) out of the way; return the new name."""
    if not database.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = database.with_name(f"{database.name}.replaced-{stamp}")
    os.replace(database, kept)
    wal = Path(f"{database}-wal")
    if wal.exists():
        os.replace(wal, Path(f"{kept}-wal"))
    Path(f"{database}-shm").unlink(missing_ok=True)
    return kept
