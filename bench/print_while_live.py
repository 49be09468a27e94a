"""Does rendering a PDF stall the live layer? Note latency, idle and while printing.

Starts Palabre for real (``palabre serve`` on a throw-away instance folder,
127.0.0.1 only), signs in a facilitator, creates a one-table world café,
joins N participants, and fills round 1 with a few hundred notes so that the
café's harvest report (``/print/sessions/<id>/report.pdf``) takes seconds to
render. Then N Socket.IO clients connect and participant 0 sends notes at a
fixed interval, in blocks alternating between two conditions in ABBA order:

- **A, idle**: nothing else happens;
- **B, printing**: one or two signed-in facilitator browsers download the
  report PDF over and over while the notes go out.

For each condition it prints send → acknowledgement, send → arrival (every
client) and send → arrival on all clients (the slowest client, per note),
as p50 / p95 / max, and the median time to render the PDF. The live layer is
not stalled when the p95 while printing is within 1.5x of the idle p95 and
the longest delay while printing is well below one PDF render time.

    /tmp/venv/bin/python bench/print_while_live.py --clients 50 --printers 2

Reuses the server, set-up and client harness of ``bench/live_latency.py``.
Exits non-zero only when the benchmark itself fails, never because the
target is missed. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_latency import (  # noqa: E402 (the bench folder is not a package)
    HTTP_TIMEOUT_S,
    RESULTS,
    BenchError,
    Harness,
    PalabreServer,
    PalabreSetup,
    free_port,
    log,
    machine_busy_seconds,
    ms,
    palabre_server,
    percentile,
    raise_fd_limit,
    run_bench,
    versions,
)

#: The issue's target: p95 while printing within this factor of the idle p95 ...
TARGET_RATIO = 1.5
#: ... and no delay while printing longer than this fraction of one PDF render.
MAX_FRACTION_OF_RENDER = 0.25
#: Condition of each block, repeated: idle, printing, printing, idle.
PATTERN = "ABBA"
CONDITIONS = {"A": "idle", "B": "printing"}
#: Bounds on the printing loops (each download can take up to the server's 120 s).
PRINT_TIMEOUT_S = 150
MAX_DOWNLOADS_PER_BLOCK = 200
#: Clients that post the seed notes, each in turn (one note in flight per client).
SEED_CLIENTS = 8
SOLO_RENDERS = 3

SEED_SENTENCES = [
    "The language classes at the community centre are full before we hear of them.",
    "A list at the library of every class, with dates and prices, would help.",
    "Forms at the town hall only come in Spanish; my neighbour translates for me.",
    "The bus to the health centre stops running at eight, after the late shift.",
    "Children learn faster than we do; they translate for us at the doctor's.",
    "Volunteers from the football club helped us find a flat; the agencies did not.",
    "Nobody told us that the school canteen has a reduced price for families like ours.",
    "A women's group meets on Thursdays, but there is nobody to look after the children.",
    "Recognising diplomas takes two years; meanwhile nurses clean offices.",
    "The market on Saturday is where we meet people; maybe the city could inform there.",
    "Some landlords refuse anyone with a foreign name; the housing office should know.",
    "Mentors who arrived a few years earlier explain things better than leaflets.",
]


def seed_body(i: int, rng: random.Random) -> str:
    """A note of one to four sentences, different enough to fill the report."""
    sentences = rng.sample(SEED_SENTENCES, rng.randint(1, 4))
    return f"Seed note {i}: " + " ".join(sentences)


def stats(values: list[float]) -> dict:
    return {
        "count": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p95_ms": ms(percentile(values, 95)),
        "max_ms": ms(max(values)) if values else None,
    }


# --- printing -----------------------------------------------------------------------


@dataclass
class Download:
    printer: int
    started: float
    finished: float
    status: int
    size: int
    ok: bool
    block: int | None

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass
class Printers:
    """Facilitator browsers that download the report PDF in a loop, on demand."""

    url: str
    browsers: list[aiohttp.ClientSession]
    downloads: list[Download] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # (printer, started) of every download in flight, for "was a render running?"
    in_flight: dict[int, float] = field(default_factory=dict)

    async def download(self, printer: int, block: int | None) -> Download:
        browser = self.browsers[printer]
        started = time.perf_counter()
        self.in_flight[printer] = started
        try:
            async with browser.get(
                self.url,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=PRINT_TIMEOUT_S),
            ) as response:
                body = await response.read()
                status = response.status
        finally:
            self.in_flight.pop(printer, None)
        ok = status == 200 and body.startswith(b"%PDF")
        done = Download(printer, started, time.perf_counter(), status, len(body), ok, block)
        self.downloads.append(done)
        if not ok:
            self.failures.append(f"printer {printer}: HTTP {status}, {body[:200]!r}")
        return done

    async def loop(self, printer: int, block: int, stop: asyncio.Event, deadline: float) -> None:
        """Download the PDF again and again until ``stop`` (bounded in count and time)."""
        for _ in range(MAX_DOWNLOADS_PER_BLOCK):
            if stop.is_set() or time.perf_counter() > deadline:
                return
            try:
                done = await self.download(printer, block)
            except (aiohttp.ClientError, TimeoutError) as error:
                self.failures.append(f"printer {printer}: {type(error).__name__}: {error}")
                await asyncio.sleep(0.5)
                continue
            if not done.ok:
                await asyncio.sleep(0.5)

    def rendering_at(self, moment: float) -> bool:
        """Was a download in flight at ``moment`` (finished ones included)?"""
        if any(started <= moment for started in self.in_flight.values()):
            return True
        return any(d.started <= moment <= d.finished for d in self.downloads)


async def signed_in_browsers(server: PalabreServer, count: int) -> list[PalabreSetup]:
    """``count`` facilitator browsers, each signed in on its own."""
    setups = []
    for _ in range(count):
        setup = PalabreSetup(server)
        await setup.sign_in()
        setups.append(setup)
    return setups


# --- seeding --------------------------------------------------------------------------


async def seed_notes(server: PalabreServer, specs, count: int, log) -> dict:
    """Post ``count`` notes from a few participants (over their sockets), all acknowledged."""
    senders = specs[1 : 1 + SEED_CLIENTS] or specs[:1]
    harness = Harness(server, senders, "contribute", log)
    started = time.perf_counter()
    refused: list[object] = []
    rng = random.Random(2)
    try:
        await harness.connect_all()
        if len(harness.connected()) < len(senders):
            raise BenchError("seeding: some senders could not connect")
        share = [list(range(i, count, len(senders))) for i in range(len(senders))]

        async def post(i: int) -> None:
            sio = harness.clients[i]
            for k in share[i]:
                payload = {"cid": uuid.uuid4().hex, "kind": "note", "body": seed_body(k, rng)}
                reply = await sio.call("contribute", payload, timeout=60)
                if not (isinstance(reply, dict) and reply.get("ok")):
                    refused.append(reply)

        await asyncio.gather(*(post(i) for i in range(len(senders))))
    finally:
        await harness.disconnect_all()
    if refused:
        raise BenchError(f"seeding: {len(refused)} notes refused, e.g. {refused[:3]}")
    seconds = time.perf_counter() - started
    log(f"  seeded {count} notes from {len(senders)} participants in {seconds:.1f}s")
    return {"notes": count, "senders": len(senders), "seconds": round(seconds, 2)}


# --- measuring ---------------------------------------------------------------------------


def block_plan(notes: int, blocks: int) -> list[tuple[str, list[int]]]:
    """Notes 0..notes-1 in ``blocks`` near-equal blocks, conditions in ABBA order."""
    blocks = max(2, min(blocks, notes))
    size, extra = divmod(notes, blocks)
    plan, start = [], 0
    for b in range(blocks):
        end = start + size + (1 if b < extra else 0)
        plan.append((PATTERN[b % len(PATTERN)], list(range(start, end))))
        start = end
    return plan


@dataclass
class BlockRecord:
    index: int
    condition: str
    notes: list[int]
    wall_s: float = 0.0
    machine_cpus_busy: float | None = None
    downloads: int = 0


async def measure(harness: Harness, printers: Printers, args, log) -> list[BlockRecord]:
    """Warm up, then send the blocks of notes, printing during the B blocks."""
    records: list[BlockRecord] = []
    await harness.connect_all()
    try:
        await asyncio.sleep(1.0)  # let the connection burst settle
        # As in live_latency.py: the clients' collector would pause every
        # client at once and be charged to the server.
        gc.collect()
        gc.freeze()
        gc.disable()
        await harness.warm_up(args.interval)
        harness.new_run(args.notes)
        for b, (condition, indices) in enumerate(block_plan(args.notes, args.blocks)):
            record = BlockRecord(b, condition, indices)
            await asyncio.sleep(0.5)
            busy, wall = machine_busy_seconds(), time.perf_counter()
            stop = asyncio.Event()
            loops = []
            if condition == "B":
                deadline = time.perf_counter() + PRINT_TIMEOUT_S * 3
                loops = [
                    asyncio.create_task(printers.loop(p, b, stop, deadline))
                    for p in range(len(printers.browsers))
                ]
                # Let the renders get under way before the first note.
                await asyncio.sleep(args.lead)
            before = len(printers.downloads)
            await harness.send_block(indices, args.interval, block=b)
            stop.set()
            if loops:
                # Finish the downloads in flight, so the next A block is idle.
                done, pending = await asyncio.wait(loops, timeout=PRINT_TIMEOUT_S)
                for task in pending:
                    task.cancel()
                for task in done:
                    task.result()
            record.wall_s = time.perf_counter() - wall
            record.machine_cpus_busy = round((machine_busy_seconds() - busy) / record.wall_s, 2)
            record.downloads = len(printers.downloads) - before
            records.append(record)
            log(
                f"  block {b} ({CONDITIONS[condition]}): {len(indices)} notes, "
                f"{record.downloads} PDFs, machine busy {record.machine_cpus_busy} CPUs"
            )
    finally:
        gc.enable()
        gc.unfreeze()
        await harness.disconnect_all()
    return records


def summarise(harness: Harness, printers: Printers, records: list[BlockRecord]) -> dict:
    """Latencies per condition, and per block."""
    run, n = harness.run, len(harness.specs)
    connected_at_end = n - len(harness.connect_failures)
    by_condition: dict[str, dict] = {}
    per_block = []
    for condition in CONDITIONS:
        acks, deliveries, all_clients = [], [], []
        notes = lost = during_render = 0
        blocks = [r for r in records if r.condition == condition]
        for record in blocks:
            b_acks, b_deliveries = [], []
            for k in record.notes:
                sent = run.send_times.get(k)
                if sent is None:
                    continue
                notes += 1
                if printers.rendering_at(sent):
                    during_render += 1
                if k in run.ack_times:
                    b_acks.append(run.ack_times[k] - sent)
                got = run.arrivals.get(k, {})
                note_latencies = [t - sent for t in got.values()]
                b_deliveries.extend(note_latencies)
                lost += connected_at_end - len(got)
                if note_latencies and len(got) >= connected_at_end:
                    all_clients.append(max(note_latencies))
            acks.extend(b_acks)
            deliveries.extend(b_deliveries)
            per_block.append(
                {
                    "block": record.index,
                    "condition": CONDITIONS[condition],
                    "notes": len(record.notes),
                    "downloads": record.downloads,
                    "machine_cpus_busy": record.machine_cpus_busy,
                    "ack": stats(b_acks),
                    "delivery": stats(b_deliveries),
                }
            )
        by_condition[CONDITIONS[condition]] = {
            "blocks": len(blocks),
            "notes": notes,
            "notes_sent_while_rendering": during_render,
            "lost": max(0, lost),
            "ack": stats(acks),
            "delivery": stats(deliveries),
            "all_clients": stats(all_clients),
            "machine_cpus_busy": round(
                statistics.mean(r.machine_cpus_busy for r in blocks), 2
            ) if blocks else None,
        }  # fmt: skip
    per_block.sort(key=lambda row: row["block"])
    return {
        "per_note": per_note(run, printers, records),
        "by_condition": by_condition,
        "per_block": per_block,
        "duplicates": run.duplicates,
        "unexpected_disconnects": run.unexpected_disconnects,
        "refused_notes": {str(k): v for k, v in run.ack_errors.items()},
        "unconnected_clients": len(harness.connect_failures),
    }


def per_note(run, printers: Printers, records: list[BlockRecord]) -> list[dict]:
    """Each note's figures, and where it fell relative to the renders (to spot stalls)."""
    origin = min(run.send_times.values(), default=0.0)
    condition_of = {k: r.condition for r in records for k in r.notes}
    starts = sorted(d.started for d in printers.downloads)
    ends = sorted(d.finished for d in printers.downloads)
    rows = []
    for k in sorted(run.send_times):
        sent = run.send_times[k]
        got = [t - sent for t in run.arrivals.get(k, {}).values()]
        ack = run.ack_times.get(k)
        last_start = max((t for t in starts if t <= sent), default=None)
        next_end = min((t for t in ends if t >= sent), default=None)
        rows.append(
            {
                "note": k,
                "block": run.block_of.get(k),
                "condition": CONDITIONS.get(condition_of.get(k, ""), ""),
                "sent_s": round(sent - origin, 3),
                "rendering": printers.rendering_at(sent),
                "ack_ms": ms(ack - sent) if ack is not None else None,
                "p50_ms": ms(percentile(got, 50)),
                "max_ms": ms(max(got)) if got else None,
                "received": len(got),
                "since_download_start_ms": ms(sent - last_start) if last_start else None,
                "until_download_end_ms": ms(next_end - sent) if next_end else None,
            }
        )
    return rows


