"""Database set-up and the one way to write: :func:`write_transaction`.

On SQLite (the embedded default) every connection uses WAL, and writes
start with ``BEGIN IMMEDIATE``: a transaction takes the write lock before
reading, so it can never fail later when upgrading a read lock to a write
lock.

``palabre serve`` runs every phone as a greenlet on one thread. SQLite's
own wait for a busy database is a C loop that blocks that whole thread: if
one greenlet waited there for a lock held by another greenlet of the same
process, the holder could never run to release it, and the server would
freeze until the timeout. So, on SQLite:

* writers of one process queue *cooperatively* on one process-wide lock
  (:data:`WRITE_LOCK_KEY`) before they touch SQLite, and only one of them at
  a time is ever inside a write transaction;
* SQLite's busy timeout is short (:data:`BUSY_TIMEOUT_MS`): it only waits
  for *another* process (``palabre backup``, a second server), and a
  ``BEGIN`` that still finds the database busy is retried after a
  cooperative sleep, up to :data:`BUSY_RETRY_SECONDS`, before the request
  is answered with :class:`palabre.errors.Unavailable` (HTTP 503);
* nothing that can yield to another greenlet (a rate limiter, network I/O,
  a broadcast, a plugin doing I/O) may run while the write lock is held:
  checks run before the transaction, broadcasts after the commit. With
  ``STRICT_WRITES`` on (tests, development) a greenlet switch while the lock
  is held rolls the transaction back and raises :class:`YieldedInsideWrite`
  naming where it yielded.

Each process writes to SQLite on one connection it keeps for its writes
(:func:`_write_lock`): a write transaction begins there, and what its block
reads or changes through the ORM runs there too
(:class:`palabre.extensions.WritingSession`), as :func:`execute_core` does.
Beginning and ending the ORM session's own transaction around every write,
a connection taken from the pool and given back each time, cost about a
third of a note's server time, more than SQLite's statements and commit.
A write that uses only Core statements leaves the ORM session alone.

An acknowledged write is on disk, power cut included. Syncing SQLite's log
at every commit (``synchronous=FULL``) costs a few milliseconds each, during
which the whole process stands still: a burst of 1,000 notes would spend
seconds in them. Under ``palabre serve`` commits are therefore grouped
(:class:`GroupCommit`): each writer commits without syncing and releases the
write lock, then waits, cooperatively, until one sync of the log on a real
thread covers its commit; only then do its broadcasts go out and its
acknowledgement return. Writers arriving during a sync share the next one.

PostgreSQL needs none of this for its own sake: its waits are network I/O,
and its commits are durable. What the code relies on is kept, though: one
write transaction at a time. The checks a write makes before storing (a
client id already stored, the dots a participant has left, a table's seats)
read what the writers before it committed, across every worker process. So
on PostgreSQL a write transaction starts by taking one transaction-level
advisory lock (:data:`POSTGRESQL_WRITE_LOCK`), released by its commit or
rollback. The writers of one process first queue on the process's write
lock, as on SQLite (only the one whose turn it is holds a connection while
waiting for the advisory lock, which other processes' writers contend for):
otherwise a burst of writers, each waiting for the advisory lock on a
connection of its own, would take the whole connection pool, and phones
connecting or reading meanwhile would wait for a connection, up to the
pool's timeout.

A write there is a dozen round trips to the database server (``BEGIN``, the
lock, the write's statements, ``COMMIT``), each well under a millisecond.
Left to psycopg's gevent-friendly wait, each round trip would also hand the
event loop to every other greenlet ready to run (a burst's other phones,
the broadcasts of the writes before), and the writer would get it back only
once they all yielded: measured under a burst of 144 dots on the shared,
overloaded 2-core test machine, a write held the lock 34 ms (median), and
writes queued for seconds. So, once its turn has come, a writer waits for
the database *without yielding* (:func:`_wait_holding_the_lock`), as
SQLite's writes do: the whole transaction holds the event loop for its own
round trips and no more (13 ms, median, in the same conditions). Waiting
for another process's writer (the advisory lock taken) still yields, and so
does a transaction that has blocked the event loop for
:data:`POSTGRESQL_BLOCKING_BUDGET_S` already (a database that is slow to
answer, a large import): its remaining waits let the other greenlets run,
as before. ``STRICT_WRITES`` then watches a
PostgreSQL writer as it does a SQLite one, these waits for the database
excepted.
"""

