"""SQLite as the embedded default: WAL, and bursts of writes that never fail."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import nullcontext

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from palabre import contributions, database
from palabre.database import YieldedInsideWrite, write_transaction
from palabre.extensions import db
from palabre.models import Contribution, Participant, Session
from tests.conftest import csrf_token, join, new_cid, post_form


@pytest.mark.sqlite_only("WAL and SQLite's busy timeout")
def test_sqlite_runs_in_wal_mode_with_a_short_busy_timeout(app):
    """SQLite's own wait blocks the whole server: it is kept short, and retried cooperatively."""
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert 0 < db.session.execute(text("PRAGMA busy_timeout")).scalar() <= 100


def test_a_burst_of_notes_from_many_threads_all_commits(app, make_cafe):
    """Forty phones sending at once: no "database is locked", nothing lost."""
    app.config["RATE_LIMIT_WRITES"] = "1000/minute"
    code = make_cafe(tables=4)
    phones = 40
    for _ in range(phones):
        join(app.test_client(), code)
    with app.app_context():
        session_id = db.session.scalar(select(Session.id).where(Session.code == code))
        people = db.session.scalars(select(Participant.id)).all()
    errors: list[BaseException] = []
    start = threading.Barrier(phones)

    def send(participant_id: int) -> None:
        try:
            start.wait(timeout=30)
            with app.test_request_context():
                session = db.session.get(Session, session_id)
                participant = db.session.get(Participant, participant_id)
                for i in range(5):
                    contributions.accept(
                        session,
                        participant,
                        client_id=new_cid(),
                        kind_name="note",
                        body=f"note {i} from {participant_id}",
                    )
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=send, args=(pid,)) for pid in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    with app.app_context():
        stored = db.session.scalar(select(func.count()).select_from(Contribution))
        session = db.session.get(Session, session_id)
        assert stored == phones * 5
        # One event per note, with gapless sequence numbers (joins are not in the log).
        assert session.seq == phones * 5


@pytest.fixture
def another_process_writes(app):
    """Call it to have another process (a backup, a second server) hold SQLite's write lock."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None)
    yield lambda: other.execute("BEGIN IMMEDIATE")
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


@pytest.mark.sqlite_only("SQLite's write lock held by another process")
def test_a_write_waits_cooperatively_for_another_process(app, make_cafe, monkeypatch):
    """The lock is retried with sleeps (other greenlets run), and the write goes through."""
    code = make_cafe()
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    sleeps = []

    def sleep_then_release(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:
            other.execute("COMMIT")

    monkeypatch.setattr(database.time, "sleep", sleep_then_release)
    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        with write_transaction():
            session.venue = "Centro cívico"
    other.close()
    assert len(sleeps) == 3 and all(0 < pause <= 0.2 for pause in sleeps)
    with app.app_context():
        assert (
            db.session.scalar(select(Session.venue).where(Session.code == code)) == "Centro cívico"
        )


@pytest.mark.sqlite_only("SQLite's write lock held by another process")
def test_a_database_that_stays_busy_answers_503_and_keeps_the_note(
    app, client, make_cafe, monkeypatch, another_process_writes
):
    monkeypatch.setattr(database, "BUSY_RETRY_SECONDS", 0.3)
    code = make_cafe()
    join(client, code)
    page = client.get(f"/j/{code}")
    another_process_writes()
    response = client.post(
        f"/j/{code}/contribute",
        data={"csrf_token": csrf_token(page), "cid": new_cid(), "kind": "note", "body": "Ayuda"},
        follow_redirects=True,
    )
    # The no-JavaScript form keeps what was typed and says why.
    assert "Palabre is very busy" in response.text
    assert ">Ayuda</textarea>" in response.text
    # Anything else that writes answers 503 with the same message.
    page = post_form(client, f"/j/{code}", f"/j/{code}/vote", {"contribution": "1"})
    assert page.status_code == 503
    assert "Palabre is very busy" in page.text
    assert page.headers["Retry-After"]


@pytest.mark.sqlite_only("SQLite's write lock held by another process")
def test_a_busy_database_asks_phones_to_resend(
    app, client, make_cafe, socket_client, monkeypatch, another_process_writes
):
    monkeypatch.setattr(database, "BUSY_RETRY_SECONDS", 0.3)
    code = make_cafe()
    join(client, code)
    phone = socket_client(client, code=code)
    another_process_writes()
    ack = phone.emit(
        "contribute", {"cid": new_cid(), "kind": "note", "body": "Hola"}, callback=True
    )
    assert ack == {"ok": False, "error": ack["error"], "retry": True}
    assert "busy" in ack["error"]


def test_an_exhausted_connection_pool_asks_phones_to_resend(
    app, client, make_cafe, socket_client, monkeypatch
):
    """No connection free for the pool's whole timeout: busy, so the phone keeps its note."""

    def no_connection(*args, **kwargs):
        raise PoolTimeout("QueuePool limit of size 5 overflow 10 reached")

    code = make_cafe()
    join(client, code)
    phone = socket_client(client, code=code)
    monkeypatch.setattr(contributions, "accept", no_connection)
    ack = phone.emit(
        "contribute", {"cid": new_cid(), "kind": "note", "body": "Hola"}, callback=True
    )
    assert ack == {"ok": False, "error": ack["error"], "retry": True}
    assert "busy" in ack["error"]


