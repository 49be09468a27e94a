"""Live events: stored with a per-session sequence number, broadcast after commit.

Writing an event and broadcasting it are one step, :func:`record_event`, so
that every broadcast can be replayed to a client that missed it.
"""

from __future__ import annotations

from flask import session as cookie
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from .database import after_commit
from .extensions import db, socketio
from .models import Event, Participant, Session, hash_token

# Room names relative to a session.
ALL = "all"
FACILITATORS = "facilitators"
PROJECTOR = "projector"


def group_room(group: str) -> str:
    return f"g:{group}"


def participant_room(participant_id: int) -> str:
    return f"p:{participant_id}"


def record_event(session: Session, type: str, data: dict, rooms: list[str]) -> int:
    """Store a live event and broadcast it once the transaction commits.

    Must run inside :func:`core.database.write_transaction`. ``rooms`` are
    relative names: ``"all"``, ``"facilitators"``, ``"projector"``,
    ``"g:<group>"`` or ``"p:<participant id>"``. Returns the event's sequence
    number.
    """
    seq = db.session.execute(
        update(Session)
        .where(Session.id == session.id)
        .values(seq=Session.seq + 1)
        .returning(Session.seq)
    ).scalar_one()
    # Keep the object in step without marking it changed.
    set_committed_value(session, "seq", seq)
    db.session.add(Event(session_id=session.id, seq=seq, type=type, data=data, rooms=rooms))
    envelope = {"seq": seq, "type": type, "data": data}
    targets = [room(session.id, name) for name in rooms]
    after_commit(lambda: socketio.emit("event", envelope, to=targets))
    return seq


def room(session_id: int, name: str) -> str:
    """The Socket.IO room of a relative room ``name`` in a session."""
    return f"s{session_id}:{name}"


def participant_token(session_id: int) -> str | None:
    """The participant token this browser holds for a session, if any."""
    return (cookie.get("p") or {}).get(str(session_id))


def current_participant(session: Session) -> Participant | None:
    """The participant this browser is in ``session``, from its cookie."""
    token = participant_token(session.id)
    if not token:
        return None
    return db.session.scalar(
        select(Participant).where(
            Participant.session_id == session.id,
            Participant.token_hash == hash_token(token),
        )
    )
