"""A room's bursts on one laptop: a QR scan, a note and a dot from everyone at once.

Three bursts, each measured on Palabre (``palabre serve`` on a throw-away
instance, 127.0.0.1 only) and on ``bench/baseline_server.py`` (bare
Flask-SocketIO on the same stack) in the same run, with the same phones
(``palabre.testing``: each its own cookie jar and python-socketio client):

* **join**: ``--join-phones`` phones scan the QR code within
  ``--join-spread`` seconds (each at a random moment): the join page, the
  form post, the participant page, the socket connected. Time from the
  first GET to the socket connected; server CPU per join; ``resync``
  requests received (each one a page reload on a real phone).
* **write**: ``--write-phones`` phones in a café of ``--tables`` tables (the
  baseline sends each note to the sender's table too) send ``--notes``
  notes between them, each phone as fast as its acknowledgements return.
  Notes per second, acknowledgement p50/p95, and fairness: when the first
  phone and the 95th-percentile phone had all their notes acknowledged.
* **dots**: ``--dot-phones`` phones in the harvest give their ``--dots`` dots
  at the same moment, all at once.

Join and write bursts alternate servers in ABBA order (``--reps`` each);
the dot burst runs once per server, baseline first, since a dot burst can
freeze Palabre (issue 6) and would then spoil what follows. Prints a table
and the verdicts against the issue's targets, writes JSON to
``bench/results/``. Exit status as ``live_latency.py``: 0 when it ran (met
or not), 2 when it could not run, 1 on an unexpected error, 130 when
interrupted.

    .venv/bin/python bench/room_bursts.py
    .venv/bin/python bench/room_bursts.py --join-phones 1000 --bursts join

See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_latency import (  # noqa: E402 (the bench folder is not a package)
    PALABRE_SETTINGS,
    RESULTS,
    BenchError,
    baseline_server,
    log,
    machine_busy_seconds,
    ms,
    palabre_command,
    raise_fd_limit,
    run_bench,
    versions,
)

from palabre.testing import (  # noqa: E402
    Ack,
    Facilitator,
    LiveSession,
    PalabreServer,
    Room,
    ServerProcess,
    free_port,
    percentile,
)
from palabre.testing.kit import TEST_DATABASE_VARIABLE, new_test_database  # noqa: E402

#: Palabre's name in the figures, by database.
PALABRE_ON = {"sqlite": "palabre", "postgresql": "palabre-pg"}
#: The issue's targets.
JOIN_P95_RATIO = 3.0
WRITE_RATE_RATIO = 0.6
WRITE_P95_RATIO = 2.0
#: Bounds: an acknowledgement, and the wait for late ``resync`` requests after a burst.
ACK_TIMEOUT_S = 30
SETTLE_S = 1.0
#: The café's plan: 0 welcome, 1-2 rounds, 3 harvest.
ROUND_1, HARVEST = 1, 3
NOTE = "The language classes are full before we hear of them; a list at the library would help."


def stats(values: list[float]) -> dict:
    return {
        "count": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p95_ms": ms(percentile(values, 95)),
        "max_ms": ms(max(values)) if values else None,
    }


class Measure:
    """Server CPU, client CPU and other work on the machine over one burst."""

    def __init__(self, server: ServerProcess):
        self.server = server

    def __enter__(self):
        # As in live_latency.py: a full collection over hundreds of clients
        # would pause every phone at once and be charged to the server.
        gc.collect()
        gc.freeze()
        gc.disable()
        self.server_cpu = self.server.cpu_seconds()
        self.client_cpu = time.process_time()
        self.machine = machine_busy_seconds()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        gc.enable()
        gc.unfreeze()
        self.wall_s = time.perf_counter() - self.started
        self.server_cpu_s = self.server.cpu_seconds() - self.server_cpu
        client = time.process_time() - self.client_cpu
        other = machine_busy_seconds() - self.machine - self.server_cpu_s - client
        self.other_load_cpus = round(max(0.0, other) / self.wall_s, 2) if self.wall_s else None


class Subject:
    """One server under measurement, and sessions on it ready for a burst."""

    def __init__(self, server: ServerProcess, args):
        self.server = server
        self.name = server.name
        self.args = args

    async def start(self) -> None:
        """Anything needed before the first session."""

    async def session(self, title: str) -> str:
        """The join code of a new session, open to participants."""
        return "BASE01"

    async def go_to(self, code: str, phase: int) -> None:
        """Move the session to ``phase`` (the baseline has no phases)."""

    async def close(self) -> None:
        """Anything to release at the end."""


class PalabreSubject(Subject):
    def __init__(self, server, args):
        super().__init__(server, args)
        self.facilitator = Facilitator(server.url)
        self.sessions: dict[str, LiveSession] = {}

    async def start(self) -> None:
        self.server.create_facilitator()
        await self.facilitator.sign_in()

    async def session(self, title: str) -> str:
        config = {
            "tables": self.args.tables,
            "questions": "What helped you most?\nWhat should the city do first?",
            "round_minutes": 20,
            "assignment": "assign",
            "hosts_stay": True,
            "dots": self.args.dots,
        }
        session = await self.facilitator.start_session("world_cafe", config, title=title)
        self.sessions[session.code] = session
        return session.code

    async def go_to(self, code: str, phase: int) -> None:
        await self.facilitator.go_to_phase(self.sessions[code], phase)

    async def close(self) -> None:
        await self.facilitator.close()


# --- the bursts ----------------------------------------------------------------------


async def join_burst(subject: Subject, rep: int) -> dict:
    """Phones scan the QR code within the spread: page, form, page, socket."""
    args = subject.args
    code = await subject.session(f"Join burst {rep}")
    room = Room(subject.server.url, code, args.join_phones, seed=rep, ack_timeout=ACK_TIMEOUT_S)
    try:
        with Measure(subject.server) as measure:
            await room.join_all(spread_seconds=args.join_spread, connect=True, attempts=3)
            await asyncio.sleep(SETTLE_S)
        connected = [p for p in room.phones if "connected" in p.timings]
        total = [p.timings["connected"] - p.timings["started"] for p in connected]
        http = [p.timings["joined"] - p.timings["started"] for p in connected]
        socket = [p.timings["connected"] - p.timings["joined"] for p in connected]
        return {
            "burst": "join",
            "server": subject.name,
            "rep": rep,
            "phones": args.join_phones,
            "connected": len(connected),
            "failures": len(room.failures),
            "failure_examples": room.failures[:5],
            "join_to_connected": stats(total),
            "join_http": stats(http),
            "socket_connect": stats(socket),
            "resyncs": room.resyncs,
            "phones_resynced": sum(1 for p in room.phones if p.socket and p.socket.resyncs),
            "disconnects": room.disconnects,
            "server_cpu_ms_per_join": round(
                measure.server_cpu_s * 1000 / max(1, len(connected)), 2
            ),
            "wall_seconds": round(measure.wall_s, 2),
            "other_load_cpus": measure.other_load_cpus,
        }
    finally:
        await room.close()


async def seated_room(subject: Subject, phones: int, phase: int, title: str) -> Room:
    """``phones`` joined and connected, the session in ``phase``."""
    code = await subject.session(title)
    room = Room(subject.server.url, code, phones, ack_timeout=ACK_TIMEOUT_S)
    await room.join_all(concurrency=32)
    if phase >= ROUND_1:
        await subject.go_to(code, ROUND_1)
    if phase > ROUND_1:
        await subject.go_to(code, phase)
    await room.connect_all(concurrency=50, attempts=3)
    if room.failures:
        await room.close()
        raise BenchError(f"{subject.name}: phones could not join: {room.failures[:3]}")
    return room


def write_figures(subject: Subject, burst: str, rep: int, acks: list, measure: Measure) -> dict:
    """Rate, acknowledgement times and fairness of a burst of writes (``None``: not sent)."""
    phones = [[a for a in per_phone if a is not None] for per_phone in acks]
    sent = [a for per_phone in phones for a in per_phone]
    answered = [a for a in sent if a.latency is not None]
    accepted = [a for a in answered if a.ok]
    start = min((a.sent_at for a in sent), default=0.0)
    last = max((a.sent_at + a.latency for a in answered), default=start)
    finished = [
        max(a.sent_at + a.latency for a in per_phone) - start
        for per_phone in phones
        if per_phone and all(a.latency is not None for a in per_phone)
    ]
    rate = len(accepted) / (last - start) if last > start else None
    return {
        "burst": burst,
        "server": subject.name,
        "rep": rep,
        "phones": len(phones),
        "sent": len(sent),
        "acknowledged_ok": len(accepted),
        "refused": len(answered) - len(accepted),
        "refusal_examples": [a.error for a in answered if not a.ok][:5],
        "unacknowledged": len(sent) - len(answered),
        "per_second": round(rate, 1) if rate else None,
        "ack": stats([a.latency for a in answered]),
        "first_phone_finished_s": round(min(finished), 3) if finished else None,
        "p95_phone_finished_s": round(percentile(finished, 95), 3) if finished else None,
        "phones_unfinished": len(phones) - len(finished),
        "server_cpu_ms_per_write": round(measure.server_cpu_s * 1000 / max(1, len(sent)), 2),
        "wall_seconds": round(measure.wall_s, 2),
        "other_load_cpus": measure.other_load_cpus,
    }


async def write_burst(subject: Subject, room: Room, rep: int) -> dict:
    """Every phone sends its share of the notes, as fast as acknowledgements return."""
    total, phones = subject.args.notes, len(room)
    share = [total // phones + (1 if n < total % phones else 0) for n in range(phones)]
    most = max(share)

    async def notes(phone, k) -> Ack | None:
        if k >= share[phone.number]:
            return None
        return await phone.contribute("note", f"{NOTE} ({rep}.{phone.number}.{k})")

    with Measure(subject.server) as measure:
        results = await room.each(notes, times=most)
    per_phone = [results[n * most : (n + 1) * most] for n in range(phones)]
    return write_figures(subject, "write", rep, per_phone, measure)


async def dot_burst(subject: Subject) -> dict:
    """Everyone in the harvest gives all their dots at the same moment."""
    args = subject.args
    room = await seated_room(subject, args.dot_phones, HARVEST, "Dot burst")
    try:
        writers = room.phones[: args.insights]
        written = await room.each(
            lambda p, k: p.contribute("insight", f"Insight {p.number}"), phones=writers
        )
        insights = [a.reply["id"] for a in written if a.ok]
        if len(insights) < len(writers):
            raise BenchError(f"{subject.name}: insights refused: {[a.error for a in written][:3]}")

        async def all_dots(phone, _k) -> list[Ack]:
            targets = [insights[(phone.number + d) % len(insights)] for d in range(args.dots)]
            return list(await asyncio.gather(*(phone.vote(t) for t in targets)))

        with Measure(subject.server) as measure:
            per_phone = await room.each(all_dots)
        figures = write_figures(subject, "dots", 0, per_phone, measure)
        figures["disconnects"] = room.disconnects
        return figures
    finally:
        await room.close()


# --- orchestration ---------------------------------------------------------------------


def abba(subjects: list[Subject], reps: int) -> list[tuple[int, Subject]]:
    """(rep, subject) in ABBA order: A B, B A, A B ..."""
    order = []
    for rep in range(reps):
        pair = subjects if rep % 2 == 0 else subjects[::-1]
        order += [(rep, s) for s in pair]
    return order


def pooled(rows: list[dict], burst: str, server: str) -> dict | None:
    """One line per burst and server: medians of the reps' figures."""
    mine = [r for r in rows if r["burst"] == burst and r["server"] == server]
    if not mine:
        return None

    def median_of(get) -> float | None:
        values = [v for v in (get(r) for r in mine) if v is not None]
        return round(percentile(values, 50), 2) if values else None

    timing = "join_to_connected" if burst == "join" else "ack"
    return {
        "burst": burst,
        "server": server,
        "reps": len(mine),
        "phones": mine[0]["phones"],
        "p50_ms": median_of(lambda r: r[timing]["p50_ms"]),
        "p95_ms": median_of(lambda r: r[timing]["p95_ms"]),
        "max_ms": median_of(lambda r: r[timing]["max_ms"]),
        "per_second": median_of(lambda r: r.get("per_second")),
        "lost": sum(r.get("unacknowledged", 0) + r.get("failures", 0) for r in mine),
        "refused": sum(r.get("refused", 0) for r in mine),
        "resyncs": sum(r.get("resyncs", 0) for r in mine),
        "cpu_ms": median_of(
            lambda r: r.get("server_cpu_ms_per_join", r.get("server_cpu_ms_per_write"))
        ),
        "first_done_s": median_of(lambda r: r.get("first_phone_finished_s")),
        "p95_done_s": median_of(lambda r: r.get("p95_phone_finished_s")),
        "other_load_cpus": max((r.get("other_load_cpus") or 0) for r in mine),
    }


