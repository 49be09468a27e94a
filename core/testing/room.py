"""A room of phones against a real ``palabre serve``.

The pieces, from the bottom up:

* :class:`ServerProcess` runs any server in a child process of its own
  process group on 127.0.0.1, waits until it answers, and stops it (SIGINT,
  then SIGKILL); :class:`PalabreServer` is ``palabre serve`` on a throw-away
  instance folder, with ``palabre create-facilitator`` and read-only SQL on
  its database; :func:`served_palabre` is the context manager around it.
* :class:`Browser` is one browser: its own cookie jar, pages with their CSRF
  token, and :class:`LiveSocket` connections (python-socketio's
  ``AsyncClient``, WebSocket transport) that record every event they
  receive, ``resync`` requests and unexpected disconnections, and time every
  acknowledgement (:class:`Ack`).
* :class:`Facilitator` signs in and creates, opens and runs sessions over
  HTTP; :class:`Phone` joins through the join page (or a table host's link)
  and sends writes; :class:`Room` is N phones joining, connecting and
  acting together, at human pace or in a burst.

Everything is asyncio and runs in the test's own process, so one monotonic
clock (``time.perf_counter``) times every phone. Every wait is bounded.

::

    with served_palabre(tmp_path) as server:
        server.create_facilitator()

        async def café():
            async with Facilitator(server.url) as facilitator:
                await facilitator.sign_in()
                session = await facilitator.create_session("world_cafe", {"tables": 3})
                await facilitator.open(session)
                async with Room(server.url, session.code, 36) as room:
                    await room.join_all()
                    await facilitator.go_to_phase(session, 1)
                    await room.connect_all()
                    acks = await room.each(
                        lambda phone, k: phone.contribute("note", f"Note {k}"), pace=(0.2, 1.5)
                    )

        asyncio.run(café())
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
import socketio

from .kit import new_test_database

HOST = "127.0.0.1"

#: Bounds on every wait, in seconds.
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
HTTP_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 20
ACK_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 120

FACILITATOR_EMAIL = "facilitator@example.org"
FACILITATOR_PASSWORD = "a long enough password"

_CSRF_INPUT = re.compile(r"<input[^>]*name=\"csrf_token\"[^>]*>", re.S)
_VALUE = re.compile(r"value=\"([^\"]*)\"")
#: The sequence number a live page was rendered at: ``data-seq='<n>'`` on the
#: script that starts its live layer (``seq: <n>`` in the benchmark's baseline).
_PAGE_SEQ = re.compile(r"""\bdata-seq=['"](\d+)|\bseq:\s*(\d+)""")
_SESSION_URL = re.compile(r"/sessions/(\d+)/?$")
_JOIN_CODE = re.compile(r"/j/([0-9A-Z]{6})\b")
# A personal link on the run page (templates/components/role_links.html).
_ROLE_LINK = re.compile(
    r'data-role="([^"]+)" data-group="([^"]*)" data-code="([^"]+)">.*?'
    r'class="role-link-url" href="https?://[^/"]+(/j/[0-9A-Z]{6}/r/[^"]+)"',
    re.S,
)


class RoomError(Exception):
    """The room could not be set up: a server did not start, a page was not as expected."""


# --- statistics ------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0 to 100) of ``values``, linearly interpolated; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def p95(values: Sequence[float]) -> float | None:
    return percentile(values, 95)


# --- servers ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


class ServerProcess:
    """A server in a child process of its own process group, its output in a log file.

    ``argv`` must hold ``--port <n>``; the server must listen on 127.0.0.1.
    Use it as a context manager (start, wait until it answers, stop), or
    call :meth:`start`, :meth:`wait_ready` and :meth:`stop`.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        ready_path: str = "/",
        cwd: Path | None = None,
    ):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = Path(log_path)
        self.ready_path = ready_path
        self.cwd = cwd
        self.process: subprocess.Popen | None = None
        self.port = int(argv[argv.index("--port") + 1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if not _port_is_free(self.port):
            raise RoomError(f"port {self.port} on {HOST} is taken ({self.name})")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own group: Ctrl+C in a terminal reaches only the caller, which
                # stops the server; stopping the group also stops its children.
                start_new_session=True,
            )

    def answers(self, within: float = 2) -> bool:
        """Whether ``ready_path`` answers, below 500, within ``within`` seconds."""
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=within):
                return True
        except urllib.error.HTTPError as error:
            return error.code < 500
        except OSError:
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Return once the server :meth:`answers`; raise :class:`RoomError` otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                code = self.process.returncode if self.process else None
                raise RoomError(f"{self.name} exited with {code}\n{self.tail()}")
            if self.answers():
                return
            time.sleep(0.2)
        raise RoomError(f"{self.name} did not answer within {timeout}s\n{self.tail()}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its children.

        Read from ``/proc/<pid>/stat`` (through psutil); NaN once it has exited.
        """
        try:
            process = psutil.Process(self.process.pid)
            times = process.cpu_times()
            seconds = times.user + times.system
            for child in process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    t = child.cpu_times()
                    seconds += t.user + t.system
            return seconds
        except (psutil.Error, AttributeError):
            return float("nan")

    def rss_bytes(self) -> int:
        """Resident memory of the server and its children, in bytes; 0 once it has exited."""
        try:
            process = psutil.Process(self.process.pid)
            total = process.memory_info().rss
            for child in process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            return total
        except (psutil.Error, AttributeError):
            return 0

    def output(self) -> str:
        """Everything the server wrote to its stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(f"  | {line}" for line in self.output().splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the process group: SIGINT (as Ctrl+C), then SIGKILL after a bounded wait."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self):
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def palabre_command() -> list[str]:
    """How to run the ``palabre`` command of this environment."""
    script = Path(sys.executable).parent / "palabre"
    if script.exists():
        return [str(script)]
    found = shutil.which("palabre")
    if found:
        return [found]
    return [sys.executable, "-c", "from palabre.cli import main; main()"]


class PalabreServer(ServerProcess):
    """``palabre serve --host 127.0.0.1`` on the instance folder ``instance``.

    ``settings`` become ``PALABRE_*`` environment variables (a name without the
    prefix gets it: ``RATE_LIMIT_WRITES="1000/minute"``). The server has a
    random secret key and no message queue or base URL from the caller's
    environment. Its database is SQLite in the instance folder or, with
    ``PALABRE_TEST_DATABASE`` set, a new PostgreSQL database (see
    :func:`palabre.testing.kit.new_test_database`), unless ``settings`` name one.
    ``command`` replaces the ``palabre`` command (a wrapper that profiles it,
    for instance).
    """

    def __init__(
        self,
        instance: Path,
        *,
        port: int | None = None,
        settings: dict[str, str] | None = None,
        log_path: Path | None = None,
        command: list[str] | None = None,
    ):
        self.instance = Path(instance)
        self.instance.mkdir(parents=True, exist_ok=True)
        self.command = command or palabre_command()
        env = dict(os.environ)
        for name in ("PALABRE_MESSAGE_QUEUE", "PALABRE_BASE_URL", "PALABRE_RATE_LIMIT_WRITES"):
            env.pop(name, None)
        env.update(
            PALABRE_INSTANCE=str(self.instance),
            PALABRE_SECRET_KEY=secrets.token_hex(16),
            PYTHONUNBUFFERED="1",
        )
        for name, value in (settings or {}).items():
            env[name if name.startswith("PALABRE_") else f"PALABRE_{name}"] = str(value)
        env.setdefault("PALABRE_SQLALCHEMY_DATABASE_URI", new_test_database(self.instance))
        #: The server's database, as a SQLAlchemy URL.
        self.database_uri = env["PALABRE_SQLALCHEMY_DATABASE_URI"]
        port = port or free_port()
        super().__init__(
            "palabre",
            [*self.command, "serve", "--host", HOST, "--port", str(port)],
            env,
            log_path or self.instance / "server.log",
            ready_path="/",
            cwd=self.instance,
        )

    @property
    def database(self) -> Path:
        return self.instance / "palabre.db"

    def create_facilitator(
        self, email: str = FACILITATOR_EMAIL, password: str = FACILITATOR_PASSWORD
    ) -> None:
        """``palabre create-facilitator`` on this instance."""
        done = subprocess.run(
            [*self.command, "create-facilitator", email, "--password", password],
            env=self.env,
            cwd=self.instance,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        if done.returncode != 0:
            raise RoomError(f"palabre create-facilitator failed:\n{done.stdout}{done.stderr}")

    def query(self, sql: str, params: Sequence = ()) -> list:
        """Rows of a read-only query on the server's database (the server may be running).

        ``?`` marks a parameter on either database; each row is a dict by
        column name (``row["seq"]``), on both databases alike, so a test that
        reads a column by position fails on SQLite too: name computed columns
        (``SELECT COUNT(*) AS needs``).
        """
        if not self.database_uri.startswith("postgresql"):
            uri = f"file:{self.database}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
                db.row_factory = sqlite3.Row
                return [dict(row) for row in db.execute(sql, tuple(params))]
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.database_uri, poolclass=sqlalchemy.NullPool)
        try:
            with engine.connect() as connection:
                cursor = connection.exec_driver_sql(sql.replace("?", "%s"), tuple(params))
                return [dict(row) for row in cursor.mappings()]
        finally:
            engine.dispose()

    def session_row(self, session_id: int) -> dict:
        """A session's code, sequence number, status and phase, from the database."""
        rows = self.query(
            "SELECT id, code, seq, status, phase_index FROM palabre_session WHERE id = ?",
            (session_id,),
        )
        if not rows:
            raise RoomError(f"session {session_id} is not in the database")
        return rows[0]


@contextlib.contextmanager
def served_palabre(
    folder: Path, *, port: int | None = None, command: list[str] | None = None, **settings
) -> Iterator[PalabreServer]:
    """Run ``palabre serve`` on a new instance in ``folder`` until the block ends.

    ``settings`` as for :class:`PalabreServer`. The server's output stays in
    ``folder/instance/server.log`` (``server.output()``) after it stopped.
    """
    with PalabreServer(
        Path(folder) / "instance", port=port, settings=settings, command=command
    ) as s:
        yield s


# --- browsers and sockets -----------------------------------------------------------


def csrf_token(html: str, where: str = "the page") -> str:
    """The value of the first ``csrf_token`` input of a page."""
    match = _CSRF_INPUT.search(html)
    value = _VALUE.search(match.group(0)) if match else None
    if not value:
        raise RoomError(f"no csrf_token input on {where}")
    return value.group(1)


def new_cid() -> str:
    """A fresh client-generated id for a write, as ``live.js`` makes them."""
    return uuid.uuid4().hex


@dataclass
class Page:
    status: int
    url: str
    text: str


@dataclass
class Ack:
    """The acknowledgement of one write, and how long it took."""

    event: str
    payload: dict
    reply: object
    sent_at: float
    #: Seconds from emitting to the acknowledgement; None when none came.
    latency: float | None
    #: Why there is no reply ("timeout", "not connected"), else None.
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return isinstance(self.reply, dict) and self.reply.get("ok") is True

    @property
    def error(self) -> str | None:
        if self.failure:
            return self.failure
        if isinstance(self.reply, dict):
            return self.reply.get("error")
        return f"unexpected reply {self.reply!r}"


@dataclass
class Received:
    at: float
    seq: int | None
    type: str
    data: dict


@dataclass
class LiveSocket:
    """One Socket.IO connection, as ``live.js`` makes it, recording what arrives.

    ``events`` holds every ``event`` envelope in order of arrival;
    ``duplicates`` counts envelopes whose ``seq`` had already arrived;
    ``resyncs`` counts ``resync`` requests (a browser would reload the page);
    ``disconnects`` counts disconnections this side did not ask for.
    """

    name: str
    events: list[Received] = field(default_factory=list)
    resyncs: int = 0
    disconnects: int = 0
    duplicates: int = 0
    connect_seconds: float | None = None
    client: socketio.AsyncClient = field(init=False)
    _http: aiohttp.ClientSession = field(init=False)
    _seen: set = field(default_factory=set)
    _closing: bool = False

    def __post_init__(self) -> None:
        # The socket's own HTTP client, closed by close() even when the server
        # never answers the disconnection (python-engineio would leave it open).
        self._http = aiohttp.ClientSession()
        self.client = socketio.AsyncClient(
            reconnection=False,
            handle_sigint=False,
            request_timeout=HTTP_TIMEOUT_S,
            http_session=self._http,
        )

        def on_event(envelope):
            if isinstance(envelope, dict) and not self.record(envelope):
                self.duplicates += 1

        def on_resync(*_args):
            self.resyncs += 1

        def on_disconnect(*_args):
            if not self._closing:
                self.disconnects += 1

        self.client.on("event", on_event)
        self.client.on("resync", on_resync)
        self.client.on("disconnect", on_disconnect)

    def record(self, envelope: dict, at: float | None = None) -> bool:
        """Keep an ``event`` envelope as received now (or ``at``); False if its seq already was.

        Also for envelopes that came another way, such as the answer to a ``replay``.
        """
        at = time.perf_counter() if at is None else at
        seq = envelope.get("seq")
        if seq is not None:  # passing states (head counts) have none, and repeat
            if seq in self._seen:
                return False
            self._seen.add(seq)
        self.events.append(Received(at, seq, str(envelope.get("type")), envelope.get("data") or {}))
        return True

    @property
    def seqs(self) -> set[int]:
        """The sequence numbers received (do not change the set)."""
        return self._seen

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def last_seq(self) -> int | None:
        seqs = [e.seq for e in self.events if isinstance(e.seq, int)]
        return max(seqs) if seqs else None

    async def connect(
        self, url: str, headers: dict, auth: dict, timeout: float = CONNECT_TIMEOUT_S
    ) -> None:
        started = time.perf_counter()
        try:
            await self.client.connect(
                url,
                # A copy: python-engineio moves the Cookie header out of the dict it gets.
                headers=dict(headers),
                auth=auth,
                transports=["websocket"],
                wait_timeout=timeout,
            )
        except (socketio.exceptions.ConnectionError, OSError, TimeoutError) as error:
            raise RoomError(
                f"{self.name}: could not connect: {type(error).__name__}: {error}"
            ) from error
        self.connect_seconds = time.perf_counter() - started

    async def send(self, event: str, payload: dict, timeout: float = ACK_TIMEOUT_S) -> Ack:
        """Emit ``event`` and wait (at most ``timeout``) for its acknowledgement."""
        sent = time.perf_counter()
        try:
            reply = await self.client.call(event, payload, timeout=timeout)
        except socketio.exceptions.TimeoutError:
            return Ack(event, payload, None, sent, None, f"no acknowledgement within {timeout}s")
        except socketio.exceptions.SocketIOError as error:
            return Ack(event, payload, None, sent, None, f"not sent: {error}")
        return Ack(event, payload, reply, sent, time.perf_counter() - sent)

    async def replay(self, after: int, timeout: float = ACK_TIMEOUT_S) -> list[dict]:
        """Ask for the events numbered after ``after``, as ``live.js`` fills a gap; the envelopes.

        A worker killed between committing an event and publishing it leaves a
        hole in what its rooms heard; a page still connected elsewhere fills it
        so. Nothing is recorded here: the caller decides what is new. Empty when
        the socket is not connected or the server answers anything but ``ok``.
        """
        if not self.connected:
            return []
        try:
            reply = await self.client.call("replay", {"after": after}, timeout=timeout)
        except socketio.exceptions.SocketIOError:
            return []
        if not (isinstance(reply, dict) and reply.get("ok")):
            return []
        return list(reply.get("events") or [])

    def of_type(self, type_: str) -> list[dict]:
        """The data of every received event of ``type_``, in order of arrival."""
        return [e.data for e in self.events if e.type == type_]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10) -> bool:
        """Wait until ``condition()`` holds (checked every 20 ms); False after ``timeout``."""
        deadline = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def close(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.disconnect(), timeout=STOP_TIMEOUT_S)
        await self._http.close()


