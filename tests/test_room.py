"""A room, not a user: every write path with a room of phones against a real server.

One ``palabre serve`` for the module (``palabre.testing``); each test creates its
own session on it, joins at least 30 phones through the join page, connects
their sockets and a facilitator's and a projector's, and writes at human
pace (a random 0.2 to 1.5 s between two writes of a phone) and in a burst
(every phone at once). For every path: every write is acknowledged, 95% of
acknowledgements within a second on a 2-core machine (two on PostgreSQL, see
:data:`ACK_P95_LIMIT_S`), no socket is lost, the database holds exactly one
row per client id, and the screens received every broadcast once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import gc
import json
import random
import re
from datetime import date

import pytest

from palabre.i18n import LANGUAGES
from palabre.testing import (
    Ack,
    Facilitator,
    LiveSession,
    LiveSocket,
    PalabreServer,
    Room,
    kit,
    new_cid,
    p95,
    served_palabre,
)

PHONES = 36
HUMAN_PACE = (0.2, 1.5)
#: The issue's bound on the 95th percentile of acknowledgements, in seconds, for one
#: laptop on SQLite. On PostgreSQL (scripts/test's second pass) a write is about a dozen
#: round trips to another process on the same two cores, which needs a CPU too (the
#: writer waits for them without yielding, see palabre.database). The dots given at
#: human pace in test_everyone_takes_dots_back_at_human_pace_then_all_at_once, run
#: alternately on both databases at a load average of 5 to 7 (shared machine), came back
#: at a p95 of 3.08 s and 3.05 s on PostgreSQL, under 1 s and 2.22 s on SQLite: between
#: 1.4 and 3 times. The bound is twice as long, as for two workers (tests/test_workers.py).
ACK_P95_LIMIT_S = 2.0 if kit.testing_on_postgresql() else 1.0
#: How long a write may go unacknowledged before the test counts it lost.
ACK_TIMEOUT_S = 10
#: How long broadcasts may take to reach every socket after the last write.
DELIVERY_TIMEOUT_S = 10
SCENARIO_TIMEOUT_S = 240

CAFE = {
    "tables": 3,
    "questions": "What helped you most since you arrived?\nWhat should the city do first?",
    "round_minutes": 20,
    "assignment": "assign",
    "hosts_stay": True,
    "dots": 3,
}
# The café's plan: 0 welcome, 1-2 rounds, 3 harvest, 4 closed.
ROUND_1, ROUND_2, CAFE_HARVEST = 1, 2, 3

THEATRE = {
    "play_title-en": "The Roundabout",
    "synopsis-en": "Amal seeks asylum and is sent from office to office, and back.",
    "protagonist-en": "Amal",
    # The scene cards, as the form posts them: a title and a description in each language.
    **{
        f"scenes-{i}-{name}-en": value
        for i, (title, description) in enumerate(
            [
                ("The interview", "Eight hours, no interpreter."),
                ("The housing office", "Sent back for a letter."),
                ("Back at the start", "The same form, again."),
            ]
        )
        for name, value in (("title", title), ("description", description))
    },
    "on_stage": True,
}
# The play's plan: 0 welcome, 1-3 scenes, 4 reflection, 5 forum, 6 harvest, 7 closed.
SCENE_1, SCENE_2, REFLECTION, FORUM = 1, 2, 4, 5

AUDIT = {"scale": "4", "hourly_rate": "15.00", "currency": "EUR"}
# The audit's plan: 0 preparation, 1 fieldwork, 2 debrief, 3 report, 4 closed.
FIELDWORK = 1
DEBRIEF = 2


class Servers:
    """The module's real server, with the limits a venue gets by default.

    Shared by the tests to keep the module short. A test that leaves it
    frozen (not answering within a few seconds) fails, and the next test
    gets a fresh server, so one freeze does not fail every later test too.
    """

    def __init__(self, tmp_path_factory, stack: contextlib.ExitStack):
        self.tmp_path_factory = tmp_path_factory
        self.stack = stack
        self.current: PalabreServer | None = None

    def answering(self) -> PalabreServer:
        if self.current is not None and not self.current.answers(within=5):
            self.current.stop()
            self.current = None
        if self.current is None:
            folder = self.tmp_path_factory.mktemp("room")
            self.current = self.stack.enter_context(served_palabre(folder, STRICT_WRITES="true"))
            self.current.create_facilitator()
        return self.current


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with contextlib.ExitStack() as stack:
        yield Servers(tmp_path_factory, stack)


@pytest.fixture
def server(servers) -> PalabreServer:
    return servers.answering()


def run(server, scenario) -> None:
    """Run ``scenario`` (bounded), and fail if the server logged an error meanwhile.

    The phones' own garbage collector is paused meanwhile: late in a long test
    run, a full collection of this process's heap takes long enough to be
    counted as the server's acknowledgement time (the benchmarks do the same).
    """
    before = len(server.output())
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        asyncio.run(asyncio.wait_for(scenario, SCENARIO_TIMEOUT_S))
    finally:
        gc.enable()
        gc.unfreeze()
    logged = server.output()[before:]
    assert "Traceback" not in logged, f"the server logged an error:\n{logged[-3000:]}"


@contextlib.asynccontextmanager
async def live_room(server, method: str, config: dict, phones: int = PHONES, seed: int = 0):
    """A signed-in facilitator, an open session of ``method`` and a room of phones for it."""
    async with Facilitator(server.url) as facilitator:
        await facilitator.sign_in()
        session = await facilitator.start_session(method, config)
        async with Room(
            server.url, session.code, phones, seed=seed, ack_timeout=ACK_TIMEOUT_S
        ) as room:
            yield facilitator, session, room


async def screens(facilitator: Facilitator, session: LiveSession) -> tuple[LiveSocket, LiveSocket]:
    """The facilitator's screen and the projector, connected from the current sequence number."""
    return (
        await facilitator.connect_to(session, "facilitator"),
        await facilitator.connect_to(session, "projector"),
    )


async def resent(phone, kind: str, body: str = "") -> list[Ack]:
    """A write sent, then sent again with the same client id before its acknowledgement."""
    cid = new_cid()
    return list(
        await asyncio.gather(phone.contribute(kind, body, cid), phone.contribute(kind, body, cid))
    )


def stored_json(value) -> dict:
    """A JSON column of a row from ``server.query``: text from SQLite, an object from PostgreSQL."""
    return value if isinstance(value, dict) else json.loads(value)


def flat(nested) -> list:
    return [item for items in nested for item in items]


# --- assertions ---------------------------------------------------------------------


def assert_acknowledged(acks: list[Ack], what: str) -> None:
    """Every write acknowledged ``ok``, 95% of them within the limit."""
    refused = [(a.payload, a.error) for a in acks if not a.ok]
    assert not refused, f"{len(refused)} of {len(acks)} {what} not acknowledged: {refused[:3]}"
    assert_prompt(acks, what)


