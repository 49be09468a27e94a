"""Faults at scale: phones whose sockets drop and come back, a worker killed mid-session.

What a room must come through without losing or doubling a note: every
phone's socket dropping at once and returning (a venue's Wi-Fi failing for
a moment), and one of several workers killed with ``kill -9`` while phones
write. The phones here behave as ``live.js`` does:

* each note keeps its client id (``cid``) in an :class:`Outbox` until it is
  acknowledged ``ok``, and is sent again, same ``cid``, after every
  reconnection (and on a refusal that says to retry);
* a phone that lost its socket reconnects with the last sequence number up
  to which it heard everything, and the server replays what came after;
* a phone that sees a hole in the sequence numbers for a while asks the
  server to ``replay`` it (:func:`fill_gaps`).

:func:`drop_and_return` runs one fault and times, for each phone that lost
its socket, how long after it came back its socket was connected again and
how long until it was connected again *and* held every event up to the
session's sequence number at that moment (*resynchronised*). :func:`stored_notes` and
:func:`heard_everything` check the outcome against the database. Used by
``bench/faults_at_scale.py`` (figures at 500 phones, against bare
Flask-SocketIO) and ``tests/test_faults.py`` (the same properties at the
size CI runs).

The session is a world café with **one table**, so every phone is sent
every note: the events a phone must hold are those for everyone and for
that table (``all`` and ``g:<table>`` rooms).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import socketio

from .room import PalabreServer, Phone, Received, RoomError, new_cid, percentile

#: How long a phone whose socket is gone takes to notice, at most (a killed
#: worker's connections are reset by the kernel at once).
NOTICE_TIMEOUT_S = 10
#: How long a hole in the sequence numbers waits before a phone asks for it
#: (``GAP_WAIT_MS`` in live.js).
GAP_WAIT_S = 1.0
#: Bound on one ``replay`` request.
REPLAY_TIMEOUT_S = 10
#: How long a phone waits for a write's answer before sending it again (live.js: 15 s).
ANSWER_TIMEOUT_S = 15
#: Seconds between two rounds of sending again what has no answer (live.js: 2 s, growing).
RESEND_EVERY_S = 2.0


class Outbox:
    """A phone's notes until acknowledged, kept and sent again as ``live.js`` does.

    :meth:`write` sends at once without waiting for the answer (a person
    types the next note meanwhile); :meth:`resend` sends again, with the
    same ``cid``, whatever has no ``ok`` yet and is not waiting for an
    answer on the current socket (an answer waited for longer than
    :data:`ANSWER_TIMEOUT_S` counts as none, as in live.js).
    """

    def __init__(self, phone: Phone):
        self.phone = phone
        #: cid -> payload, not acknowledged yet.
        self.pending: dict[str, dict] = {}
        #: cid -> the ``ok`` acknowledgement.
        self.acknowledged: dict[str, dict] = {}
        #: cid -> the refusal (``ok: false`` without ``retry``).
        self.refused: dict[str, object] = {}
        #: How many times a note was sent again.
        self.resent = 0
        #: cid -> (the socket it was last sent on, when), while its answer is awaited.
        self._awaiting: dict[str, tuple[object, float]] = {}
        self._emits: set[asyncio.Task] = set()

    def write(self, body: str) -> str:
        cid = new_cid()
        self.pending[cid] = {"cid": cid, "kind": "note", "body": body}
        self._transmit(cid)
        return cid

    def resend(self) -> None:
        for cid in list(self.pending):
            if self._transmit(cid):
                self.resent += 1

    def _transmit(self, cid: str) -> bool:
        """Send one pending note on the phone's socket, unless its answer is awaited there."""
        live = self.phone.socket
        if live is None or not live.connected:
            return False  # kept: sent after the reconnection
        awaited_on, sent_at = self._awaiting.get(cid, (None, 0.0))
        if awaited_on is live and time.perf_counter() - sent_at < ANSWER_TIMEOUT_S:
            return False
        self._awaiting[cid] = (live, time.perf_counter())

        def on_ack(*args):
            reply = args[0] if args else None
            if self._awaiting.get(cid, (None,))[0] is live:
                del self._awaiting[cid]
            if cid not in self.pending:
                return  # an earlier copy's answer came first
            if isinstance(reply, dict) and reply.get("ok") is True:
                self.acknowledged[cid] = reply
                del self.pending[cid]
            elif not (isinstance(reply, dict) and reply.get("retry")):
                self.refused[cid] = reply
                del self.pending[cid]

        task = asyncio.ensure_future(self._emit(live, self.pending[cid], on_ack))
        self._emits.add(task)
        task.add_done_callback(self._emits.discard)
        return True

    @staticmethod
    async def _emit(live, payload: dict, on_ack) -> None:
        # A socket that drops meanwhile: the note stays pending and is sent again.
        with contextlib.suppress(socketio.exceptions.SocketIOError, OSError):
            await live.client.emit("contribute", payload, callback=on_ack)