class Browser:
    """One browser: its own cookie jar, pages with CSRF tokens, and live sockets."""

    def __init__(self, base_url: str, name: str = "browser"):
        self.base = base_url.rstrip("/")
        self.name = name
        self._http: aiohttp.ClientSession | None = None
        self.sockets: list[LiveSocket] = []

    @property
    def http(self) -> aiohttp.ClientSession:
        """The browser's HTTP client (created on first use, inside the running loop)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                # unsafe=True: keep cookies set by an IP-address host (127.0.0.1).
                cookie_jar=aiohttp.CookieJar(unsafe=True),
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
            )
        return self._http

    async def request(self, method: str, path: str, **kwargs) -> Page:
        """Request ``path`` (or a full URL); raise :class:`RoomError` on a 4xx or 5xx."""
        url = path if path.startswith("http") else self.base + path
        async with self.http.request(method, url, **kwargs) as response:
            text = await response.text()
            if response.status >= 400:
                raise RoomError(
                    f"{self.name}: HTTP {response.status} from {method} {url}\n{text[:800]}"
                )
            return Page(response.status, str(response.url), text)

    async def get(self, path: str, **kwargs) -> Page:
        return await self.request("GET", path, **kwargs)

    async def post_form(self, form_page: str | Page, url: str, data, **kwargs) -> Page:
        """Post ``data`` (a dict, or a list of pairs) with the CSRF token of ``form_page``."""
        page = form_page if isinstance(form_page, Page) else await self.get(form_page)
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        token = csrf_token(page.text, page.url)
        return await self.request("POST", url, data=[("csrf_token", token), *pairs], **kwargs)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.key}={c.value}" for c in self.http.cookie_jar)

    async def connect(
        self,
        code: str,
        view: str,
        last_seq: int | None,
        *,
        timeout: float = CONNECT_TIMEOUT_S,
        attempts: int = 1,
    ) -> LiveSocket:
        """Open a live socket for session ``code`` with this browser's cookie.

        Tries ``attempts`` times, half a second apart and more each time;
        raises :class:`RoomError` when none succeeds.
        """
        error: RoomError | None = None
        for attempt in range(attempts):
            live = LiveSocket(f"{self.name} ({view})")
            try:
                await live.connect(
                    self.base,
                    {"Cookie": self.cookie_header(), "Origin": self.base},
                    {"session": code, "view": view, "last_seq": last_seq},
                    timeout=timeout,
                )
            except RoomError as failed:
                error = failed
                await live.close()
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            self.sockets.append(live)
            return live
        raise error

    async def close(self) -> None:
        for live in self.sockets:
            await live.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()


@dataclass
class LiveSession:
    """A session as the facilitator's browser knows it."""

    id: int
    code: str
    method: str