def assert_prompt(acks: list[Ack], what: str) -> None:
    """Every write answered (``ok`` or refused), 95% of them within the limit."""
    unanswered = [(a.payload, a.error) for a in acks if a.latency is None]
    assert not unanswered, f"{len(unanswered)} of {len(acks)} {what} unanswered: {unanswered[:3]}"
    slowest = p95([a.latency for a in acks])
    assert slowest < ACK_P95_LIMIT_S, (
        f"{what}: p95 acknowledgement {slowest:.3f}s (max {max(a.latency for a in acks):.3f}s)"
    )


def assert_held(room: Room, *staff: LiveSocket) -> None:
    """No socket lost, no resync asked, no broadcast received twice."""
    sockets = [*room.sockets, *staff]
    assert room.failures == [], room.failures[:3]
    assert sum(s.disconnects for s in sockets) == 0, "sockets were disconnected"
    assert sum(s.resyncs for s in sockets) == 0, "sockets were asked to resync"
    assert sum(s.duplicates for s in sockets) == 0, "a broadcast arrived twice"


def assert_once_per_client_id(server, table: str, session: LiveSession, cids) -> dict[str, dict]:
    """Exactly one row of ``table`` per client id, none missing; the rows by client id."""
    rows = server.query(f'SELECT * FROM "{table}" WHERE session_id = ?', (session.id,))
    counts = collections.Counter(row["client_id"] for row in rows)
    doubled = {cid: n for cid, n in counts.items() if n > 1}
    assert not doubled, f"stored more than once in {table}: {list(doubled.items())[:3]}"
    missing = set(cids) - set(counts)
    assert not missing, f"{len(missing)} acknowledged writes missing from {table}"
    return {row["client_id"]: dict(row) for row in rows}


async def assert_received(sockets, seen, expected: set, what: str) -> None:
    """Each socket receives every expected item (``seen(socket)`` is a set), within a bound."""
    for live in sockets:
        await live.wait_for(lambda live=live: expected <= seen(live), DELIVERY_TIMEOUT_S)
        missing = expected - seen(live)
        assert not missing, f"{live.name} missed {len(missing)} of {len(expected)} {what}"


def added(kind: str):
    """The ids of the contributions of ``kind`` a socket heard of."""
    return lambda live: {d["id"] for d in live.of_type("contribution.added") if d["kind"] == kind}


def final_totals(server, session) -> set[tuple[int, int]]:
    """``(contribution id, sum of votes)`` as stored."""
    return {
        (row["contribution_id"], row["total"])
        for row in server.query(
            "SELECT contribution_id, SUM(value) AS total FROM vote WHERE session_id = ? "
            "GROUP BY contribution_id",
            (session.id,),
        )
    }


# --- notes ------------------------------------------------------------------------------


def test_a_room_writes_notes_at_human_pace_and_all_at_once(server):
    async def scenario():
        async with live_room(server, "world_cafe", CAFE, seed=1) as (facilitator, session, room):
            await room.join_all()
            await facilitator.go_to_phase(session, ROUND_1)
            staff = await screens(facilitator, session)
            await room.connect_all()

            human = await room.each(
                lambda p, k: p.contribute("note", f"Phone {p.number}, note {k}"),
                pace=HUMAN_PACE,
                times=3,
            )
            assert_acknowledged(human, "notes at human pace")
            burst = flat(await room.each(lambda p, k: resent(p, "note", f"Burst {k}"), times=2))
            assert_acknowledged(burst, "notes in a burst")
            assert all(
                a.reply["id"] == b.reply["id"] for a, b in zip(burst[::2], burst[1::2], strict=True)
            )

            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + burst}
            )
            assert len(rows) == PHONES * 5
            await assert_received(staff, added("note"), {r["id"] for r in rows.values()}, "notes")
            # Each phone got every note of its table, and only those.
            by_table = collections.defaultdict(set)
            table_of = {}
            for row in rows.values():
                by_table[row["group"]].add(row["id"])
                table_of[row["participant_id"]] = row["group"]
            for number, phone in enumerate(room.phones):
                own = rows[human[number * 3].payload["cid"]]  # results come phone by phone
                table = by_table[table_of[own["participant_id"]]]
                await assert_received([phone.socket], added("note"), table, "notes of its table")
                assert added("note")(phone.socket) == table
            assert_held(room, *staff)

    run(server, scenario())


# --- host summaries -----------------------------------------------------------------------


def test_table_hosts_write_summaries_while_their_tables_write_notes(server):
    tables = 6
    cafe = {**CAFE, "tables": tables}

    async def scenario():
        async with live_room(server, "world_cafe", cafe, seed=2) as (facilitator, session, room):
            links = await facilitator.role_links(session)
            assert sorted(links) == [str(n) for n in range(1, tables + 1)]
            hosts, guests = room.phones[:tables], room.phones[tables:]
            await asyncio.gather(
                *(host.take_role(links[str(n + 1)]) for n, host in enumerate(hosts)),
                *(guest.join() for guest in guests),
            )
            await facilitator.go_to_phase(session, ROUND_1)
            staff = await screens(facilitator, session)
            await room.connect_all()

            def write(phone, k):
                kind = "summary" if phone in hosts else "note"
                return phone.contribute(kind, f"{kind} {k} from phone {phone.number}")

            human = await room.each(write, pace=HUMAN_PACE, times=3)
            assert_acknowledged(human, "summaries and notes at human pace")
            burst = await room.each(write, times=2)
            assert_acknowledged(burst, "summaries and notes in a burst")
            # A guest at a hosted table may not write its summary.
            refused = await guests[0].contribute("summary", "Not mine to write")
            assert not refused.ok and "host" in refused.error

            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + burst}
            )
            summaries = {r["id"]: r for r in rows.values() if r["kind"] == "summary"}
            assert len(summaries) == tables * 5
            table_of_host = {
                row["id"]: row["group"]
                for row in server.query(
                    "SELECT id, \"group\" FROM participant WHERE session_id = ? AND role = 'host'",
                    (session.id,),
                )
            }
            assert sorted(table_of_host.values()) == sorted(links)
            for summary in summaries.values():
                assert table_of_host[summary["participant_id"]] == summary["group"]
            await assert_received(staff, added("summary"), set(summaries), "summaries")
            assert_held(room, *staff)

    run(server, scenario())


# --- insights and dots ----------------------------------------------------------------------


async def cafe_in_harvest(facilitator, session, room) -> tuple[LiveSocket, LiveSocket]:
    """Phones seated at tables in round 1 (no hosts), then everyone in the harvest."""
    await room.join_all()
    await facilitator.go_to_phase(session, ROUND_1)
    await facilitator.go_to_phase(session, CAFE_HARVEST)
    staff = await screens(facilitator, session)
    await room.connect_all()
    return staff


def test_a_room_writes_key_insights_that_reach_everyone(server):
    async def scenario():
        async with live_room(server, "world_cafe", CAFE, seed=3) as (facilitator, session, room):
            staff = await cafe_in_harvest(facilitator, session, room)
            human = await room.each(
                lambda p, k: p.contribute("insight", f"Insight {k} of phone {p.number}"),
                pace=HUMAN_PACE,
                times=2,
            )
            assert_acknowledged(human, "insights at human pace")
            burst = flat(await room.each(lambda p, k: resent(p, "insight", "Said at once")))
            assert_acknowledged(burst, "insights in a burst")

            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + burst}
            )
            assert len(rows) == PHONES * 3
            # An insight is for the whole café: every phone hears of every one.
            await assert_received(
                [*staff, *(p.socket for p in room.phones)],
                added("insight"),
                {r["id"] for r in rows.values()},
                "insights",
            )
            assert_held(room, *staff)

    run(server, scenario())


