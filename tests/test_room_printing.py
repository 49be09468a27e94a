"""A room keeps writing while the city's whole action plan prints.

A real ``palabre serve`` holds a backlog of 1,000 needs and 300 actions (the
size of issue 9's figures). A facilitator asks for the plan; while its job
gathers the backlog (off the live loop) and its worker lays out the pages,
36 phones write notes at human pace, then all at once. Every note must be
acknowledged, those at human pace 95% within a second, no socket lost; the
plan then arrives whole. (The burst's own timing is tests/test_room.py's
business: on a shared 2-core machine it sits near the limit with or without
printing, see bench/print_backlog.py for the comparison.)
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from palabre import create_app
from palabre.extensions import db
from palabre.testing import Facilitator, p95, served_palabre
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

NEEDS, ACTIONS = 1000, 300
JOB_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("room-printing")
    with served_palabre(folder, STRICT_WRITES="true") as server:
        server.create_facilitator()
        # Written by another process, as an import would be: the server's
        # cache sees the new generation all the same.
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


async def job_state(facilitator: Facilitator, job_url: str) -> dict:
    return json.loads((await facilitator.get(job_url + ".json")).text)


def test_a_room_writes_notes_while_the_whole_plan_prints(server):
    async def scenario():
        async with live_room(server, "world_cafe", CAFE, seed=9) as (facilitator, session, room):
            await room.join_all()
            await facilitator.go_to_phase(session, ROUND_1)
            staff = await screens(facilitator, session)
            await room.connect_all()

            job_url = (await facilitator.get("/backlog/action-plan.pdf")).url
            assert "/print/jobs/" in job_url, job_url
            human = await room.each(
                lambda p, k: p.contribute("note", f"Phone {p.number}, note {k}"),
                pace=HUMAN_PACE,
                times=6,
            )
            burst = flat(await room.each(lambda p, k: resent(p, "note", f"Burst {k}"), times=2))
            # The writes above happened while the plan was printing.
            assert not (await job_state(facilitator, job_url))["done"]
            assert_acknowledged(human, "notes at human pace while printing")
            refused = [(a.payload, a.error) for a in burst if not a.ok]
            assert not refused, f"notes in a burst while printing not acknowledged: {refused[:3]}"

            deadline = time.monotonic() + JOB_TIMEOUT_S
            while not (state := await job_state(facilitator, job_url))["done"]:
                assert not state["failed"], state
                assert time.monotonic() < deadline, f"the plan took too long: {state}"
                await facilitator.get(job_url)  # the page without JavaScript works meanwhile
                await asyncio.sleep(0.5)
            async with facilitator.http.get(server.url + state["pdf_url"]) as response:
                pdf = await response.read()
            assert pdf.startswith(b"%PDF") and state["pages"] > 50

            rows = assert_once_per_client_id(
                server, "contribution", session, {a.payload["cid"] for a in human + burst}
            )
            assert len(rows) == len(room.phones) * 8
            assert_held(room, *staff)
            print(
                f"\nplan: {state['pages']} pages in {state['seconds']} s; "
                f"note acknowledgements while printing: p95 "
                f"{p95([a.latency for a in human]):.3f} s at human pace, "
                f"{p95([a.latency for a in burst]):.3f} s in a burst"
            )

    run(server, scenario())
