"""The backlog's writes while a room of phones writes: no phone waits for the backlog.

While 36 phones write key insights and give dots (at human pace, then all at
once), a facilitator harvests the café into the backlog, merges two needs and
undoes it, registers a stakeholder, plans an action and records its progress,
and the city's public page is read again and again. Every phone's write is
acknowledged promptly, and every backlog write is stored.
"""

from __future__ import annotations

import asyncio
import random
import re

from palabre.testing import Facilitator
from tests.test_room import (
    CAFE,
    HUMAN_PACE,
    PHONES,
    assert_acknowledged,
    assert_held,
    assert_once_per_client_id,
    cafe_in_harvest,
    live_room,
    run,
    servers,  # noqa: F401  (the module's server, as in test_room)
)
from tests.test_room import server as room_server

server = room_server


async def backlog_work(base_url: str, session_id: int) -> None:
    """A second facilitator's browser doing a round of backlog work over HTTP."""
    async with Facilitator(base_url, "backlog") as staff:
        await staff.sign_in()
        for _ in range(3):
            await asyncio.sleep(random.uniform(*HUMAN_PACE))
            harvest = f"/backlog/from-session/{session_id}"
            page = await staff.get(harvest)
            keys = re.findall(r'name="take-([\w-]+)" value="1"', page.text)
            await staff.post_form(page, harvest, [(f"take-{key}", "1") for key in keys[:3]])
        needs = re.findall(r'href="/backlog/needs/(\d+)"', (await staff.get("/backlog/")).text)
        first, second = needs[0], needs[1]
        confirm = await staff.get(f"/backlog/needs/{second}/merge?into={first}")
        await staff.post_form(
            confirm, f"/backlog/needs/{second}/merge", {"into": first, "confirmed": "1"}
        )
        kept = await staff.get(f"/backlog/needs/{first}")
        (undo,) = re.findall(r'action="(/backlog/merges/\d+/undo)"', kept.text)
        await staff.post_form(kept, undo, {})
        await staff.post_form(
            "/backlog/stakeholders",
            "/backlog/stakeholders",
            {"name": "Library", "kind": "city", "interest": "4", "influence": "3"},
        )
        created = await staff.post_form(
            "/backlog/actions/new",
            "/backlog/actions/new",
            [
                ("title", "Evening classes at the library"),
                ("status", "planned"),
                ("budget_amount", "5000"),
                ("budget_currency", "EUR"),
                ("needs", first),
            ],
        )
        await staff.post_form(
            created,
            created.url.replace(base_url, "") + "/updates",
            {"update-progress": "3", "update-body": "Three classes held", "update-submit": "1"},
        )
        for _ in range(5):
            assert "Evening classes at the library" in (await staff.get("/city/")).text


def test_backlog_work_never_holds_up_the_phones(server):
    cafe = {**CAFE, "dots": 4}

    async def scenario():
        async with live_room(server, "world_cafe", cafe, seed=11) as (facilitator, session, room):
            staff = await cafe_in_harvest(facilitator, session, room)
            written = await room.each(
                lambda p, k: p.contribute("insight", f"Insight of phone {p.number}"),
                phones=room.phones[:9],
            )
            assert_acknowledged(written, "insights")
            insights = [a.reply["id"] for a in written]
            pick = random.Random(11)
            phones_write = asyncio.gather(
                room.each(lambda p, k: p.vote(pick.choice(insights)), pace=HUMAN_PACE, times=2),
                room.each(lambda p, k: p.contribute("insight", f"More from {p.number}")),
            )
            (dots, burst), _ = await asyncio.gather(
                phones_write, backlog_work(server.url, session.id)
            )
            assert_acknowledged(dots, "dots while the backlog is worked on")
            assert_acknowledged(burst, "insights while the backlog is worked on")
            assert_once_per_client_id(server, "vote", session, {a.payload["cid"] for a in dots})
            assert len(dots) == PHONES * 2
            needs = server.query("SELECT COUNT(*) AS needs FROM need")[0]["needs"]
            assert needs >= 3
            assert (
                server.query("SELECT merged_into_id FROM need WHERE merged_into_id IS NOT NULL")
                == []
            )
            (update,) = server.query("SELECT progress FROM action_update")
            assert update["progress"] == 3
            assert_held(room, *staff)

    run(server, scenario())