def test_everyone_gives_their_dots_at_human_pace_then_all_at_once(server):
    dots = 6
    cafe = {**CAFE, "dots": dots}

    async def scenario():
        async with live_room(server, "world_cafe", cafe, seed=4) as (facilitator, session, room):
            staff = await cafe_in_harvest(facilitator, session, room)
            written = await room.each(
                lambda p, k: p.contribute("insight", f"Insight of phone {p.number}"),
                phones=room.phones[:6],
            )
            assert_acknowledged(written, "insights")
            insights = [a.reply["id"] for a in written]
            pick = random.Random(4)

            def dot_resent(phone, k):
                target, cid = pick.choice(insights), new_cid()
                return asyncio.gather(phone.vote(target, cid=cid), phone.vote(target, cid=cid))

            human = flat(await room.each(dot_resent, pace=HUMAN_PACE, times=dots // 2))
            assert_acknowledged(human, "dots at human pace")

            # All at once, each phone taps one dot more than it has left:
            # exactly its budget counts, and one tap is refused.
            def tap_all_left(phone, _k):
                target = pick.choice(insights)
                return asyncio.gather(*(phone.vote(target) for _ in range(dots - dots // 2 + 1)))

            burst = flat(await room.each(tap_all_left))
            assert_prompt(burst, "dots in a burst")
            over = [a for a in burst if not a.ok]
            assert len(over) == PHONES and all("dots" in a.error for a in over), over[:3]

            accepted = [a for a in human + burst if a.ok]
            rows = assert_once_per_client_id(
                server, "vote", session, {a.payload["cid"] for a in accepted}
            )
            per_phone = collections.Counter(row["participant_id"] for row in rows.values())
            assert sorted(per_phone.values()) == [dots] * PHONES
            # Everyone sees every dot counted, up to the stored totals.
            await assert_received(
                [*staff, *(p.socket for p in room.phones)],
                lambda live: {(d["id"], d["total"]) for d in live.of_type("votes.changed")},
                final_totals(server, session),
                "final dot counts",
            )
            assert len(staff[0].of_type("votes.changed")) == PHONES * dots
            assert_held(room, *staff)

    run(server, scenario())


def test_everyone_takes_dots_back_at_human_pace_then_all_at_once(server):
    """A dot taken back, sent twice, counts once; nobody takes back more than they gave."""
    dots = 4
    cafe = {**CAFE, "dots": dots}

    async def scenario():
        async with live_room(server, "world_cafe", cafe, seed=9) as (facilitator, session, room):
            staff = await cafe_in_harvest(facilitator, session, room)
            written = await room.each(
                lambda p, k: p.contribute("insight", f"Insight of phone {p.number}"),
                phones=room.phones[:4],
            )
            assert_acknowledged(written, "insights")
            insights = [a.reply["id"] for a in written]
            target = {p.number: insights[p.number % len(insights)] for p in room.phones}
            # Giving the dots is this test's setting, at human pace: a room giving its dots
            # all at once is test_everyone_gives_their_dots_at_human_pace_then_all_at_once.
            given = flat(
                await room.each(
                    lambda p, k: asyncio.gather(*(p.vote(target[p.number]) for _ in range(dots))),
                    pace=HUMAN_PACE,
                )
            )
            assert_acknowledged(given, "dots given")

            def take_back_resent(phone, _k):
                cid = new_cid()
                return asyncio.gather(
                    phone.vote(target[phone.number], -1, cid=cid),
                    phone.vote(target[phone.number], -1, cid=cid),
                )

            human = flat(await room.each(take_back_resent, pace=HUMAN_PACE))
            assert_acknowledged(human, "dots taken back at human pace")
            assert all(a.reply["left"] == 1 and a.reply["mine"] == dots - 1 for a in human)

            # All at once, each phone takes back every dot it has, and one more: refused.
            def take_all_back(phone, _k):
                taps = (phone.vote(target[phone.number], -1) for _ in range(dots))
                return asyncio.gather(*taps)

            burst = flat(await room.each(take_all_back))
            assert_prompt(burst, "dots taken back in a burst")
            over = [a for a in burst if not a.ok]
            assert len(over) == PHONES and all("no dot" in a.error for a in over), over[:3]

            accepted = [a for a in given + human + burst if a.ok]
            assert_once_per_client_id(server, "vote", session, {a.payload["cid"] for a in accepted})
            assert final_totals(server, session) == {(i, 0) for i in insights}
            await assert_received(
                [*staff, *(p.socket for p in room.phones)],
                lambda live: {(d["id"], d["total"]) for d in live.of_type("votes.changed")},
                final_totals(server, session),
                "final dot counts",
            )
            assert_held(room, *staff)

    run(server, scenario())


# --- the forum theatre: one-tap signals, the Stop! queue, ratings, the joker ------------------


def test_this_happened_to_me_counts_each_phone_once_per_scene(server):
    async def scenario():
        async with live_room(server, "forum_theatre", THEATRE, seed=5) as (
            facilitator,
            session,
            room,
        ):
            await room.join_all()
            await facilitator.go_to_phase(session, SCENE_1)
            staff = await screens(facilitator, session)
            await room.connect_all()

            human = await room.each(lambda p, k: p.contribute("happened"), pace=HUMAN_PACE)
            assert_acknowledged(human, "taps at human pace")
            await facilitator.go_to_phase(session, SCENE_2)
            # All at once, every phone double-taps: one tap counts, the other is refused.
            burst = flat(
                await room.each(
                    lambda p, k: asyncio.gather(p.contribute("happened"), p.contribute("happened"))
                )
            )
            assert_prompt(burst, "taps in a burst")
            counted = [a for a in burst if a.ok]
            again = [a for a in burst if not a.ok]
            assert len(counted) == PHONES, [a.error for a in again][:3]
            assert all("Already counted" in a.error for a in again)

            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + counted}
            )
            per_scene = collections.Counter(
                (r["participant_id"], r["phase_index"]) for r in rows.values()
            )
            assert len(per_scene) == 2 * PHONES and set(per_scene.values()) == {1}
            # The screens hear every tap; a phone only its own.
            taps = {r["id"] for r in rows.values()}
            await assert_received(staff, added("happened"), taps, "taps")
            for phone in room.phones:
                assert len(added("happened")(phone.socket)) == 2
            assert_held(room, *staff)

    run(server, scenario())


def test_stop_queue_numbers_fifty_phones_at_once_without_gaps(server):
    audience = 50

    async def scenario():
        async with live_room(server, "forum_theatre", THEATRE, audience, seed=6) as (
            facilitator,
            session,
            room,
        ):
            await room.join_all()
            await facilitator.go_to_phase(session, FORUM)
            staff = await screens(facilitator, session)
            joker = staff[0]
            await room.connect_all()

            # Fifty "Stop!" at once, each phone tapping twice: numbers 1..50.
            burst = flat(
                await room.each(
                    lambda p, k: asyncio.gather(p.contribute("stop"), p.contribute("stop"))
                )
            )
            assert_prompt(burst, "Stop! requests in a burst")
            first = [a for a in burst if a.ok]
            again = [a for a in burst if not a.ok]
            assert len(first) == audience, [a.error for a in again][:3]
            assert all("already in the queue" in a.error for a in again)
            assert sorted(a.reply["data"]["queue"] for a in first) == list(range(1, audience + 1))

            # The joker calls everyone, ending each turn with "Done" every other time (the
            # next call ends it otherwise); a resent call or "Done" does nothing more.
            calls = []
            for n in range(audience):
                call = {"cid": new_cid(), "name": "queue.call"}
                calls += await asyncio.gather(
                    joker.send("method.action", call), joker.send("method.action", call)
                )
                if n % 2:
                    done = {"cid": new_cid(), "name": "queue.done"}
                    calls += await asyncio.gather(
                        joker.send("method.action", done), joker.send("method.action", done)
                    )
            assert_acknowledged(calls, "queue calls and ends of turns")
            nobody = await joker.send("method.action", {"cid": new_cid(), "name": "queue.call"})
            assert not nobody.ok and "Nobody" in nobody.error

            # Thirty ask again, at human pace: numbers 51..80.
            human = await room.each(
                lambda p, k: p.contribute("stop"), pace=HUMAN_PACE, phones=room.phones[:30]
            )
            assert_acknowledged(human, "Stop! requests at human pace")
            numbers = sorted(a.reply["data"]["queue"] for a in human)
            assert numbers == list(range(audience + 1, audience + 31))

            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in first + human}
            )
            stored = sorted(stored_json(row["data"])["queue"] for row in rows.values())
            assert stored == list(range(1, audience + 31))
            states = collections.Counter(stored_json(row["data"])["state"] for row in rows.values())
            # The last one called ended their turn with "Done" when the count is odd.
            last_turn_done = (audience - 1) % 2 == 1
            turns = {"done": audience} if last_turn_done else {"done": audience - 1, "called": 1}
            assert states == {**turns, "waiting": 30}
            stops = {r["id"] for r in rows.values()}
            await assert_received(staff, added("stop"), stops, "Stop! requests")
            # Every phone heard that it was called.
            for phone in room.phones:
                await assert_received(
                    [phone.socket],
                    lambda live: {
                        d["data"].get("state") for d in live.of_type("contribution.changed")
                    },
                    {"called"},
                    "calls",
                )
            assert_held(room, *staff)

    run(server, scenario())


def test_the_audience_rates_interventions_at_human_pace_then_all_at_once(server):
    async def scenario():
        async with live_room(server, "forum_theatre", THEATRE, seed=7) as (
            facilitator,
            session,
            room,
        ):
            await room.join_all()
            await facilitator.go_to_phase(session, FORUM)
            staff = await screens(facilitator, session)
            joker = staff[0]
            await room.connect_all()
            logged = [
                await joker.send(
                    "method.action", {"name": "intervention.log", "tried": f"Try {n}", "scene": "1"}
                )
                for n in (1, 2)
            ]
            assert_acknowledged(logged, "logged interventions")
            watcher = room.phones[0].socket
            await watcher.wait_for(lambda: len(added("intervention")(watcher)) == 2)
            first, second = sorted(added("intervention")(watcher))
            pick = random.Random(7)
            last_rating: dict[tuple[int, int], int] = {}

            def rate(phone, intervention):
                value = pick.randint(1, 5)
                last_rating[(phone.number, intervention)] = value
                return phone.vote(intervention, value)

            human = await room.each(lambda p, k: rate(p, first), pace=HUMAN_PACE)
            assert_acknowledged(human, "ratings at human pace")
            # All at once: everyone rates the second try and changes their first rating.
            burst = flat(
                await room.each(lambda p, k: asyncio.gather(rate(p, second), rate(p, first)))
            )
            assert_acknowledged(burst, "ratings in a burst")
            assert all(a.reply["rating"] == a.payload["value"] for a in human + burst)

            votes = server.query(
                "SELECT participant_id, contribution_id, value FROM vote WHERE session_id = ?",
                (session.id,),
            )
            pairs = collections.Counter((v["participant_id"], v["contribution_id"]) for v in votes)
            assert len(pairs) == 2 * PHONES and set(pairs.values()) == {1}
            assert sorted(v["value"] for v in votes) == sorted(last_rating.values())
            await assert_received(
                [*staff, *(p.socket for p in room.phones)],
                lambda live: {
                    (d["id"], d["total"], d["count"]) for d in live.of_type("votes.changed")
                },
                {(cid, total, PHONES) for cid, total in final_totals(server, session)},
                "final ratings",
            )
            assert_held(room, *staff)

    run(server, scenario())


def test_the_joker_acts_while_the_audience_writes(server):
    async def scenario():
        async with live_room(server, "forum_theatre", THEATRE, seed=8) as (
            facilitator,
            session,
            room,
        ):
            await room.join_all()
            await facilitator.go_to_phase(session, REFLECTION)
            staff = await screens(facilitator, session)
            jokers = [staff[0], *[await facilitator.connect_to(session) for _ in range(2)]]
            await room.connect_all()

            answers = await room.each(
                lambda p, k: p.contribute("answer", f"The letter never came ({p.number})"),
                pace=HUMAN_PACE,
            )
            answers += await room.each(lambda p, k: p.contribute("answer", "No interpreter"))
            assert_acknowledged(answers, "answers")
            ids = [a.reply["id"] for a in answers]

            # Three screens group the answers into obstacles at the same moment.
            obstacles = await asyncio.gather(
                *(
                    joker.send(
                        "method.action",
                        {"name": "obstacle.add", "title": f"Obstacle {n}", "answers": ids[n::3]},
                    )
                    for n, joker in enumerate(jokers)
                )
            )
            assert_acknowledged(list(obstacles), "obstacles")
            forum = await jokers[0].send("phase.go", {"cid": new_cid(), "index": FORUM})
            assert_acknowledged([forum], "the move to the forum")

            async def log_interventions(joker: LiveSocket, n: int) -> list[Ack]:
                acks = []
                for k in range(5):
                    await asyncio.sleep(random.uniform(*HUMAN_PACE))
                    payload = {
                        "cid": new_cid(),
                        "name": "intervention.log",
                        "tried": f"Try {n}.{k}",
                        "scene": "2",
                    }
                    # Resent (the same cid) while the first is being done: done once.
                    acks += await asyncio.gather(
                        joker.send("method.action", payload), joker.send("method.action", payload)
                    )
                return acks

            alternatives, *logged = await asyncio.gather(
                room.each(
                    lambda p, k: p.contribute("alternative", f"Ask for a receipt ({p.number})"),
                    pace=HUMAN_PACE,
                    times=2,
                ),
                *(log_interventions(joker, n) for n, joker in enumerate(jokers)),
            )
            assert_acknowledged(alternatives, "written alternatives")
            assert_acknowledged(flat(logged), "logged interventions")
            # Three written alternatives logged in one click each, from three screens at once.
            from_alternatives = await asyncio.gather(
                *(
                    joker.send(
                        "method.action",
                        {
                            "cid": new_cid(),
                            "name": "intervention.log",
                            "alternative": alternatives[-1 - n].reply["id"],
                            "scene": "1",
                        },
                    )
                    for n, joker in enumerate(jokers)
                )
            )
            assert_acknowledged(list(from_alternatives), "alternatives logged as interventions")

            # Five alternatives hidden at once, from three screens.
            hidden = [a.reply["id"] for a in alternatives[:5]]
            hides = await asyncio.gather(
                *(
                    jokers[n % 3].send("contribution.hide", {"cid": new_cid(), "id": cid})
                    for n, cid in enumerate(hidden)
                )
            )
            assert_acknowledged(list(hides), "hidden alternatives")

            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in answers + alternatives}
            )
            interventions = [r for r in rows.values() if r["kind"] == "intervention"]
            numbers = sorted(stored_json(r["data"])["number"] for r in interventions)
            assert numbers == list(range(1, 19))
            written = [stored_json(r["data"])["written"] for r in interventions]
            assert written.count(True) == 3
            assert len([r for r in rows.values() if r["kind"] == "obstacle"]) == 3
            assert {r["id"] for r in rows.values() if r["hidden"]} == set(hidden)
            everyone = [*staff, *jokers[1:], *(p.socket for p in room.phones)]
            await assert_received(
                everyone, added("intervention"), {r["id"] for r in interventions}, "interventions"
            )
            await assert_received(
                jokers,
                lambda live: {d["id"] for d in live.of_type("contribution.hidden")},
                set(hidden),
                "hidden alternatives",
            )
            assert_held(room, *everyone)

    run(server, scenario())


