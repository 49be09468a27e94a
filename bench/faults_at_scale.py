"""Faults at scale: a reconnect storm, and a worker killed with ``kill -9`` mid-session.

Two scenarios, each on Palabre and, in the same run, on bare Flask-SocketIO
(``bench/baseline_server.py``) with the same phones (``palabre.testing``:
each its own cookie jar and python-socketio client, all in one process):

* **storm**: ``--phones`` phones (500) in a one-table café in round 1, with
  ``--steady`` (20) more that stay connected. The steady phones and
  ``--writers`` (20) of the others write notes at human pace (``--pace``)
  throughout. Then the ``--phones`` phones lose their sockets at the same
  moment, stay away ``--away`` seconds (3) and all come back at once: they
  reconnect from the last sequence number they are sure of and resend their
  unacknowledged notes (``live.js``'s outbox, same ``cid``).
* **kill**: two workers on one PostgreSQL database and Redis (as behind a
  proxy, each its own port), ``--kill-phones`` phones (500) split between
  them, ``--writers`` of them writing. The first worker is killed with
  ``kill -9``; its phones notice, reconnect to the other worker and resend.
  The baseline is two bare servers sharing a Redis message queue, one of
  them killed the same way. Needs ``scripts/with-servers``.

Figures, per scenario and server, timed from the phones' return (the kill
itself for ``kill``): **reconnect** (socket connected again) and, on Palabre,
**resync** (connected again and holding every event up to the session's
sequence number at its return: replayed, or asked for as live.js does after
a hole) p50,
p95 and max; then, once the writing has stopped: notes written, acknowledged,
**lost** (acknowledged but not stored), **duplicated** (a ``cid`` stored
twice, or a note broadcast twice), still unacknowledged, phones missing
events, ``resync`` requests (a page reload each). The baseline keeps
nothing, so only its reconnect times are figures: the cost of coming back
at all.

    .venv/bin/python bench/faults_at_scale.py --scenarios storm
    scripts/with-servers .venv/bin/python bench/faults_at_scale.py

See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import os
import platform
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_latency import (  # noqa: E402 (the bench folder is not a package)
    ONE_TABLE_CAFE,
    RESULTS,
    BenchError,
    baseline_server,
    log,
    machine_busy_seconds,
    palabre_server,
    raise_fd_limit,
    run_bench,
    several_workers,
    versions,
)

from palabre.testing import Facilitator, PalabreServer, Room, ServerProcess, free_port  # noqa: E402
from palabre.testing.faults import (  # noqa: E402
    Outbox,
    drop_and_return,
    for_everyone,
    heard_everything,
    session_seq,
    writing,
)

#: The issue's bound: every phone resynchronised within this many seconds.
RESYNC_LIMIT_S = 10
#: How long any phone may take to come back before it counts as never back.
BOUND_S = 30
BASELINE_CODE = "BASE01"


class CpuWindow:
    """CPU time the measured server and this harness used from now until :meth:`close`.

    After :meth:`close`: ``wall``, ``server_cpu`` and ``harness_cpu`` in seconds.
    """

    def __init__(self, server: ServerProcess):
        self.server = server
        self.started = (time.perf_counter(), server.cpu_seconds(), time.process_time())

    def close(self, until: CpuWindow | None = None) -> None:
        """End the window now, or where ``until`` started."""
        end = (
            until.started
            if until is not None
            else (time.perf_counter(), self.server.cpu_seconds(), time.process_time())
        )
        self.wall, self.server_cpu, self.harness_cpu = (
            e - s for e, s in zip(end, self.started, strict=True)
        )


def cpu_figures(steady: CpuWindow, storm: CpuWindow, victims: int, away_s: float) -> dict:
    """What the server and the harness spent on the comeback, beside the steady writing.

    ``per_reconnect_ms``: the server's CPU from the fault until every phone
    was back and resynchronised, less what the steady writing cost over as
    long (its rate before the fault), per phone that came back. CPU time is
    the figure a loaded machine does not inflate. ``comeback_server_cpus``
    and ``comeback_harness_cpus``: CPU over wall time from the phones' return
    (``away_s`` after the fault) until the last was resynchronised; well
    below 1 for both while phones wait says they were starved by other work
    on the machine, not busy.
    """
    steady_rate = steady.server_cpu / steady.wall if steady.wall else 0.0
    extra = storm.server_cpu - steady_rate * storm.wall
    back = storm.wall - away_s
    return {
        "steady_server_cpus": round(steady_rate, 3),
        "comeback_wall_s": round(storm.wall, 3),
        "comeback_server_cpu_s": round(storm.server_cpu, 3),
        "comeback_server_cpus": round(storm.server_cpu / back, 3) if back > 0 else None,
        "comeback_harness_cpus": round(storm.harness_cpu / back, 3) if back > 0 else None,
        "per_reconnect_ms": round(1000 * extra / victims, 2) if victims else None,
    }


async def seated(url: str, code: str, phones: int, seed: int) -> Room:
    """``phones`` joined and connected (50 at a time), or a :class:`BenchError`."""
    room = Room(url, code, phones, seed=seed)
    await room.join_all(connect=True, concurrency=50, attempts=3)
    if room.failures:
        await room.close()
        raise BenchError(f"phones could not join {url}: {room.failures[:3]}")
    return room


async def cafe(server: PalabreServer) -> tuple[Facilitator, int, str]:
    """A signed-in facilitator and a one-table café live in round 1: its id and code."""
    facilitator = Facilitator(server.url)
    await facilitator.sign_in()
    session = await facilitator.start_session("world_cafe", ONE_TABLE_CAFE, phase=1)
    return facilitator, session.id, session.code


async def scenario(
    name: str,
    subject: str,
    victims_room: Room,
    others_room: Room,
    fault,
    args,
    *,
    measured: ServerProcess,
    database: PalabreServer | None,
    session_id: int | None,
    reconnect_to: str | None = None,
    away_s: float = 0.0,
) -> dict:
    """Write, make the fault, bring the victims back, write on, then check everything."""
    phones = victims_room.phones + others_room.phones
    start = {phone: phone.seq or 0 for phone in phones}
    outboxes = {phone: Outbox(phone) for phone in phones}
    writers = victims_room.phones[: args.writers // 2] + others_room.phones[: args.writers // 2]
    if name == "storm":  # every steady phone writes, and some of those that drop
        writers = victims_room.phones[: args.writers] + others_room.phones
    palabre = database is not None
    busy_before, started = machine_busy_seconds(), asyncio.get_running_loop().time()
    gc.collect()
    gc.freeze()  # as in the other benchmarks: no collection pause charged to the server
    gc.disable()
    try:
        async with writing([outboxes[p] for p in writers], args.pace, seed=len(phones)):
            steady = CpuWindow(measured)
            await asyncio.sleep(args.before)
            storm = CpuWindow(measured)
            comeback = await drop_and_return(
                victims_room.phones,
                outboxes,
                fault,
                away_s=away_s,
                reconnect_to=reconnect_to,
                target=(lambda: session_seq(database, session_id)) if palabre else None,
                events=(
                    (lambda after, upto: for_everyone(database, session_id, after, upto))
                    if palabre
                    else None
                ),
                bound_s=BOUND_S,
            )
            steady.close(until=storm)
            storm.close()
            await asyncio.sleep(args.after)
    finally:
        gc.enable()
        gc.unfreeze()
    wall = asyncio.get_running_loop().time() - started
    row = {
        "scenario": name,
        "server": subject,
        "database": database.database_uri.split(":", 1)[0] if palabre else None,
        "victims": len(victims_room),
        "others": len(others_room),
        "writers": len(writers),
        "comeback": comeback.figures(),
        "busy_cpus": round((machine_busy_seconds() - busy_before) / wall, 2),
        "cpu": cpu_figures(steady, storm, len(victims_room), comeback.away_s),
    }
    if palabre:
        outcome = await heard_everything(database, session_id, phones, outboxes.values(), start)
        row["outcome"] = dataclasses.asdict(outcome)
        row["holds"] = outcome.holds()
    else:
        row["outcome"] = {
            "written": sum(len(o.acknowledged) + len(o.pending) for o in outboxes.values()),
            "acknowledged": sum(len(o.acknowledged) for o in outboxes.values()),
        }
    return row


async def storm(server: ServerProcess, args) -> dict:
    palabre = isinstance(server, PalabreServer)
    facilitator, session_id, code = None, None, BASELINE_CODE
    if palabre:
        facilitator, session_id, code = await cafe(server)
    log(f"storm on {server.name}: seating {args.phones} + {args.steady} phones")
    rooms = []
    try:
        rooms.append(await seated(server.url, code, args.phones, seed=1))
        rooms.append(await seated(server.url, code, args.steady, seed=2))
        storming, steady = rooms

        async def drop():
            await asyncio.gather(*(phone.socket.close() for phone in storming.phones))

        log(f"  writing; {args.phones} phones drop in {args.before}s, back {args.away}s later")
        return await scenario(
            "storm",
            server.name,
            storming,
            steady,
            drop,
            args,
            measured=server,
            database=server if palabre else None,
            session_id=session_id,
            away_s=args.away,
        )
    finally:
        for room in rooms:
            await room.close()
        if facilitator:
            await facilitator.close()


async def kill(doomed: ServerProcess, survivor: ServerProcess, args) -> dict:
    palabre = isinstance(doomed, PalabreServer)
    facilitator, session_id, code = None, None, BASELINE_CODE
    if palabre:
        facilitator, session_id, code = await cafe(survivor)
    half = args.kill_phones // 2
    log(f"kill on {doomed.name}: seating {half} phones on each of two workers")
    rooms = []
    try:
        rooms.append(await seated(doomed.url, code, half, seed=3))
        rooms.append(await seated(survivor.url, code, args.kill_phones - half, seed=4))
        on_doomed, on_survivor = rooms

        async def kill_9():
            os.killpg(doomed.process.pid, signal.SIGKILL)

        log(f"  writing; kill -9 of the first worker in {args.before}s")
        return await scenario(
            "kill",
            doomed.name,
            on_doomed,
            on_survivor,
            kill_9,
            args,
            measured=survivor,
            database=survivor if palabre else None,
            session_id=session_id,
            reconnect_to=survivor.url,
        )
    finally:
        for room in rooms:
            await room.close()
        if facilitator:
            await facilitator.close()


async def bench(args, workdir: Path, servers: list[ServerProcess], rows: list[dict]) -> None:
    async def started(*group: ServerProcess) -> None:
        servers.extend(group)
        for server in group:
            server.start()
            server.wait_ready()  # one after the other: the first Palabre migrates
        for server in group:
            if isinstance(server, PalabreServer) and server is group[0]:
                server.create_facilitator()

    if "storm" in args.scenarios:
        palabre = palabre_server(workdir / "storm", free_port(), workdir / "storm-palabre.log")
        baseline = baseline_server(free_port(), workdir / "storm-baseline.log")
        log(f"storm: palabre on {palabre.url}, baseline on {baseline.url}")
        await started(palabre)
        rows.append(report(await storm(palabre, args)))
        palabre.stop()
        await started(baseline)
        rows.append(report(await storm(baseline, args)))
        baseline.stop()
    if "kill" in args.scenarios:
        palabres, baselines = several_workers(2, workdir / "kill")
        log(f"kill: palabre on {palabres[0].url} and {palabres[1].url}, baselines beside")
        await started(*palabres)
        rows.append(report(await kill(*palabres, args)))
        for server in palabres:
            server.stop()
        await started(*baselines)
        rows.append(report(await kill(*baselines, args)))


def report(row: dict) -> dict:
    c, o = row["comeback"], row["outcome"]
    line = (
        f"  {row['server']}: {c['reconnected']}/{c['phones']} back, reconnect p95 "
        f"{c['reconnect']['p95_s']} s; server CPU {row['cpu']['per_reconnect_ms']} ms per "
        f"reconnect, {row['cpu']['comeback_server_cpus']} CPUs while they came back (harness "
        f"{row['cpu']['comeback_harness_cpus']})"
    )
    if "lost" in o:
        line += (
            f", {c['resynchronised']} resynchronised, resync p95 {c['resync']['p95_s']} s max "
            f"{c['resync']['max_s']} s; notes {o['acknowledged']} acknowledged, lost {o['lost']}, "
            f"duplicated {o['duplicated'] + o['broadcast_twice']}, unacknowledged "
            f"{o['unacknowledged']}, phones missing events {o['phones_missing_events']}"
        )
    log(line)
    return row


def verdicts(rows: list[dict]) -> list[str]:
    lines = []
    for name in ("storm", "kill"):
        mine = {r["server"]: r for r in rows if r["scenario"] == name}
        palabre, bare = mine.get("palabre"), mine.get("baseline")
        if not palabre:
            continue
        c, o = palabre["comeback"], palabre["outcome"]
        slowest = c["resync"]["max_s"]
        met = (
            palabre["holds"]
            and not c["not_reconnected"]
            and not c["not_resynchronised"]
            and slowest is not None
            and slowest <= RESYNC_LIMIT_S
            and o["refused"] == 0
        )
        versus = ""
        if bare and bare["comeback"]["reconnect"]["p95_s"]:
            ratio = c["resync"]["p95_s"] / bare["comeback"]["reconnect"]["p95_s"]
            versus = f"; resync p95 {ratio:.2f}x bare's reconnect p95"
        lines.append(
            f"{name} (0 acknowledged notes lost, 0 duplicated, every phone resynchronised "
            f"within {RESYNC_LIMIT_S} s): {'MET' if met else 'NOT MET'} (lost {o['lost']}, "
            f"duplicated {o['duplicated'] + o['broadcast_twice']}, refused {o['refused']}, "
            f"not resynchronised {len(c['not_resynchronised'])}, slowest {slowest} s{versus})"
        )
    return lines


def print_table(rows: list[dict], out=sys.stdout) -> None:
    columns = [
        ("scenario", 8), ("server", 8), ("phones", 6), ("back p50", 8), ("p95", 6),
        ("max", 6), ("resync p50", 10), ("p95", 6), ("max", 6), ("acked", 6), ("lost", 5),
        ("dup", 4), ("unacked", 7), ("missing", 7), ("resyncs", 7), ("busy", 5),
    ]  # fmt: skip
    left = ("scenario", "server")
    header = "  ".join(f"{n:<{w}}" if n in left else f"{n:>{w}}" for n, w in columns)
    print(header, file=out)
    print("-" * len(header), file=out)
    for row in rows:
        c, o = row["comeback"], row["outcome"]
        dup = o["duplicated"] + o["broadcast_twice"] if "lost" in o else ""
        cells = [
            row["scenario"], row["server"], c["phones"], c["reconnect"]["p50_s"],
            c["reconnect"]["p95_s"], c["reconnect"]["max_s"], c["resync"]["p50_s"] or "",
            c["resync"]["p95_s"] or "", c["resync"]["max_s"] or "", o["acknowledged"],
            o.get("lost", ""), dup, o.get("unacknowledged", ""),
            o.get("phones_missing_events", ""), o.get("resync_requests", ""), row["busy_cpus"],
        ]  # fmt: skip
        print(
            "  ".join(
                f"{x!s:<{w}}" if n in left else f"{x!s:>{w}}"
                for x, (n, w) in zip(cells, columns, strict=True)
            ),
            file=out,
        )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--scenarios", default="storm,kill", help="storm, kill or both (default: %(default)s)")
    add("--phones", type=int, default=500, help="phones that drop in the storm (default: 500)")
    add("--steady", type=int, default=20, help="phones that stay in the storm (default: 20)")
    add("--kill-phones", type=int, default=500, help="phones on the two workers (default: 500)")
    add("--writers", type=int, default=20, help="phones writing among the others (default: 20)")
    add("--pace", default="2,6", help="seconds between a writer's notes, low,high (default: 2,6)")
    add("--before", type=float, default=5.0, help="seconds of writing before the fault (5)")
    add("--away", type=float, default=3.0, help="seconds the storm's phones stay away (3)")
    add("--after", type=float, default=5.0, help="seconds of writing after the return (5)")
    add("--output", type=Path, default=None, help="JSON results (default: bench/results/…)")
    add("--keep", action="store_true", help="keep the instance folders and server logs")
    args = parser.parse_args(argv)
    args.scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    if not args.scenarios or not args.scenarios <= {"storm", "kill"}:
        parser.error("--scenarios takes storm and kill, separated by commas")
    try:
        low, high = (float(x) for x in args.pace.split(","))
    except ValueError:
        parser.error("--pace takes two numbers of seconds, e.g. 2,6")
    if not 0 < low <= high:
        parser.error("--pace: 0 < low <= high")
    args.pace = (low, high)
    if min(args.phones, args.steady, args.kill_phones, args.writers) < 2:
        parser.error("--phones, --steady, --kill-phones and --writers must be 2 or more")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
    logging.getLogger("socketio.client").setLevel(logging.CRITICAL)
    raise_fd_limit(max(args.phones + args.steady, args.kill_phones) * 2)
    started = datetime.now(UTC)
    rows: list[dict] = []
    code = run_bench(
        lambda workdir, servers: bench(args, workdir, servers, rows),
        prefix="palabre-faults-",
        keep=args.keep,
    )
    if not rows:
        return code
    print()
    print(
        f"Faults at scale, {os.cpu_count()} CPUs: seconds from the phones' return (back = "
        "socket connected, resync = every event up to the session's number at the return)"
    )
    print_table(rows)
    lines = verdicts(rows)
    for line in lines:
        print(line)
    if max(r["busy_cpus"] for r in rows) > 1.5:
        print("note: the machine's CPUs were busy (busy, in CPUs, everything included)")
    RESULTS.mkdir(exist_ok=True)
    output = args.output or RESULTS / f"faults_at_scale-{started:%Y%m%d-%H%M%S}.json"
    config = {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()}
    config.pop("output")
    output.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "finished": datetime.now(UTC).isoformat(),
                "complete": code == 0,
                "config": config,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "versions": versions(),
                },
                "verdicts": lines,
                "runs": rows,
            },
            indent=2,
            default=str,
        )
    )
    print(f"results written to {output}")
    return code


if __name__ == "__main__":
    sys.exit(main())
