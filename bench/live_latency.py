"""Live latency of a world café note, from sending to arrival on every phone.

Starts Palabre for real (``palabre serve`` on a throw-away instance folder,
127.0.0.1 only), signs in a facilitator, creates a one-table world café,
joins N participants through the join page, connects N Socket.IO clients
and has one of them send notes at a fixed interval. Every client records
when each ``contribution.added`` arrives; latency is arrival minus sending,
measured with one monotonic clock in one client process.

In the same run the same client harness measures ``bench/baseline_server.py``,
a bare Flask-SocketIO server on the same stack (gevent, simple-websocket, no
database) broadcasting the same payload to the same N clients.

Prints, for each N, p50, p95 and max latency and lost deliveries for both,
and the p95 ratio; writes everything to ``bench/results/*.json``. Exits
non-zero only when the benchmark itself fails (a server does not start, the
set-up fails), never because a target is missed.

    /tmp/venv/bin/python bench/live_latency.py --clients "200 1000"

See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psutil
import socketio

from palabre.testing import (
    HOST,
    Facilitator,
    LiveSession,
    PalabreServer,
    Room,
    RoomError,
    ServerProcess,
    free_port,
    percentile,
)
from palabre.testing import palabre_command as harness_palabre_command
from palabre.testing.kit import TEST_DATABASE_VARIABLE, new_test_database

#: The Redis of ``scripts/with-servers``, as for tests/test_workers.py.
REDIS_VARIABLE = "PALABRE_TEST_REDIS"

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

#: Notes sent and awaited before the measured ones, on each server.
WARMUP_NOTES = 2
#: How many clients connect, or join over HTTP, at the same time.
CONNECT_CONCURRENCY = 50
JOIN_CONCURRENCY = 16
CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT_S = 20
#: Waiting for the last deliveries after the last note is sent.
DRAIN_TIMEOUT_S = 20
HTTP_TIMEOUT_S = 60

NOTE_PATTERN = re.compile(r"Bench note (\d+) \[(\w+)\]")
FILLER = (
    "The language classes at the community centre are full before we hear of them; "
    "a list at the library would help."
)


#: The benchmark could not run (not a missed target): a server did not start,
#: a set-up step failed. The harness raises the same error.
BenchError = RoomError


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# --- servers -------------------------------------------------------------------------


def palabre_command() -> list[str]:
    """The ``palabre`` command, or ``$PALABRE_BENCH_COMMAND`` (a wrapper that profiles it)."""
    if os.environ.get("PALABRE_BENCH_COMMAND"):
        return shlex.split(os.environ["PALABRE_BENCH_COMMAND"])
    return harness_palabre_command()


#: Palabre's settings for the benchmarks: one phone sends every note, so the
#: per-participant write limit is lifted.
PALABRE_SETTINGS = {"RATE_LIMIT_WRITES": "1000/minute"}


def palabre_server(instance: Path, port: int, log_path: Path) -> PalabreServer:
    return PalabreServer(
        instance,
        port=port,
        settings=PALABRE_SETTINGS,
        log_path=log_path,
        command=palabre_command(),
    )


def baseline_server(port: int, log_path: Path) -> ServerProcess:
    """``bench/baseline_server.py``: bare Flask-SocketIO on the same stack."""
    return ServerProcess(
        "baseline",
        [sys.executable, str(HERE / "baseline_server.py"), "--host", HOST, "--port", str(port)],
        dict(os.environ, PYTHONUNBUFFERED="1"),
        log_path,
        ready_path="/health",
    )


# --- Palabre set-up over HTTP --------------------------------------------------------

#: A café with one table: every participant receives every note, like the
#: baseline's broadcast to everyone.
ONE_TABLE_CAFE = {
    "tables": 1,
    "questions": "Q1\nQ2",
    "round_minutes": 20,
    "assignment": "assign",
    "hosts_stay": True,
    "dots": 3,
}


class PalabreSetup:
    """A facilitator's browser that creates and runs cafés on a Palabre server."""

    def __init__(self, server: PalabreServer, instance: Path | None = None):
        self.server = server
        self.facilitator = Facilitator(server.url)

    @property
    def browser(self) -> aiohttp.ClientSession:
        """The facilitator's HTTP client (signed in), e.g. to download PDFs."""
        return self.facilitator.http

    async def create_facilitator(self) -> None:
        self.server.create_facilitator()

    async def sign_in(self) -> None:
        await self.facilitator.sign_in()

    async def create_cafe(self, title: str) -> LiveSession:
        return await self.facilitator.create_session("world_cafe", ONE_TABLE_CAFE, title=title)

    def _db_row(self, session_id: int) -> dict:
        return self.server.session_row(session_id)

    async def action(self, session: LiveSession, path: str, **fields) -> None:
        await self.facilitator.post_action(session, path, fields)

    async def prepare(self, n: int, log) -> tuple[LiveSession, list[ClientSpec], dict]:
        """A live one-table café with ``n`` joined participants, and their socket specs."""
        started = time.perf_counter()
        session = await self.create_cafe(f"Bench café, {n} participants")
        await self.facilitator.open(session)
        room = Room(self.server.url, session.code, n)
        try:
            await room.join_all(concurrency=JOIN_CONCURRENCY)
            if room.failures:
                raise BenchError(f"joining failed: {room.failures[:3]}")
            joined_s = time.perf_counter() - started
            # Round 1 seats everyone who joined in the welcome (one table: everyone together).
            await self.facilitator.go_to_phase(session, 1)
            row = self._db_row(session.id)
            if row["status"] != "live" or row["phase_index"] != 1:
                raise BenchError(f"the café is not live in round 1: {row}")
            await room.phones[0].reload()
            seq = room.phones[0].seq
            specs = [
                ClientSpec(
                    headers={"Cookie": phone.cookie_header(), "Origin": self.server.url},
                    auth={"session": session.code, "view": "participant", "last_seq": seq},
                )
                for phone in room.phones
            ]
        finally:
            await room.close()
        info = {
            "session_id": session.id,
            "join_code": session.code,
            "seq_at_connect": seq,
            "setup_seconds": round(time.perf_counter() - started, 2),
            "join_seconds": round(joined_s, 2),
        }
        log(f"  café {session.code}: {n} joined in {joined_s:.1f}s, live in round 1")
        return session, specs, info

    async def close(self) -> None:
        await self.facilitator.close()