# --- phase changes ------------------------------------------------------------------------------


def test_phase_changes_reach_every_phone_while_the_room_writes(server):
    async def scenario():
        async with live_room(server, "world_cafe", CAFE, seed=9) as (facilitator, session, room):
            await room.join_all(spread_seconds=3)
            await facilitator.go_to_phase(session, ROUND_1)
            staff = await screens(facilitator, session)
            presses = [staff[0], *[await facilitator.connect_to(session) for _ in range(2)]]
            await room.connect_all()
            notes: list[Ack] = []
            moves: list[Ack] = []

            async def press_next(index: int) -> list[Ack]:
                await asyncio.sleep(1.0)
                # Two screens press "next" at once, and one of them resends its request.
                first, second = new_cid(), new_cid()
                return list(
                    await asyncio.gather(
                        *(
                            screen.send("phase.go", {"cid": cid, "index": index})
                            for screen, cid in zip(presses, (first, first, second), strict=True)
                        )
                    )
                )

            def heard(index: int):
                return lambda live: {d["index"] for d in live.of_type("phase.changed")} >= {index}

            for index in (ROUND_2, CAFE_HARVEST):
                # The room keeps writing while the phase changes.
                written, pressed = await asyncio.gather(
                    room.each(
                        lambda p, k: p.contribute("note", f"Phone {p.number}, note {k}"),
                        pace=HUMAN_PACE,
                        times=2,
                    ),
                    press_next(index),
                )
                notes += written
                moves += pressed
                # Every socket hears of it; like live.js, each phone then
                # reloads its page and reconnects, at its new table.
                for live in [*staff, *presses[1:], *(p.socket for p in room.phones)]:
                    assert await live.wait_for(functools.partial(heard(index), live)), live.name
                if index != CAFE_HARVEST:
                    await room.connect_all()

            assert_acknowledged(moves, "phase changes")
            # A note sent as the rounds ended is refused, never left unanswered.
            assert_prompt(notes, "notes while the phase changes")
            late = [a for a in notes if not a.ok]
            assert all("over" in a.error for a in late), [a.error for a in late][:3]

            changes = [d["index"] for d in staff[0].of_type("phase.changed")]
            assert changes == [ROUND_2, CAFE_HARVEST]
            stored = [a for a in notes if a.ok]
            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in stored}
            )
            assert len(rows) == len(stored)
            assert server.session_row(session.id)["phase_index"] == CAFE_HARVEST
            assert_held(room, *staff, *presses[1:])

    run(server, scenario())