from __future__ import annotations

import os
import select
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache, lru_cache

import greenlet
from flask import current_app, g
from flask_babel import gettext as _
from sqlalchemy import Table, event, insert, inspect, text
from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound, OperationalError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from .concurrency import served_by_gevent
from .errors import Unavailable
from .extensions import WRITING, db, writing_connection
from .inputs import clean_row

#: SQLite's own (thread-blocking) wait for another process's write lock.
BUSY_TIMEOUT_MS = 50
#: How long a write waits, cooperatively, for another process to finish.
BUSY_RETRY_SECONDS = 5.0
#: ``app.extensions`` key of the process-wide write lock (SQLite only).
WRITE_LOCK_KEY = "palabre.write_lock"
#: ``app.extensions`` key of the :class:`GroupCommit` (SQLite file under gevent only).
GROUP_COMMIT_KEY = "palabre.group_commit"
_BEGIN_OPTION = "palabre_begin"
_BEGIN_STATEMENTS = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}
#: ``app.extensions`` key set when the database is PostgreSQL.
POSTGRESQL_KEY = "palabre.postgresql"
#: Key of the PostgreSQL advisory lock every write transaction holds (any number, fixed).
POSTGRESQL_WRITE_LOCK = 0x9A1AB7E
#: How long one write transaction on PostgreSQL may keep the event loop waiting for
#: the database before its waits yield to other greenlets again. A write took 13 ms
#: (median; 25 ms p95) on the shared, overloaded 2-core test machine, a few on a quiet one;
#: a phone's socket tolerates seconds (ping timeout 25 s).
POSTGRESQL_BLOCKING_BUDGET_S = 0.05


class YieldedInsideWrite(AssertionError):
    """A greenlet switched away while holding the database write lock.

    Raised only with ``STRICT_WRITES`` on; the message holds the stack of
    the code that yielded. Move that code before the transaction, or into an
    :func:`after_commit` callback.
    """


def configure_engine(app, engine: Engine) -> None:
    """Apply Palabre's connection settings to ``engine`` and give ``app`` its write lock.

    Only SQLite needs either; PostgreSQL's writers serialise on an advisory
    lock instead (see the module docstring), other databases are left as they are.
    """
    if engine.dialect.name == "postgresql":
        app.extensions[POSTGRESQL_KEY] = True
        event.listen(engine, "before_cursor_execute", _without_nul, retval=True)
        lock = app.extensions[WRITE_LOCK_KEY] = WriteLock(strict=app.config["STRICT_WRITES"])
        event.listen(engine, "connect", _wait_for_postgresql(lock))
    if engine.dialect.name != "sqlite":
        return
    lock = app.extensions[WRITE_LOCK_KEY] = WriteLock(strict=app.config["STRICT_WRITES"])
    database = engine.url.database
    grouped = served_by_gevent() and database not in (None, "", ":memory:")
    if grouped:
        app.extensions[GROUP_COMMIT_KEY] = GroupCommit(f"{database}-wal")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # An acknowledged note must survive a power cut, not only a crash.
        # FULL syncs the log at each commit. Under gevent GroupCommit syncs
        # it instead, once for many commits, before anything is acknowledged;
        # NORMAL still syncs it before each checkpoint, as FULL does.
        cursor.execute(f"PRAGMA synchronous={'NORMAL' if grouped else 'FULL'}")
        cursor.close()

    @event.listens_for(engine, "engine_disposed")
    def _close_writer(engine):
        # The file may be replaced next (a restore, a test's fresh database): the writes'
        # connection must not keep the old one open.
        if lock.connection is not None and lock.transaction is None:
            lock.connection.close()
            lock.connection = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        # Straight to the driver: every note begins two transactions, and SQLAlchemy's
        # execution layer costs more than SQLite's BEGIN. Its errors (a busy database)
        # are raised as SQLAlchemy would have, for the callers that wait and retry.
        statement = _BEGIN_STATEMENTS[mode]
        try:
            connection.connection.driver_connection.execute(statement)
        except sqlite3.Error as error:
            raise DBAPIError.instance(statement, None, error, sqlite3.Error) from error