# --- the client harness (same for both servers) ----------------------------------------


@dataclass
class ClientSpec:
    headers: dict
    auth: dict | None
    #: The server this client connects to (with several workers); None: the harness's.
    url: str | None = None


@dataclass
class Run:
    """What one server's measurement recorded."""

    tag: str
    notes: int
    send_times: dict[int, float] = field(default_factory=dict)
    ack_times: dict[int, float] = field(default_factory=dict)
    ack_errors: dict[int, object] = field(default_factory=dict)
    # arrivals[note][client] = arrival time (first copy only)
    arrivals: dict[int, dict[int, float]] = field(default_factory=dict)
    block_of: dict[int, int] = field(default_factory=dict)
    duplicates: int = 0
    unexpected_disconnects: int = 0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    # CPU used on the machine by anything other than this server and the clients.
    other_cpu_s: float = 0.0


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs) since boot."""
    t = psutil.cpu_times()
    extra = ("iowait", "guest", "guest_nice")  # guest time is already counted in user
    return sum(t) - t.idle - sum(getattr(t, name, 0.0) for name in extra)


class Harness:
    """N Socket.IO clients of one server in this process; client 0 also sends.

    With several ``workers`` (processes of one server sharing a message
    queue), the clients are those the specs spread over them (client i on
    worker i mod W) and note k is sent by client k mod W: each worker sends
    its share and relays the others'. CPU and memory are the workers' sum.
    """

    def __init__(
        self,
        server: ServerProcess,
        specs: list[ClientSpec],
        send_event: str,
        log,
        workers: list[ServerProcess] | None = None,
    ):
        self.server = server
        self.workers = workers or [server]
        self.name = server.name
        self.specs = specs
        self.send_event = send_event
        self.log = log
        self.clients: list[socketio.AsyncClient | None] = [None] * len(specs)
        self.run: Run | None = None
        self.measuring = False
        self.connect_failures: list[str] = []
        self.connect_s = 0.0
        #: The servers' resident memory before and after the clients connected, in bytes.
        self.rss_before = self.rss_after = None

    def cpu_seconds(self) -> float:
        return sum(worker.cpu_seconds() for worker in self.workers)

    def rss_bytes(self) -> int:
        return sum(worker.rss_bytes() for worker in self.workers)

    def _new_client(self, index: int) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, request_timeout=30)

        def on_event(envelope):
            now = time.perf_counter()
            run = self.run
            if run is None or not isinstance(envelope, dict):
                return
            if envelope.get("type") != "contribution.added":
                return
            body = (envelope.get("data") or {}).get("body", "")
            match = NOTE_PATTERN.search(body)
            if not match or match.group(2) != run.tag:
                return
            per_client = run.arrivals.setdefault(int(match.group(1)), {})
            if index in per_client:
                run.duplicates += 1
            else:
                per_client[index] = now

        def on_disconnect(*_args):
            if self.measuring and self.run is not None:
                self.run.unexpected_disconnects += 1

        sio.on("event", on_event)
        sio.on("disconnect", on_disconnect)
        return sio

    async def connect_all(self) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        started = time.perf_counter()

        async def connect_one(i: int):
            spec = self.specs[i]
            error = None
            async with gate:
                for attempt in range(CONNECT_ATTEMPTS):
                    sio = self._new_client(i)
                    try:
                        await sio.connect(
                            spec.url or self.server.url,
                            # A copy: python-engineio moves the Cookie header out of
                            # the dict it is given, and a retry needs it again.
                            headers=dict(spec.headers),
                            auth=spec.auth,
                            transports=["websocket"],
                            wait_timeout=CONNECT_TIMEOUT_S,
                        )
                        self.clients[i] = sio
                        return
                    except (socketio.exceptions.ConnectionError, OSError, TimeoutError) as e:
                        error = f"{type(e).__name__}: {e}"
                        with contextlib.suppress(Exception):
                            await sio.disconnect()
                        await asyncio.sleep(0.5 * (attempt + 1))
            self.connect_failures.append(f"client {i}: {error}")

        await asyncio.gather(*(connect_one(i) for i in range(len(self.specs))))
        self.connect_s = time.perf_counter() - started
        connected = len(self.connected())
        self.log(
            f"  {self.name}: {connected}/{len(self.specs)} sockets connected "
            f"in {self.connect_s:.1f}s"
        )
        for failure in self.connect_failures[:5]:
            self.log(f"    connect failed, {failure}")
        for sender in self.clients[: len(self.workers)]:
            if sender is None:
                raise BenchError(
                    f"{self.name}: a sending client could not connect\n{self.server.tail()}"
                )

    def connected(self) -> list[int]:
        return [i for i, c in enumerate(self.clients) if c is not None and c.connected]

    def new_run(self, notes: int, prefix: str = "m") -> Run:
        self.run = Run(tag=prefix + uuid.uuid4().hex[:8], notes=notes)
        return self.run

    async def send_block(self, indices: list[int], interval: float, block: int = 0) -> None:
        """Send the notes ``indices`` at ``interval`` and wait for their deliveries."""
        run = self.run
        senders = self.clients[: len(self.workers)]
        if not all(sender is not None and sender.connected for sender in senders):
            raise BenchError(f"{self.name}: a sending client is not connected")
        expected = len(self.connected())
        self.measuring = True
        cpu_server = self.cpu_seconds()
        cpu_client = time.process_time()
        cpu_machine = machine_busy_seconds()
        wall = time.perf_counter()
        next_at = wall
        for k in indices:
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += interval
            body = f"Bench note {k} [{run.tag}] {FILLER}"
            payload = {"cid": uuid.uuid4().hex, "kind": "note", "body": body}

            def on_ack(*args, k=k):
                run.ack_times[k] = time.perf_counter()
                reply = args[0] if args else None
                if not (isinstance(reply, dict) and reply.get("ok")):
                    run.ack_errors[k] = reply

            run.block_of[k] = block
            run.send_times[k] = time.perf_counter()
            await senders[k % len(senders)].emit(self.send_event, payload, callback=on_ack)
        # Wait for every delivery and acknowledgement of this block, bounded.
        deadline = time.perf_counter() + DRAIN_TIMEOUT_S
        while time.perf_counter() < deadline:
            if all(
                k in run.ack_times and len(run.arrivals.get(k, ())) >= expected for k in indices
            ):
                break
            await asyncio.sleep(0.02)
        run.wall_s += time.perf_counter() - wall
        server_cpu = self.cpu_seconds() - cpu_server
        client_cpu = time.process_time() - cpu_client
        run.server_cpu_s += server_cpu
        run.client_cpu_s += client_cpu
        run.other_cpu_s += max(0.0, machine_busy_seconds() - cpu_machine - server_cpu - client_cpu)
        self.measuring = False

    async def warm_up(self, interval: float) -> None:
        """A few notes not counted: first-use costs on the server and in the clients."""
        self.new_run(WARMUP_NOTES, prefix="w")
        await self.send_block(list(range(WARMUP_NOTES)), interval)

    async def disconnect_all(self) -> None:
        async def bye(sio):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sio.disconnect(), timeout=10)

        self.measuring = False
        clients = [c for c in self.clients if c is not None]
        for start in range(0, len(clients), 100):
            await asyncio.gather(*(bye(c) for c in clients[start : start + 100]))
        self.clients = [None] * len(self.specs)


def summarise(harness: Harness) -> dict:
    run, n = harness.run, len(harness.specs)
    latencies: list[float] = []
    lost_per_client = [0] * n
    per_note = []
    for k in sorted(run.send_times):
        sent = run.send_times[k]
        got = run.arrivals.get(k, {})
        note_latencies = [t - sent for t in got.values()]
        latencies.extend(note_latencies)
        for i in range(n):
            if i not in got:
                lost_per_client[i] += 1
        ack = run.ack_times.get(k)
        per_note.append(
            {
                "note": k,
                "block": run.block_of.get(k, 0),
                "received": len(got),
                "ack_ms": ms(ack - sent) if ack is not None else None,
                "p50_ms": ms(percentile(note_latencies, 50)),
                "p95_ms": ms(percentile(note_latencies, 95)),
                "max_ms": ms(max(note_latencies)) if note_latencies else None,
            }
        )
    expected = run.notes * n
    delivered = sum(len(got) for got in run.arrivals.values())
    acks = [run.ack_times[k] - run.send_times[k] for k in run.ack_times if k in run.send_times]
    connected = n - len(harness.connect_failures)
    grown = (harness.rss_after or 0) - (harness.rss_before or 0)
    return {
        "server": harness.name,
        "n": n,
        "notes": run.notes,
        "expected_deliveries": expected,
        "deliveries": delivered,
        "lost": expected - delivered,
        "clients_with_loss": sum(1 for x in lost_per_client if x),
        "lost_per_client_max": max(lost_per_client) if lost_per_client else 0,
        "duplicates": run.duplicates,
        "unconnected_clients": len(harness.connect_failures),
        "connect_failures": harness.connect_failures[:20],
        "unexpected_disconnects": run.unexpected_disconnects,
        "refused_notes": {str(k): v for k, v in run.ack_errors.items()},
        "unacknowledged_notes": run.notes - len(run.ack_times),
        "p50_ms": ms(percentile(latencies, 50)),
        "p95_ms": ms(percentile(latencies, 95)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(max(latencies)) if latencies else None,
        "ack_p50_ms": ms(percentile(acks, 50)),
        "ack_p95_ms": ms(percentile(acks, 95)),
        "connect_seconds": round(harness.connect_s, 2),
        "workers": len(harness.workers),
        "rss_before_mb": round((harness.rss_before or 0) / 2**20, 1),
        "rss_after_mb": round((harness.rss_after or 0) / 2**20, 1),
        "kib_per_connection": round(grown / 1024 / connected, 1) if connected else None,
        "measure_wall_seconds": round(run.wall_s, 2),
        "server_cpu_seconds": round(run.server_cpu_s, 3),
        "server_cpu_ms_per_note": round(run.server_cpu_s * 1000 / max(1, run.notes), 2),
        "client_cpu_seconds": round(run.client_cpu_s, 3),
        # Average number of CPUs kept busy by other work while measuring.
        "other_load_cpus": round(run.other_cpu_s / run.wall_s, 2) if run.wall_s else None,
        "per_note": per_note,
    }


def blocks_of(notes: int, blocks: int) -> list[list[int]]:
    """Split note numbers 0..notes-1 into ``blocks`` consecutive, near-equal blocks."""
    blocks = max(1, min(blocks, notes))
    size, extra = divmod(notes, blocks)
    out, start = [], 0
    for b in range(blocks):
        end = start + size + (1 if b < extra else 0)
        out.append(list(range(start, end)))
        start = end
    return out


async def measure(harnesses: list[Harness], args, log) -> list[dict]:
    """Connect every harness, warm each up, then send blocks of notes in turn.

    With two servers the blocks alternate in an ABBA order, so that a burst
    of load from elsewhere on the machine, or a slow drift, weighs on both
    alike. Only one server has notes in flight at any time.
    """
    try:
        for harness in harnesses:
            harness.rss_before = harness.rss_bytes()
            await harness.connect_all()
        await asyncio.sleep(1.0)  # let the connection burst settle
        for harness in harnesses:
            harness.rss_after = harness.rss_bytes()
        # The clients' own garbage collector would pause all of them at once
        # (a full collection over thousands of clients takes a few hundred
        # ms) and charge it to whichever server is being measured: freeze
        # what exists and collect nothing until the notes are delivered.
        gc.collect()
        gc.freeze()
        gc.disable()
        for harness in harnesses:
            await harness.warm_up(args.interval)
            harness.new_run(args.notes)
        for b, indices in enumerate(blocks_of(args.notes, args.blocks)):
            order = harnesses if b % 2 == 0 else harnesses[::-1]
            for harness in order:
                await asyncio.sleep(0.5)
                await harness.send_block(indices, args.interval, block=b)
    finally:
        gc.enable()
        gc.unfreeze()
        for harness in harnesses:
            await harness.disconnect_all()
    results = []
    for harness in harnesses:
        result = summarise(harness)
        log(
            f"  {harness.name}: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
            f"max {result['max_ms']} ms, lost {result['lost']}/{result['expected_deliveries']}, "
            f"server CPU {result['server_cpu_ms_per_note']} ms/note, "
            f"other work on the machine {result['other_load_cpus']} CPUs"
        )
        results.append(result)
    return results


# --- orchestration ------------------------------------------------------------------------


def raise_fd_limit(n_max: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(4096, n_max * 4 + 512)
    if soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < wanted:
            print(f"warning: file descriptors limited to {new} (wanted {wanted})", file=sys.stderr)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in (
        "flask",
        "flask-socketio",
        "python-socketio",
        "python-engineio",
        "gevent",
        "simple-websocket",
        "sqlalchemy",
        "aiohttp",
    ):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def print_table(rows: list[dict], out=sys.stdout) -> None:
    columns = [
        ("N", 5), ("server", 9), ("p50 ms", 8), ("p95 ms", 8), ("max ms", 8), ("lost", 6),
        ("ack p50", 8), ("srv CPU/note", 12), ("KiB/conn", 8), ("p95 ratio", 9),
    ]  # fmt: skip
    header = "  ".join(
        f"{name:<{w}}" if name == "server" else f"{name:>{w}}" for name, w in columns
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for row in rows:
        for name in ("palabre", "baseline"):
            r = row.get(name)
            if r is None:
                continue
            ratio = row.get("p95_ratio") if name == "palabre" else None
            cells = [
                row["n"], name, r["p50_ms"], r["p95_ms"], r["max_ms"], r["lost"],
                r["ack_p50_ms"], f"{r['server_cpu_ms_per_note']} ms",
                r.get("kib_per_connection"), f"{ratio:.2f}x" if ratio else "",
            ]  # fmt: skip
            print(
                "  ".join(
                    f"{cell!s:<{w}}" if label == "server" else f"{cell!s:>{w}}"
                    for cell, (label, w) in zip(cells, columns, strict=True)
                ),
                file=out,
            )


#: The issue's targets for one worker: p95 within this factor of the baseline at N, nothing lost.
TARGETS = {1000: 1.5, 2000: 1.25}


def target_verdicts(rows: list[dict]) -> list[str]:
    """A line per N measured on both servers: the target's verdict where there is one."""
    lines = []
    for row in rows:
        if row.get("p95_ratio") is None:
            continue
        n, ratio, workers = row["n"], row["p95_ratio"], row["palabre"]["workers"]
        lost = row["palabre"]["lost"]
        figures = f"(ratio {ratio:.2f}x, lost {lost})"
        if workers == 1 and n in TARGETS:
            met = ratio <= TARGETS[n] and lost == 0
            lines.append(
                f"target (N={n}: p95 within {TARGETS[n]}x of baseline, no lost delivery): "
                f"{'MET' if met else 'NOT MET'} {figures}"
            )
        else:
            where = f"{workers} workers" if workers > 1 else "one worker"
            lines.append(f"N={n} on {where}: p95 {figures[1:-1]}, no target set")
    return lines or ["no N measured on both servers: no ratio"]