def ratio(a, b) -> float | None:
    """``a / b``, unrounded: targets are judged on it (:func:`shown` rounds it to print)."""
    return a / b if a is not None and b else None


def shown(value: float | None) -> str:
    """A ratio as printed: four decimals, so that one just short of a target shows it."""
    return "n/a" if value is None else f"{value:.4f}"


def verdicts(summary: list[dict]) -> list[str]:
    """The targets' verdicts for Palabre on each database measured."""
    return [line for name in PALABRE_ON.values() for line in verdicts_of(summary, name)]


def verdicts_of(summary: list[dict], name: str) -> list[str]:
    line = {(s["burst"], s["server"]): s for s in summary}
    on = "" if name == "palabre" else f" ({name})"
    out = []
    palabre, bare = line.get(("join", name)), line.get(("join", "baseline"))
    if palabre and bare:
        r = ratio(palabre["p95_ms"], bare["p95_ms"])
        met = r is not None and r <= JOIN_P95_RATIO and palabre["resyncs"] == 0
        met = met and palabre["lost"] == 0
        out.append(
            f"join burst{on} (p95 within {JOIN_P95_RATIO}x of bare, no resync, every phone "
            f"connected): {'MET' if met else 'NOT MET'} (p95 {shown(r)}x, "
            f"resyncs {palabre['resyncs']}, not connected {palabre['lost']})"
        )
    palabre, bare = line.get(("write", name)), line.get(("write", "baseline"))
    if palabre and bare:
        rate, p95r = (
            ratio(palabre["per_second"], bare["per_second"]),
            ratio(palabre["p95_ms"], bare["p95_ms"]),
        )
        met = rate is not None and p95r is not None and palabre["lost"] == 0
        met = met and rate >= WRITE_RATE_RATIO and p95r <= WRITE_P95_RATIO
        fair = ratio(palabre["p95_done_s"], bare["p95_done_s"])
        out.append(
            f"write burst{on} (at least {WRITE_RATE_RATIO}x bare's notes/s, p95 ack within "
            f"{WRITE_P95_RATIO}x, every note acknowledged): {'MET' if met else 'NOT MET'} "
            f"(notes/s {shown(rate)}x, p95 {shown(p95r)}x, unacknowledged {palabre['lost']}; "
            f"95th-percentile phone done {shown(fair)}x bare's)"
        )
    palabre, bare = line.get(("dots", name)), line.get(("dots", "baseline"))
    if palabre and bare:
        met = palabre["lost"] == 0 and palabre["refused"] == 0
        out.append(
            f"dot burst{on} (every dot acknowledged): {'MET' if met else 'NOT MET'} "
            f"(unacknowledged {palabre['lost']}, refused {palabre['refused']}, "
            f"p95 {shown(ratio(palabre['p95_ms'], bare['p95_ms']))}x bare, "
            f"dots/s {shown(ratio(palabre['per_second'], bare['per_second']))}x bare)"
        )
    return out


