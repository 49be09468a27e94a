"""Server CPU per reconnect: phones drop, notes are written meanwhile, all come back at once.

A one-table café on a real ``palabre serve`` (SQLite, or PostgreSQL under
``scripts/with-servers``), ``--phones`` phones connected. Each round: every
phone's socket closes, one more phone writes ``--missed`` notes (each
acknowledged), and every phone reconnects at once from the last sequence
number it held, as ``live.js`` does. The server's CPU time from the return
until every phone holds every event up to the session's number, divided by
the phones, is the figure: CPU time, unlike wall time, is barely inflated by
other work on a shared machine. Nothing else is written meanwhile, so it is
the reconnect's cost alone (``faults_at_scale.py`` measures it within a storm,
against bare Flask-SocketIO).

    .venv/bin/python bench/reconnect_cost.py --phones 200 --missed 60
    .venv/bin/python bench/reconnect_cost.py --profile /tmp/reconnect  # py-spy, if installed

With ``--profile PREFIX``, ``py-spy record`` samples the server during each
round's comeback into ``PREFIX.<round>`` (raw collapsed stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_latency import (  # noqa: E402 (the bench folder is not a package)
    ONE_TABLE_CAFE,
    BenchError,
    log,
    palabre_server,
    raise_fd_limit,
    run_bench,
)

from palabre.testing import Facilitator, Room, free_port  # noqa: E402
from palabre.testing.faults import contiguous_seq, until  # noqa: E402

#: Bound on one comeback: every phone connected again and holding every event.
COMEBACK_BOUND_S = 120


async def rounds(args, workdir: Path, servers: list) -> None:
    server = palabre_server(workdir / "instance", free_port(), workdir / "palabre.log")
    servers.append(server)
    server.start()
    server.wait_ready()
    server.create_facilitator()
    facilitator = Facilitator(server.url)
    rooms: list[Room] = []
    try:
        await facilitator.sign_in()
        session = await facilitator.start_session("world_cafe", ONE_TABLE_CAFE, phase=1)
        room = Room(server.url, session.code, args.phones, seed=1)
        writer = Room(server.url, session.code, 1, seed=2)
        rooms += [room, writer]
        await room.join_all(connect=True, concurrency=50, attempts=3)
        await writer.join_all(connect=True)
        if room.failures or writer.failures:
            raise BenchError(f"phones could not join: {(room.failures + writer.failures)[:3]}")
        for number in range(args.rounds):
            start = {phone: contiguous_seq(phone, phone.seq or 0) for phone in room.phones}
            await asyncio.gather(*(phone.socket.close() for phone in room.phones))
            for k in range(args.missed):
                ack = await writer.phones[0].contribute("note", f"Note {k}: the bus is late.")
                if not ack.ok:
                    raise BenchError(f"a note was refused: {ack.reply}")
            target = server.session_row(session.id)["seq"]
            for phone in room.phones:
                phone.seq = start[phone]
            await asyncio.sleep(1.0)  # the writes' own work done
            gc.collect()
            spy = _profile(args.profile, number, server.pid)
            cpu, wall = server.cpu_seconds(), time.perf_counter()
            await asyncio.gather(
                *(p.connect_live(attempts=3, timeout=COMEBACK_BOUND_S) for p in room.phones)
            )
            connected = time.perf_counter() - wall
            synced = await until(
                lambda start=start, target=target: all(
                    contiguous_seq(p, start[p]) >= target for p in room.phones
                ),
                COMEBACK_BOUND_S,
                every=0.05,
            )
            wall, cpu = time.perf_counter() - wall, server.cpu_seconds() - cpu
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait()
            log(
                f"round {number}: {args.phones} phones missing {args.missed} events, load "
                f"{os.getloadavg()[0]:.1f}: connected in {connected:.2f} s, "
                f"{'resynchronised' if synced else 'NOT all resynchronised'} in {wall:.2f} s; "
                f"server CPU {cpu:.2f} s = {1000 * cpu / args.phones:.2f} ms per reconnect"
            )
    finally:
        for each in rooms:
            await each.close()
        await facilitator.close()


def _profile(prefix: str | None, number: int, pid: int) -> subprocess.Popen | None:
    if not prefix:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "-p", str(pid), "-f", "raw", "-r", "200", "--nonblocking"]
    started = subprocess.Popen(
        [*command, "-o", f"{prefix}.{number}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attached before the phones come back
    return started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=200, help="phones (default: 200)")
    parser.add_argument("--missed", type=int, default=30, help="notes missed (default: 30)")
    parser.add_argument("--rounds", type=int, default=3, help="drops and returns (default: 3)")
    parser.add_argument("--profile", metavar="PREFIX", help="py-spy raw profiles to PREFIX.<n>")
    parser.add_argument("--keep", action="store_true", help="keep the instance and server log")
    args = parser.parse_args(argv)
    if min(args.phones, args.missed, args.rounds) < 1:
        parser.error("--phones, --missed and --rounds must be 1 or more")
    raise_fd_limit(4 * args.phones + 512)
    return run_bench(
        lambda workdir, servers: rounds(args, workdir, servers),
        prefix="palabre-reconnect-",
        keep=args.keep,
    )


if __name__ == "__main__":
    sys.exit(main())