def _session_fields(
    title: str, venue: str, languages: Sequence[str], config: dict | None
) -> list[tuple[str, str]]:
    """The session form's fields as the pages that make and edit a session post them."""
    fields = [("title", title), ("venue", venue)]
    fields += [("languages", language) for language in languages]
    return fields + _form_fields(config or {})


def _form_fields(config: dict) -> list[tuple[str, str]]:
    """A method's configuration as the new-session form posts it (``config-<name>``)."""
    pairs = []
    for name, value in config.items():
        if value is False or value is None:
            continue  # an unticked box is not sent
        if value is True:
            value = "y"
        if isinstance(value, list | tuple):
            pairs.extend((f"config-{name}", str(item)) for item in value)
        else:
            pairs.append((f"config-{name}", str(value)))
    return pairs


class Facilitator(Browser):
    """A facilitator's browser: signs in, creates and runs sessions over HTTP.

    The same actions go over a live socket with ``connect(...)`` then
    ``socket.send("phase.go", {...})``.
    """

    def __init__(self, base_url: str, name: str = "facilitator"):
        super().__init__(base_url, name)
        self._token: str | None = None

    async def sign_in(
        self, email: str = FACILITATOR_EMAIL, password: str = FACILITATOR_PASSWORD
    ) -> None:
        page = await self.get("/auth/login")
        done = await self.post_form(page, "/auth/login", {"email": email, "password": password})
        if "/auth/login" in done.url:
            raise RoomError(f"{self.name}: sign-in refused (still on the sign-in page)")

    async def create_session(
        self,
        method: str,
        config: dict | None = None,
        *,
        title: str = "Room test",
        languages: Sequence[str] = ("en",),
        venue: str = "Loopback community centre",
    ) -> LiveSession:
        """Create a draft session of ``method``; ``config`` fills the method's form fields.

        Fields not given keep the form's defaults only if the method's form
        has them filled in already; give every required field.
        """
        path = f"/sessions/new/{method}"
        done = await self.post_form(path, path, _session_fields(title, venue, languages, config))
        match = _SESSION_URL.search(done.url)
        code = _JOIN_CODE.search(done.text)
        if not match or not code:
            raise RoomError(
                f"creating a {method} session did not lead to its page ({done.url}):\n"
                f"{done.text[:800]}"
            )
        return LiveSession(int(match.group(1)), code.group(1), method)

    async def edit_session(
        self,
        session: LiveSession,
        config: dict | None = None,
        *,
        title: str = "Room test",
        languages: Sequence[str] = ("en",),
        venue: str = "Loopback community centre",
    ) -> Page:
        """Post the session's edit page (``/sessions/<id>/edit``) with these facts, languages
        and configuration (form fields as for :meth:`create_session`); returns the answer
        (the run page once saved, the edit page with the refusal otherwise)."""
        fields = _session_fields(title, venue, languages, config)
        path = f"/sessions/{session.id}/edit"
        return await self.request("POST", path, data=[("csrf_token", await self._csrf()), *fields])

    async def _csrf(self) -> str:
        # Flask-WTF's token belongs to the browser's cookie session, not to a form.
        if self._token is None:
            self._token = csrf_token((await self.get("/sessions/")).text, "the sessions page")
        return self._token

    async def post_action(self, session: LiveSession, path: str, fields=()) -> Page:
        """Post one of the run page's controls: ``open``, ``phase``, ``actions/<name>``..."""
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
        return await self.request(
            "POST",
            f"/sessions/{session.id}/{path}",
            data=[("csrf_token", await self._csrf()), *pairs],
        )

    async def open(self, session: LiveSession) -> None:
        await self.post_action(session, "open")

    async def go_to_phase(self, session: LiveSession, index: int) -> None:
        await self.post_action(session, "phase", {"index": str(index)})

    async def start_session(
        self, method: str, config: dict | None = None, *, phase: int | None = None, **options
    ) -> LiveSession:
        """Create and open a session, then move it to ``phase`` when given."""
        session = await self.create_session(method, config, **options)
        await self.open(session)
        if phase:
            await self.go_to_phase(session, phase)
        return session

    async def role_links(self, session: LiveSession, role: str = "host") -> dict[str, str]:
        """The personal links of ``role`` shown on the run page: paths by group (or code)."""
        page = await self.get(f"/sessions/{session.id}")
        return {
            group or code: path
            for found_role, group, code, path in _ROLE_LINK.findall(page.text)
            if found_role == role
        }

    async def page_seq(self, session: LiveSession) -> int:
        """The sequence number the run page starts from."""
        return _seq_of(await self.get(f"/sessions/{session.id}"), self.name)

    async def connect_to(
        self, session: LiveSession, view: str = "facilitator", last_seq: int | None = None
    ) -> LiveSocket:
        """A facilitator or projector socket, from the current sequence number by default."""
        if last_seq is None:
            last_seq = await self.page_seq(session)
        return await self.connect(session.code, view, last_seq)


