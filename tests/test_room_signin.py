"""A flood of wrong sign-ins does not slow a room down.

The issue measured a login flood slowing live acknowledgements tenfold:
password hashes are slow on purpose and took both cores. Now they run one
at a time, off the live layer's loop, and each e-mail waits longer after
each failure. A room of phones writes notes at human pace, once quietly and
once while browsers send wrong passwords as fast as they can, for unknown
e-mails and for the real account.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

import pytest

from palabre.testing import FACILITATOR_EMAIL, Browser, csrf_token, p95

from .test_room import (
    ACK_P95_LIMIT_S,
    CAFE,
    HUMAN_PACE,
    PHONES,
    ROUND_1,
    Servers,
    assert_held,
    live_room,
    run,
)

ATTACKERS = 10
TRIES_EACH = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ``palabre serve`` with one facilitator, as in test_room.py."""
    with contextlib.ExitStack() as stack:
        yield Servers(tmp_path_factory, stack).answering()


async def flood_of_wrong_passwords(url: str, statuses: collections.Counter) -> None:
    """``ATTACKERS`` browsers each send ``TRIES_EACH`` wrong passwords, back to back."""

    async def attacker(number: int) -> None:
        async with Browser(url, f"attacker {number}") as browser:
            token = csrf_token((await browser.get("/auth/login")).text)
            for k in range(TRIES_EACH):
                email = FACILITATOR_EMAIL if k % 5 == 0 else f"guess-{number}-{k}@example.org"
                data = {"csrf_token": token, "email": email, "password": f"wrong {k}"}
                async with browser.http.post(f"{url}/auth/login", data=data) as response:
                    statuses[response.status] += 1

    await asyncio.gather(*(attacker(n) for n in range(ATTACKERS)))


def test_notes_are_acknowledged_as_fast_during_a_flood_of_wrong_sign_ins(server):
    statuses = collections.Counter()

    async def scenario():
        async with live_room(server, "world_cafe", CAFE, seed=7) as (facilitator, session, room):
            await room.join_all()
            await facilitator.go_to_phase(session, ROUND_1)
            await room.connect_all()

            def note(phone, k):
                return phone.contribute("note", f"Phone {phone.number}, note {k}")

            quiet = await room.each(note, pace=HUMAN_PACE, times=3)
            assert all(a.ok for a in quiet), "notes in a quiet room refused"
            during, _flood = await asyncio.gather(
                room.each(note, pace=HUMAN_PACE, times=3),
                flood_of_wrong_passwords(server.url, statuses),
            )
            quiet_p95 = p95([a.latency for a in quiet])
            flood_p95 = p95([a.latency for a in during])
            print(
                f"\n{PHONES} phones, p95 acknowledgement: quiet {quiet_p95 * 1000:.0f} ms, "
                f"during {sum(statuses.values())} wrong sign-ins {flood_p95 * 1000:.0f} ms; "
                f"answers {dict(statuses)}"
            )
            assert all(a.ok for a in during), "notes refused during the flood"
            assert_held(room)
            # On a shared machine the quiet room may already miss the 1 s bound: compare.
            assert flood_p95 < max(ACK_P95_LIMIT_S, 2 * quiet_p95), (
                f"the flood slowed acknowledgements from {quiet_p95:.3f}s to {flood_p95:.3f}s"
            )

    run(server, scenario())
    assert sum(statuses.values()) == ATTACKERS * TRIES_EACH
    # The real account's tries: five free, then most must wait (429); the
    # waits end, doubling, so a few more get through during the flood.
    real_account_tries = ATTACKERS * TRIES_EACH // 5
    assert real_account_tries // 2 <= statuses[429] <= real_account_tries - 5