def several_workers(count: int, workdir: Path) -> tuple[list[PalabreServer], list[ServerProcess]]:
    """``count`` Palabre workers on one PostgreSQL database and Redis, and as many
    bare servers sharing a Redis message queue.

    The database and Redis are those of ``scripts/with-servers`` (``PALABRE_TEST_DATABASE``
    and ``PALABRE_TEST_REDIS``): each worker on a port of its own, as behind a proxy, with
    the settings ``palabre serve --workers`` gives its workers.
    """
    database, redis = os.environ.get(TEST_DATABASE_VARIABLE), os.environ.get(REDIS_VARIABLE)
    if not (database and redis):
        raise BenchError(
            f"{count} workers need PostgreSQL and Redis: run this under "
            f"scripts/with-servers, which sets {TEST_DATABASE_VARIABLE} and {REDIS_VARIABLE}"
        )
    shared = {
        **PALABRE_SETTINGS,
        "SQLALCHEMY_DATABASE_URI": new_test_database(workdir),
        "MESSAGE_QUEUE": redis,
        "RATE_LIMIT_STORAGE": redis,
        "SOCKET_TRANSPORTS": json.dumps(["websocket"]),
        "SECRET_KEY": secrets.token_hex(16),
    }
    palabres, baselines = [], []
    for w in range(count):
        palabre = PalabreServer(
            workdir / f"instance-{w}",
            port=free_port(),
            settings=shared,
            log_path=workdir / f"palabre-{w}.log",
            command=palabre_command(),
        )
        baseline = baseline_server(free_port(), workdir / f"baseline-{w}.log")
        baseline.argv += ["--message-queue", redis]
        palabres.append(palabre)
        baselines.append(baseline)
    return palabres, baselines