def _without_nul(connection, cursor, statement, parameters, context, executemany):
    """Replace NUL characters in text parameters with U+FFFD (PostgreSQL only).

    PostgreSQL's text cannot hold NUL, and fails the whole statement on one.
    What is stored is cleaned before (:mod:`palabre.inputs`); this covers
    what is only looked up, such as a join code typed or sent by a script:
    ``a\x00b`` then matches nothing, as on SQLite, instead of failing.
    """

    def clean(value):
        return value.replace("\x00", "\ufffd") if isinstance(value, str) else value

    def clean_all(values):
        if isinstance(values, Mapping):
            return {key: clean(value) for key, value in values.items()}
        return tuple(clean(value) for value in values)

    if not parameters or isinstance(parameters, Mapping):
        return statement, clean_all(parameters) if parameters else parameters
    if isinstance(parameters[0], Mapping | list | tuple):  # several rows
        return statement, [clean_all(values) for values in parameters]
    return statement, clean_all(parameters)


def _wait_for_postgresql(lock: WriteLock):
    """A ``connect`` listener: ``lock``'s holder waits by :func:`_wait_holding_the_lock`.

    Every other wait stays psycopg's own, which yields under gevent.
    """

    def on_connect(dbapi_connection, connection_record) -> None:
        cooperative_wait = dbapi_connection.wait

        def wait(generator, interval=0.1, timeout=None):
            if timeout is not None or not lock.held_by_current():
                return cooperative_wait(generator, interval, timeout)
            return _wait_holding_the_lock(generator, dbapi_connection.pgconn.socket, lock)

        dbapi_connection.wait = wait

    return on_connect


def _wait_holding_the_lock(generator, fileno: int, lock: WriteLock):
    """Run one of psycopg's operations (a generator of socket waits) for ``lock``'s holder.

    Until ``lock.blocking_until``, the waits use the real ``poll()``, which
    blocks the whole thread, so no other greenlet runs; after it (or when it
    is None) they use ``select.poll`` as gevent patched it, which yields, and
    the lock does not count those switches against ``STRICT_WRITES``.
    Without gevent both are the same ``poll()``.
    """
    from gevent import monkey
    from psycopg import OperationalError
    from psycopg.waiting import Ready, Wait

    masks = {
        Wait.R: select.POLLIN,
        Wait.W: select.POLLOUT,
        Wait.RW: select.POLLIN | select.POLLOUT,
    }
    blocking = lock.blocking_until is not None
    poller = monkey.get_original("select", "poll")() if blocking else select.poll()
    tolerated_before = lock.waiting_for_database
    lock.waiting_for_database = not blocking
    try:
        waiting_for = next(generator)
        poller.register(fileno, masks[waiting_for])
        while True:
            if blocking and time.monotonic() >= lock.blocking_until:
                # This transaction has held the event loop long enough: yield from now on.
                blocking, lock.blocking_until = False, None
                lock.waiting_for_database = True
                poller = select.poll()
                poller.register(fileno, masks[waiting_for])
            if blocking:
                timeout_ms = max(1, int((lock.blocking_until - time.monotonic()) * 1000) + 1)
            else:
                timeout_ms = 100
            events = poller.poll(timeout_ms)
            if not events:
                generator.send(Ready.NONE)
                continue
            happened = events[0][1]
            ready = (Ready.R if happened & select.POLLIN else 0) | (
                Ready.W if happened & select.POLLOUT else 0
            )
            if not ready:
                raise OperationalError("connection to the database lost")
            waiting_for = generator.send(Ready(ready))
            poller.modify(fileno, masks[waiting_for])
    except StopIteration as done:
        return done.value
    finally:
        lock.waiting_for_database = tolerated_before


