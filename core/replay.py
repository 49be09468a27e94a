"""Replaying missed events to sockets that come back, read and encoded once per process.

When a venue's Wi-Fi drops for a moment, hundreds of phones reconnect within
seconds, each asking for the events since about the same sequence number.
Read from the database and encoded for each phone, a reconnect cost in
proportion to the events it missed, and a storm of them kept the server busy
for tens of seconds. Here each server process keeps, per live session, a
:class:`RecentEvents`: the session's latest events as stored (at most
:data:`RECENT`), each already encoded as the Socket.IO packet that carries
it. A reconnecting socket asks the database only for what came after the
newest one kept (usually nothing), and its share is sent straight to its own
connection, not through the message queue every worker reads.

Why what is kept stays true:

* Events commit in the order of their numbers (each takes the next one by
  updating the session's row, and holds it until it commits), so one query
  for the events after a number sees every event up to the highest it
  returns: what is kept never has a hole.
* Stored events change only when a facilitator hides a contribution
  (:func:`palabre.events.scrub_contribution_events`), which records a
  ``contribution.hidden`` event in the same transaction: on seeing one,
  what is kept is read again from the database, where the rewrite has
  committed. The purge of old text (:mod:`palabre.retention`) touches closed
  sessions only, which are not kept here.
* Every caller first asks the database for what came after the newest event
  kept, after its socket has joined its rooms: an event committed later is
  broadcast to it live, as without this module.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass

from engineio import packet as eio_packet
from flask import current_app, request
from socketio import packet as sio_packet
from sqlalchemy import bindparam, select

from .extensions import db, socketio
from .inputs import SQL_INT_MAX
from .models import Event, Session, Status

#: Replaying more events than this is slower than reloading the page.
REPLAY_LIMIT = 500
#: Events kept per session: one more than a replay may hold, to tell "too many".
RECENT = REPLAY_LIMIT + 1
#: A session nobody reconnected to for this long is forgotten.
IDLE_S = 120.0
#: How long a socket waits for another one reading a session's latest events.
LOAD_WAIT_S = 10.0
#: Statuses whose sessions are kept: their stored events change only by a hide.
KEPT_STATUSES = (Status.OPEN, Status.LIVE)
#: Event types recorded together with a rewrite of earlier stored events.
REWRITES_EARLIER = frozenset({"contribution.hidden"})
NAMESPACE = "/"

_COLUMNS = (Event.seq, Event.type, Event.data, Event.rooms)
#: Asked at every reconnection: built once.
_AFTER = (
    select(*_COLUMNS)
    .where(Event.session_id == bindparam("session_id"), Event.seq > bindparam("after"))
    .order_by(Event.seq)
    .limit(RECENT)
)
_LATEST = (
    select(*_COLUMNS)
    .where(Event.session_id == bindparam("session_id"))
    .order_by(Event.seq.desc())
    .limit(RECENT)
)


class Stored:
    """One stored event: its envelope and rooms, and the packet that carries it, once asked."""

    __slots__ = ("envelope", "rooms", "seq", "_packet")

    def __init__(self, row):
        self.seq = row.seq
        self.rooms = frozenset(row.rooms or ())
        self.envelope = {"seq": row.seq, "type": row.type, "data": row.data}
        self._packet = None

    @property
    def packet(self) -> eio_packet.Packet:
        """The Engine.IO packet of the Socket.IO ``event`` carrying the envelope, encoded once."""
        if self._packet is None:
            encoded = sio_packet.Packet(
                sio_packet.EVENT, namespace=NAMESPACE, data=["event", self.envelope]
            ).encode()
            self._packet = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        return self._packet


@dataclass(frozen=True, slots=True)
class RecentEvents:
    """Every event of a session numbered in ``(low, high]``, in order; never changed.

    A newer state is a new object, so a socket works on the state it read
    even while another one, between two queries, replaces it.
    """

    low: int
    events: tuple[Stored, ...]
    seqs: tuple[int, ...]

    @property
    def high(self) -> int:
        return self.seqs[-1] if self.seqs else self.low

    @classmethod
    def latest(cls, rows: list) -> RecentEvents:
        """From the session's latest events, newest first (:data:`_LATEST`)."""
        events = tuple(Stored(row) for row in reversed(rows))
        # Fewer than asked for: the session has no other event.
        low = events[0].seq - 1 if len(events) == RECENT else 0
        return cls(low, events, tuple(e.seq for e in events))

    def extended(self, rows: list) -> RecentEvents:
        """With ``rows``, every event numbered after some ``n <= high``, in order."""
        fresh = tuple(Stored(row) for row in rows if row.seq > self.high)
        if not fresh:
            return self
        events = (self.events + fresh)[-RECENT:]
        dropped = len(self.events) + len(fresh) - len(events)
        low = self.events[dropped - 1].seq if dropped else self.low
        return RecentEvents(low, events, tuple(e.seq for e in events))

    def between(self, after: int, upto: int | None) -> list[Stored] | None:
        """The events numbered in ``(after, upto]``; ``None`` when some are not kept."""
        if after < self.low:
            return None
        start = bisect.bisect_right(self.seqs, after)
        end = len(self.seqs) if upto is None else bisect.bisect_right(self.seqs, upto)
        return list(self.events[start:end])