def print_table(summary: list[dict], out=sys.stdout) -> None:
    columns = [
        ("burst", 6), ("server", 9), ("phones", 6), ("p50 ms", 8), ("p95 ms", 9),
        ("max ms", 9), ("per s", 7), ("lost", 5), ("refused", 7), ("resyncs", 7),
        ("CPU ms", 7), ("1st done", 8), ("p95 done", 8), ("busy", 5),
    ]  # fmt: skip
    left = ("burst", "server")
    header = "  ".join(f"{n:<{w}}" if n in left else f"{n:>{w}}" for n, w in columns)
    print(header, file=out)
    print("-" * len(header), file=out)
    for s in summary:
        cells = [
            s["burst"], s["server"], s["phones"], s["p50_ms"], s["p95_ms"], s["max_ms"],
            s["per_second"] or "", s["lost"], s["refused"], s["resyncs"], s["cpu_ms"],
            s["first_done_s"] or "", s["p95_done_s"] or "", s["other_load_cpus"],
        ]  # fmt: skip
        print(
            "  ".join(
                f"{c!s:<{w}}" if n in left else f"{c!s:>{w}}"
                for c, (n, w) in zip(cells, columns, strict=True)
            ),
            file=out,
        )


def palabre_on(database: str, workdir: Path, port: int) -> PalabreServer:
    """Palabre on SQLite (a file in its instance), or on ``scripts/with-servers``' PostgreSQL."""
    name = PALABRE_ON[database]
    if database == "sqlite":
        uri = f"sqlite:///{workdir / name / 'palabre.db'}"
    elif os.environ.get(TEST_DATABASE_VARIABLE):
        uri = new_test_database(workdir)
    else:
        raise BenchError(
            f"--databases postgresql needs a PostgreSQL server: run this under "
            f"scripts/with-servers, which sets {TEST_DATABASE_VARIABLE}"
        )
    server = PalabreServer(
        workdir / name,
        port=port,
        settings={**PALABRE_SETTINGS, "SQLALCHEMY_DATABASE_URI": uri},
        log_path=workdir / f"{name}.log",
        command=palabre_command(),
    )
    server.name = name
    return server