class WriteLock:
    """One writer at a time in this process, queued cooperatively.

    Under ``palabre serve`` the standard library is patched for gevent, so
    the lock below is gevent's and a writer waiting for it lets every other
    greenlet run. ``strict`` watches greenlet switches while it is held,
    except while the holder waits for the database (:meth:`waiting_for_the_database`).
    On PostgreSQL, ``blocking_until`` is when the holder's waits for the
    database start yielding again (:func:`_wait_holding_the_lock`).
    """

    def __init__(self, strict: bool = False):
        self._lock = threading.Lock()
        self._holder = None
        self.strict = strict
        #: SQLite: the connection every write of this process runs on (see :func:`_write_lock`),
        #: and its transaction while a write runs.
        self.connection: Connection | None = None
        self.transaction: RootTransaction | None = None
        self.yielded_at: str | None = None
        self.blocking_until: float | None = None
        self.waiting_for_database = False

    def acquire(self) -> None:
        self._lock.acquire()
        self._holder = _current_greenlet()
        self.yielded_at = None
        if self.strict and self._holder is not None:
            _holding[self._holder] = self
            _watch_switches()

    def release(self) -> None:
        _holding.pop(self._holder, None)
        self._holder = None
        self.blocking_until = None
        self.waiting_for_database = False
        self._lock.release()

    @property
    def holder(self):
        """The greenlet holding the lock, if any."""
        return self._holder

    def held_by_current(self) -> bool:
        holder = self._holder
        return holder is not None and holder is _current_greenlet()

    def block_for(self, seconds: float) -> None:
        """Let the holder's waits for the database block the event loop for ``seconds`` at most."""
        self.blocking_until = time.monotonic() + seconds

    @contextmanager
    def waiting_for_the_database(self) -> Iterator[None]:
        """The holder waits here for the database, yielding: a connection, another's lock."""
        self.blocking_until = None
        self.waiting_for_database = True
        try:
            yield
        finally:
            self.waiting_for_database = False

    def note_switch(self, origin) -> None:
        if self.yielded_at is None and not self.waiting_for_database:
            # Where the holder's own code stood, without gevent's and this module's frames.
            frames = [
                frame
                for frame in traceback.extract_stack(origin.gr_frame)
                if "gevent" not in frame.filename and frame.filename != __file__
            ]
            self.yielded_at = "".join(traceback.format_list(frames[-8:])) or "(unknown)"


