"""The city's whole action plan as a PDF: Palabre end to end against WeasyPrint alone.

Issue 9's figures: at 1,000 needs and 300 actions the plan took 62.8 s
(WeasyPrint alone on the same HTML: 52.1 s), stalled every phone while its
HTML was built, and each PDF paid for a process importing the whole app.
This benchmark, on one throw-away instance (127.0.0.1 only):

1. **fixture**: ``palabre serve`` on a temporary folder, then ``--needs``
   needs and ``--actions`` actions (palabre.testing.large_backlog) written
   into its database from this process;
2. **worker**: a PDF worker's start (its own figure for importing
   WeasyPrint, its memory once ready and after a poster) against a process
   importing the app and WeasyPrint as the old render process did; the
   server's workers' memory is sampled while the plan prints;
3. **plan**: ``--reps`` times each, alternating, (A) WeasyPrint alone on the
   same HTML as Palabre's (built here by the same code from the same
   database), in a process of its own at the worker's CPU priority, warmed
   by a first small document, timing only its rendering; and (B) Palabre end to end: a signed-in
   facilitator asks for /backlog/action-plan.pdf, follows its job and downloads
   the PDF (a backlog write before each makes it print anew rather than
   come from the cache). Same for the one-page join poster;
4. **phones**: ``--phones`` phones (palabre.testing's room) in a café round
   write notes at human pace in blocks of ``--block-s`` seconds, ABBA: A
   idle, B while the plan prints (a new print is started whenever the last
   one ends). Acknowledgement p50/p95/max per condition.

Targets: Palabre's plan within 1.2x of WeasyPrint alone (medians); the
phones' acknowledgement p95 while printing no worse than idle (a ratio near
1; on a busy 2-core machine, above 1.5x means printing took the phones' time).
Prints medians and ratios; JSON in ``bench/results/``. Exit status 0 when it
ran (targets met or not), 2 when it could not, 130 when interrupted.

    .venv/bin/python bench/print_backlog.py
    .venv/bin/python bench/print_backlog.py --reps 1 --needs 300 --actions 90

See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from palabre import create_app
from palabre.testing import Facilitator, Room, RoomError, median, p95, served_palabre
from palabre.testing.kit import close_app
from palabre.testing.large_backlog import fill_backlog

RESULTS = Path(__file__).resolve().parent / "results"
PLAN_TARGET = 1.2
ACK_TARGET = 1.5
JOB_TIMEOUT_S = 600
CAFE = {"tables": 3, "questions": "What should the city do first?", "round_minutes": 30}
OLD_RENDER_PROCESS = "import palabre, palabre.printing, weasyprint"
#: The server's process id, for its workers' memory.
SERVER_PID: int | None = None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


# --- the fixture, from this process --------------------------------------------------------------


class Backlog:
    """An app of this process on the server's database and instance folder."""

    def __init__(self, server):
        self.app = create_app(
            {"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{server.database}"}
        )
        self.app.instance_path = str(server.instance)

    def fill(self, needs: int, actions: int):
        with self.app.app_context():
            return fill_backlog(needs=needs, actions=actions)

    def touch(self, n: int) -> None:
        """A backlog write: the plan must print anew."""
        from palabre.backlog import create_need

        with self.app.test_request_context():
            create_need(f"Bench need {n}")

    def plan_html(self) -> tuple[str, str]:
        """The plan's HTML and base URL, by the code its print job runs."""
        from flask_babel import force_locale

        from palabre.policy_cycle import action_plan_context
        from palabre.printing import PACKAGE, document_html

        with self.app.test_request_context(base_url="http://127.0.0.1/"), force_locale("en"):
            html = document_html("print/action_plan.html", "action-plan", **action_plan_context())
        return html, str(PACKAGE)

    def poster_html(self, session_id: int) -> str:
        from palabre.extensions import db
        from palabre.models import Session
        from palabre.printing import poster_html

        with self.app.test_request_context(base_url="http://127.0.0.1/"):
            return poster_html(db.session.get(Session, session_id))

    def close(self) -> None:
        close_app(self.app)


# --- the worker ----------------------------------------------------------------------------------


