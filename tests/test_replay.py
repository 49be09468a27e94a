"""Replay on reconnection, from the events each process keeps per live session (palabre.replay)."""

from __future__ import annotations

from sqlalchemy import select

from palabre.database import write_transaction
from palabre.events import ALL, record_event
from palabre.extensions import db
from palabre.models import Session, Status
from palabre.replay import RECENT, REPLAY_LIMIT
from tests.conftest import join, new_cid


def events_of(sock, type_=None):
    envelopes = [r["args"][0] for r in sock.get_received() if r["name"] == "event"]
    return [e for e in envelopes if type_ is None or e["type"] == type_]


def note(sock, body):
    return sock.emit("contribute", {"cid": new_cid(), "kind": "note", "body": body}, callback=True)


def test_a_note_hidden_after_phones_replayed_it_is_never_replayed_again(
    app, make_cafe, client, auth, socket_client
):
    """What a process keeps follows a hide at once, and what comes after it."""
    code = make_cafe(tables=1)
    alice, bob = app.test_client(), app.test_client()
    join(alice, code)
    join(bob, code)
    writer = socket_client(alice, code=code)
    note_id = note(writer, "an insult")["id"]
    assert note(writer, "the bus is late")["ok"]
    # Bob comes back twice from the start: the second replay comes from what the first kept.
    for _ in range(2):
        back = socket_client(bob, code=code, last_seq=0)
        assert [e["data"]["body"] for e in events_of(back, "contribution.added")] == [
            "an insult",
            "the bus is late",
        ]
        back.disconnect()
    auth.login()
    facilitator = socket_client(client, view="facilitator", code=code)
    assert facilitator.emit("contribution.hide", {"id": note_id}, callback=True)["ok"]
    assert note(writer, "after the hide")["ok"]
    for view, flask_client in (("participant", bob), ("projector", client)):
        back = socket_client(flask_client, view=view, code=code, last_seq=0)
        replayed = events_of(back)
        assert "an insult" not in repr(replayed)
        assert {"id": note_id, "hidden": True} in [e["data"] for e in replayed]
        bodies = [e["data"]["body"] for e in replayed if e["type"] == "contribution.added"]
        assert bodies == ["the bus is late", "after the hide"]
        seqs = [e["seq"] for e in replayed if "seq" in e]
        assert seqs == sorted(set(seqs))


def _record(app, code: str, count: int) -> int:
    """``count`` events for everyone in the session, written as a method would; its last seq."""
    with app.test_request_context(), write_transaction():
        session = db.session.scalar(select(Session).where(Session.code == code))
        for n in range(count):
            seq = record_event(session, "timer.changed", {"timer_ends_at": f"n{n}"}, [ALL])
    return seq


def test_a_replay_over_the_limit_asks_for_a_reload_wherever_it_is_read_from(
    app, make_cafe, socket_client
):
    """The limit holds alike from what is kept (the latest events) and from the database."""
    code = make_cafe()
    phone = app.test_client()
    join(phone, code)
    last = _record(app, code, RECENT + 20)
    # The first reconnection reads the latest events; the rest are older than what is kept.
    just_within = socket_client(phone, code=code, last_seq=last - REPLAY_LIMIT).get_received()
    assert [r["name"] for r in just_within] == ["event"] * REPLAY_LIMIT
    assert [r["args"][0]["seq"] for r in just_within] == list(
        range(last - REPLAY_LIMIT + 1, last + 1)
    )
    for after in (last - REPLAY_LIMIT - 1, last - REPLAY_LIMIT - 2, 0):
        too_far = socket_client(phone, code=code, last_seq=after)
        assert [(r["name"], r["args"]) for r in too_far.get_received()] == [
            ("resync", [{"seq": last}])
        ], after
        assert too_far.emit("replay", {"after": after}, callback=True) == {
            "ok": False,
            "resync": True,
        }
    gap = socket_client(phone, code=code, last_seq=last - 1)
    answer = gap.emit("replay", {"after": last - 3}, callback=True)
    assert answer["ok"] and answer["seq"] == last
    assert [e["seq"] for e in answer["events"]] == [last - 2, last - 1, last]


def test_a_closed_session_replays_from_the_database(app, make_cafe, socket_client):
    """Only open and live sessions are kept in memory: a closed one's log may be purged."""
    code = make_cafe(tables=1)
    phone = app.test_client()
    join(phone, code)
    writer = socket_client(phone, code=code)
    assert note(writer, "before closing")["ok"]
    assert events_of(socket_client(phone, code=code, last_seq=0), "contribution.added")
    with app.test_request_context(), write_transaction():
        session = db.session.scalar(select(Session).where(Session.code == code))
        session.status = Status.CLOSED
    assert app.extensions["palabre.replays"].sessions
    back = socket_client(phone, code=code, last_seq=0)
    assert [e["data"]["body"] for e in events_of(back, "contribution.added")] == ["before closing"]
    assert not app.extensions["palabre.replays"].sessions


def test_a_phone_up_to_date_reads_no_event_when_it_connects(app, make_cafe, socket_client):
    """Connecting with its page's number costs no query; what comes after still arrives."""
    from sqlalchemy import event

    code = make_cafe(tables=1)
    writer, reader = app.test_client(), app.test_client()
    join(writer, code)
    join(reader, code)
    writing = socket_client(writer, code=code)
    assert note(writing, "before")["ok"]
    with app.app_context():
        seq = db.session.scalar(select(Session.seq).where(Session.code == code))
    statements = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        up_to_date = socket_client(reader, code=code, last_seq=seq)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert up_to_date.is_connected() and up_to_date.get_received() == []
    assert not [s for s in statements if "FROM event" in s], statements
    assert note(writing, "after")["ok"]
    assert [e["data"]["body"] for e in events_of(up_to_date, "contribution.added")] == ["after"]
    behind = socket_client(reader, code=code, last_seq=seq - 1)
    assert [e["data"]["body"] for e in events_of(behind, "contribution.added")] == [
        "before",
        "after",
    ]


def test_events_this_process_kept_beyond_a_sessions_count_are_still_replayed(app, make_cafe):
    """A later event a socket of this process read is not skipped on the session's word."""
    from palabre.replay import RecentEvents, Replays, nothing_after

    code = make_cafe(tables=1)
    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        assert nothing_after(session, session.seq)
        assert not nothing_after(session, session.seq - 1)
        replays = app.extensions.setdefault("palabre.replays", Replays())
        replays.sessions[(session.id, session.code)] = (RecentEvents(session.seq + 1, (), ()), 0.0)
        assert not nothing_after(session, session.seq)