def _seq_of(page: Page, who: str) -> int:
    match = _PAGE_SEQ.search(page.text)
    if not match:
        raise RoomError(f"{who}: no live sequence number on {page.url}\n{page.text[:800]}")
    return int(match.group(1) or match.group(2))


class Phone(Browser):
    """A participant's phone: joins over HTTP, then talks over one live socket.

    ``timings`` holds, in ``time.perf_counter`` seconds, when it started
    joining (``started``), had its participant page (``joined``) and had its
    socket connected (``connected``).
    """

    def __init__(
        self, base_url: str, code: str, number: int = 0, ack_timeout: float = ACK_TIMEOUT_S
    ):
        super().__init__(base_url, f"phone {number}")
        self.code = code
        self.number = number
        #: How long :meth:`send` waits for an acknowledgement.
        self.ack_timeout = ack_timeout
        self.seq: int | None = None
        self.socket: LiveSocket | None = None
        self.timings: dict[str, float] = {}

    async def join(self, language: str = "en", group: str | None = None) -> None:
        """Scan the QR code: the join form, its post, and the participant page it leads to."""
        self.timings["started"] = time.perf_counter()
        url = f"/j/{self.code}"
        fields = {"language": language}
        if group is not None:
            fields["group"] = group
        page = await self.post_form(url, url, fields)
        self.seq = _seq_of(page, self.name)
        self.timings["joined"] = time.perf_counter()

    async def take_role(self, link: str) -> None:
        """Open a personal link (``/j/<code>/r/<key>``, a table host's); it leads to the page."""
        self.timings["started"] = time.perf_counter()
        page = await self.get(link)
        self.seq = _seq_of(page, self.name)
        self.timings["joined"] = time.perf_counter()

    async def reload(self) -> None:
        """Load the participant page again, as ``live.js`` does after a phase change."""
        self.seq = _seq_of(await self.get(f"/j/{self.code}"), self.name)

    async def connect_live(self, *, attempts: int = 1, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Connect the participant socket from the page's sequence number (closing any old one)."""
        if self.socket is not None:
            await self.socket.close()
        self.socket = await self.connect(
            self.code, "participant", self.seq, attempts=attempts, timeout=timeout
        )
        self.timings["connected"] = time.perf_counter()

    async def send(self, event: str, payload: dict) -> Ack:
        if self.socket is None:
            raise RoomError(f"{self.name}: not connected")
        return await self.socket.send(event, payload, self.ack_timeout)

    async def contribute(self, kind: str, body: str = "", cid: str | None = None) -> Ack:
        return await self.send("contribute", {"cid": cid or new_cid(), "kind": kind, "body": body})

    async def vote(self, contribution_id: int, value: int = 1, cid: str | None = None) -> Ack:
        return await self.send(
            "vote", {"cid": cid or new_cid(), "contribution": contribution_id, "value": value}
        )


class Room:
    """``size`` phones in one session: joining, connecting and acting together.

    ``failures`` collects what went wrong while joining or connecting
    (one line per phone), so that a test can assert it is empty and a
    benchmark can count it.
    """

    def __init__(
        self,
        base_url: str,
        code: str,
        size: int,
        *,
        seed: int | None = None,
        ack_timeout: float = ACK_TIMEOUT_S,
    ):
        self.phones = [Phone(base_url, code, number, ack_timeout) for number in range(size)]
        self.failures: list[str] = []
        self.random = random.Random(seed)

    def __len__(self) -> int:
        return len(self.phones)

    async def _all(
        self,
        step: Callable[[Phone], Awaitable[None]],
        spread_seconds: float | None,
        concurrency: int | None,
    ) -> None:
        gate = asyncio.Semaphore(concurrency or len(self.phones) or 1)
        starts = {
            id(p): (self.random.uniform(0, spread_seconds) if spread_seconds else 0.0)
            for p in self.phones
        }

        async def one(phone: Phone) -> None:
            await asyncio.sleep(starts[id(phone)])
            async with gate:
                try:
                    await step(phone)
                except RoomError as error:
                    self.failures.append(str(error))
                except (aiohttp.ClientError, TimeoutError) as error:
                    self.failures.append(f"{phone.name}: {type(error).__name__}: {error}")

        await asyncio.gather(*(one(p) for p in self.phones))

    async def join_all(
        self,
        *,
        spread_seconds: float | None = None,
        concurrency: int | None = None,
        connect: bool = False,
        language: str = "en",
        group_of: Callable[[Phone], str | None] | None = None,
        attempts: int = 1,
    ) -> None:
        """Every phone joins: all at once, or each at a random moment within ``spread_seconds``.

        With ``connect`` each phone connects its socket right after its page
        loads, as a browser does.
        """

        async def step(phone: Phone) -> None:
            await phone.join(language, group_of(phone) if group_of else None)
            if connect:
                await phone.connect_live(attempts=attempts)

        await self._all(step, spread_seconds, concurrency)

    async def connect_all(self, *, concurrency: int | None = None, attempts: int = 1) -> None:
        """Connect every joined phone's socket (after reloading its page if it has a socket)."""

        async def step(phone: Phone) -> None:
            if phone.socket is not None:
                await phone.reload()
            await phone.connect_live(attempts=attempts)

        await self._all(step, None, concurrency)

    async def each(
        self,
        action: Callable[[Phone, int], Awaitable],
        *,
        pace: tuple[float, float] | None = None,
        times: int = 1,
        phones: Sequence[Phone] | None = None,
    ) -> list:
        """Every phone does ``action(phone, k)`` for k in 0..times-1; returns all results.

        ``pace=(low, high)``: at human pace, each phone waits a random
        ``low`` to ``high`` seconds before each action. ``pace=None``: a
        burst, every phone starts at the same moment and goes on as fast as
        its actions return. Results come phone by phone (``times`` each), in order.
        """
        start = asyncio.Event()

        async def run(phone: Phone) -> list:
            await start.wait()
            results = []
            for k in range(times):
                if pace:
                    await asyncio.sleep(self.random.uniform(*pace))
                results.append(await action(phone, k))
            return results

        tasks = [asyncio.ensure_future(run(p)) for p in (phones or self.phones)]
        await asyncio.sleep(0)  # every phone waits at the start line
        start.set()
        return [result for results in await asyncio.gather(*tasks) for result in results]

    @property
    def sockets(self) -> list[LiveSocket]:
        return [live for phone in self.phones for live in phone.sockets]

    @property
    def disconnects(self) -> int:
        return sum(live.disconnects for live in self.sockets)

    @property
    def resyncs(self) -> int:
        return sum(live.resyncs for live in self.sockets)

    async def close(self) -> None:
        for start in range(0, len(self.phones), 100):
            await asyncio.gather(*(p.close() for p in self.phones[start : start + 100]))

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
