"""The session and participant a phone's socket writes as, kept by each worker between events.

Every note or dot a phone sends needs its session and participant. Loading
both through the ORM at each event cost about a fifth of a note's server
CPU, so each worker process keeps a detached copy of them per phone and
gives each event its own copy of that (``merge(load=False)``: no query).

What was kept is confirmed when the event writes, inside its write
transaction, under the write lock (:func:`palabre.database.confirm_under_lock`):
the two rows' columns, read as the driver gives them, must equal those read
with the copy (the session's ``seq`` aside: every event moves it, and what
reads it reads it afresh). If they differ, whatever changed them (the
facilitator opening a phase, a table move, another worker), the write stops
before storing anything, :class:`~palabre.database.ChangedMeanwhile` is
raised, and the event runs again on rows read afresh
(:func:`as_participant`). A refusal decided on a kept copy is decided again
on fresh rows as well: no phone is told "not now", or has its note stored
under an old table or phase, because of a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, inspect, select, type_coerce
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import NullType

from .database import ChangedMeanwhile, busy_message, confirm_under_lock, execute_core
from .errors import Refused, Unavailable
from .extensions import db
from .models import Participant, Session

#: Where a worker keeps its copies (``app.extensions``): ``{"phones": {(session id,
#: participant id): _Kept}, "sessions": {session id: (columns, copy)}}``. The phones of
#: a session share one copy of it: a session's configuration may be kilobytes.
KEPT_KEY = "palabre.kept_connections"
#: How many phones' rows, and sessions, at most: beyond it the longest unused is
#: dropped (read again at its next event).
KEPT_MOST = 5000

_SESSIONS, _PARTICIPANTS = Session.__table__, Participant.__table__
#: How many of :data:`_COLUMNS` are the session's; the participant's follow.
_SESSION_WIDTH = len(_SESSIONS.columns) - 1

#: Both rows, every column but the session's ``seq``, as the driver gives them: they are
#: only compared, so no conversion (JSON, dates) is paid for.
_COLUMNS = (
    select(
        *(type_coerce(c, NullType()) for c in _SESSIONS.columns if c.name != "seq"),
        *(type_coerce(c, NullType()) for c in _PARTICIPANTS.columns),
    )
    .join_from(_SESSIONS, _PARTICIPANTS, _PARTICIPANTS.c.session_id == _SESSIONS.c.id)
    .where(
        _SESSIONS.c.id == bindparam("session_id"), _PARTICIPANTS.c.id == bindparam("participant_id")
    )
)

#: A phone's session and participant by their ids, through the ORM.
SESSION_AND_PARTICIPANT = (
    select(Session, Participant)
    .join(Participant, Participant.session_id == Session.id)
    .where(Session.id == bindparam("session_id"), Participant.id == bindparam("participant_id"))
)


@dataclass(frozen=True)
class _Kept:
    """A phone's rows as last read: their columns (see :data:`_COLUMNS`) and copies."""

    session_columns: tuple
    participant_columns: tuple
    session: Session
    participant: Participant

    def holds(self, columns) -> bool:
        return (
            columns is not None
            and tuple(columns[_SESSION_WIDTH:]) == self.participant_columns
            and tuple(columns[:_SESSION_WIDTH]) == self.session_columns
        )


T = TypeVar("T")


def as_participant(session_id: int, participant_id: int, write: Callable[..., T]) -> T:
    """``write(session, participant)`` for a phone, on the rows kept for it, or fresh ones.

    Runs ``write`` on this worker's copies of the phone's rows; again on
    rows read afresh when they changed before its write transaction, or
    when it refused on them. Raises :class:`Refused` when the participant
    or session is gone, and :class:`Unavailable` (the phone resends) when
    the rows change under every try.
    """
    for fresh in (False, True):
        rows = _rows(session_id, participant_id, fresh=fresh)
        if rows is None:
            raise Refused(_("You are not part of this session."))
        session, participant, kept = rows
        try:
            return write(session, participant)
        except ChangedMeanwhile:
            continue
        except Refused:
            if not kept:
                raise
            # Read afresh: a new snapshot, and the copies' values expired, not kept.
            db.session.rollback()
    raise Unavailable(busy_message())


def _kept_copies() -> dict[str, dict]:
    return current_app.extensions.setdefault(KEPT_KEY, {"phones": {}, "sessions": {}})


def _keep(kept: dict, key, value) -> None:
    """Keep ``value`` under ``key``, last (most recently used), within :data:`KEPT_MOST`."""
    kept.pop(key, None)
    if len(kept) >= KEPT_MOST:
        kept.pop(next(iter(kept)))
    kept[key] = value


def _rows(session_id: int, participant_id: int, *, fresh: bool):
    """``(session, participant, kept)``, ``kept`` saying they are copies; ``None`` if gone."""
    copies, key = _kept_copies(), (session_id, participant_id)
    params = {"session_id": session_id, "participant_id": participant_id}
    entry = None if fresh else copies["phones"].get(key)
    kept = entry is not None
    if kept:
        _keep(copies["phones"], key, entry)
        session = db.session.merge(entry.session, load=False)
        participant = db.session.merge(entry.participant, load=False)
    else:
        # The columns first: should a change come between the two reads, the copy is
        # newer than the columns it is kept with, and its first write reads afresh.
        columns = execute_core(_COLUMNS, params).first()
        row = db.session.execute(SESSION_AND_PARTICIPANT, params).first()
        if columns is None or row is None:
            copies["phones"].pop(key, None)
            return None
        session, participant = row
        session_columns = tuple(columns[:_SESSION_WIDTH])
        shared = copies["sessions"].get(session_id)
        if shared is None or shared[0] != session_columns:
            shared = (session_columns, _detached_copy(session))
        _keep(copies["sessions"], session_id, shared)
        entry = _Kept(
            shared[0], tuple(columns[_SESSION_WIDTH:]), shared[1], _detached_copy(participant)
        )
        _keep(copies["phones"], key, entry)
    confirm_under_lock(lambda: _unchanged(key, entry, params))
    return session, participant, kept


def _unchanged(key: tuple[int, int], entry: _Kept, params: dict) -> bool:
    """Whether the rows are still as kept; drops the copy when not. Under the write lock."""
    if entry.holds(execute_core(_COLUMNS, params).first()):
        return True
    phones = _kept_copies()["phones"]
    if phones.get(key) is entry:
        del phones[key]
    return False


def _detached_copy(row):
    """A detached copy of a loaded ORM object's columns, for other requests to merge."""
    state = inspect(row)
    copy = state.mapper.class_manager.new_instance()
    for attribute in state.mapper.column_attrs:
        set_committed_value(copy, attribute.key, state.dict.get(attribute.key))
    make_transient_to_detached(copy)
    return copy
