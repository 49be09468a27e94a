"""A phone's session and participant, kept by each worker between its requests and events.

Every note or dot a phone sends needs its session and participant. Loading
both through the ORM at each event cost about a fifth of a note's server
CPU, so each worker process keeps a detached copy of them per phone, and a
phone's writes read those copies themselves: not part of any ORM session,
shared by the events that use them, so read, never changed (the
participant's ``session`` and ``role_link`` are loaded with it). Merging
them into each event's ORM session cost a tenth of a note again.

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

A phone's pages and its socket's connection (:func:`session_and_phone`)
read both rows' columns at each request, with two statements, and use the
copies when the columns are the same: cheaper than one ORM query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, inspect, select, type_coerce
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import NullType

from .database import ChangedMeanwhile, busy_message, confirm_under_lock, execute_core
from .errors import Refused, Unavailable
from .events import participant_token
from .extensions import db
from .models import Participant, RoleLink, Session, Status, hash_token

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


#: A session's columns, as :data:`_COLUMNS` has them, then its ``seq``: by its join code,
#: and by its id.
_SESSION_ROW = select(
    *(type_coerce(c, NullType()) for c in _SESSIONS.columns if c.name != "seq"),
    _SESSIONS.c.seq,
)
_SESSION_BY_CODE = _SESSION_ROW.where(_SESSIONS.c.code == bindparam("code"))
_SESSION_BY_ID = _SESSION_ROW.where(_SESSIONS.c.id == bindparam("session_id"))
#: A participant's columns, as :data:`_COLUMNS` has them, by its session and token.
_PARTICIPANT_BY_TOKEN = select(*(type_coerce(c, NullType()) for c in _PARTICIPANTS.columns)).where(
    _PARTICIPANTS.c.session_id == bindparam("session_id"),
    _PARTICIPANTS.c.token_hash == bindparam("token_hash"),
)
_SESSION_ID = [c.name for c in _SESSIONS.columns if c.name != "seq"].index("id")
_SESSION_STATUS = [c.name for c in _SESSIONS.columns if c.name != "seq"].index("status")
_PARTICIPANT_ID = [c.name for c in _PARTICIPANTS.columns].index("id")


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
    when it refused on them. The copies are detached and shared: ``write``
    reads them and changes neither (a change would be stored nowhere; with
    ``STRICT_WRITES`` on it raises ``AssertionError``). Raises
    :class:`Refused` when the participant or session is gone, and
    :class:`Unavailable` (the phone resends) when the rows change under
    every try.
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
            # Read afresh: a new snapshot of the rows.
            db.session.rollback()
        finally:
            _refuse_changes(session, participant)
    raise Unavailable(busy_message())


def _refuse_changes(session: Session, participant: Participant) -> None:
    """Drop copies a write changed, and say so where writes are strict (tests, development)."""
    if not (inspect(session).modified or inspect(participant).modified):
        return
    copies = _kept_copies()
    copies["phones"].pop((session.id, participant.id), None)
    copies["sessions"].pop(session.id, None)
    if current_app.config.get("STRICT_WRITES"):
        raise AssertionError(
            "a phone's write changed its session or participant, which are read-only copies: "
            "change rows read with db.session inside the write transaction instead"
        )


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
    else:  # the rows' columns read now, and copies of them (those kept, if the same)
        columns = execute_core(_COLUMNS, params).first()
        shared = columns and _kept_session(tuple(columns[:_SESSION_WIDTH]))
        entry = shared and _kept_phone(shared, tuple(columns[_SESSION_WIDTH:]))
        if not entry:
            copies["phones"].pop(key, None)
            return None
    confirm_under_lock(lambda: _unchanged(key, entry, params))
    return entry.session, entry.participant, kept


def session_and_phone(
    code: str, *, drafts: bool = True
) -> tuple[Session | None, Participant | None]:
    """The session a join code names and, by its cookie's token, this browser's participant.

    For a phone's pages and its socket's connection, which ask for both at
    every request: two statements read the rows' columns, and the copies
    this worker keeps are used when their columns are the same (a
    ``merge(load=False)``, no query), else new copies are made of the
    columns and kept. Either way the objects are as the rows are now, the
    session's ``seq`` included. ``drafts=False`` finds no draft session.
    ``(None, None)`` for a code that names no session; ``(session, None)``
    for a browser without a token, or with a token for no participant.
    """
    row = execute_core(_SESSION_BY_CODE, {"code": code}).first()
    if row is None or (not drafts and row[_SESSION_STATUS] == Status.DRAFT):
        return None, None
    session, shared = _session_of_row(row)
    if session is None:
        return None, None
    session_id = session.id
    token = participant_token(session_id)
    if not token:
        return session, None
    columns = execute_core(
        _PARTICIPANT_BY_TOKEN, {"session_id": session_id, "token_hash": hash_token(token)}
    ).first()
    entry = columns and _kept_phone(shared, tuple(columns))
    if not entry:
        return session, None
    participant = db.session.merge(entry.participant, load=False)
    # Merging the participant merges its session's copy too, whose seq may be an older one.
    set_committed_value(session, "seq", row[-1])
    return session, participant


def session_as_now(session_id: int) -> Session | None:
    """The session as its row is now, read without the ORM; ``None`` if it is gone.

    For a write that needs the session under the write lock (a join's
    seating), where :func:`palabre.database.write_transaction` has expired
    it: one statement reads its columns, and this worker's copy is used
    when they are the same, as for :func:`session_and_phone`.
    """
    row = execute_core(_SESSION_BY_ID, {"session_id": session_id}).first()
    return None if row is None else _session_of_row(row)[0]


def _session_of_row(row) -> tuple[Session | None, tuple | None]:
    """The session whose columns :data:`_SESSION_ROW` read, in the ORM session, and its
    kept ``(columns, copy)``; ``(None, None)`` if the row is gone meanwhile."""
    if (shared := _kept_session(tuple(row[:-1]))) is None:
        return None, None
    session = db.session.merge(shared[1], load=False)
    set_committed_value(session, "seq", row[-1])
    return session, shared


def _kept_session(columns: tuple) -> tuple | None:
    """``(columns, copy)``: this worker's copy of the session whose columns these are.

    The copy kept, when kept with the same columns; else a new one made of
    them, kept. ``None`` when the row is gone meanwhile.
    """
    sessions, session_id = _kept_copies()["sessions"], columns[_SESSION_ID]
    shared = sessions.get(session_id)
    if shared is None or shared[0] != columns:
        if (copy := _copy_of_columns(Session, columns)) is None:
            return None
        shared = (columns, copy)
    _keep(sessions, session_id, shared)
    return shared


def _kept_phone(shared: tuple, columns: tuple) -> _Kept | None:
    """This worker's copies of a participant whose columns these are, with its session's.

    ``shared`` is the session's, from :func:`_kept_session`. The participant's
    copy kept, when kept with the same columns; else a new one made of them.
    ``None`` when the row is gone meanwhile.
    """
    phones = _kept_copies()["phones"]
    key = (shared[0][_SESSION_ID], columns[_PARTICIPANT_ID])
    entry = phones.get(key)
    if entry is None or entry.participant_columns != columns:
        if (participant := _copy_of_columns(Participant, columns)) is None:
            return None
        link = participant.role_link_id and db.session.get(RoleLink, participant.role_link_id)
        set_committed_value(participant, "role_link", link and _detached_copy(link))
        entry = _Kept(shared[0], columns, shared[1], participant)
    elif entry.session is not shared[1]:  # the session changed, the participant did not
        entry = _Kept(shared[0], columns, shared[1], entry.participant)
    # Its session as a loaded participant has it, without a query.
    set_committed_value(entry.participant, "session", shared[1])
    _keep(phones, key, entry)
    return entry


def _unchanged(key: tuple[int, int], entry: _Kept, params: dict) -> bool:
    """Whether the rows are still as kept; drops the copy when not. Under the write lock."""
    if entry.holds(execute_core(_COLUMNS, params).first()):
        return True
    phones = _kept_copies()["phones"]
    if phones.get(key) is entry:
        del phones[key]
    return False


def _copy_of_columns(model, columns: tuple):
    """A detached ``model`` object (a session or participant) holding a row's ``columns``.

    ``columns`` are read as :data:`_COLUMNS` reads them: as the driver gives
    them, in the table's order, a session's without its ``seq``. On SQLite
    they are converted here as a query through the ORM would (JSON, dates),
    which saves reading the row again; on other databases, whose drivers
    convert some types themselves, the row is read again through the ORM.
    ``None`` when it is gone meanwhile.
    """
    keys, conversions = _conversions(model, db.session.get_bind().dialect)
    if conversions is None:
        loaded = db.session.get(model, columns[keys.index("id")])
        return None if loaded is None else _detached_copy(loaded)
    copy = inspect(model).class_manager.new_instance()
    for key, convert, value in zip(keys, conversions, columns, strict=True):
        set_committed_value(copy, key, value if convert is None else convert(value))
    make_transient_to_detached(copy)
    return copy


@lru_cache(maxsize=16)
def _conversions(model, dialect) -> tuple[tuple[str, ...], tuple | None]:
    """The attribute keys of ``model``'s columns as :data:`_COLUMNS` reads them, and their
    conversions on ``dialect`` (``None`` where the driver converts some itself)."""
    mapper = inspect(model)
    columns = [c for c in mapper.local_table.columns if model is not Session or c.name != "seq"]
    keys = tuple(mapper.get_property_by_column(column).key for column in columns)
    if dialect.name != "sqlite":
        return keys, None
    return keys, tuple(
        c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
    )


def _detached_copy(row):
    """A detached copy of a loaded ORM object's columns, for other requests to merge."""
    state = inspect(row)
    copy = state.mapper.class_manager.new_instance()
    for attribute in state.mapper.column_attrs:
        set_committed_value(copy, attribute.key, state.dict.get(attribute.key))
    make_transient_to_detached(copy)
    return copy
