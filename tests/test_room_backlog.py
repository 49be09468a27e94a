"""A room keeps writing while the backlog's forms are used on a city-sized backlog.

A real ``palabre serve`` holds 300 needs and 300 actions. While 36 phones
write café notes at human pace, then all at once, a facilitator plans
actions through the action form's picker of needs (a search sent without
JavaScript, its type-ahead answers, then the save), records monitoring
updates, and sends dates that cannot be read to the monitoring report and
to an update (refused, nothing stored). Every note is acknowledged, no
socket is lost, and every backlog write lands once.
"""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from palabre import create_app
from palabre.extensions import db
from palabre.testing import served_palabre
from palabre.testing.kit import csrf_token
from palabre.testing.large_backlog import fill_backlog

from .test_room import (
    CAFE,
    HUMAN_PACE,
    ROUND_1,
    assert_acknowledged,
    assert_held,
    assert_once_per_client_id,
    flat,
    live_room,
    resent,
    run,
    screens,
)

NEEDS, ACTIONS = 300, 300
PLANNED = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("room-backlog")
    with served_palabre(folder, STRICT_WRITES="true") as server:
        server.create_facilitator()
        app = create_app({"SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": server.database_uri})
        app.instance_path = str(server.instance)
        with app.app_context():
            try:
                fill_backlog(needs=NEEDS, actions=ACTIONS)
            finally:
                # Only its connections: the database is the server's (close_app would drop it).
                db.session.remove()
                db.engine.dispose()
        yield server


async def status_of(facilitator, method: str, path: str, **kwargs) -> int:
    """The status of a request that may be refused (the room's client raises on a 4xx)."""
    url = facilitator.base + path
    async with facilitator.http.request(method, url, **kwargs) as response:
        await response.read()
        return response.status


async def plan_actions(facilitator) -> list[str]:
    """Plan :data:`PLANNED` actions through the picker, each with a monitoring update.

    A person's pace: a pause between two pages, as long as between two notes.
    """
    pace = random.Random(5)

    async def pause():
        await asyncio.sleep(pace.uniform(*HUMAN_PACE))

    titles = []
    for number in range(PLANNED):
        form = await facilitator.get("/backlog/actions/new")
        await pause()
        title = f"Planned in the room {number}"
        fields = [("title", title), ("status", "planned"), ("budget_currency", "EUR")]
        found = await facilitator.post_form(
            form,
            "/backlog/actions/new",
            [*fields, ("need_q", "language"), ("need_theme", ""), ("find_needs", "1")],
        )
        assert "/backlog/actions/new" in found.url and f'value="{title}"' in found.text
        ids = re.findall(r'name="needs" value="(\d+)">', found.text)[:2]
        assert ids, "the search found no need"
        typed = await facilitator.get("/backlog/needs/find.json?need_q=flat&chosen=" + ids[0])
        assert '"needs"' in typed.text
        await pause()
        saved = await facilitator.post_form(
            found,
            "/backlog/actions/new",
            [*fields, *(("needs", need_id) for need_id in ids), ("submit", "1")],
        )
        found_path = re.search(r"/backlog/actions/\d+", saved.url)
        assert found_path, saved.url
        action_url = found_path.group(0)
        await pause()
        await facilitator.post_form(
            saved,
            action_url + "/updates",
            [
                ("update-on_date", "2027-03-01"),
                ("update-progress", str(number)),
                ("update-body", f"Progress in the room {number}"),
                ("update-reported_by", "0"),
                ("update-submit", "1"),
            ],
        )
        await pause()
        page = await facilitator.get(action_url)
        refused = await status_of(
            facilitator,
            "POST",
            action_url + "/updates",
            data={
                "csrf_token": csrf_token(page.text),
                "update-on_date": "next Tuesday",
                "update-body": "Never stored",
                "update-submit": "1",
            },
        )
        assert refused == 400
        assert await status_of(facilitator, "GET", "/backlog/monitoring.pdf?since=soon") == 400
        titles.append(title)
    return titles


def test_a_room_writes_notes_while_actions_are_planned_and_monitored(server):
    async def scenario():
        async with live_room(server, "world_cafe", CAFE, seed=11) as (facilitator, session, room):
            await room.join_all()
            await facilitator.go_to_phase(session, ROUND_1)
            staff = await screens(facilitator, session)
            await room.connect_all()

            planning = asyncio.ensure_future(plan_actions(facilitator))
            human = await room.each(
                lambda p, k: p.contribute("note", f"Phone {p.number}, note {k}"),
                pace=HUMAN_PACE,
                times=12,
            )
            assert not planning.done(), "the notes at human pace did not overlap the planning"
            burst = flat(await room.each(lambda p, k: resent(p, "note", f"Burst {k}"), times=2))
            titles = await planning
            assert_acknowledged(human, "notes at human pace while actions are planned")
            refused = [(a.payload, a.error) for a in burst if not a.ok]
            assert not refused, f"notes in a burst not acknowledged: {refused[:3]}"
            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + burst}
            )
            assert len(rows) == len(room.phones) * 14
            assert_held(room, *staff)

            for title in titles:
                (action,) = server.query("SELECT id FROM action WHERE title = ?", (title,))
                linked = server.query(
                    "SELECT need_id FROM need_action WHERE action_id = ?", (action["id"],)
                )
                assert len(linked) == 2, title
                updates = server.query(
                    "SELECT body FROM action_update WHERE action_id = ?", (action["id"],)
                )
                assert [u["body"] for u in updates] == [
                    f"Progress in the room {titles.index(title)}"
                ]
            assert not server.query("SELECT id FROM action_update WHERE body = 'Never stored'")

    run(server, scenario())