def test_a_facilitator_edits_a_running_cafe_while_the_room_writes(server):
    """Fixing a question, adding a table and a language while 36 phones write: every note is
    acknowledged and kept once, every socket hears ``session.changed``, phones get the new text."""

    async def scenario():
        async with live_room(server, "world_cafe", CAFE, seed=13) as (facilitator, session, room):
            await room.join_all(spread_seconds=2)
            await facilitator.go_to_phase(session, ROUND_1)
            staff = await screens(facilitator, session)
            await room.connect_all()
            questions = CAFE["questions"].splitlines()
            edits: list[str] = []

            async def edit(version: int, tables: int, languages=("en",)) -> None:
                await asyncio.sleep(0.8)
                fixed = f"{questions[0]} (version {version})"
                config = {
                    **{k: v for k, v in CAFE.items() if k != "questions"},
                    "questions-en": "\n".join([fixed, *questions[1:]]),
                    "tables": tables,
                }
                if "fr" in languages:
                    config["questions-fr"] = "Qu’est-ce qui vous a aidé ?\nEt la ville ?"
                page = await facilitator.edit_session(session, config, languages=languages)
                assert f"/sessions/{session.id}" in page.url and "/edit" not in page.url, page.text[
                    :600
                ]
                edits.append(fixed)

            human, _ = await asyncio.gather(
                room.each(
                    lambda p, k: p.contribute("note", f"Phone {p.number}, note {k}"),
                    pace=HUMAN_PACE,
                    times=3,
                ),
                edit(1, 3),
            )
            assert_acknowledged(human, "notes at human pace while the session is edited")
            burst, _ = await asyncio.gather(
                room.each(lambda p, k: p.contribute("note", f"Burst {k}"), times=2),
                edit(2, 4, languages=("en", "fr")),
            )
            assert_acknowledged(burst, "notes in a burst while the session is edited")

            def heard_edits(live) -> bool:
                return len(live.of_type("session.changed")) == 2

            for live in [*staff, *(p.socket for p in room.phones)]:
                assert await live.wait_for(functools.partial(heard_edits, live)), live.name
            last = staff[0].of_type("session.changed")[-1]
            assert last["question"] == {
                "en": edits[-1],
                "fr": "Qu’est-ce qui vous a aidé ?",
            }
            # Like live.js, each phone reloads its page: the new text, in its language.
            await room.connect_all()
            for phone in room.phones[:5]:
                page = await phone.get(f"/j/{session.code}")
                assert f'lang="en" dir="ltr">{edits[-1]}</h1>' in page.text, phone.name
            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + burst}
            )
            assert len(rows) == PHONES * 5
            (config,) = server.query(
                "SELECT config FROM palabre_session WHERE id = ?", (session.id,)
            )
            assert stored_json(config["config"])["tables"] == 4
            assert_held(room, *staff)

    run(server, scenario())


# --- visit reports ----------------------------------------------------------------------------