@contextlib.asynccontextmanager
async def writing(outboxes: Sequence[Outbox], pace: tuple[float, float], seed: int = 0):
    """Every outbox's phone writes a note every ``pace`` seconds until the block ends."""
    chance = random.Random(seed)
    stop = asyncio.Event()

    async def write(outbox: Outbox) -> None:
        k = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), chance.uniform(*pace))
            if stop.is_set():
                return
            outbox.write(f"Note {k} from {outbox.phone.name}: the bus to the prefecture is late.")
            k += 1

    tasks = [asyncio.ensure_future(write(outbox)) for outbox in outboxes]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def settle(outboxes: Iterable[Outbox], timeout: float) -> list[str]:
    """Send what has no answer again every few seconds until nothing is pending; the cids left."""
    outboxes = list(outboxes)
    deadline = time.perf_counter() + timeout
    while any(o.pending for o in outboxes) and time.perf_counter() < deadline:
        for outbox in outboxes:
            outbox.resend()
        await asyncio.sleep(min(RESEND_EVERY_S, max(0.0, deadline - time.perf_counter())))
    return [cid for outbox in outboxes for cid in outbox.pending]


# --- what a phone holds ---------------------------------------------------------------


def held(phone: Phone) -> dict[int, Received]:
    """The sequenced events a phone received on any of its sockets: the first copy of each."""
    first: dict[int, Received] = {}
    for live in phone.sockets:
        for event in live.events:
            if event.seq is not None and (event.seq not in first or event.at < first[event.seq].at):
                first[event.seq] = event
    return first


def missing(phone: Phone, wanted: set[int]) -> set[int]:
    """The sequence numbers of ``wanted`` the phone has not received on any socket."""
    left = set(wanted)
    for live in phone.sockets:
        left -= live.seqs
    return left


def contiguous_seq(phone: Phone, start: int) -> int:
    """The last sequence number up to which the phone heard everything after ``start``."""
    seqs = set().union(*(live.seqs for live in phone.sockets))
    while start + 1 in seqs:
        start += 1
    return start