def measure_worker(html: str, base_url: str) -> dict:
    """A worker's start and memory, on ``html`` (the poster), against the old render process."""
    from palabre.render_pool import Worker

    started = time.perf_counter()
    worker = Worker()
    ready_s = time.perf_counter() - started
    rss_ready = psutil.Process(worker.pid).memory_info().rss
    rendered = worker.render(html, base_url, None, JOB_TIMEOUT_S)
    worker.stop()
    # The old render process: the app and WeasyPrint imported, then waiting to be measured.
    old = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; t = time.perf_counter(); "
            + OLD_RENDER_PROCESS
            + "; print(time.perf_counter() - t, flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    old_s = float(old.stdout.readline())
    old_mb = psutil.Process(old.pid).memory_info().rss / 2**20
    old.communicate("")
    return {
        "worker_start_s": round(ready_s, 3),
        "worker_import_s": worker.import_s,
        "worker_rss_ready_mb": round(rss_ready / 2**20, 1),
        "worker_rss_after_poster_mb": rendered.rss_mb,
        "app_process_import_s": round(old_s, 3),
        "app_process_rss_mb": round(old_mb, 1),
    }


def workers_rss_mb(server_pid: int) -> float:
    """Memory of the server's PDF workers now, in MB."""
    total = 0
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            if any("pdf_worker" in part for part in child.cmdline()):
                total += child.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


#: WeasyPrint alone, in a process of its own at the worker's priority (so that other work
#: on the machine weighs on both alike), warmed by a first small document as the worker
#: is; only rendering and writing the PDF are timed.
ALONE = """
import os, sys, time
from weasyprint import HTML
os.nice(int(sys.argv[3]))
html = open(sys.argv[1], encoding="utf-8").read()
HTML(string="<p>Warm-up</p>", base_url=sys.argv[2]).write_pdf()
started = time.perf_counter()
document = HTML(string=html, base_url=sys.argv[2]).render()
document.write_pdf()
print(time.perf_counter() - started, len(document.pages))
"""


def weasyprint_alone(html: str, base_url: str) -> tuple[float, int]:
    """Seconds WeasyPrint takes on ``html`` (import excluded), and its pages."""
    from palabre.pdf_worker import NICENESS

    with tempfile.NamedTemporaryFile("w", suffix=".html", encoding="utf-8") as file:
        file.write(html)
        file.flush()
        done = subprocess.run(
            [sys.executable, "-c", ALONE, file.name, base_url, str(NICENESS)],
            capture_output=True,
            text=True,
            check=True,
        )
    seconds, pages = done.stdout.split()
    return float(seconds), int(pages)


async def palabre_plan(facilitator: Facilitator, peak: list[float] | None = None):
    """Ask for the plan, follow its job, download it: seconds and pages.

    ``peak``, if given, gets the highest memory of the server's workers seen meanwhile.
    """
    started = time.perf_counter()
    job_url = (await facilitator.get("/backlog/action-plan.pdf")).url
    if "/print/jobs/" not in job_url:
        raise RoomError(f"the plan came from the cache: {job_url}")
    deadline = started + JOB_TIMEOUT_S
    while not (state := json.loads((await facilitator.get(job_url + ".json")).text))["done"]:
        if state["failed"] or time.perf_counter() > deadline:
            raise RoomError(f"the plan did not print: {state}")
        if peak is not None and SERVER_PID:
            peak.append(workers_rss_mb(SERVER_PID))
        await asyncio.sleep(0.1)
    async with facilitator.http.get(facilitator.base + state["pdf_url"]) as response:
        pdf = await response.read()
    if not pdf.startswith(b"%PDF"):
        raise RoomError("the plan is not a PDF")
    return time.perf_counter() - started, state["pages"]


async def palabre_poster(facilitator: Facilitator, session_id: int) -> float:
    started = time.perf_counter()
    async with facilitator.http.get(
        f"{facilitator.base}/print/sessions/{session_id}/poster.pdf"
    ) as response:
        pdf = await response.read()
    if not pdf.startswith(b"%PDF"):
        raise RoomError("the poster is not a PDF")
    return time.perf_counter() - started


# --- phones while printing -----------------------------------------------------------------------