class GroupCommit:
    """Many commits, one sync of SQLite's log (WAL) file, then their acknowledgements.

    A writer takes a ticket (:meth:`committed`) right after its commit,
    still holding the write lock, so tickets follow the order of commits in
    the log; it releases the lock and calls :meth:`wait_durable`. The first
    writer to wait syncs the log on a real thread (the event loop and the
    other writers go on meanwhile); those who committed during that sync
    wait for it, then one of them syncs again for all of them. Everything
    here runs on the event loop's thread except the ``fsync`` itself.
    """

    def __init__(self, wal_path: str):
        self.wal_path = wal_path
        self._committed = 0
        self._synced = 0
        self._sync_done = None  # the gevent Event of the sync under way, if any
        self._fd: int | None = None
        self.syncs = 0  # how many syncs ran (for tests and benchmarks)

    def committed(self) -> int:
        """Count a commit just made, with the write lock still held; returns its ticket."""
        self._committed += 1
        return self._committed

    def wait_durable(self, ticket: int) -> None:
        """Return once the commit of ``ticket`` is on disk; raise Unavailable if the disk fails."""
        import gevent
        import gevent.event

        while self._synced < ticket:
            if self._sync_done is not None:
                self._sync_done.wait()
                continue
            target = self._committed
            self._sync_done = done = gevent.event.Event()
            try:
                gevent.get_hub().threadpool.apply(self._sync)
                self._synced = max(self._synced, target)
                self.syncs += 1
            except OSError as error:
                raise Unavailable(_full_message()) from error
            finally:
                self._sync_done = None
                done.set()

    def _sync(self) -> None:
        """``fsync`` the log file (on a worker thread), reopening it if SQLite made a new one."""
        try:
            current = os.stat(self.wal_path).st_ino
        except FileNotFoundError:
            return  # no log: every commit was checkpointed, and checkpoints sync
        if self._fd is not None and os.fstat(self._fd).st_ino != current:
            os.close(self._fd)
            self._fd = None
        if self._fd is None:
            self._fd = os.open(self.wal_path, os.O_RDONLY)
        os.fsync(self._fd)


def _current_greenlet():
    """The running greenlet (each thread has its own main one)."""
    return greenlet.getcurrent()


#: Greenlets holding a strict write lock, and that lock.
_holding: dict = {}


def _note_switch(event_name, args):
    """Greenlet trace: tell a strict write lock that its holder switched away."""
    if event_name in ("switch", "throw") and (lock := _holding.get(args[0])) is not None:
        lock.note_switch(args[0])


def _watch_switches() -> None:
    """Trace greenlet switches in this thread (once; traces are per thread)."""
    current = greenlet.gettrace()
    if current is _note_switch or getattr(current, "chained", None) is _note_switch:
        return
    if current is None:
        greenlet.settrace(_note_switch)
        return

    def both(event_name, args):
        _note_switch(event_name, args)
        current(event_name, args)

    both.chained = _note_switch
    greenlet.settrace(both)


class ChangedMeanwhile(Exception):
    """What a write relied on changed before it took the write lock; nothing was stored.

    Raised by :func:`write_transaction` when a check given to
    :func:`confirm_under_lock` fails: the caller reads afresh and writes again.
    """


