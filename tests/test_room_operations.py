"""Operations while a room writes: an import and a retention purge never hold up the phones.

A café closed "years ago" with a few hundred notes is due for purging; while
36 phones of another café write notes at human pace and then all at once,
an administrator sets the retention period (the server's background purge
then empties the old café in batches) and imports a session file twice (the
second time as a copy). Every phone's write is acknowledged promptly, the
old café is purged, and both imports are whole.
"""

from __future__ import annotations

import asyncio
import random

import aiohttp

from palabre.testing import Facilitator, served_palabre
from tests.test_room import (
    CAFE,
    HUMAN_PACE,
    PHONES,
    ROUND_1,
    assert_acknowledged,
    assert_held,
    assert_once_per_client_id,
    live_room,
    run,
    screens,
)

OLD_NOTES_PER_PHONE = 8
CAFE_CLOSED = 4


def execute(server, sql: str, params=()) -> None:
    """One write to the server's database from this process, as an operator's script would."""
    import sqlalchemy

    uri = server.database_uri
    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                sql.replace("?", "%s" if "postgresql" in uri else "?"), params
            )
    finally:
        engine.dispose()


async def old_cafe(server) -> tuple[int, bytes]:
    """A café whose phones wrote notes, closed long ago; its id and its export file."""
    async with live_room(server, "world_cafe", CAFE, seed=3) as (facilitator, session, room):
        await room.join_all()
        await facilitator.go_to_phase(session, ROUND_1)
        await room.connect_all()
        notes = await room.each(
            lambda p, k: p.contribute("note", f"Old note {k} of phone {p.number}"),
            times=OLD_NOTES_PER_PHONE,
        )
        # Setting the scene, not what is measured: stored, however fast.
        assert all(note.ok for note in notes)
        await facilitator.go_to_phase(session, CAFE_CLOSED)
        async with facilitator.http.get(f"{server.url}/sessions/{session.id}/export.json") as got:
            assert got.status == 200
            exported = await got.read()
    execute(
        server,
        "UPDATE palabre_session SET closed_at = '2020-01-15 10:00:00' WHERE id = ?",
        (session.id,),
    )
    return session.id, exported


async def import_file(staff: Facilitator, exported: bytes, as_copy: bool) -> str:
    form = aiohttp.FormData()
    form.add_field("csrf_token", await staff._csrf())
    if as_copy:
        form.add_field("as_copy", "y")
    form.add_field("file", exported, filename="cafe.json", content_type="application/json")
    done = await staff.request("POST", "/sessions/import", data=form)
    assert "Session imported" in done.text, done.text[:500]
    return done.url


async def operations(server, exported: bytes) -> list[str]:
    """An administrator sets the retention period, then imports the file twice."""
    async with Facilitator(server.url, "administrator") as staff:
        await staff.sign_in()
        await asyncio.sleep(random.uniform(*HUMAN_PACE))
        await staff.post_form("/settings/", "/settings/", {"retention_months": "12"})
        imported = []
        for as_copy in (False, True):
            await asyncio.sleep(random.uniform(*HUMAN_PACE))
            imported.append(await import_file(staff, exported, as_copy))
        return imported


def test_an_import_and_a_purge_never_hold_up_the_phones(tmp_path):
    with served_palabre(
        tmp_path, STRICT_WRITES="true", PURGE_FIRST_AFTER_S="0", PURGE_EVERY_S="0.5"
    ) as server:
        server.create_facilitator()

        async def scenario():
            old_id, exported = await old_cafe(server)
            async with live_room(server, "world_cafe", CAFE, seed=5) as (
                facilitator,
                session,
                room,
            ):
                await room.join_all()
                await facilitator.go_to_phase(session, ROUND_1)
                staff = await screens(facilitator, session)
                await room.connect_all()
                phones_write = asyncio.gather(
                    room.each(
                        lambda p, k: p.contribute("note", f"Note {k} of {p.number}"),
                        pace=HUMAN_PACE,
                        times=3,
                    ),
                    room.each(lambda p, k: p.contribute("note", f"All at once {p.number}")),
                )
                (paced, burst), imported = await asyncio.gather(
                    phones_write, operations(server, exported)
                )
                assert_acknowledged(paced, "notes at human pace during an import and a purge")
                assert_acknowledged(burst, "notes all at once during an import and a purge")
                cids = {a.payload["cid"] for a in paced + burst}
                assert_once_per_client_id(server, "contribution", session, cids)
                assert len(imported) == 2
                # The purge runs every half second once the period is set: wait for it.
                for _ in range(40):
                    (row,) = server.query(
                        "SELECT purged_at FROM palabre_session WHERE id = ?", (old_id,)
                    )
                    if row["purged_at"] is not None:
                        break
                    await asyncio.sleep(0.25)
                assert row["purged_at"] is not None, "the old café was not purged"
                assert_held(room, *staff)
            left = server.query(
                "SELECT COUNT(*) AS n FROM contribution WHERE session_id = ? AND body != ''",
                (old_id,),
            )[0]["n"]
            assert left == 0
            counts = server.query(
                "SELECT session_id, COUNT(*) AS n FROM contribution WHERE session_id NOT IN (?, ?) "
                "GROUP BY session_id",
                (old_id, session.id),
            )
            assert [row["n"] for row in counts] == [PHONES * OLD_NOTES_PER_PHONE] * 2

        run(server, scenario())