async def bench(args, workdir: Path, servers: list[ServerProcess], rows: list[dict]) -> None:
    baseline = baseline_server(free_port(), workdir / "baseline.log")
    baseline.argv += ["--tables", str(args.tables)]
    subjects = []
    if args.only in (None, "palabre"):
        for k, database in enumerate(args.databases):
            port = args.port + k if args.port else free_port()
            subjects.append(PalabreSubject(palabre_on(database, workdir, port), args))
    if args.only in (None, "baseline"):
        subjects.append(Subject(baseline, args))
    servers.extend(s.server for s in subjects)
    log("starting " + " and ".join(f"{s.name} on {s.server.url}" for s in subjects))
    for subject in subjects:
        subject.server.start()
    for subject in subjects:
        subject.server.wait_ready()
    try:
        for subject in subjects:
            await subject.start()

        def check_alive():
            for subject in subjects:
                if not subject.server.running():
                    raise BenchError(f"{subject.name} died\n{subject.server.tail()}")

        if "join" in args.bursts:
            for rep, subject in abba(subjects, args.reps):
                log(f"join burst {rep + 1}/{args.reps}: {subject.name}, {args.join_phones} phones")
                rows.append(row := await join_burst(subject, rep))
                log(
                    f"  p50 {row['join_to_connected']['p50_ms']} ms, "
                    f"p95 {row['join_to_connected']['p95_ms']} ms, "
                    f"connected {row['connected']}/{row['phones']}, resyncs {row['resyncs']}, "
                    f"{row['server_cpu_ms_per_join']} ms CPU/join"
                )
                check_alive()
                await asyncio.sleep(2)
        if "write" in args.bursts:
            rooms = {}
            try:
                for subject in subjects:
                    log(f"write burst: seating {args.write_phones} phones on {subject.name}")
                    rooms[subject.name] = await seated_room(
                        subject, args.write_phones, ROUND_1, "Write burst"
                    )
                for rep, subject in abba(subjects, args.reps):
                    await asyncio.sleep(1)
                    log(f"write burst {rep + 1}/{args.reps}: {subject.name}, {args.notes} notes")
                    rows.append(row := await write_burst(subject, rooms[subject.name], rep))
                    log(
                        f"  {row['per_second']} notes/s, ack p50 {row['ack']['p50_ms']} ms, "
                        f"p95 {row['ack']['p95_ms']} ms, unacknowledged {row['unacknowledged']}, "
                        f"refused {row['refused']}"
                    )
                    check_alive()
            finally:
                for room in rooms.values():
                    await room.close()
        if "dots" in args.bursts:
            # Baseline first: a frozen Palabre must not spoil the baseline's figures.
            for subject in sorted(subjects, key=lambda s: s.name != "baseline"):
                log(f"dot burst: {subject.name}, {args.dot_phones} phones x {args.dots} dots")
                rows.append(row := await dot_burst(subject))
                log(
                    f"  {row['per_second']} dots/s, ack p50 {row['ack']['p50_ms']} ms, "
                    f"p95 {row['ack']['p95_ms']} ms, unacknowledged {row['unacknowledged']}, "
                    f"refused {row['refused']}"
                )
    finally:
        for subject in subjects:
            with contextlib.suppress(Exception):
                await subject.close()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Join, write and dot bursts on Palabre and on bare Flask-SocketIO."
    )
    add = parser.add_argument
    add("--bursts", default="join,write,dots", help="which bursts (default: %(default)s)")
    add("--join-phones", type=int, default=500, help="phones in a join burst (default: 500)")
    add("--join-spread", type=float, default=10.0, help="seconds they scan within (default: 10)")
    add("--write-phones", type=int, default=200, help="phones in the write burst (default: 200)")
    add("--notes", type=int, default=1000, help="notes they send between them (default: 1000)")
    add("--dot-phones", type=int, default=200, help="phones in the dot burst (default: 200)")
    add("--dots", type=int, default=3, help="dots each phone gives (default: 3)")
    add("--insights", type=int, default=10, help="insights to vote on (default: 10)")
    add("--tables", type=int, default=20, help="café tables (default: 20)")
    add("--reps", type=int, default=2, help="join and write bursts per server, ABBA (default: 2)")
    add("--only", choices=("palabre", "baseline"), default=None, help="measure one server only")
    add(
        "--databases",
        default="sqlite",
        help="Palabre on sqlite, postgresql or both, e.g. sqlite,postgresql; postgresql needs "
        "scripts/with-servers (default: %(default)s)",
    )
    add("--port", type=int, default=0, help="Palabre's port (default: a free one)")
    add("--output", type=Path, default=None, help="JSON results (default: bench/results/…)")
    add("--keep", action="store_true", help="keep the instance folder and server logs")
    args = parser.parse_args(argv)
    args.bursts = {b.strip() for b in args.bursts.split(",") if b.strip()}
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not args.databases or not set(args.databases) <= set(PALABRE_ON):
        parser.error("--databases takes sqlite and postgresql, separated by commas")
    if not args.bursts <= {"join", "write", "dots"}:
        parser.error("--bursts takes join, write and dots, separated by commas")
    numbers = (args.join_phones, args.write_phones, args.notes, args.dot_phones, args.dots)
    if min(numbers) < 1 or args.insights < 1 or args.tables < 1 or args.reps < 1:
        parser.error("phones, notes, dots, insights, tables and reps must be 1 or more")
    if not 1 <= args.dots <= 10:
        parser.error("--dots must be 1 to 10 (a café's limit)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # python-engineio logs an error for each socket the server drops; the figures count them.
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
    raise_fd_limit(max(args.join_phones, args.write_phones, args.dot_phones))
    started = datetime.now(UTC)
    rows: list[dict] = []
    code = run_bench(
        lambda workdir, servers: bench(args, workdir, servers, rows),
        prefix="palabre-bursts-",
        keep=args.keep,
    )
    if not rows:
        return code
    summary = [
        line
        for burst in ("join", "write", "dots")
        for server in [*PALABRE_ON.values(), "baseline"]
        if (line := pooled(rows, burst, server))
    ]
    print()
    print(
        f"A room's bursts, {os.cpu_count()} CPUs: join = first GET to socket connected, "
        "write/dots = acknowledgement; medians over reps"
    )
    print_table(summary)
    lines = verdicts(summary)
    for line in lines:
        print(line)
    if max((s["other_load_cpus"] or 0) for s in summary) > 0.25:
        print(
            "note: other work kept the machine's CPUs busy while measuring (busy, in CPUs): "
            "the figures are noisier than on a quiet machine"
        )
    RESULTS.mkdir(exist_ok=True)
    output = args.output or RESULTS / f"room_bursts-{started:%Y%m%d-%H%M%S}.json"
    output.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "finished": datetime.now(UTC).isoformat(),
                "complete": code == 0,
                "config": {
                    k: sorted(v) if isinstance(v, set) else v
                    for k, v in vars(args).items()
                    if k != "output"
                },
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "versions": versions(),
                },
                "verdicts": lines,
                "summary": summary,
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