async def until(condition: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    """Wait until ``condition()`` holds, checked every ``every`` s; False after ``timeout``."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(every)
    return True


async def fill_gaps(phone: Phone, start: int) -> int:
    """Ask for the events after the phone's first hole, as live.js does; how many came.

    What the answer holds is recorded as received on the phone's socket now.
    """
    live = phone.socket
    if live is None:
        return 0
    envelopes = await live.replay(contiguous_seq(phone, start), timeout=REPLAY_TIMEOUT_S)
    known = set().union(*(other.seqs for other in phone.sockets))
    fresh = [e for e in envelopes if e.get("seq") not in known]
    for envelope in fresh:
        live.record(envelope)
    return len(fresh)


def for_everyone(server: PalabreServer, session_id: int, after: int, upto: int) -> set[int]:
    """Sequence numbers in ``(after, upto]`` of events a phone at the one table must get."""
    rows = server.query(
        "SELECT seq, rooms FROM event WHERE session_id = ? AND seq > ? AND seq <= ?",
        (session_id, after, upto),
    )
    wanted = set()
    for row in rows:
        rooms = row["rooms"] if isinstance(row["rooms"], list) else json.loads(row["rooms"])
        if any(name == "all" or name.startswith("g:") for name in rooms):
            wanted.add(row["seq"])
    return wanted


def session_seq(server: PalabreServer, session_id: int) -> int:
    return server.session_row(session_id)["seq"]


# --- one fault ------------------------------------------------------------------------


@dataclass
class Comeback:
    """How the phones that lost their sockets came back, in seconds from their return."""

    phones: int
    #: The session's sequence number when they came back: what "resynchronised" reaches.
    target_seq: int | None
    reconnected: list[float] = field(default_factory=list)
    resynchronised: list[float] = field(default_factory=list)
    not_reconnected: list[str] = field(default_factory=list)
    not_resynchronised: list[str] = field(default_factory=list)
    #: Seconds from the fault to the phones' return (how long they were away).
    away_s: float = 0.0

    def figures(self) -> dict:
        """p50, p95 and max of both timings, in seconds, and the counts."""

        def spread(values: list[float]) -> dict:
            return {
                "p50_s": _rounded(percentile(values, 50)),
                "p95_s": _rounded(percentile(values, 95)),
                "max_s": _rounded(max(values) if values else None),
            }

        return {
            "phones": self.phones,
            "target_seq": self.target_seq,
            "away_s": round(self.away_s, 3),
            "reconnected": len(self.reconnected),
            "reconnect": spread(self.reconnected),
            "resynchronised": len(self.resynchronised),
            "resync": spread(self.resynchronised),
            "not_reconnected": self.not_reconnected[:10],
            "not_resynchronised": self.not_resynchronised[:10],
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def drop_and_return(
    victims: Sequence[Phone],
    outboxes: dict[Phone, Outbox],
    fault: Callable[[], Awaitable[None]],
    *,
    away_s: float = 0.0,
    reconnect_to: str | None = None,
    target: Callable[[], int] | None = None,
    events: Callable[[int, int], set[int]] | None = None,
    bound_s: float = 30.0,
) -> Comeback:
    """Make ``victims`` lose their sockets with ``fault``, bring them back, time their return.

    After ``fault()`` and ``away_s`` seconds, every victim at the same moment
    waits until its client has noticed the loss, reconnects (to
    ``reconnect_to`` when given, as a proxy sends it to another worker) from
    the last sequence number it is sure of, and sends its outbox again.
    With ``target`` (the session's sequence number now) and ``events``
    (``events(after, upto)``: the sequence numbers in ``(after, upto]`` a
    phone must hold, asked once), each victim is
    resynchronised once it holds them all; a victim still missing some after
    a gap wait asks for a replay as live.js would. Each wait is bounded by
    ``bound_s``; what was not reached is listed in the result.
    """
    start_seq = {phone: phone.seq or 0 for phone in victims}
    fault_at = time.perf_counter()
    await fault()
    if away_s:
        await asyncio.sleep(away_s)
    target_seq = target() if target else None
    everyone = None
    if target_seq is not None and events is not None:
        everyone = events(min(start_seq.values(), default=0), target_seq)
    back_at = time.perf_counter()
    result = Comeback(len(victims), target_seq, away_s=back_at - fault_at)

    async def come_back(phone: Phone) -> None:
        old = phone.socket
        if old is not None:
            await old.wait_for(lambda: not old.connected, NOTICE_TIMEOUT_S)
        phone.seq = contiguous_seq(phone, start_seq[phone])
        if reconnect_to:
            phone.base = reconnect_to
        try:
            await phone.connect_live(attempts=3, timeout=bound_s)
        except RoomError as error:
            result.not_reconnected.append(str(error))
            return
        reconnected = time.perf_counter() - back_at
        result.reconnected.append(reconnected)
        if phone in outboxes:
            outboxes[phone].resend()
        if everyone is None:
            return
        wanted = {seq for seq in everyone if seq > start_seq[phone]}

        def complete() -> bool:
            return not missing(phone, wanted)

        deadline = time.perf_counter() + bound_s
        while not complete() and time.perf_counter() < deadline:
            if not await until(complete, GAP_WAIT_S):
                await fill_gaps(phone, start_seq[phone])
        if not complete():
            count = len(missing(phone, wanted))
            result.not_resynchronised.append(f"{phone.name}: {count} events missing")
            return
        arrivals = held(phone)
        last = max((arrivals[seq].at for seq in wanted), default=back_at)
        # Up to date once connected again and holding everything, whichever came last.
        result.resynchronised.append(max(reconnected, last - back_at))

    await asyncio.gather(*(come_back(phone) for phone in victims))
    return result


# --- the outcome ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What the database and every phone hold once the writing has stopped."""

    written: int
    acknowledged: int
    refused: int
    #: Notes still not acknowledged after settling.
    unacknowledged: int
    #: Acknowledged notes missing from the database.
    lost: int
    #: Client ids stored more than once.
    duplicated: int
    #: Notes broadcast under more than one sequence number.
    broadcast_twice: int
    #: Phones that, after a gap wait and a replay, still miss events; and how many.
    phones_missing_events: int
    events_missing: int
    #: Phones that had to ask for a replay at the end (a hole live.js would fill).
    gap_fills: int
    #: ``resync`` requests received (each one a page reload on a real phone).
    resync_requests: int
    resent: int

    def holds(self) -> bool:
        """Nothing acknowledged lost, nothing doubled, every phone up to date."""
        return not (
            self.lost
            or self.duplicated
            or self.broadcast_twice
            or self.unacknowledged
            or self.phones_missing_events
        )


def stored_notes(server: PalabreServer, session_id: int) -> collections.Counter:
    """How many rows each client id has in the session's contributions."""
    rows = server.query("SELECT client_id FROM contribution WHERE session_id = ?", (session_id,))
    return collections.Counter(row["client_id"] for row in rows)


async def heard_everything(
    server: PalabreServer,
    session_id: int,
    phones: Sequence[Phone],
    outboxes: Iterable[Outbox],
    start_seq: dict[Phone, int],
    *,
    settle_s: float = 30.0,
    deliver_s: float = 10.0,
) -> Outcome:
    """Settle the outboxes, then check the database and every phone against each other.

    Every phone must end up holding every event for everyone (or its table)
    after ``start_seq[phone]`` up to the session's last sequence number:
    waited for ``deliver_s``, then a phone still missing some asks for a
    replay once, as live.js does after a hole.
    """
    outboxes = list(outboxes)
    left = await settle(outboxes, settle_s)
    final = session_seq(server, session_id)
    wanted = {phone: for_everyone(server, session_id, start_seq[phone], final) for phone in phones}

    async def delivered(phone: Phone) -> tuple[int, bool]:
        def complete() -> bool:
            return not missing(phone, wanted[phone])

        filled = False
        if not await until(complete, deliver_s):
            filled = True
            await fill_gaps(phone, start_seq[phone])
        return len(missing(phone, wanted[phone])), filled

    checks = await asyncio.gather(*(delivered(phone) for phone in phones))
    counts = stored_notes(server, session_id)
    acknowledged = {cid for o in outboxes for cid in o.acknowledged}
    broadcast_twice = 0
    for phone in phones:
        seqs_of_note = collections.defaultdict(set)
        for seq, event in held(phone).items():
            if event.type == "contribution.added":
                seqs_of_note[event.data.get("id")].add(seq)
        broadcast_twice = max(broadcast_twice, sum(len(s) > 1 for s in seqs_of_note.values()))
    return Outcome(
        written=sum(len(o.acknowledged) + len(o.refused) + len(o.pending) for o in outboxes),
        acknowledged=len(acknowledged),
        refused=sum(len(o.refused) for o in outboxes),
        unacknowledged=len(left),
        lost=len(acknowledged - counts.keys()),
        duplicated=sum(1 for n in counts.values() if n > 1),
        broadcast_twice=broadcast_twice,
        phones_missing_events=sum(1 for missing, _ in checks if missing),
        events_missing=sum(missing for missing, _ in checks),
        gap_fills=sum(1 for _, filled in checks if filled),
        resync_requests=sum(live.resyncs for phone in phones for live in phone.sockets),
        resent=sum(o.resent for o in outboxes),
    )
