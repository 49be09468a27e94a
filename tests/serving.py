"""A real ``palabre serve`` for tests, and the people who use it over the network.

:class:`PalabreServer` runs the server in a child process on a free loopback
port with its own instance folder; :class:`Facilitator` signs in over HTTP
and prepares a live world café; :func:`join` joins it as a phone and
:func:`phone_socket` opens that phone's Socket.IO connection;
:class:`RawSocket` speaks Engine.IO by hand, as a script that never answers
pings would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import requests
import socketio
import websocket

from palabre.testing.kit import new_test_database

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
EMAIL, PASSWORD = "capacity@example.org", "a long enough password"
START_TIMEOUT_S = 60
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def palabre_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from palabre.cli import main; main()", *args]


def palabre(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one ``palabre`` command to its end; its output is captured as text."""
    return subprocess.run(
        palabre_command(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def instance_env(instance: Path, **config) -> dict:
    """The environment of a Palabre process on ``instance``, with ``PALABRE_<name>`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALABRE_")}
    env.update(PALABRE_INSTANCE=str(instance), PALABRE_SECRET_KEY="serving-tests")
    env.update({f"PALABRE_{name}": str(value) for name, value in config.items()})
    return env


class PalabreServer:
    """``palabre serve`` in a child process; stdout and stderr kept in files.

    ``file_limit`` sets the child's open-file limits ``(soft, hard)`` before
    it starts, as a shell's ``ulimit -n`` would.
    """

    def __init__(self, instance: Path, file_limit: tuple[int, int] | None = None, **config):
        self.instance = instance
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        # SQLite in the instance folder, or a PostgreSQL database of its own in the second pass.
        config.setdefault("SQLALCHEMY_DATABASE_URI", new_test_database(instance))
        self.env = instance_env(instance, BASE_URL=self.url, **config)
        self.file_limit = file_limit
        self.process: subprocess.Popen | None = None
        self.stdout_path = instance / "serve.out"
        self.stderr_path = instance / "serve.err"

    @property
    def database(self) -> Path:
        return self.instance / "palabre.db"

    def start(self) -> PalabreServer:
        self.instance.mkdir(parents=True, exist_ok=True)
        limit = self.file_limit

        def before_exec():
            if limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, limit)

        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                palabre_command("serve", "--host", HOST, "--port", str(self.port)),
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=before_exec,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return self
            except OSError as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(
                        f"palabre serve did not start:\n{self.output()}"
                    ) from error
                time.sleep(0.2)

    def stop(self, signum: int = signal.SIGINT, timeout: float = 30) -> int:
        """Send ``signum`` and wait for the server to exit; its exit status."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr()

    def __enter__(self) -> PalabreServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop(signal.SIGTERM)
        self.kill()


def csrf_token(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Facilitator:
    """A facilitator's browser, signed in to ``server`` (the account is created first)."""

    def __init__(self, server: PalabreServer):
        self.server = server
        created = palabre("create-facilitator", EMAIL, "--password", PASSWORD, env=server.env)
        assert created.returncode == 0, created.stderr
        self.browser = requests.Session()
        self.post("/auth/login", "/auth/login", email=EMAIL, password=PASSWORD)

    def __enter__(self) -> Facilitator:
        return self

    def __exit__(self, *exc) -> None:
        self.browser.close()

    def post(self, page: str, url: str, **data) -> requests.Response:
        """Post ``data`` to ``url`` with the CSRF token of ``page``."""
        form = self.browser.get(self.server.url + page, timeout=30)
        response = self.browser.post(
            self.server.url + url, data={"csrf_token": csrf_token(form.text), **data}, timeout=30
        )
        assert response.status_code < 400, response.text[:500]
        return response

    def live_cafe(self) -> str:
        """Create a one-table world café, open it and start round 1; its join code."""
        created = self.post(
            "/sessions/new/world_cafe",
            "/sessions/new/world_cafe",
            title="Café on the library's opening hours",
            venue="Community centre",
            languages="en",
            **{
                "config-tables": "1",
                "config-questions": "What would help?\nWho should act?",
                "config-round_minutes": "20",
                "config-assignment": "assign",
                "config-hosts_stay": "y",
                "config-dots": "3",
            },
        )
        run_page = re.search(r"/sessions/\d+$", created.url).group(0)
        self.post(run_page, run_page + "/open")
        self.post(run_page, run_page + "/phase", index="1")
        return re.search(r"/j/([0-9A-Z]{6})\b", self.browser.get(created.url).text).group(1)


def join(server: PalabreServer, code: str) -> str:
    """Join the session ``code`` as a new phone; the phone's ``Cookie`` header."""
    with requests.Session() as phone:
        page = phone.get(f"{server.url}/j/{code}", timeout=30)
        response = phone.post(
            f"{server.url}/j/{code}",
            data={"csrf_token": csrf_token(page.text), "language": "en"},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302, response.text[:500]
        return "; ".join(f"{name}={value}" for name, value in phone.cookies.items())


def phone_socket(server: PalabreServer, code: str, cookie: str) -> socketio.Client:
    """A joined phone's live connection (python-socketio's client, over WebSocket)."""
    client = socketio.Client(reconnection=False)
    client.connect(
        server.url,
        headers={"Cookie": cookie},
        auth={"session": code, "view": "participant", "last_seq": None},
        transports=["websocket"],
        wait_timeout=20,
    )
    return client


class RawSocket:
    """One Socket.IO connection spoken by hand: it never answers pings and never leaves."""

    def __init__(self, server: PalabreServer, code: str, cookie: str):
        self.ws = websocket.create_connection(
            f"ws://{HOST}:{server.port}/socket.io/?EIO=4&transport=websocket",
            header=[f"Cookie: {cookie}"],
            timeout=20,
        )
        opening = self.ws.recv()
        assert opening.startswith("0"), opening
        self.ws.send("40" + json.dumps({"session": code, "view": "participant"}))
        self.answer = self.ws.recv()

    @property
    def accepted(self) -> bool:
        return self.answer.startswith("40")

    def closed_by_server(self, wait_s: float) -> bool:
        """Whether the server disconnects this socket within ``wait_s`` seconds."""
        self.ws.settimeout(wait_s)
        try:
            while True:
                message = self.ws.recv()
                if not message or message.startswith("41") or message == "1":
                    return True
        except websocket.WebSocketTimeoutException:
            return False
        except (websocket.WebSocketConnectionClosedException, OSError):
            return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        self.ws.shutdown()  # close() leaves the socket open once the server has closed