class Printing:
    """Keeps a print of the plan running until stopped."""

    def __init__(self, facilitator: Facilitator, backlog: Backlog):
        self.facilitator = facilitator
        self.backlog = backlog
        self.prints = 0
        self.spans: list[tuple[float, float]] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.prints += 1
            await asyncio.to_thread(self.backlog.touch, 10_000 + self.prints)
            started = time.perf_counter()
            await palabre_plan(self.facilitator)
            self.spans.append((started, time.perf_counter()))

    def covering(self, moment: float) -> bool:
        return any(start <= moment <= end for start, end in self.spans)


async def phone_blocks(args, facilitator, session, backlog, figures: dict) -> None:
    async with Room(facilitator.base, session.code, args.phones, seed=3) as room:
        await room.join_all()
        await facilitator.go_to_phase(session, 1)
        await room.connect_all()
        printing = Printing(facilitator, backlog)
        by_condition: dict[str, list] = {"idle": [], "printing": []}
        for block, condition in enumerate("ABBA"):
            name = "printing" if condition == "B" else "idle"
            stop = asyncio.Event()
            printer = asyncio.ensure_future(printing.run(stop)) if name == "printing" else None
            if printer:
                await asyncio.sleep(1.0)  # the job is under way before the phones write
            times = max(1, int(args.block_s / 0.85))
            acks = await room.each(
                lambda p, k, b=block: p.contribute("note", f"Block {b}, phone {p.number}, {k}"),
                pace=(0.2, 1.5),
                times=times,
            )
            if printer:
                stop.set()
                await printer
            by_condition[name].extend(acks)
            log(f"  block {block} ({name}): {len(acks)} notes, p95 {ms(p95(lat(acks)))} ms")
        for name, acks in by_condition.items():
            latencies = lat(acks)
            figures[f"ack_{name}"] = {
                "notes": len(acks),
                "unacknowledged": sum(1 for a in acks if not a.ok),
                "p50_ms": ms(median(latencies)),
                "p95_ms": ms(p95(latencies)),
                "max_ms": ms(max(latencies) if latencies else None),
            }
        during = [a for a in by_condition["printing"] if printing.covering(a.sent_at)]
        figures["printing_notes_sent_while_a_print_ran"] = len(during)
        figures["prints_during_blocks"] = printing.prints


def lat(acks) -> list[float]:
    return [a.latency for a in acks if a.latency is not None]


# --- the run -------------------------------------------------------------------------------------


async def run_bench(args, server, backlog: Backlog, figures: dict) -> None:
    async with Facilitator(server.url) as facilitator:
        await facilitator.sign_in()
        session = await facilitator.start_session("world_cafe", CAFE)
        html, base_url = backlog.plan_html()
        figures["plan_html_bytes"] = len(html)
        poster = backlog.poster_html(session.id)
        log("worker: start, memory, against a process importing the app")
        figures["worker"] = measure_worker(poster, base_url)
        await palabre_poster(facilitator, session.id)  # the server's worker, warm

        alone, ours, pages, peak = [], [], None, []
        for rep in range(args.reps):
            backlog.touch(rep)
            for order in "AB" if rep % 2 == 0 else "BA":
                if order == "A":
                    html, base_url = backlog.plan_html()
                    seconds, pages = weasyprint_alone(html, base_url)
                    alone.append(seconds)
                else:
                    seconds, _pages = await palabre_plan(facilitator, peak)
                    ours.append(seconds)
                log(
                    f"  plan rep {rep} {'WeasyPrint alone' if order == 'A' else 'Palabre'}: "
                    f"{seconds:.2f} s"
                )
        figures["plan"] = {
            "pages": pages,
            "weasyprint_alone_s": [round(s, 2) for s in alone],
            "palabre_s": [round(s, 2) for s in ours],
            "weasyprint_alone_median_s": round(statistics.median(alone), 2),
            "palabre_median_s": round(statistics.median(ours), 2),
            "ratio": ratio(statistics.median(ours), statistics.median(alone)),
            "workers_peak_rss_mb": round(max(peak), 1) if peak else None,
        }

        poster_alone, poster_ours = [], []
        for _rep in range(max(3, args.reps)):
            poster_alone.append(weasyprint_alone(poster, base_url)[0])
            poster_ours.append(await palabre_poster(facilitator, session.id))
        figures["poster"] = {
            "weasyprint_alone_median_s": round(statistics.median(poster_alone), 3),
            "palabre_median_s": round(statistics.median(poster_ours), 3),
            "ratio": ratio(statistics.median(poster_ours), statistics.median(poster_alone)),
        }

        log(f"phones: {args.phones} phones, blocks of {args.block_s} s, ABBA")
        await phone_blocks(args, facilitator, session, backlog, figures)