async def bench(args, workdir: Path, servers: list[ServerProcess], rows: list[dict], log) -> None:
    if args.workers > 1:
        palabres, baselines = several_workers(args.workers, workdir)
    else:
        palabre_port = args.port or free_port()
        baseline_port = args.baseline_port or (args.port + 1 if args.port else free_port())
        palabres = [palabre_server(workdir / "instance", palabre_port, workdir / "palabre.log")]
        baselines = [baseline_server(baseline_port, workdir / "baseline.log")]
    palabre, baseline = palabres[0], baselines[0]
    if args.report_blocking:
        # gevent's monitor thread prints the stack of any greenlet that keeps
        # the event loop (so every socket) waiting longer than this.
        for server in palabres + baselines:
            server.env.update(
                GEVENT_MONITOR_THREAD_ENABLE="true",
                GEVENT_MAX_BLOCKING_TIME=str(args.report_blocking),
            )
    wanted = [s for group in (palabres, baselines) for s in group if args.only in (None, s.name)]
    servers.extend(wanted)
    log("starting " + " and ".join(f"{s.name} on {s.url}" for s in wanted))
    # The first Palabre worker migrates the database before the others start.
    for group in ([s for s in wanted if s is palabre], [s for s in wanted if s is not palabre]):
        for server in group:
            server.start()
        for server in group:
            server.wait_ready()
    setup = PalabreSetup(palabre)
    try:
        if palabre in wanted:
            await setup.create_facilitator()
            await setup.sign_in()
        for n in args.clients:
            log(f"N={n}" + (f" on {args.workers} workers each" if args.workers > 1 else ""))
            row = {"n": n, "p95_ratio": None}
            harnesses = []
            if palabre in wanted:
                _session, specs, info = await setup.prepare(n, log)
                for i, spec in enumerate(specs):  # client i on worker i mod W
                    spec.url = palabres[i % len(palabres)].url
                    spec.headers["Origin"] = spec.url
                row["palabre_setup"] = info
                harnesses.append(Harness(palabre, specs, "contribute", log, palabres))
            if baseline in wanted:
                urls = [baselines[i % len(baselines)].url for i in range(n)]
                specs = [ClientSpec(headers={"Origin": url}, auth=None, url=url) for url in urls]
                harnesses.append(Harness(baseline, specs, "note", log, baselines))
            for result in await measure(harnesses, args, log):
                row[result["server"]] = result
            p95s = [row.get(name, {}).get("p95_ms") for name in ("palabre", "baseline")]
            if all(p95s):
                row["p95_ratio"] = round(p95s[0] / p95s[1], 3)
            rows.append(row)
            for server in wanted:
                if server.process.poll() is not None:
                    raise BenchError(f"{server.name} died during the run\n{server.tail()}")
            await asyncio.sleep(2)
    finally:
        await setup.close()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Note latency on Palabre's live layer against a bare Flask-SocketIO baseline."
    )
    parser.add_argument(
        "--clients",
        default="200 1000",
        help='numbers of clients to measure, e.g. "200 1000" (default: %(default)s)',
    )
    parser.add_argument("--notes", type=int, default=30, help="notes measured (default: 30)")
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between notes (default: 0.5)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="Palabre's port (default: a free one); baseline: +1"
    )
    parser.add_argument(
        "--blocks",
        type=int,
        default=3,
        help="the notes go in this many blocks, alternating servers (default: 3)",
    )
    parser.add_argument("--baseline-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes of each kind, clients spread over them; 2 or more need "
        "PostgreSQL and Redis (run under scripts/with-servers) (default: 1)",
    )
    parser.add_argument(
        "--only", choices=("palabre", "baseline"), default=None, help="measure one server only"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON results file (default: bench/results/…)"
    )
    parser.add_argument(
        "--report-blocking",
        type=float,
        metavar="SECONDS",
        default=None,
        help="servers log (gevent monitor) whatever blocks their event loop this long; "
        "implies --keep",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary instance folder and server logs"
    )
    args = parser.parse_args(argv)
    args.keep = args.keep or args.report_blocking is not None
    try:
        args.clients = [int(x) for x in re.split(r"[\s,]+", args.clients.strip()) if x]
    except ValueError:
        parser.error('--clients takes numbers, e.g. "200 1000"')
    if not args.clients or min(args.clients) < 1:
        parser.error("--clients needs at least one number, each 1 or more")
    if args.workers < 1:
        parser.error("--workers must be 1 or more")
    if args.notes < 1 or args.interval < 0:
        parser.error("--notes must be 1 or more and --interval 0 or more")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_bench(make_bench, prefix: str, keep: bool) -> int:
    """Run ``make_bench(workdir, servers)`` and always stop its servers.

    Returns the exit code: 0 when it ran, 2 when set-up failed (the servers'
    logs are printed and the work folder kept), 1 on an unexpected error,
    130 on Ctrl+C or SIGTERM.
    """

    # SIGTERM stops the run like Ctrl+C does: servers are stopped on the way out.
    def on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    servers: list[ServerProcess] = []
    code = 0
    try:
        asyncio.run(make_bench(workdir, servers))
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    except BenchError as error:
        log(f"benchmark failed: {error}")
        code = 2
    except Exception:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for server in servers:
            server.stop()
        if code and code != 130:
            for server in servers:
                log(f"{server.name} log ({server.log_path}):\n{server.tail()}")
        if keep or (code and code != 130):
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