async def audit_with_evaluators(facilitator, session, room) -> dict:
    """Two services, a link per phone, two visits each; returns each phone's visit ids."""
    for name in ("Law Centre", "Advice Desk"):
        await facilitator.post_action(session, "actions/service.save", {"name-en": name})
    for _phone in room.phones:
        await facilitator.post_action(session, "links/evaluator")
    links = await facilitator.role_links(session, "evaluator")
    codes = sorted(links)
    assert len(codes) == len(room.phones)
    await asyncio.gather(*(p.take_role(links[c]) for p, c in zip(room.phones, codes, strict=True)))
    link_ids = {
        row["code"]: row["id"]
        for row in server_rows(facilitator, "SELECT id, code FROM role_link WHERE session_id = ?")
    }
    config = stored_json(
        server_rows(facilitator, "SELECT config FROM palabre_session WHERE id = ?")[0]["config"]
    )
    for code in codes:
        for service in config["services"]:
            fields = {"link": link_ids[code], "service": service["id"], "scenario": "p1"}
            await facilitator.post_action(session, "actions/assignment.add", fields)
    config = stored_json(
        server_rows(facilitator, "SELECT config FROM palabre_session WHERE id = ?")[0]["config"]
    )
    visits = collections.defaultdict(list)
    for assignment in config["assignments"]:
        visits[assignment["code"]].append(assignment["id"])
    return {phone.number: visits[code] for phone, code in zip(room.phones, codes, strict=True)}


def server_rows(facilitator, sql: str) -> list:
    return facilitator.server.query(sql, (facilitator.session.id,))


def visit_report(phone, visit: str, ethics: bool, cid: str | None = None):
    return phone.send(
        "contribute",
        {
            "cid": cid or new_cid(),
            "kind": "visit",
            "body": f"Phone {phone.number}: seen after forty minutes, no interpreter.",
            "assignment": visit,
            "date": date.today().isoformat(),
            "score-c1": str(1 + phone.number % 4),
            "score-c6": "2",
            "note-c1": "Jargon throughout.",
            "followed": "yes",
            "minutes": "75",
            "expenses": "3.20",
            "ethics": "1" if ethics else "",
        },
    )


def test_evaluators_file_visit_reports_and_ethics_concerns_reach_the_facilitator(server):
    async def scenario():
        async with live_room(server, "mystery_shopping", AUDIT, seed=11) as (
            facilitator,
            session,
            room,
        ):
            facilitator.server, facilitator.session = server, session
            visits = await audit_with_evaluators(facilitator, session, room)
            await facilitator.go_to_phase(session, FIELDWORK)
            staff = await screens(facilitator, session)
            await room.connect_all()

            def concerned(phone) -> bool:
                return phone.number % 6 == 0

            human = await room.each(
                lambda p, k: visit_report(p, visits[p.number][0], concerned(p)), pace=HUMAN_PACE
            )
            assert_acknowledged(human, "visit reports at human pace")

            async def twice(phone, _k):
                cid = new_cid()
                visit = visits[phone.number][1]
                return list(
                    await asyncio.gather(
                        visit_report(phone, visit, False, cid),
                        visit_report(phone, visit, False, cid),
                    )
                )

            burst = flat(await room.each(twice))
            assert_acknowledged(burst, "visit reports in a burst")
            assert all(
                a.reply["id"] == b.reply["id"] for a, b in zip(burst[::2], burst[1::2], strict=True)
            )
            # A third report of a visit already reported is refused, not stored.
            again = await visit_report(room.phones[1], visits[1][0], False)
            assert not again.ok and "already sent" in again.error

            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + burst}
            )
            assert len(rows) == PHONES * 2
            await assert_received(
                staff, added("visit"), {r["id"] for r in rows.values()}, "reports"
            )
            alerts = {
                d["id"] for d in staff[0].of_type("contribution.added") if d["data"]["ethics"]
            }
            assert len(alerts) == sum(1 for p in room.phones if concerned(p))
            # Each phone hears of its own reports only: they carry the evaluator's code.
            for number, phone in enumerate(room.phones):
                own = {r["id"] for r in rows.values() if r["body"].startswith(f"Phone {number}:")}
                assert added("visit")(phone.socket) <= own
            assert_held(room, *staff)

    run(server, scenario())


def visit_items(html: str) -> dict[int, str]:
    """The run screen's complete report items (the ``visits`` route's first list), by id."""
    reports = html.split('data-items-for="concerns"')[0]
    return {
        int(match.group(1)): match.group(2)
        for match in re.finditer(r'<li data-contribution-id="(\d+)"[^>]*>(.*?)</li>', reports, re.S)
    }


def test_the_run_screen_gets_every_report_of_a_burst_complete(server):
    """As run.js does: each report heard live is asked for complete, a batch at a time."""

    async def scenario():
        async with live_room(server, "mystery_shopping", AUDIT, seed=12) as (
            facilitator,
            session,
            room,
        ):
            facilitator.server, facilitator.session = server, session
            visits = await audit_with_evaluators(facilitator, session, room)
            await facilitator.go_to_phase(session, FIELDWORK)
            staff = await screens(facilitator, session)
            await room.connect_all()
            burst = await room.each(
                lambda p, k: visit_report(p, visits[p.number][0], p.number % 6 == 0)
            )
            assert_acknowledged(burst, "visit reports in a burst")
            ids = {a.reply["id"] for a in burst}
            await assert_received(staff[:1], added("visit"), ids, "reports")
            heard = sorted(added("visit")(staff[0]))
            batches = [heard[i : i + 10] for i in range(0, len(heard), 10)]
            pages = await asyncio.gather(
                *(
                    facilitator.get(
                        f"/mystery-shopping/sessions/{session.id}/visits?ids="
                        + ",".join(map(str, batch))
                    )
                    for batch in batches
                )
            )
            items = {}
            for page in pages:
                items.update(visit_items(page.text))
            assert set(items) == ids
            for item in items.values():
                assert "Law Centre" in item and "Advice Desk" not in item
                assert "Jargon throughout." in item and "75 minutes, 3.20 EUR" in item
            assert_held(room, *staff)

    run(server, scenario())


async def backlog_action(facilitator, title: str) -> None:
    await facilitator.post_form(
        "/backlog/actions/new", "/backlog/actions/new", {"title": title, "status": "proposed"}
    )