#: What identifies a session here: its id and its join code, so that a database
#: put back from a copy, or an id given again, never meets another session's events.
SessionKey = tuple[int, str]


class Replays:
    """The :class:`RecentEvents` of the sessions this process replayed lately."""

    def __init__(self):
        self.sessions: dict[SessionKey, tuple[RecentEvents, float]] = {}
        #: Sessions whose latest events a socket is reading now, and when it is done.
        self.loading: dict[SessionKey, threading.Event] = {}

    def recent(self, session: Session) -> RecentEvents:
        """``session``'s recent events, up to date with the database now."""
        now = time.monotonic()
        key = (session.id, session.code)
        kept = self.sessions.get(key) or self._kept_by_another(key)
        if kept is None:
            recent = self._load(key, now)
        else:
            rows = db.session.execute(_AFTER, {"session_id": key[0], "after": kept[0].high}).all()
            if len(rows) == RECENT or any(row.type in REWRITES_EARLIER for row in rows):
                recent = self._latest(key)
            else:
                recent = kept[0].extended(rows)
        self._keep(key, recent, now)
        self._forget_idle(now)
        return recent

    def _kept_by_another(self, key: SessionKey) -> tuple[RecentEvents, float] | None:
        """What another socket reading the session's latest events kept, once it is done.

        A storm on a worker that kept nothing yet: one socket reads them, the
        others wait for it, then ask only for what came after. ``None`` when
        no other socket is reading them.
        """
        loading = self.loading.get(key)
        if loading is None:
            return None
        loading.wait(LOAD_WAIT_S)
        return self.sessions.get(key)

    def _load(self, key: SessionKey, now: float) -> RecentEvents:
        """Read and keep the session's latest events, the other sockets waiting meanwhile."""
        self.loading[key] = done = threading.Event()
        try:
            recent = self._latest(key)
            self._keep(key, recent, now)
            return recent
        finally:
            if self.loading.get(key) is done:
                del self.loading[key]
            done.set()

    def _keep(self, key: SessionKey, recent: RecentEvents, now: float) -> None:
        # Another socket may have kept a newer state meanwhile: never go back to an older one.
        latest = self.sessions.get(key)
        if latest is None or latest[0].high <= recent.high:
            self.sessions[key] = (recent, now)

    def forget(self, session: Session) -> None:
        self.sessions.pop((session.id, session.code), None)

    def _latest(self, key: SessionKey) -> RecentEvents:
        return RecentEvents.latest(db.session.execute(_LATEST, {"session_id": key[0]}).all())

    def _forget_idle(self, now: float) -> None:
        idle = [key for key, (_recent, used) in self.sessions.items() if now - used > IDLE_S]
        for key in idle:
            del self.sessions[key]


def _replays() -> Replays:
    return current_app.extensions.setdefault("palabre.replays", Replays())


def nothing_after(session: Session, seq: int) -> bool:
    """Whether ``session`` surely has no event numbered after ``seq``, known without a query.

    Its count (``session.seq``, read in this request) says none was stored
    after ``seq``, and no socket of this process has read, or is reading, a
    later one. What a phone that has just loaded its page asks when it
    connects: 500 phones joining cost no query for the replay.
    """
    if seq < session.seq:
        return False
    replays = _replays()
    key = (session.id, session.code)
    kept = replays.sessions.get(key)
    return key not in replays.loading and (kept is None or kept[0].high <= seq)


_ROWS_AFTER = (
    select(*_COLUMNS)
    .where(
        Event.session_id == bindparam("session_id"),
        Event.seq > bindparam("after"),
        Event.seq <= bindparam("upto"),
    )
    .order_by(Event.seq)
    .limit(RECENT)
)


def missed(
    session: Session, rooms: list[str], after: int, upto: int | None = None
) -> list[Stored] | None:
    """``session``'s events for ``rooms`` numbered after ``after`` (up to ``upto``), in order.

    ``None`` when there are more than :data:`REPLAY_LIMIT` to go through:
    reloading the page is faster. Kept in memory for an open or live
    session; read from the database for the others, or for a number older
    than what is kept.
    """
    events = None
    replays = _replays()
    if session.status in KEPT_STATUSES:
        events = replays.recent(session).between(after, upto)
    else:
        replays.forget(session)
    if events is None:
        rows = db.session.execute(
            _ROWS_AFTER,
            {
                "session_id": session.id,
                "after": after,
                "upto": SQL_INT_MAX if upto is None else upto,
            },
        ).all()
        events = [Stored(row) for row in rows]
    if len(events) > REPLAY_LIMIT:
        return None
    wanted = set(rooms)
    return [event for event in events if not wanted.isdisjoint(event.rooms)]


def send(events: list[Stored]) -> None:
    """Send ``events`` to the socket whose event is being handled, in order.

    Straight to its connection, as python-socketio's own ``emit`` does for a
    socket of this process, without the message queue: it is this
    process's socket.
    """
    eio_sid = socketio.server.manager.eio_sid_from_sid(request.sid, NAMESPACE)
    if eio_sid is None:
        return  # gone meanwhile: it replays again when it comes back
    for event in events:
        socketio.server._send_eio_packet(eio_sid, event.packet)