def test_writers_waiting_for_their_turn_hold_no_database_connection(app, make_cafe):
    """While one write runs, the others queue without a connection: the pool stays free.

    On PostgreSQL each would otherwise wait for the advisory lock on a
    connection of its own, and a burst of writes would leave none to the
    phones connecting and reading meanwhile (a reconnect storm).
    """
    code = make_cafe()
    writing, finish = threading.Event(), threading.Event()
    done = []

    def write(i: int, hold: bool = False) -> None:
        with app.test_request_context():
            session = db.session.scalar(select(Session).where(Session.code == code))
            with write_transaction():
                session.venue = f"venue {i}"
                if hold:
                    writing.set()
                    finish.wait(10)
            done.append(i)
            db.session.remove()

    first = threading.Thread(target=write, args=(0, True))
    first.start()
    assert writing.wait(10)
    others = [threading.Thread(target=write, args=(i,)) for i in range(1, 9)]
    for thread in others:
        thread.start()
    time.sleep(0.5)  # time for every other writer to reach its wait
    with app.app_context():
        taken = db.engine.pool.checkedout()
    finish.set()
    for thread in [first, *others]:
        thread.join(10)
    assert taken == 1, f"{taken} connections taken while one writer wrote"
    assert sorted(done) == list(range(9))


@pytest.mark.sqlite_only("fills the disk with PRAGMA max_page_count")
def test_a_full_disk_refuses_the_write_and_keeps_what_was_stored(
    app, client, make_cafe, socket_client
):
    """SQLite answers "database or disk is full": a 503-style answer, nothing lost."""
    code = make_cafe()
    join(client, code)
    phone = socket_client(client, code=code)
    first = phone.emit(
        "contribute", {"cid": new_cid(), "kind": "note", "body": "kept"}, callback=True
    )
    assert first["ok"]
    with app.app_context():
        pages = db.session.execute(text("PRAGMA page_count")).scalar()
        engine = db.engine

    def cap(dbapi_connection, record):
        # What a full disk does: SQLite cannot grow the file any more.
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    event.listen(engine, "connect", cap)
    engine.dispose()  # every new connection gets the cap
    try:
        ack = phone.emit(
            "contribute", {"cid": new_cid(), "kind": "note", "body": "x" * 1900}, callback=True
        )
        for _ in range(40):
            if not ack["ok"]:
                break
            ack = phone.emit(
                "contribute", {"cid": new_cid(), "kind": "note", "body": "x" * 1900}, callback=True
            )
        assert ack["ok"] is False and ack.get("retry") is True, ack
        assert "disk is full" in ack["error"]
    finally:
        event.remove(engine, "connect", cap)
        engine.dispose()
    with app.app_context():
        bodies = db.session.scalars(select(Contribution.body)).all()
    assert "kept" in bodies