def test_evaluators_add_context_while_findings_are_recorded_as_evaluations(server):
    """The debrief: every phone adds context, at human pace then in a burst, while the
    facilitator adds findings, links them to the plan's actions and agrees them."""

    async def scenario():
        async with live_room(server, "mystery_shopping", AUDIT, seed=13) as (
            facilitator,
            session,
            room,
        ):
            facilitator.server, facilitator.session = server, session
            await audit_with_evaluators(facilitator, session, room)
            for title in ("Train advice staff", "Fund free legal aid", "Interpreters on call"):
                await backlog_action(facilitator, title)
            actions = [row["id"] for row in server.query("SELECT id FROM action ORDER BY id")]
            await facilitator.go_to_phase(session, FIELDWORK)
            await facilitator.go_to_phase(session, DEBRIEF)
            staff = await screens(facilitator, session)
            await room.connect_all()
            desk = staff[0]

            def finding_ids() -> list[int]:
                return [
                    row["id"]
                    for row in server_rows(
                        facilitator,
                        "SELECT id FROM contribution WHERE session_id = ? "
                        "AND kind = 'finding' ORDER BY id",
                    )
                ]

            def context(phone, k):
                return phone.send(
                    "contribute",
                    {"cid": new_cid(), "kind": "context", "body": f"Phone {phone.number}: {k}"},
                )

            async def facilitate(findings: int):
                """The facilitator's writes over its socket, one after another."""
                acks = []
                for n in range(findings):
                    acks.append(
                        await desk.send(
                            "method.action",
                            {"name": "finding.add", "body": f"Finding {n}", "cid": new_cid()},
                        )
                    )
                for n, finding in enumerate(finding_ids()[-findings:]):
                    linked = [str(a) for a in actions[: 1 + n % len(actions)]]
                    for name, fields in (
                        ("finding.link", {"actions": linked}),
                        ("finding.agree", {"agreed": "1"}),
                    ):
                        acks.append(
                            await desk.send(
                                "method.action",
                                {"name": name, "id": finding, "cid": new_cid(), **fields},
                            )
                        )
                return acks

            human, desk_acks = await asyncio.gather(
                room.each(context, pace=HUMAN_PACE), facilitate(3)
            )
            assert_acknowledged(human, "context at human pace")
            assert_acknowledged(desk_acks, "findings linked and agreed at human pace")

            async def twice(phone, k):
                cid = new_cid()
                payload = {"cid": cid, "kind": "context", "body": f"Phone {phone.number}: again"}
                return list(
                    await asyncio.gather(
                        phone.send("contribute", payload), phone.send("contribute", payload)
                    )
                )

            burst, more = await asyncio.gather(room.each(twice), facilitate(3))
            burst = flat(burst)
            assert_acknowledged(burst, "context in a burst")
            assert_acknowledged(more, "findings linked and agreed during a burst")
            assert all(
                a.reply["id"] == b.reply["id"] for a, b in zip(burst[::2], burst[1::2], strict=True)
            )
            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + burst}
            )
            contexts = {r["id"] for r in rows.values() if r["kind"] == "context"}
            assert len(contexts) == PHONES * 2
            await assert_received(staff, added("context"), contexts, "context")
            # Each agreed finding is one evaluation entry per action it is linked to.
            entries = server.query(
                "SELECT action_id, evidence_contribution_id, evidence_session_id "
                "FROM action_update WHERE kind = 'evaluation'"
            )
            findings = finding_ids()
            expected = {
                (action, finding)
                for n, finding in enumerate(findings)
                for action in actions[: 1 + n % 3]
            }
            pairs = {(e["action_id"], e["evidence_contribution_id"]) for e in entries}
            assert pairs == expected and len(entries) == len(expected)
            assert {e["evidence_session_id"] for e in entries} == {session.id}
            assert_held(room, *staff)

    run(server, scenario())


# --- citizen dialogue: interviews, a meeting's ideas and dots -------------------------------

DIALOGUE = {
    # In English only: every other language's guide and feedback questions left empty.
    **{f"{part}-{code}": "" for part in ("guide", "feedback") for code in LANGUAGES},
    "guide-en": "What is good about living here?\nWhat is hard here?\nWhat would help?",
    "feedback-en": "Did you feel heard?\nCould you express your views?\nCould you contribute?",
    "population": "875",
    "respondent_types": ["resident", "staff", "politician", "other"],
}
# The dialogue's plan: 0 preparation, 1 listening, 2 theming, 3 meetings, 4 projects...
LISTENING, THEMING, MEETINGS = 1, 2, 3
# A dialogue meeting's plan (a session of its own): 0 welcome, 1 views, ideas and dots.
MEETING_WORK = 1
CONNECTORS = 10


def interview_payload(phone, k: int, cid: str | None = None) -> dict:
    return {
        "cid": cid or new_cid(),
        "kind": "interview",
        "body": "",
        "q1": f"Phone {phone.number}, interview {k}: the forest and the quiet",
        "q2": "The bus runs twice a day",
        "language": random.choice(["local", "ar", "so"]),
        "place": random.choice(["home", "shop", "school"]),
        "age": random.choice(["", "18_29", "30_44"]),
        "respondent": random.choice(["resident", "staff", "politician"]),
        "consent": "yes",
    }


def test_connectors_and_residents_send_interviews_at_once(server):
    """Ten connectors by their links, the rest by the public QR code, all listening at once."""

    async def scenario():
        async with live_room(server, "citizen_dialogue", DIALOGUE, seed=11) as (
            facilitator,
            session,
            room,
        ):
            for _ in range(CONNECTORS):
                await facilitator.post_action(session, "links/connector")
            links = await facilitator.role_links(session, "connector")
            assert sorted(links) == [f"C-{n:02d}" for n in range(1, CONNECTORS + 1)]
            connectors, residents = room.phones[:CONNECTORS], room.phones[CONNECTORS:]
            await asyncio.gather(
                *(
                    phone.take_role(link)
                    for phone, link in zip(connectors, links.values(), strict=True)
                ),
                *(phone.join() for phone in residents),
            )
            await facilitator.go_to_phase(session, LISTENING)
            staff = await screens(facilitator, session)
            await room.connect_all()

            human = await room.each(
                lambda p, k: p.send("contribute", interview_payload(p, k)),
                pace=HUMAN_PACE,
                times=2,
            )
            assert_acknowledged(human, "interviews at human pace")

            async def offline_resend(phone, k):
                # The phone lost its connection before the acknowledgement: it sends again.
                payload = interview_payload(phone, 10 + k)
                return list(
                    await asyncio.gather(
                        phone.send("contribute", payload), phone.send("contribute", dict(payload))
                    )
                )

            burst = flat(await room.each(offline_resend, times=2))
            assert_acknowledged(burst, "interviews in a burst, each sent twice")
            assert all(
                a.reply["id"] == b.reply["id"] for a, b in zip(burst[::2], burst[1::2], strict=True)
            )

            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + burst}
            )
            assert len(rows) == PHONES * 4
            by_connector = collections.Counter(
                stored_json(row["data"]).get("connector") for row in rows.values()
            )
            assert by_connector == {
                **{code: 4 for code in links},
                None: (PHONES - CONNECTORS) * 4,
            }
            await assert_received(
                staff, added("interview"), {r["id"] for r in rows.values()}, "interviews"
            )
            # An interview is for the staff only: no other phone hears of it.
            for number, phone in enumerate(room.phones):
                own = {
                    row["id"]
                    for row in rows.values()
                    if row["participant_id"]
                    == rows[human[number * 2].payload["cid"]]["participant_id"]
                }
                assert added("interview")(phone.socket) <= own
            assert_held(room, *staff)

    run(server, scenario())


FEEDBACK = 5


def feedback_payload(phone, cid: str | None = None) -> dict:
    return {
        "cid": cid or new_cid(),
        "kind": "feedback",
        "body": f"Phone {phone.number}: good evenings",
        "heard": str(1 + phone.number % 5),
        "express": "4",
        "change": "3",
    }


