"""Faults at scale, at the size CI runs: a reconnect storm and a worker killed mid-session.

The same scenarios as ``bench/faults_at_scale.py`` (``palabre.testing.faults``),
holding the properties the benchmark measures at 500 phones: no acknowledged
note lost, none stored or broadcast twice, and every phone that lost its
socket back and holding every event up to the session's sequence number at
its return within :data:`RESYNC_LIMIT_S`. The storm runs on one worker in
both passes; the killed worker needs the PostgreSQL pass's database and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal

import pytest

from palabre.testing import Facilitator, PalabreServer, Room
from palabre.testing.faults import (
    Outbox,
    drop_and_return,
    for_everyone,
    heard_everything,
    session_seq,
    writing,
)
from palabre.testing.kit import TEST_DATABASE_VARIABLE, new_test_database
from tests.test_room import CAFE, ROUND_1, run

REDIS_VARIABLE = "PALABRE_TEST_REDIS"
#: The issue's bound: every phone resynchronised within 10 s of its return.
RESYNC_LIMIT_S = 10
#: One table: every phone is sent every note.
ONE_TABLE = {**CAFE, "tables": 1}
#: A note every 0.3 to 1.2 s from each writing phone.
PACE = (0.3, 1.2)


def assert_came_back(comeback) -> None:
    assert comeback.not_reconnected == [], comeback.not_reconnected[:3]
    assert comeback.not_resynchronised == [], comeback.not_resynchronised[:3]
    slowest = max(comeback.resynchronised)
    assert slowest <= RESYNC_LIMIT_S, f"the slowest phone resynchronised after {slowest:.1f}s"


def assert_nothing_lost_or_doubled(outcome) -> None:
    assert outcome.acknowledged, "no note was acknowledged"
    assert outcome.holds(), outcome
    assert outcome.refused == 0, outcome
    assert outcome.resync_requests == 0, outcome


def test_a_reconnect_storm_loses_and_doubles_nothing(tmp_path):
    """100 phones drop at once while 10 others write, and return together 2 s later."""
    with PalabreServer(tmp_path / "instance", settings={"STRICT_WRITES": "true"}) as server:
        server.create_facilitator()

        async def scenario():
            async with Facilitator(server.url) as facilitator:
                await facilitator.sign_in()
                session = await facilitator.start_session("world_cafe", ONE_TABLE, phase=ROUND_1)
                async with (
                    Room(server.url, session.code, 100, seed=7) as storm,
                    Room(server.url, session.code, 10, seed=8) as steady,
                ):
                    await storm.join_all(connect=True, concurrency=25, attempts=3)
                    await steady.join_all(connect=True, attempts=3)
                    assert storm.failures == steady.failures == []
                    phones = storm.phones + steady.phones
                    start = {phone: phone.seq for phone in phones}
                    outboxes = {phone: Outbox(phone) for phone in phones}
                    writers = [outboxes[p] for p in storm.phones[:10] + steady.phones]

                    async def drop():
                        await asyncio.gather(*(p.socket.close() for p in storm.phones))

                    async with writing(writers, PACE):
                        await asyncio.sleep(2)
                        comeback = await drop_and_return(
                            storm.phones,
                            outboxes,
                            drop,
                            away_s=2,
                            target=lambda: session_seq(server, session.id),
                            events=lambda after, upto: for_everyone(
                                server, session.id, after, upto
                            ),
                        )
                        await asyncio.sleep(1)
                    outcome = await heard_everything(
                        server, session.id, phones, outboxes.values(), start
                    )
            assert_came_back(comeback)
            assert_nothing_lost_or_doubled(outcome)
            assert outcome.resent, "no note was in flight or queued when the phones dropped"

        run(server, scenario())


@pytest.mark.skipif(
    not (os.environ.get(TEST_DATABASE_VARIABLE) and os.environ.get(REDIS_VARIABLE)),
    reason="several workers need PostgreSQL and Redis: scripts/test's second pass sets "
    f"{TEST_DATABASE_VARIABLE} and {REDIS_VARIABLE}",
)
def test_a_worker_killed_while_phones_write_loses_and_doubles_nothing(tmp_path):
    """60 phones on two workers, 20 writing; one worker is killed; its phones go to the other."""
    shared = {
        "SQLALCHEMY_DATABASE_URI": new_test_database(tmp_path),
        "MESSAGE_QUEUE": os.environ[REDIS_VARIABLE],
        "RATE_LIMIT_STORAGE": os.environ[REDIS_VARIABLE],
        "SECRET_KEY": secrets.token_hex(16),
        "STRICT_WRITES": "true",
    }
    with contextlib.ExitStack() as stack:
        doomed = stack.enter_context(PalabreServer(tmp_path / "a", settings=shared))
        doomed.create_facilitator()
        survivor = stack.enter_context(PalabreServer(tmp_path / "b", settings=shared))

        async def scenario():
            async with Facilitator(survivor.url) as facilitator:
                await facilitator.sign_in()
                session = await facilitator.start_session("world_cafe", ONE_TABLE, phase=ROUND_1)
                async with (
                    Room(doomed.url, session.code, 30, seed=9) as on_doomed,
                    Room(survivor.url, session.code, 30, seed=10) as on_survivor,
                ):
                    await asyncio.gather(
                        on_doomed.join_all(connect=True, attempts=3),
                        on_survivor.join_all(connect=True, attempts=3),
                    )
                    assert on_doomed.failures == on_survivor.failures == []
                    phones = on_doomed.phones + on_survivor.phones
                    start = {phone: phone.seq for phone in phones}
                    outboxes = {phone: Outbox(phone) for phone in phones}
                    writers = [outboxes[p] for p in on_doomed.phones[:10] + on_survivor.phones[:10]]

                    async def kill():
                        os.killpg(doomed.process.pid, signal.SIGKILL)

                    async with writing(writers, PACE):
                        await asyncio.sleep(3)
                        comeback = await drop_and_return(
                            on_doomed.phones,
                            outboxes,
                            kill,
                            reconnect_to=survivor.url,
                            target=lambda: session_seq(survivor, session.id),
                            events=lambda after, upto: for_everyone(
                                survivor, session.id, after, upto
                            ),
                        )
                        await asyncio.sleep(2)
                    outcome = await heard_everything(
                        survivor, session.id, phones, outboxes.values(), start
                    )
            assert doomed.process.wait(timeout=10) == -signal.SIGKILL
            assert_came_back(comeback)
            assert_nothing_lost_or_doubled(outcome)

        run(survivor, scenario())