def confirm_under_lock(check: Callable[[], bool]) -> None:
    """Have this request's next write transaction run ``check`` first, under the lock.

    For what a request read before its write from a copy kept between
    requests (:mod:`palabre.connections`): ``check`` compares it with the
    database, inside the transaction, and returns whether it still holds;
    if not, the transaction raises :class:`ChangedMeanwhile`. A check given
    before and not run yet is replaced. ``check`` must not yield, like
    everything under the lock.
    """
    g.palabre_confirm = check


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current write transaction has committed.

    Used for live broadcasts and hooks, so nothing is announced that could
    still be rolled back, and nothing that can yield runs under the lock.
    """
    g.setdefault("palabre_after_commit", []).append(callback)


def _orm_session():
    """This request's ORM session, if anything used it: a note's write never makes one."""
    registry = db.session.registry
    return registry() if registry.has() else None


def execute_core(statement, parameters: Mapping | None = None):
    """Run a Core statement (on tables, not mapped classes) in the session's transaction.

    For the statements every note, dot or join runs: going through
    ``db.session.execute`` adds the ORM's execution layer, which costs more
    than SQLite running the statement. Pending ORM changes are not flushed
    first, so use it for statements that do not depend on them.

    On SQLite the statement goes to the driver itself, compiled once per
    set of parameter names (:class:`_DriverStatement`): SQLAlchemy's
    per-execution work still cost about three times SQLite's. Returns a
    result with ``first()``, ``one()``, ``scalar()`` and ``scalar_one()``,
    whose rows are read by position.
    """
    connection = writing_connection() or db.session.connection()
    if connection.dialect.name != "sqlite":
        return connection.execute(statement, parameters)
    parameters = parameters or {}
    prepared = _driver_statement(statement, tuple(parameters), connection.dialect)
    return prepared.run(connection.connection.driver_connection, parameters)


@lru_cache(maxsize=256)
def _driver_statement(statement, names: tuple[str, ...], dialect) -> _DriverStatement:
    return _DriverStatement(statement, names, dialect)


class _DriverStatement:
    """A Core statement compiled for SQLite, run on the driver with SQLAlchemy's conversions.

    Does per statement, once, what SQLAlchemy's execution context does at
    each execution: the compiled SQL and its parameters' order, each
    parameter's conversion (JSON, dates), the Python-side defaults of the
    columns an ``INSERT`` leaves out (``default=utcnow``) or an ``UPDATE``
    does not set (``onupdate``), and the returned columns' conversions.
    Expanding parameters (``IN`` lists) are not supported.
    """

    def __init__(self, statement, names: tuple[str, ...], dialect):
        compiled = statement.compile(dialect=dialect, column_keys=list(names))
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("execute_core cannot run expanding or literal-execute parameters")
        self.compiled = compiled
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup)
        convert = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        self.conversions = tuple(convert.get(name) for name in self.order)
        self.defaults = tuple(
            (column.key, column.default)
            for column in (*compiled.insert_prefetch, *compiled.update_prefetch)
        )
        returned = statement.selected_columns if statement.is_select else statement.exported_columns
        self.results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in (returned if compiled.returning or statement.is_select else ())
        )

    def run(self, driver, parameters: Mapping) -> DriverResult:
        values = self.compiled.construct_params(parameters)
        for key, default in self.defaults:
            values[key] = default.arg(None) if default.is_callable else default.arg
        arguments = [
            value if convert is None else convert(value)
            for value, convert in zip(
                (values[name] for name in self.order), self.conversions, strict=True
            )
        ]
        try:
            rows = driver.execute(self.sql, arguments).fetchall()
        except sqlite3.Error as error:  # as SQLAlchemy would have raised it
            raise DBAPIError.instance(self.sql, arguments, error, sqlite3.Error) from error
        if any(self.results):
            rows = [
                tuple(
                    value if convert is None else convert(value)
                    for value, convert in zip(row, self.results, strict=True)
                )
                for row in rows
            ]
        return DriverResult(rows)


class DriverResult:
    """The rows a statement run by :func:`execute_core` returned, as tuples."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[tuple]):
        self.rows = rows

    def first(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def one(self) -> tuple:
        if len(self.rows) != 1:
            raise (
                NoResultFound("expected one row")
                if not self.rows
                else MultipleResultsFound("expected one row")
            )
        return self.rows[0]

    def scalar(self):
        return self.rows[0][0] if self.rows else None

    def scalar_one(self):
        return self.one()[0]


def insert_now(row):
    """Insert ``row``, a new ORM object, with one statement, and return it as stored.

    For the hot paths of a room (a note, a participant joining): the ORM's
    unit of work costs several times the ``INSERT`` itself. ``row`` must
    have only column attributes set (foreign key ids, not relationships);
    the columns' defaults fill the others, the text is cleaned as before a
    flush (:func:`palabre.inputs.keep_stored_text_clean`), and ``row``
    comes back with its id and every column loaded, detached: not part of
    the ORM session, which a write of Core statements only then never
    begins. ``db.session.add(row)`` it to change it further in the same
    transaction. Runs inside :func:`write_transaction`.
    """
    clean_row(row)
    state = inspect(row)
    mapper = state.mapper
    values = {
        attribute.columns[0].key: state.dict[attribute.key]
        for attribute in mapper.column_attrs
        if attribute.key in state.dict
    }
    table = mapper.local_table
    stored = dict(
        zip(table.columns, execute_core(_insert_returning_all(table), values).one(), strict=True)
    )
    for attribute in mapper.column_attrs:
        set_committed_value(row, attribute.key, stored[attribute.columns[0]])
    make_transient_to_detached(row)
    return row


def stored_id(row) -> int:
    """The primary key of ``row``, a stored ORM object, without reading the row again.

    :func:`write_transaction` expires every object loaded before it, so that
    what is read under the lock is fresh; reading ``row.id`` then loads the
    whole row. Writes that need only the id (to insert rows that point at
    it) take it from here.
    """
    return inspect(row).identity[0]


@cache
def _insert_returning_all(table: Table):
    return insert(table).returning(*table.columns)


def _is_busy(error: OperationalError) -> bool:
    return "database is locked" in str(error.orig) or "database is busy" in str(error.orig)


def _is_full(error: OperationalError) -> bool:
    return "disk is full" in str(error.orig) or "disk I/O error" in str(error.orig)


def _begin_immediately() -> None:
    """``BEGIN IMMEDIATE``, once; raises ``OperationalError`` if another process writes."""
    try:
        db.session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})
    except OperationalError:
        db.session.rollback()
        raise