def main(argv=None) -> int:
    args = parse_args(argv)
    raise_fd_limit(max(args.clients))
    started = datetime.now(UTC)

    rows: list[dict] = []
    code = run_bench(
        lambda workdir, servers: bench(args, workdir, servers, rows, log),
        prefix="palabre-bench-",
        keep=args.keep,
    )

    if rows:
        print()
        print(
            f"Live latency, {args.notes} notes every {args.interval}s, one table "
            f"(every client receives every note); {os.cpu_count()} CPUs"
        )
        print_table(rows)
        for line in target_verdicts(rows):
            print(line)
        busiest = max(
            (row[name].get("other_load_cpus") or 0 for row in rows for name in row
             if name in ("palabre", "baseline")),
            default=0,
        )  # fmt: skip
        if busiest > 0.25:
            print(
                f"note: other work kept up to {busiest} CPUs busy while measuring "
                "(see other_load_cpus in the JSON): latencies are noisier than on a quiet machine"
            )
        RESULTS.mkdir(exist_ok=True)
        output = args.output or RESULTS / f"live_latency-{started:%Y%m%d-%H%M%S}.json"
        output.write_text(
            json.dumps(
                {
                    "started": started.isoformat(),
                    "finished": datetime.now(UTC).isoformat(),
                    "complete": code == 0,
                    "config": {
                        "clients": args.clients,
                        "workers": args.workers,
                        "notes": args.notes,
                        "interval_s": args.interval,
                        "blocks": args.blocks,
                        "warmup_notes": WARMUP_NOTES,
                        "connect_concurrency": CONNECT_CONCURRENCY,
                        "drain_timeout_s": DRAIN_TIMEOUT_S,
                    },
                    "machine": {
                        "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "platform": platform.platform(),
                        "versions": versions(),
                    },
                    "targets": target_verdicts(rows),
                    "runs": rows,
                },
                indent=2,
            )
        )
        print(f"results written to {output}")
    return code


if __name__ == "__main__":
    sys.exit(main())
