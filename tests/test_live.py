"""The live layer through Socket.IO test clients: flow, acks, replay, authorisation."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update

from palabre.database import write_transaction
from palabre.extensions import db, socketio
from palabre.join import HEAD_COUNT_INTERVAL_S
from palabre.models import Contribution, Event, Participant, Session
from tests.conftest import join, new_cid


def events_of(sock, type_=None):
    """Broadcast envelopes received by a test client, optionally of one type."""
    envelopes = [r["args"][0] for r in sock.get_received() if r["name"] == "event"]
    return [e for e in envelopes if type_ is None or e["type"] == type_]


def note(sock, body="We need evening language classes", cid=None, kind="note"):
    return sock.emit(
        "contribute", {"cid": cid or new_cid(), "kind": kind, "body": body}, callback=True
    )


@pytest.fixture
def phones(app, make_cafe, socket_client):
    """Two participants at the same table (a one-table café), live in round 1."""

    def make(count=2, language="en", **config):
        code = make_cafe(tables=config.pop("tables", 1), **config)
        socks = []
        for _ in range(count):
            client = app.test_client()
            join(client, code, language=language)
            socks.append(socket_client(client, code=code))
        return code, socks

    return make


@pytest.fixture
def staff(client, auth, socket_client):
    """A facilitator's socket and a projector's socket for a session code."""
    auth.login()

    def make(code):
        return socket_client(client, view="facilitator", code=code), socket_client(
            client, view="projector", code=code
        )

    return make


def test_note_reaches_table_facilitator_and_projector(phones, staff):
    code, (alice, bob) = phones()
    facilitator, projector = staff(code)
    ack = note(alice, "Opening hours clash with work")
    assert ack["ok"] is True
    for sock in (alice, bob, facilitator, projector):
        added = events_of(sock, "contribution.added")
        assert [e["data"]["body"] for e in added] == ["Opening hours clash with work"]
    assert added[0]["seq"] > 0


def test_other_tables_do_not_receive_the_note(app, make_cafe, socket_client):
    code = make_cafe(tables=2, assignment="choose")
    socks = {}
    for table in ("1", "2"):
        client = app.test_client()
        join(client, code, group=table)
        socks[table] = socket_client(client, code=code)
    assert note(socks["1"])["ok"]
    assert events_of(socks["1"], "contribution.added")
    assert not events_of(socks["2"], "contribution.added")


def test_ack_comes_after_commit_and_resend_is_stored_once(app, phones):
    code, (alice, bob) = phones()
    cid = new_cid()
    first = note(alice, "Bus passes for newcomers", cid=cid)
    again = note(alice, "Bus passes for newcomers", cid=cid)
    assert first == again == {"ok": True, "id": first["id"], "data": {}}
    with app.app_context():
        stored = db.session.scalars(select(Contribution).where(Contribution.client_id == cid)).all()
        assert len(stored) == 1 and stored[0].id == first["id"]
    assert len(events_of(bob, "contribution.added")) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [("   ", "Write something"), ("x" * 2001, "2000 characters at most")],
)
def test_empty_and_oversized_notes_are_refused(phones, body, message):
    _code, (alice, _bob) = phones()
    ack = note(alice, body)
    assert ack["ok"] is False and message in ack["error"]


def test_refusal_is_in_the_participants_language(phones):
    _code, (alice, _bob) = phones(language="fr")
    ack = note(alice, "")
    assert ack["ok"] is False
    assert ack["error"] == "Écrivez quelque chose avant d’envoyer."


def test_note_after_round_closed_is_refused_not_dropped(app, phones, staff):
    code, (alice, _bob) = phones()
    facilitator, _projector = staff(code)
    assert facilitator.emit("phase.go", {"index": 4}, callback=True)["ok"]  # harvest
    ack = note(alice, "Too late?")
    assert ack["ok"] is False
    assert "over" in ack["error"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contribution)) == 0


def test_participant_cannot_drive_the_session(app, phones):
    code, (alice, bob) = phones()
    for event, payload in [
        ("phase.go", {"index": 2}),
        ("timer.extend", {"minutes": 5}),
        ("contribution.hide", {"id": 1}),
        ("contribution.transcribe", {"cid": new_cid(), "kind": "note", "body": "x", "group": "1"}),
    ]:
        ack = alice.emit(event, payload, callback=True)
        assert ack == {"ok": False, "error": "Only a facilitator can do this."}
    with app.app_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        assert session.phase_index == 1
    assert not events_of(bob)


def test_facilitator_moves_phase_and_everyone_hears(phones, staff):
    code, (alice, bob) = phones()
    facilitator, projector = staff(code)
    ack = facilitator.emit("phase.go", {"index": 2}, callback=True)
    assert ack == {"ok": True, "index": 2}
    for sock in (alice, bob, facilitator, projector):
        changed = events_of(sock, "phase.changed")
        assert changed[-1]["data"]["index"] == 2
        assert changed[-1]["data"]["number"] == 2


def test_reconnect_replays_missed_events_in_order(app, phones, socket_client):
    code, (alice, bob) = phones()
    assert note(alice, "first")["ok"]
    seen = events_of(bob)[-1]["seq"]
    bob_client = bob.flask_test_client
    bob.disconnect()
    for body in ("second", "third"):
        assert note(alice, body)["ok"]
    back = socket_client(bob_client, code=code, last_seq=seen)
    replayed = events_of(back, "contribution.added")
    assert [e["data"]["body"] for e in replayed] == ["second", "third"]
    assert [e["seq"] for e in replayed] == sorted(e["seq"] for e in replayed)


def test_replay_only_sends_the_rooms_a_client_belongs_to(app, make_cafe, socket_client):
    code = make_cafe(tables=2, assignment="choose")
    one, two = app.test_client(), app.test_client()
    join(one, code, group="1")
    join(two, code, group="2")
    sender = socket_client(one, code=code)
    assert note(sender, "for table one")["ok"]
    late = socket_client(two, code=code, last_seq=0)
    assert not events_of(late, "contribution.added")


def test_socket_refused_without_joining_or_signing_in(app, make_cafe, socket_client):
    code = make_cafe()
    stranger = app.test_client()
    assert not socket_client(stranger, code=code).is_connected()
    assert not socket_client(stranger, view="facilitator", code=code).is_connected()
    assert not socket_client(stranger, code="NOSUCH").is_connected()


def test_hidden_note_disappears_everywhere_but_is_kept(app, phones, staff):
    code, (alice, bob) = phones()
    facilitator, projector = staff(code)
    note_id = note(alice, "an insult")["id"]
    assert facilitator.emit("contribution.hide", {"id": note_id}, callback=True)["ok"]
    for sock in (alice, bob, projector):
        assert events_of(sock, "contribution.hidden")[-1]["data"] == {"id": note_id, "hidden": True}
    with app.app_context():
        assert db.session.get(Contribution, note_id).hidden is True
    page = bob.flask_test_client.get(f"/j/{code}")
    assert "an insult" not in page.text
    assert facilitator.emit("contribution.hide", {"id": note_id, "hidden": "0"}, callback=True)[
        "ok"
    ]
    with app.app_context():
        assert db.session.get(Contribution, note_id).hidden is False


def test_transcribed_paper_note_is_anonymous_and_live(app, phones, staff):
    code, (alice, _bob) = phones()
    facilitator, projector = staff(code)
    ack = facilitator.emit(
        "contribution.transcribe",
        {
            "cid": new_cid(),
            "kind": "note",
            "body": "Written on the tablecloth",
            "group": "1",
            "language": "ar",
        },
        callback=True,
    )
    assert ack["ok"]
    added = events_of(alice, "contribution.added")[-1]["data"]
    assert added["transcribed"] is True and added["body"] == "Written on the tablecloth"
    # The card's language is kept, as a phone's is.
    assert added["language"] == "ar"
    assert note(alice, "From the phone")["ok"]
    assert events_of(alice, "contribution.added")[-1]["data"]["language"] == "en"
    with app.app_context():
        stored = db.session.get(Contribution, ack["id"])
        assert stored.participant_id is None and stored.transcribed and stored.language == "ar"


def test_writes_are_rate_limited_per_participant(app, phones):
    app.config["RATE_LIMIT_WRITES"] = "3/minute"
    _code, (alice, bob) = phones()
    assert all(note(alice, f"note {i}")["ok"] for i in range(3))
    ack = note(alice, "one too many")
    assert ack["ok"] is False and "fast" in ack["error"]
    # The limit is the participant's own, not the venue's: Bob can still write.
    assert note(bob, "my first note")["ok"]


def test_html_in_notes_travels_as_plain_text(phones):
    _code, (alice, bob) = phones()
    body = '<script>alert("x")</script><b>bold</b>'
    assert note(alice, body)["ok"]
    assert events_of(bob, "contribution.added")[-1]["data"]["body"] == body
    page = bob.flask_test_client.get(f"/j/{_code}")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text


def test_every_broadcast_is_stored_for_replay(app, phones, staff):
    code, (alice, _bob) = phones()
    facilitator, _projector = staff(code)
    note(alice)
    facilitator.emit("timer.extend", {"minutes": 2}, callback=True)
    with app.app_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        seqs = db.session.scalars(
            select(Event.seq).where(Event.session_id == session.id).order_by(Event.seq)
        ).all()
        assert seqs == list(range(1, session.seq + 1))


def test_a_resent_facilitator_request_is_acknowledged_again_not_done_twice(app, phones, staff):
    code, (alice, _bob) = phones()
    facilitator, _projector = staff(code)
    request = {"cid": new_cid(), "minutes": 5}
    first = facilitator.emit("timer.extend", request, callback=True)
    again = facilitator.emit("timer.extend", request, callback=True)
    assert first == again == {"ok": True}
    assert len(events_of(alice, "timer.changed")) == 1
    # A new request (a new id) is done again.
    other = facilitator.emit("timer.extend", {"cid": new_cid(), "minutes": 5}, callback=True)
    assert other["ok"] and len(events_of(alice, "timer.changed")) == 1


def test_a_hidden_note_is_not_replayed_to_anyone(app, phones, staff, socket_client):
    """Reconnecting from the very start after hiding: the log says hidden, never the text."""
    code, (alice, bob) = phones()
    facilitator, _projector = staff(code)
    note_id = note(alice, "an insult")["id"]
    assert facilitator.emit(
        "contribution.transcribe", {"cid": new_cid(), "kind": "note", "body": "kept"}, callback=True
    )["ok"]
    assert facilitator.emit("contribution.hide", {"id": note_id}, callback=True)["ok"]
    for view, flask_client in (
        ("participant", bob.flask_test_client),
        ("projector", facilitator.flask_test_client),
        ("facilitator", facilitator.flask_test_client),
    ):
        back = socket_client(flask_client, view=view, code=code, last_seq=0)
        replayed = events_of(back)
        assert "an insult" not in repr(replayed)
        assert {"id": note_id, "hidden": True} in [e["data"] for e in replayed]
        assert "kept" in [e["data"].get("body") for e in replayed]
    with app.app_context():
        stored = db.session.scalars(select(Event.data)).all()
        assert "an insult" not in repr(stored)


def test_joins_are_announced_but_not_kept_for_replay(app, make_cafe, staff, socket_client):
    """500 joins must not fill the log every connecting phone reads; staff get the count,
    at once for a lone join, once for the joins of a burst, and always the final one."""
    code = make_cafe()
    facilitator, projector = staff(code)
    events_of(facilitator), events_of(projector)  # what they were sent as they connected
    join(app.test_client(), code)
    assert [e["data"]["count"] for e in events_of(projector, "participants.changed")] == [1]
    for _ in range(3):
        join(app.test_client(), code)
    assert events_of(projector, "participants.changed") == []  # due at the interval's end
    # The count due is sent by a background task (gevent here, as under palabre serve).
    socketio.sleep(HEAD_COUNT_INTERVAL_S + 0.3)
    announced = events_of(projector, "participants.changed")
    assert [e["data"]["count"] for e in announced] == [4]
    assert [e["data"]["count"] for e in events_of(facilitator, "participants.changed")] == [1, 4]
    assert not any("seq" in e for e in announced)
    # A join after a quiet interval is announced at once again.
    socketio.sleep(HEAD_COUNT_INTERVAL_S)
    join(app.test_client(), code)
    assert [e["data"]["count"] for e in events_of(projector, "participants.changed")] == [5]
    with app.app_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        assert session.seq == 0
    again = socket_client(facilitator.flask_test_client, view="facilitator", code=code, last_seq=0)
    assert events_of(again, "participants.changed") == [
        {"type": "participants.changed", "data": {"count": 5}}
    ]


# --- what each worker keeps of a phone's rows (palabre.connections) -------------------------


def stored_notes(app) -> list[tuple[str, int, str]]:
    with app.app_context():
        rows = db.session.execute(
            select(Contribution.body, Contribution.phase_index, Contribution.group).order_by(
                Contribution.id
            )
        )
        return [tuple(row) for row in rows]


def test_a_note_after_a_phase_change_is_stored_in_the_new_phase(app, phones, staff):
    code, (alice,) = phones(count=1)
    facilitator, _projector = staff(code)
    assert note(alice, "In round 1")["ok"]
    assert facilitator.emit("phase.go", {"index": 2}, callback=True)["ok"]
    assert note(alice, "In round 2")["ok"]
    assert [(body, phase) for body, phase, _table in stored_notes(app)] == [
        ("In round 1", 1),
        ("In round 2", 2),
    ]


def test_a_refusal_is_decided_again_on_what_changed_meanwhile(app, make_cafe, socket_client, staff):
    """A phone refused before the first round (its rows then kept) may write once it starts."""
    code = make_cafe(status="open")
    client = app.test_client()
    join(client, code)
    alice = socket_client(client, code=code)
    facilitator, _projector = staff(code)
    assert note(alice, "Too early")["ok"] is False
    assert facilitator.emit("phase.go", {"index": 1}, callback=True)["ok"]
    ack = note(alice, "Now we talk")
    assert ack["ok"] is True, ack
    assert [body for body, _phase, _table in stored_notes(app)] == ["Now we talk"]


def test_a_change_another_process_made_reaches_the_next_write(app, make_cafe, socket_client):
    """Rows changed without this worker's ORM (another worker, a script) are read afresh."""
    code = make_cafe(tables=2, assignment="choose")
    client = app.test_client()
    join(client, code, group="1")
    alice = socket_client(client, code=code)
    assert note(alice, "At table 1")["ok"]
    with app.app_context(), write_transaction():
        db.session.execute(update(Participant.__table__).values(group="2"))
    assert note(alice, "At table 2")["ok"]
    assert [(body, table) for body, _phase, table in stored_notes(app)] == [
        ("At table 1", "1"),
        ("At table 2", "2"),
    ]
    with app.app_context(), write_transaction():
        db.session.execute(update(Session.__table__).values(status="closed"))
    closed = note(alice, "After the end")
    assert closed["ok"] is False and "not part" not in closed["error"]
    with app.app_context(), write_transaction():
        db.session.execute(delete(Contribution.__table__))
        db.session.execute(delete(Participant.__table__))
    assert note(alice, "Gone") == {"ok": False, "error": "You are not part of this session."}


def test_each_worker_keeps_a_bounded_number_of_phones_rows(
    app, make_cafe, socket_client, monkeypatch
):
    from palabre import connections

    monkeypatch.setattr(connections, "KEPT_MOST", 2)
    code = make_cafe()
    socks = []
    for _ in range(3):
        client = app.test_client()
        join(client, code)
        socks.append(socket_client(client, code=code))
    for n, sock in enumerate(socks * 2):
        assert note(sock, f"Note {n}")["ok"]
    kept = app.extensions[connections.KEPT_KEY]
    assert len(kept["phones"]) == 2
    # The phones of a session share one copy of it.
    first, second = kept["phones"].values()
    assert first.session is second.session and len(kept["sessions"]) == 1
    assert len(stored_notes(app)) == 6