def busy_message() -> str:
    """What a phone or page is told when the database cannot take a write now."""
    return _("Palabre is very busy. Nothing was lost: please try again in a moment.")


def _full_message() -> str:
    return _(
        "Palabre cannot save anything now: the computer's disk is full. Nothing was lost; "
        "tell the facilitator."
    )


def _begin_and_try_the_lock(psycopg_connection) -> bool:
    """Begin a transaction and try to take the advisory lock, in one round trip.

    Whether the lock was taken: held until the transaction ends, by its
    ``COMMIT`` or ``ROLLBACK`` (which psycopg sends, even in autocommit mode,
    as a transaction is open). Not prepared: a prepared statement holds one
    command, this is two.
    """
    import psycopg

    statement = f"BEGIN; SELECT pg_try_advisory_xact_lock({POSTGRESQL_WRITE_LOCK:d})"
    try:
        cursor = psycopg_connection.execute(statement, prepare=False)
        cursor.nextset()
        return cursor.fetchone()[0]
    except psycopg.Error as error:  # as SQLAlchemy would have raised it
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


@contextmanager
def _write_lock() -> Iterator[WriteLock | None]:
    """Hold this process's write lock (and on PostgreSQL the advisory lock) while a write runs.

    Waits for another process's transaction with cooperative sleeps, never
    inside SQLite; raises :class:`Unavailable` when it does not end in time.
    On SQLite the transaction is begun (``BEGIN IMMEDIATE``) on the process's
    writes' connection, ``lock.transaction``, which the caller commits; it is
    rolled back if the caller does not.
    """
    lock: WriteLock | None = current_app.extensions.get(WRITE_LOCK_KEY)
    if lock is None:
        _begin_immediately()
        yield None
        return
    if lock.held_by_current():
        raise RuntimeError("write_transaction() cannot be nested")
    if current_app.extensions.get(POSTGRESQL_KEY):
        lock.acquire()
        try:
            with lock.waiting_for_the_database():
                # A connection, perhaps a new one. In autocommit mode psycopg sends no
                # BEGIN of its own: _begin_and_try_the_lock sends it with the lock's query.
                connection = db.session.connection(
                    execution_options={"isolation_level": "AUTOCOMMIT"}
                )
            lock.block_for(POSTGRESQL_BLOCKING_BUDGET_S)
            if not _begin_and_try_the_lock(connection.connection.driver_connection):
                # Another process writes: wait for it, letting this one's greenlets run.
                with lock.waiting_for_the_database():
                    db.session.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRESQL_WRITE_LOCK}
                    )
                lock.block_for(POSTGRESQL_BLOCKING_BUDGET_S)
            yield lock
        finally:
            lock.release()
        return
    deadline = time.monotonic() + BUSY_RETRY_SECONDS
    pause = 0.01
    while True:
        lock.acquire()
        try:
            transaction = _writer(lock).begin()  # BEGIN IMMEDIATE
        except OperationalError as error:
            lock.release()
            if not _is_busy(error):
                raise
            if time.monotonic() > deadline:
                raise Unavailable(busy_message()) from error
            time.sleep(pause)  # gevent's sleep under `palabre serve`: others run meanwhile
            pause = min(pause * 2, 0.2)
            continue
        break
    lock.transaction = transaction
    WRITING[lock.holder] = lock.connection
    try:
        yield lock
    finally:
        try:
            _end_uncommitted(lock)
        finally:
            del WRITING[lock.holder]
            lock.transaction = None
            lock.release()