def render_figures(printers: Printers, solo: list[Download]) -> dict:
    during = [d.seconds for d in printers.downloads if d.ok and d.block is not None]
    solo_s = [d.seconds for d in solo if d.ok]
    return {
        "solo_warmup_seconds": round(solo_s[0], 3) if solo_s else None,
        "solo_seconds": [round(s, 3) for s in solo_s],
        # The first download also pays first-use costs; the others are steady.
        "solo_median_seconds": round(statistics.median(solo_s[1:] or solo_s), 3)
        if solo_s
        else None,
        "during_count": len(during),
        "during_median_seconds": round(statistics.median(during), 3) if during else None,
        "pdf_bytes": max((d.size for d in printers.downloads if d.ok), default=None),
        "failures": printers.failures[:20],
    }


# --- output -------------------------------------------------------------------------------


def print_table(summary: dict, out=sys.stdout) -> None:
    columns = [
        ("condition", 10), ("notes", 5), ("ack p50", 8), ("ack p95", 8), ("ack max", 8),
        ("dlv p50", 8), ("dlv p95", 8), ("dlv max", 8),
        ("all p50", 8), ("all p95", 8), ("all max", 8), ("lost", 5), ("CPUs busy", 9),
    ]  # fmt: skip
    header = "  ".join(
        f"{name:<{w}}" if name == "condition" else f"{name:>{w}}" for name, w in columns
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for name, c in summary["by_condition"].items():
        cells = [
            name, c["notes"],
            c["ack"]["p50_ms"], c["ack"]["p95_ms"], c["ack"]["max_ms"],
            c["delivery"]["p50_ms"], c["delivery"]["p95_ms"], c["delivery"]["max_ms"],
            c["all_clients"]["p50_ms"], c["all_clients"]["p95_ms"], c["all_clients"]["max_ms"],
            c["lost"], c["machine_cpus_busy"],
        ]  # fmt: skip
        print(
            "  ".join(
                f"{cell!s:<{w}}" if label == "condition" else f"{cell!s:>{w}}"
                for cell, (label, w) in zip(cells, columns, strict=True)
            ),
            file=out,
        )
    ratios = summary["ratios"]
    print(
        "printing / idle:  "
        + ",  ".join(f"{label} {value:.2f}x" for label, value in ratios.items() if value),
        file=out,
    )


def ratios(summary: dict) -> dict:
    idle, printing = summary["by_condition"]["idle"], summary["by_condition"]["printing"]
    out = {}
    for label, key, figure in (
        ("ack p50", "ack", "p50_ms"),
        ("ack p95", "ack", "p95_ms"),
        ("delivery p50", "delivery", "p50_ms"),
        ("delivery p95", "delivery", "p95_ms"),
        ("all-clients p95", "all_clients", "p95_ms"),
        ("delivery max", "delivery", "max_ms"),
    ):
        a, b = idle[key][figure], printing[key][figure]
        out[label] = round(b / a, 3) if a and b else None
    return out


def verdict(summary: dict, render: dict) -> tuple[str, bool | None]:
    printing = summary["by_condition"]["printing"]
    ratio = summary["ratios"].get("delivery p95")
    worst_ms = max(
        (x for x in (printing["delivery"]["max_ms"], printing["ack"]["max_ms"]) if x),
        default=None,
    )
    render_s = render.get("solo_median_seconds")
    if ratio is None or worst_ms is None or not render_s or not render["during_count"]:
        return "verdict: not measured (missing figures, see above)", None
    limit_ms = render_s * 1000 * MAX_FRACTION_OF_RENDER
    stalled = worst_ms > limit_ms or printing["lost"] > 0
    slowed = ratio > TARGET_RATIO
    if stalled:
        outcome = "STALLED (target not met)"
    elif slowed:
        outcome = "SLOWED BUT NOT STALLED (target not met)"
    else:
        outcome = "NOT STALLED (target met)"
    return (
        f"verdict (p95 while printing within {TARGET_RATIO}x of idle, max delay under "
        f"{MAX_FRACTION_OF_RENDER:.0%} of a {render_s:.2f} s render = {limit_ms:.0f} ms, "
        f"nothing lost): {outcome}; "
        f"p95 ratio {ratio:.2f}x, max {worst_ms:.0f} ms, lost {printing['lost']}"
    ), not (stalled or slowed)


def block_line(summary: dict) -> str:
    """Delivery p95 of each block in order, to see that the ABBA blocks agree."""
    cells = [
        f"{row['condition'][0].upper()} {row['delivery']['p95_ms']}" for row in summary["per_block"]
    ]
    return "delivery p95 per block, in order (I idle, P printing): " + ", ".join(cells)


# --- orchestration ---------------------------------------------------------------------


async def bench(args, workdir: Path, servers: list[PalabreServer], result: dict, log) -> None:
    port = args.port or free_port()
    palabre = palabre_server(workdir / "instance", port, workdir / "palabre.log")
    if args.report_blocking:
        palabre.env.update(
            GEVENT_MONITOR_THREAD_ENABLE="true",
            GEVENT_MAX_BLOCKING_TIME=str(args.report_blocking),
        )
    servers.append(palabre)
    log(f"starting palabre on {palabre.url}")
    palabre.start()
    palabre.wait_ready()
    setup = PalabreSetup(palabre)
    facilitators: list[PalabreSetup] = []
    try:
        await setup.create_facilitator()
        await setup.sign_in()
        session, specs, info = await setup.prepare(args.clients, log)
        result["setup"] = info
        result["seed"] = await seed_notes(palabre, specs, args.seed_notes, log)
        # Connect from the current sequence number: no replay of the seed notes.
        seq = setup._db_row(session.id)["seq"]
        for spec in specs:
            spec.auth["last_seq"] = seq

        facilitators = await signed_in_browsers(palabre, args.printers)
        printers = Printers(
            f"{palabre.url}/print/sessions/{session.id}/report.pdf",
            [f.browser for f in facilitators],
        )
        solo = []
        for _ in range(SOLO_RENDERS):
            solo.append(await printers.download(0, None))
        if printers.failures:
            raise BenchError(f"the report PDF failed: {printers.failures[0]}\n{palabre.tail()}")
        solo_s = [round(d.seconds, 2) for d in solo]
        log(f"  report PDF ({solo[-1].size // 1024} KiB) renders alone in {solo_s} s")

        harness = Harness(palabre, specs, "contribute", log)
        records = await measure(harness, printers, args, log)
        summary = summarise(harness, printers, records)
        summary["ratios"] = ratios(summary)
        result["summary"] = summary
        result["render"] = render_figures(printers, solo)
        if palabre.process.poll() is not None:
            raise BenchError(f"palabre died during the run\n{palabre.tail()}")
    finally:
        for facilitator in facilitators:
            await facilitator.close()
        await setup.close()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Note latency on Palabre's live layer, idle and while PDFs render."
    )
    parser.add_argument("--clients", type=int, default=50, help="participants (default: 50)")
    parser.add_argument(
        "--seed-notes", type=int, default=400, help="notes in the report (default: 400)"
    )
    parser.add_argument(
        "--printers",
        type=int,
        default=2,
        help="facilitators downloading the PDF at once (default: 2)",
    )
    parser.add_argument("--notes", type=int, default=160, help="measured notes (default: 160)")
    parser.add_argument(
        "--interval", type=float, default=0.2, help="seconds between notes (default: 0.2)"
    )
    parser.add_argument(
        "--blocks", type=int, default=4, help="blocks, conditions in ABBA order (default: 4)"
    )
    parser.add_argument(
        "--lead",
        type=float,
        default=1.0,
        help="seconds printing runs before a B block's first note (default: 1.0)",
    )
    parser.add_argument("--port", type=int, default=0, help="Palabre's port (default: a free one)")
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON results file (default: bench/results/…)"
    )
    parser.add_argument(
        "--report-blocking",
        type=float,
        metavar="SECONDS",
        default=None,
        help="the server (gevent monitor) logs whatever blocks its event loop this long; "
        "implies --keep",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary instance folder and server log"
    )
    args = parser.parse_args(argv)
    args.keep = args.keep or args.report_blocking is not None
    if args.clients < 2 or args.printers < 1 or args.seed_notes < 0:
        parser.error("--clients must be 2 or more, --printers 1 or more, --seed-notes 0 or more")
    if args.blocks < 2 or args.notes < args.blocks or args.interval < 0:
        parser.error("--blocks must be 2 or more, --notes at least --blocks, --interval 0 or more")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    raise_fd_limit(args.clients)
    started = datetime.now(UTC)

    result: dict = {}
    code = run_bench(
        lambda workdir, servers: bench(args, workdir, servers, result, log),
        prefix="palabre-print-bench-",
        keep=args.keep,
    )

    if "summary" in result:
        summary, render = result["summary"], result["render"]
        print()
        print(
            f"Note latency with {args.clients} clients, {args.notes} notes every "
            f"{args.interval}s in {args.blocks} blocks ({PATTERN}: A idle, B while "
            f"{args.printers} facilitator(s) download the report PDF in a loop); "
            f"{os.cpu_count()} CPUs. ack = send → acknowledgement, dlv = send → arrival "
            "(every client), all = send → arrival on the last client; ms."
        )
        print_table(summary)
        printing = summary["by_condition"]["printing"]
        print(
            f"PDF render (report of {args.seed_notes} seed notes, {render['pdf_bytes']} bytes): "
            f"median {render['solo_median_seconds']} s alone, "
            f"{render['during_median_seconds']} s during B ({render['during_count']} renders, "
            f"{args.printers} at once, while notes flow); "
            f"{printing['notes_sent_while_rendering']}/{printing['notes']} B notes sent "
            "while a render ran"
        )
        if render["failures"]:
            print(f"PDF failures: {len(render['failures'])}, e.g. {render['failures'][0]}")
        print(block_line(summary))
        busy = printing["machine_cpus_busy"] or 0
        if busy >= 0.8 * (os.cpu_count() or 1):
            print(
                f"note: while printing the machine had {busy} of its {os.cpu_count()} CPUs busy "
                "(each render keeps one CPU busy). A higher p95 with a short max is the server "
                "getting less CPU, not its event loop being blocked; try --printers 1 to compare."
            )
        line, _ok = verdict(summary, render)
        print(line)
        RESULTS.mkdir(exist_ok=True)
        output = args.output or RESULTS / f"print_while_live-{started:%Y%m%d-%H%M%S}.json"
        output.write_text(
            json.dumps(
                {
                    "started": started.isoformat(),
                    "finished": datetime.now(UTC).isoformat(),
                    "complete": code == 0,
                    "config": {
                        "clients": args.clients,
                        "seed_notes": args.seed_notes,
                        "printers": args.printers,
                        "notes": args.notes,
                        "interval_s": args.interval,
                        "blocks": args.blocks,
                        "pattern": PATTERN,
                        "lead_s": args.lead,
                        "target_ratio": TARGET_RATIO,
                        "max_fraction_of_render": MAX_FRACTION_OF_RENDER,
                        "http_timeout_s": HTTP_TIMEOUT_S,
                    },
                    "machine": {
                        "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "platform": platform.platform(),
                        "versions": versions(),
                    },
                    "verdict": line,
                    **result,
                },
                indent=2,
            )
        )
        print(f"results written to {output}")
    return code


if __name__ == "__main__":
    sys.exit(main())
