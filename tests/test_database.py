"""SQLite as the embedded default: WAL, and bursts of writes that never fail."""

from __future__ import annotations

import threading

from sqlalchemy import func, select, text

from core import contributions
from core.extensions import db
from core.models import Contribution, Participant, Session
from tests.conftest import join, new_cid


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(app):
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


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
        # One event per note, with gapless sequence numbers.
        assert session.seq == phones * 5 + phones  # plus one "participants.changed" per join