def test_strict_writes_catch_a_yield_inside_the_transaction(app, make_cafe):
    """Under gevent, code that switches greenlets while holding the write lock fails loudly.

    On either database: on PostgreSQL the holder's waits for the database do
    not yield (see the next test), so a switch is the code's own.
    """
    gevent = pytest.importorskip("gevent")
    code = make_cafe()
    outcome = {}

    def write_and_yield():
        with app.test_request_context():
            session = db.session.scalar(select(Session).where(Session.code == code))
            try:
                with write_transaction():
                    session.venue = "changed"
                    gevent.sleep(0)  # what a rate limiter's timer or a network call does
            except YieldedInsideWrite as error:
                outcome["error"] = str(error)
            db.session.remove()

    gevent.spawn(write_and_yield).join(timeout=10)
    assert "test_database.py" in outcome["error"]
    with app.app_context():
        # Rolled back: nothing half-done is stored.
        assert db.session.scalar(select(Session.venue).where(Session.code == code)) != "changed"


@pytest.mark.postgresql_only("how a writer waits for PostgreSQL's answers")
@pytest.mark.parametrize("budget_s", [10.0, 0.0])
def test_a_postgresql_writer_waits_without_yielding_until_its_budget_is_spent(
    app, make_cafe, monkeypatch, budget_s
):
    """Within its budget a write's round trips keep the event loop; past it they yield.

    A greenlet counts while the writer writes. Within the budget it never
    runs: the write holds the lock for its own round trips only, as on
    SQLite. With the budget spent (a slow database), the waits let it run,
    and STRICT_WRITES does not take those switches for the code's own.
    """
    import select as real_select

    import psycopg.waiting

    gevent = pytest.importorskip("gevent")
    gevent_select = pytest.importorskip("gevent.select")

    # What `palabre serve` has after patching: a poll() that yields to other
    # greenlets, and psycopg waiting with it.
    patched = type("PatchedSelect", (), {})()
    for name in ("POLLIN", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL"):
        setattr(patched, name, getattr(real_select, name))
    patched.poll = gevent_select.poll
    monkeypatch.setattr(database, "select", patched)
    monkeypatch.setattr(psycopg.waiting, "select", patched)
    monkeypatch.setattr(psycopg.waiting, "wait", psycopg.waiting.wait_poll)
    monkeypatch.setattr(database, "POSTGRESQL_BLOCKING_BUDGET_S", budget_s)
    assert app.config["STRICT_WRITES"]
    code = make_cafe()
    ticks, seen = [0], {}

    def count():
        while True:
            ticks[0] += 1
            gevent.sleep(0)

    def write():
        with app.test_request_context():
            session = db.session.scalar(select(Session).where(Session.code == code))
            with write_transaction():
                seen["before"] = ticks[0]
                session.venue = "Centro cívico"
                db.session.flush()
                db.session.execute(text("SELECT pg_sleep(0.05)"))
                seen["after"] = ticks[0]
            db.session.remove()

    counter = gevent.spawn(count)
    try:
        gevent.spawn(write).get(timeout=30)
    finally:
        counter.kill()
    if budget_s:
        assert seen["after"] == seen["before"], "the writer yielded within its budget"
    else:
        assert seen["after"] > seen["before"], "the writer never yielded"
    with app.app_context():
        assert (
            db.session.scalar(select(Session.venue).where(Session.code == code)) == "Centro cívico"
        )


@pytest.mark.sqlite_only("the process's SQLite write lock")
def test_writers_of_one_process_queue_on_the_lock_not_inside_sqlite(app, make_cafe):
    """Greenlets writing at once each wait their turn cooperatively; none meets "locked"."""
    gevent = pytest.importorskip("gevent")
    code = make_cafe()
    done = []

    def write(i):
        with app.test_request_context():
            session = db.session.scalar(select(Session).where(Session.code == code))
            with write_transaction():
                session.venue = f"venue {i}"
            done.append(i)
            db.session.remove()

    greenlets = [gevent.spawn(write, i) for i in range(30)]
    gevent.joinall(greenlets, timeout=20, raise_error=True)
    assert sorted(done) == list(range(30))


def test_writers_waiting_for_the_lock_hold_no_database_connection(app, make_cafe, monkeypatch):
    """Writers queue on the process's lock first, without a connection, on either database.

    On PostgreSQL each one waiting inside the advisory lock would hold a
    connection, and a server process: a burst would empty the pool.
    """
    code = make_cafe()
    lock = app.extensions[database.WRITE_LOCK_KEY]
    arrived = threading.Semaphore(0)
    take_the_lock = lock.acquire

    def acquire():
        arrived.release()
        take_the_lock()

    monkeypatch.setattr(lock, "acquire", acquire)
    inside, carry_on, done = threading.Event(), threading.Event(), []

    def write(number: int) -> None:
        with app.test_request_context():
            session = db.session.scalar(select(Session).where(Session.code == code))
            with write_transaction():
                session.venue = f"venue {number}"
                if number == 0:
                    inside.set()
                    assert carry_on.wait(30)
            done.append(number)
            db.session.remove()

    writers = [threading.Thread(target=write, args=(number,)) for number in range(6)]
    writers[0].start()
    assert inside.wait(30)
    for writer in writers[1:]:
        writer.start()
    for _writer in writers:
        assert arrived.acquire(timeout=30)
    with app.app_context():
        assert db.engine.pool.checkedout() == 1  # the first writer's only
    carry_on.set()
    for writer in writers:
        writer.join(30)
    assert sorted(done) == list(range(6))


@pytest.mark.sqlite_only("PRAGMA synchronous")
def test_every_commit_reaches_the_disk_before_it_is_acknowledged(app):
    """Without gevent, synchronous=FULL: an acknowledged note survives a power cut."""
    with app.app_context():
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


@pytest.mark.sqlite_only("group commit syncs SQLite's WAL file")
def test_grouped_commits_share_a_sync_and_none_returns_before_its_own(tmp_path, monkeypatch):
    """Under gevent: 40 writers, a few syncs of the log, and each waits for one after its commit."""
    import gevent

    wal = tmp_path / "palabre.db-wal"
    wal.write_bytes(b"frames")
    group = database.GroupCommit(str(wal))
    synced_up_to = []
    real_fsync = database.os.fsync

    def slow_fsync(fd):
        synced_up_to.append(group._committed)  # commits made before this sync began
        threading.Event().wait(0.02)  # a laptop disk's sync
        real_fsync(fd)

    monkeypatch.setattr(database.os, "fsync", slow_fsync)
    returned = []

    def writer(n):
        gevent.sleep(n * 0.002)  # commits arriving at human speed... in a burst
        ticket = group.committed()
        group.wait_durable(ticket)
        returned.append((ticket, len(synced_up_to), synced_up_to[-1]))

    gevent.joinall([gevent.spawn(writer, n) for n in range(40)], timeout=20, raise_error=True)
    assert sorted(ticket for ticket, _syncs, _covered in returned) == list(range(1, 41))
    # Each writer returned only after a sync that began once its commit was made.
    assert all(covered >= ticket for ticket, _syncs, covered in returned)
    assert 2 <= group.syncs == len(synced_up_to) < 20


@pytest.mark.sqlite_only("group commit syncs SQLite's WAL file")
def test_a_failing_sync_is_answered_unavailable_and_the_next_writer_syncs_again(
    tmp_path, monkeypatch
):
    import gevent

    from palabre.errors import Unavailable

    wal = tmp_path / "palabre.db-wal"
    wal.write_bytes(b"frames")
    group = database.GroupCommit(str(wal))
    failures = iter([OSError(5, "Input/output error")])

    def flaky_fsync(fd):
        if (failure := next(failures, None)) is not None:
            raise failure

    monkeypatch.setattr(database.os, "fsync", flaky_fsync)
    with pytest.raises(Unavailable):
        gevent.spawn(group.wait_durable, group.committed()).get(timeout=5)
    gevent.spawn(group.wait_durable, group.committed()).get(timeout=5)
    assert group.syncs == 1


@pytest.mark.sqlite_only("group commit syncs SQLite's WAL file")
def test_palabre_serve_groups_commits_and_keeps_every_acknowledged_note(tmp_path):
    """A real server under gevent: synchronous=NORMAL with grouped syncs, nothing lost."""
    import asyncio

    from palabre.testing.room import Facilitator, Room, served_palabre

    async def burst(server):
        async with Facilitator(server.url) as facilitator:
            await facilitator.sign_in()
            session = await facilitator.start_session(
                "world_cafe", {"tables": 2, "questions": "Q1", "dots": 3}, phase=1
            )
            async with Room(server.url, session.code, 30) as room:
                await room.join_all()
                await room.connect_all()
                acks = await room.each(lambda phone, k: phone.contribute("note", f"n{k}"), times=3)
                return session, acks

    with served_palabre(tmp_path, STRICT_WRITES="true", RATE_LIMIT_WRITES="1000/minute") as server:
        server.create_facilitator()
        session, acks = asyncio.run(burst(server))
        with sqlite3.connect(server.database) as stored:
            assert stored.execute("SELECT count(*) FROM contribution").fetchone() == (90,)
    assert len(acks) == 90 and all(ack.ok for ack in acks)


@pytest.mark.sqlite_only("group commit syncs SQLite's WAL file")
def test_only_a_gevent_server_on_a_database_file_groups_its_commits(tmp_path):
    import subprocess
    import sys

    probe = (
        "from gevent import monkey; monkey.patch_all()\n"
        "from palabre import create_app\n"
        "from palabre.extensions import db\n"
        "from sqlalchemy import text\n"
        "app = create_app({{'SECRET_KEY': 'k', 'SQLALCHEMY_DATABASE_URI': {!r}}})\n"
        "with app.app_context():\n"
        "    grouped = app.extensions.get('palabre.group_commit')\n"
        "    print(grouped.wal_path if grouped else None,"
        " db.session.execute(text('PRAGMA synchronous')).scalar())\n"
    ).format(f"sqlite:///{tmp_path / 'palabre.db'}")
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == [f"{tmp_path / 'palabre.db'}-wal", "1"]  # NORMAL, grouped


@pytest.mark.sqlite_only("PRAGMA synchronous")
def test_a_process_without_gevent_syncs_every_commit(app):
    assert database.GROUP_COMMIT_KEY not in app.extensions


def test_core_statements_store_and_read_what_the_orm_would(app, make_cafe):
    """``execute_core`` runs SQLite statements on the driver: conversions and defaults hold."""
    from sqlalchemy import bindparam, insert, update
    from sqlalchemy.exc import IntegrityError

    from palabre.models import Event

    code = make_cafe()
    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        with write_transaction():
            # JSON converted, the Python-side default (created_at) filled in, as on a flush.
            database.execute_core(
                insert(Event.__table__),
                {
                    "session_id": session.id,
                    "seq": 900,
                    "type": "t",
                    "data": {"é": [1]},
                    "rooms": ["all"],
                },
            )
            seq = database.execute_core(
                update(Session.__table__)
                .where(Session.__table__.c.id == bindparam("session_id"))
                .values(seq=Session.__table__.c.seq + 1)
                .returning(Session.__table__.c.seq),
                {"session_id": session.id},
            ).scalar_one()
        stored = db.session.scalar(select(Event).where(Event.seq == 900))
        assert stored.data == {"é": [1]} and stored.rooms == ["all"]
        assert stored.created_at is not None and stored.created_at.year >= 2024
        assert seq == db.session.scalar(select(Session.seq).where(Session.id == session.id))
        # The driver's errors come as SQLAlchemy's, which callers catch (busy, full disk).
        with pytest.raises(IntegrityError), write_transaction():
            database.execute_core(
                insert(Event.__table__),
                {"session_id": session.id, "seq": 900, "type": "t", "data": {}, "rooms": []},
            )
        # On SQLite (run on the driver), an expanding IN list is refused, not run wrong.
        with pytest.raises(ValueError) if db.engine.dialect.name == "sqlite" else nullcontext():
            database.execute_core(
                select(Event.__table__.c.id).where(
                    Event.__table__.c.seq.in_(bindparam("seqs", expanding=True))
                ),
                {"seqs": [900]},
            )
        # Read statements return rows by position, and None when there is none.
        found = database.execute_core(
            select(Event.__table__.c.seq, Event.__table__.c.data).where(
                Event.__table__.c.seq == bindparam("seq")
            ),
            {"seq": 900},
        )
        assert found.first() == (900, {"é": [1]})
        assert (
            database.execute_core(
                select(Event.__table__.c.seq).where(Event.__table__.c.seq == bindparam("seq")),
                {"seq": 901},
            ).scalar()
            is None
        )


def test_orm_and_core_statements_of_a_write_share_its_transaction(app, make_cafe):
    """The ORM and ``execute_core`` write in one transaction: each sees the other's rows
    before the commit, an exception undoes both, and the commit keeps both."""
    from sqlalchemy import insert

    from palabre.models import Event

    code = make_cafe()

    def event_row(seq: int) -> dict:
        return {"session_id": session_id, "seq": seq, "type": "t", "data": {}, "rooms": []}

    def events(seq: int) -> int:
        return db.session.scalar(select(func.count(Event.id)).where(Event.seq == seq))

    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        session_id, venue = session.id, session.venue
        with pytest.raises(RuntimeError), write_transaction():
            database.execute_core(insert(Event.__table__), event_row(901))
            assert events(901) == 1  # the ORM reads what Core wrote, uncommitted
            session.venue = "changed, then undone"
            db.session.flush()
            assert (
                database.execute_core(
                    select(Session.__table__.c.venue).where(Session.__table__.c.id == session_id)
                ).scalar()
                == "changed, then undone"
            )  # and Core what the ORM flushed
            raise RuntimeError("the write fails")
        db.session.remove()
        assert events(901) == 0
        assert db.session.get(Session, session_id).venue == venue
        with write_transaction():
            database.execute_core(insert(Event.__table__), event_row(902))
            db.session.get(Session, session_id).venue = "kept"
        db.session.remove()
        assert events(902) == 1 and db.session.get(Session, session_id).venue == "kept"


@pytest.mark.sqlite_only("the connection SQLite's writes run on")
def test_disposing_of_the_engine_closes_the_writes_connection(app, make_cafe):
    """A restored or replaced database file is not written through a connection to the old one."""
    code = make_cafe()
    lock = app.extensions[database.WRITE_LOCK_KEY]
    with app.test_request_context():
        with write_transaction():
            db.session.scalar(select(Session).where(Session.code == code)).venue = "first"
        writer = lock.connection
        assert writer is not None and not writer.closed
        db.session.remove()
        db.engine.dispose()
        assert writer.closed and lock.connection is None
        with write_transaction():  # a new one, on the file as it is now
            db.session.scalar(select(Session).where(Session.code == code)).venue = "second"
        assert lock.connection is not writer
        db.session.remove()
        assert db.session.scalar(select(Session.venue).where(Session.code == code)) == "second"


@pytest.mark.sqlite_only("a COMMIT that fails leaves SQLite's transaction open")
def test_a_write_whose_commit_fails_leaves_the_next_write_whole(app, make_cafe):
    """A commit refused (here a foreign key checked at COMMIT) rolls back, and writes go on."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from palabre.models import Event

    code = make_cafe()
    with app.test_request_context():
        with pytest.raises(IntegrityError), write_transaction():
            db.session.execute(text("PRAGMA defer_foreign_keys=ON"))
            database.execute_core(
                insert(Event.__table__),
                {"session_id": 987654, "seq": 1, "type": "t", "data": {}, "rooms": []},
            )
        db.session.remove()
        with write_transaction():
            db.session.scalar(select(Session).where(Session.code == code)).venue = "after"
        db.session.remove()
        assert db.session.scalar(select(Session.venue).where(Session.code == code)) == "after"
        orphans = select(func.count(Event.id)).where(Event.session_id == 987654)
        assert db.session.scalar(orphans) == 0