def test_feedback_forms_count_each_phone_once_while_paper_forms_are_typed_in(server):
    """Half the room answers at human pace while staff type in paper forms, the other half
    all at once, each form tapped twice (two client ids) and resent (the same one)."""

    async def scenario():
        async with live_room(server, "citizen_dialogue", DIALOGUE, seed=13) as (
            facilitator,
            session,
            room,
        ):
            await room.join_all()
            await facilitator.go_to_phase(session, FEEDBACK)
            staff = await screens(facilitator, session)
            await room.connect_all()
            calm, hurried = room.phones[: PHONES // 2], room.phones[PHONES // 2 :]

            async def paper_forms():
                # Typed in one after the other, as staff do from a pile of paper forms.
                for n in range(5):
                    await asyncio.sleep(0.3)
                    await facilitator.post_action(
                        session,
                        "actions/feedback.transcribe",
                        {
                            "name": "feedback.transcribe",
                            "heard": str(1 + n),
                            "express": "5",
                            "change": "2",
                        },
                    )

            human, _typed = await asyncio.gather(
                room.each(
                    lambda p, k: p.send("contribute", feedback_payload(p)),
                    pace=HUMAN_PACE,
                    phones=calm,
                ),
                paper_forms(),
            )
            assert_acknowledged(human, "feedback forms at human pace")

            async def tapped_twice_and_resent(phone, k):
                first = feedback_payload(phone)
                return list(
                    await asyncio.gather(
                        phone.send("contribute", first),
                        phone.send("contribute", dict(first)),
                        phone.send("contribute", feedback_payload(phone)),
                    )
                )

            burst = flat(await room.each(tapped_twice_and_resent, phones=hurried))
            assert_prompt(burst, "feedback forms in a burst")
            for same, resent_, other in zip(burst[::3], burst[1::3], burst[2::3], strict=True):
                # The resend is the same form; of the two taps, exactly one counts.
                assert same.reply == resent_.reply
                assert same.ok != other.ok, (same.reply, other.reply)
                refused = other if same.ok else same
                assert "already counted" in refused.error

            counted = [a for a in human + burst if a.ok]
            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in counted}
            )
            by_phone = collections.Counter(
                r["participant_id"] for r in rows.values() if r["participant_id"] is not None
            )
            assert len(by_phone) == PHONES and set(by_phone.values()) == {1}
            paper = server.query(
                "SELECT data FROM contribution WHERE session_id = ? AND kind = 'feedback' "
                "AND participant_id IS NULL",
                (session.id,),
            )
            assert len(paper) == 5 and all(stored_json(r["data"])["paper"] for r in paper)
            forms = {r["id"] for r in rows.values() if r["participant_id"] is not None}
            await assert_received(staff[:1], added("feedback"), forms, "feedback forms")
            # A form is for the staff only: a phone hears of its own, no other.
            for phone in room.phones:
                assert len(added("feedback")(phone.socket)) <= 1
            assert_held(room, *staff)

    run(server, scenario())


def test_a_dialogue_meeting_writes_views_and_ideas_then_gives_dots_at_once(server):
    """A meeting scheduled from the dialogue, held in its own session: its own room of phones."""

    async def scenario():
        async with Facilitator(server.url) as facilitator:
            await facilitator.sign_in()
            dialogue = await facilitator.start_session("citizen_dialogue", DIALOGUE, phase=THEMING)
            for name in ("Getting around", "Learning Swedish"):
                await facilitator.post_action(
                    dialogue, "actions/theme.create", {"name": "theme.create", "name-en": name}
                )
            themes = [
                row["id"]
                for row in server.query(
                    "SELECT id FROM contribution WHERE session_id = ? AND kind = 'theme'",
                    (dialogue.id,),
                )
            ]
            await facilitator.go_to_phase(dialogue, MEETINGS)
            await facilitator.post_action(
                dialogue,
                "actions/meeting.schedule",
                [
                    ("name", "meeting.schedule"),
                    ("starts_at", "2026-03-05T18:30"),
                    ("venue", "Mörsil community hall"),
                ]
                + [("themes", str(theme)) for theme in themes],
            )
            (row,) = server.query(
                "SELECT id, code, method FROM palabre_session WHERE parent_id = ?",
                (dialogue.id,),
            )
            session = LiveSession(row["id"], row["code"], row["method"])
            await facilitator.open(session)
            async with Room(
                server.url, session.code, PHONES, seed=12, ack_timeout=ACK_TIMEOUT_S
            ) as room:
                await room.join_all()
                await facilitator.go_to_phase(session, MEETING_WORK)
                staff = await screens(facilitator, session)
                await room.connect_all()

                def write(phone, k):
                    kind = "idea" if k == 0 else "view"
                    theme = str(themes[phone.number % 2])
                    return phone.send(
                        "contribute",
                        {
                            "cid": new_cid(),
                            "kind": kind,
                            "body": f"{kind} {k} from phone {phone.number}",
                            "theme": theme,
                        },
                    )

                human = await room.each(write, pace=HUMAN_PACE, times=2)
                assert_acknowledged(human, "ideas and views at human pace")
                ideas = [a.reply["id"] for a in human if a.payload["kind"] == "idea"]
                assert len(ideas) == PHONES
                await assert_received(
                    [p.socket for p in room.phones] + list(staff),
                    added("idea"),
                    set(ideas),
                    "ideas",
                )

                async def view_twice(phone, k):
                    # The phone lost its connection before the acknowledgement: it sends again.
                    payload = {
                        "cid": new_cid(),
                        "kind": "view",
                        "body": f"Again, from phone {phone.number}",
                        "theme": str(themes[0]),
                    }
                    return list(
                        await asyncio.gather(
                            phone.send("contribute", payload), phone.send("contribute", payload)
                        )
                    )

                burst = flat(await room.each(view_twice, times=1))
                assert_acknowledged(burst, "views in a burst, each sent twice")
                assert all(
                    a.reply["id"] == b.reply["id"]
                    for a, b in zip(burst[::2], burst[1::2], strict=True)
                )

                # Every phone gives its three dots at once, to ideas of others.
                def dot(phone, k):
                    return phone.vote(ideas[(phone.number + 1 + k * 7) % len(ideas)])

                votes = await room.each(dot, times=3)
                assert_acknowledged(votes, "dots in a burst")
                totals = final_totals(server, session)
                assert sum(total for _id, total in totals) == PHONES * 3
                # A meeting gives three dots: the fourth is refused.
                refused = await room.each(dot, times=1)
                assert all(not a.ok and "all your dots" in a.error for a in refused)
                assert_prompt(refused, "dots over the budget")
                expected = {(cid, total) for cid, total in final_totals(server, session)}
                for live in staff:
                    await live.wait_for(
                        lambda live=live: (
                            {(d["id"], d["total"]) for d in live.of_type("votes.changed")}
                            >= expected
                        ),
                        DELIVERY_TIMEOUT_S,
                    )
                # Nothing of the meeting went to the dialogue's rooms or tables.
                assert not server.query(
                    "SELECT id FROM contribution WHERE session_id = ? AND kind IN ('idea', 'view')",
                    (dialogue.id,),
                )
                assert_held(room, *staff)

    run(server, scenario())