def _end_uncommitted(lock: WriteLock) -> None:
    """After every write: roll back what it did not commit, even when its commit failed.

    SQLite may keep a transaction open after a failed ``COMMIT``, which the
    next ``BEGIN`` on the connection would trip on. A connection that cannot
    even roll back is dropped, and the next write makes a new one.
    """
    connection = lock.connection
    try:
        # Still the connection's after an exception, or a failed commit (then inactive).
        if connection.get_transaction() is lock.transaction:
            lock.transaction.rollback()
        if connection.connection.driver_connection.in_transaction:
            connection.connection.driver_connection.rollback()
    except Exception:
        connection.invalidate()
        lock.connection = None


def _writer(lock: WriteLock) -> Connection:
    """The connection ``lock``'s writes run on: made once, kept while the engine is."""
    if lock.connection is None or lock.connection.invalidated or lock.connection.closed:
        engine = db.engine
        lock.connection = engine.connect().execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
    return lock.connection


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block as one write transaction, then its after-commit callbacks.

    Any read transaction still open is ended first, so that the write one
    starts with the write lock held (``BEGIN IMMEDIATE`` on SQLite). The
    block must not yield to other greenlets (see the module docstring); it
    may read and write through ``db.session`` and call :func:`after_commit`.
    On an exception everything is rolled back and no callback runs. Raises
    :class:`Unavailable` when the database stays busy or the disk is full:
    nothing of the block was stored, and the sender should try again.
    """
    if (orm := _orm_session()) is not None and orm.in_transaction():
        orm.commit()
    g.pop("palabre_after_commit", None)
    group_commit: GroupCommit | None = current_app.extensions.get(GROUP_COMMIT_KEY)
    ticket = 0
    try:
        with _write_lock() as lock:
            # What was read before the lock may have changed meanwhile: read afresh.
            if orm is not None:
                orm.expire_all()
            try:
                if (check := g.pop("palabre_confirm", None)) and not check():
                    raise ChangedMeanwhile()
                yield
                if lock is not None and lock.yielded_at:
                    raise YieldedInsideWrite(
                        "yielded to another greenlet inside a write transaction at:\n"
                        + lock.yielded_at
                    )
                if (orm := _orm_session()) is not None and orm.in_transaction():
                    orm.commit()  # on SQLite, flushes to the transaction below
                if lock is not None and lock.transaction is not None:
                    lock.transaction.commit()
                if group_commit is not None:
                    ticket = group_commit.committed()
            except BaseException:
                if (orm := _orm_session()) is not None and orm.in_transaction():
                    orm.rollback()
                g.pop("palabre_after_commit", None)
                raise
    except OperationalError as error:
        if _is_busy(error):
            raise Unavailable(busy_message()) from error
        if _is_full(error):
            raise Unavailable(_full_message()) from error
        raise
    callbacks = g.pop("palabre_after_commit", ())
    if ticket:
        # Announce and acknowledge only what is on disk. Should the sync fail,
        # nothing is announced: the sender resends and, writes being
        # idempotent, finds its write stored.
        group_commit.wait_durable(ticket)
    for callback in callbacks:
        callback()
