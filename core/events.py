"""Live events: stored with a per-session sequence number, broadcast after commit.

Writing an event and broadcasting it are one step, :func:`record_event`, so
that every broadcast can be replayed to a client that missed it.
"""

from __future__ import annotations

from flask import session as cookie
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value

from .database import after_commit, execute_core, stored_id
from .extensions import db, socketio
from .inputs import clean_json
from .models import Event, Participant, Session, hash_token

# Room names relative to a session.
ALL = "all"
FACILITATORS = "facilitators"
PROJECTOR = "projector"


def group_room(group: str) -> str:
    return f"g:{group}"


def participant_room(participant_id: int) -> str:
    return f"p:{participant_id}"


#: Every write runs these two: built once, as Core statements on the tables. Building
#: a statement and the ORM's bookkeeping cost several times what SQLite takes to run it.
_NEXT_SEQ = (
    update(Session.__table__)
    .where(Session.__table__.c.id == bindparam("session_id"))
    .values(seq=Session.__table__.c.seq + 1)
    .returning(Session.__table__.c.seq)
)
_INSERT_EVENT = insert(Event.__table__)


def record_event(session: Session, type: str, data: dict, rooms: list[str]) -> int:
    """Store a live event and broadcast it once the transaction commits.

    Must run inside :func:`palabre.database.write_transaction`. ``rooms`` are
    relative names: ``"all"``, ``"facilitators"``, ``"projector"``,
    ``"g:<group>"`` or ``"p:<participant id>"``. Returns the event's sequence
    number.
    """
    session_id = stored_id(session)
    seq = execute_core(_NEXT_SEQ, {"session_id": session_id}).scalar_one()
    # Keep the object in step without marking it changed.
    set_committed_value(session, "seq", seq)
    # The text is cleaned as a flush would (palabre.inputs.keep_stored_text_clean).
    data = clean_json(data)
    execute_core(
        _INSERT_EVENT,
        {"session_id": session_id, "seq": seq, "type": type, "data": data, "rooms": rooms},
    )
    envelope = {"seq": seq, "type": type, "data": data}
    targets = [room(session_id, name) for name in rooms]
    after_commit(lambda: socketio.emit("event", envelope, to=targets))
    return seq


def announce(session_id: int, type: str, data: dict, rooms: list[str]) -> None:
    """Broadcast a passing state, such as a head count, now.

    Unlike :func:`record_event` nothing is stored and no sequence number is
    taken: a burst of 500 phones joining must not fill the replay log that
    every one of them reads when its socket connects. A client that
    reconnects is sent the current state instead (see ``palabre.live``).
    It emits: never call it inside a write transaction.
    """
    targets = [room(session_id, name) for name in rooms]
    socketio.emit("event", {"type": type, "data": data}, to=targets)


#: Events that carry a contribution's text, keyed on its id.
TEXT_EVENTS = ("contribution.added", "contribution.changed", "contribution.restored")


def scrub_contribution_events(session: Session, contribution_id: int) -> None:
    """Rewrite the stored events that carried a contribution as "hidden" ones.

    Run when a facilitator hides it, inside that write transaction: a
    reconnecting phone, the projector or anything reading the log later
    then replays that it was hidden, never its text.
    """
    stored = db.session.scalars(
        select(Event).where(
            Event.session_id == session.id,
            Event.type.in_(TEXT_EVENTS),
            Event.data["id"].as_integer() == contribution_id,
        )
    )
    for event in stored:
        event.type = "contribution.hidden"
        event.data = {"id": contribution_id, "hidden": True}


def room(session_id: int, name: str) -> str:
    """The Socket.IO room of a relative room ``name`` in a session."""
    return f"s{session_id}:{name}"


def participant_token(session_id: int) -> str | None:
    """The participant token this browser holds for a session, if any."""
    return (cookie.get("p") or {}).get(str(session_id))


#: Every page and socket of a phone asks: built once.
_PARTICIPANT_BY_TOKEN = select(Participant).where(
    Participant.session_id == bindparam("session_id"),
    Participant.token_hash == bindparam("token_hash"),
)


def current_participant(session: Session) -> Participant | None:
    """The participant this browser is in ``session``, from its cookie."""
    token = participant_token(session.id)
    if not token:
        return None
    return db.session.scalar(
        _PARTICIPANT_BY_TOKEN, {"session_id": session.id, "token_hash": hash_token(token)}
    )