def report(figures: dict, out=sys.stdout) -> None:
    worker, plan, poster = figures["worker"], figures["plan"], figures["poster"]
    idle, busy = figures["ack_idle"], figures["ack_printing"]
    p95_ratio = ratio(busy["p95_ms"], idle["p95_ms"])
    lines = [
        f"backlog: {figures['needs']} needs, {figures['actions']} actions; "
        f"plan {plan['pages']} pages, HTML {figures['plan_html_bytes'] // 1024} KiB",
        f"worker: starts in {worker['worker_start_s']} s (imports WeasyPrint in "
        f"{worker['worker_import_s']} s), {worker['worker_rss_ready_mb']} MB ready, "
        f"{worker['worker_rss_after_poster_mb']} MB after a poster, "
        f"{plan['workers_peak_rss_mb']} MB at most while printing the plan; a process "
        f"importing the app as the old renderer did: {worker['app_process_import_s']} s, "
        f"{worker['app_process_rss_mb']} MB",
        f"plan: WeasyPrint alone median {plan['weasyprint_alone_median_s']} s, Palabre end "
        f"to end median {plan['palabre_median_s']} s: ratio {plan['ratio']}x "
        f"(target {PLAN_TARGET}x: {'MET' if plan['ratio'] <= PLAN_TARGET else 'NOT MET'})",
        f"poster: WeasyPrint alone median {poster['weasyprint_alone_median_s']} s, Palabre "
        f"median {poster['palabre_median_s']} s: ratio {poster['ratio']}x",
        "phones' acknowledgements   notes  p50 ms  p95 ms  max ms  unacknowledged",
    ]
    for name, row in (("idle", idle), ("while printing", busy)):
        lines.append(
            f"  {name:<24}{row['notes']:>6}{row['p50_ms']:>8}{row['p95_ms']:>8}"
            f"{row['max_ms']:>8}{row['unacknowledged']:>16}"
        )
    lines.append(
        f"  printing / idle: p50 {ratio(busy['p50_ms'], idle['p50_ms'])}x, p95 {p95_ratio}x; "
        f"{figures['printing_notes_sent_while_a_print_ran']} of {busy['notes']} notes sent "
        f"while a print ran ({figures['prints_during_blocks']} prints)"
    )
    met = p95_ratio is not None and p95_ratio <= ACK_TARGET and not busy["unacknowledged"]
    lines.append(
        f"  target (p95 while printing within {ACK_TARGET}x of idle, all acknowledged): "
        f"{'MET' if met else 'NOT MET'}"
    )
    print("\n".join(lines), file=out)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--needs", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3, help="plans each way")
    parser.add_argument("--phones", type=int, default=30)
    parser.add_argument("--block-s", type=float, default=20, help="seconds of notes per block")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder")
    parser.add_argument("--output", type=Path)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="palabre-print-bench-"))
    figures = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "needs": args.needs,
        "actions": args.actions,
        "reps": args.reps,
        "phones": args.phones,
    }
    try:
        with served_palabre(folder, RATE_LIMIT_WRITES="1000/minute") as server:
            server.create_facilitator()
            global SERVER_PID
            SERVER_PID = server.pid
            backlog = Backlog(server)
            try:
                log(f"fixture: {args.needs} needs, {args.actions} actions")
                backlog.fill(args.needs, args.actions)
                gc.collect()
                gc.freeze()
                asyncio.run(run_bench(args, server, backlog, figures))
            finally:
                backlog.close()
    except KeyboardInterrupt:
        return 130
    except RoomError as error:
        log(f"the benchmark could not run: {error}")
        return 2
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    report(figures)
    RESULTS.mkdir(exist_ok=True)
    output = args.output or RESULTS / f"print_backlog-{datetime.now():%Y%m%d-%H%M%S}.json"
    output.write_text(json.dumps(figures, indent=2))
    log(f"JSON: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
