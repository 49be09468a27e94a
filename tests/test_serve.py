"""``palabre serve`` on a laptop: nothing lost, nothing leaked, nothing held forever.

Each test runs the real server in a child process (see ``tests/serving.py``).
"""

from __future__ import annotations

import contextlib
import json
import re
import resource
import shutil
import signal
import socket
import sqlite3
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import websocket

from .serving import HOST, Facilitator, PalabreServer, RawSocket, join, palabre, phone_socket

HEADER_TIMEOUT_S = 2
PING_INTERVAL_S = PING_TIMEOUT_S = 1


def note(client, body: str) -> dict:
    return client.call("contribute", {"cid": uuid.uuid4().hex, "kind": "note", "body": body})


def bodies(database) -> set[str]:
    """The contributions' texts in a database file, read by SQLite alone."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return {row[0] for row in connection.execute("SELECT body FROM contribution")}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the tests that do not stop it, started under a low soft file limit."""
    hard = min(4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    with PalabreServer(
        tmp_path_factory.mktemp("serve"),
        file_limit=(256, hard),
        REQUEST_HEADER_TIMEOUT=HEADER_TIMEOUT_S,
        SOCKET_PING_INTERVAL=PING_INTERVAL_S,
        SOCKET_PING_TIMEOUT=PING_TIMEOUT_S,
    ) as server:
        server.hard_file_limit = hard
        yield server


def test_open_file_limit_is_raised_to_the_hard_limit(server):
    limits = Path(f"/proc/{server.process.pid}/limits").read_text().splitlines()
    line = next(line for line in limits if line.startswith("Max open files"))
    soft, hard = (int(value) for value in line.split()[3:5])
    assert soft == hard == server.hard_file_limit


@pytest.mark.parametrize(
    "sent",
    [b"GET /j/ABC", b"GET / HTTP/1.1\r\nHost: palabre\r\nAccept: text/"],
    ids=["part of a request line", "part of the headers"],
)
def test_a_half_open_connection_is_closed_after_the_header_timeout(server, sent):
    with socket.create_connection((HOST, server.port)) as connection:
        connection.sendall(sent)
        connection.settimeout(HEADER_TIMEOUT_S + 10)
        started = time.monotonic()
        answer = connection.recv(1024)
        waited = time.monotonic() - started
        # The server closed its side: nothing more arrives.
        assert connection.recv(1024) == b""
    assert answer in (b"",) or answer.startswith(b"HTTP/1.1 400")
    assert HEADER_TIMEOUT_S - 0.5 <= waited <= HEADER_TIMEOUT_S + 5


def test_an_idle_keep_alive_connection_is_closed(server):
    with socket.create_connection((HOST, server.port)) as connection:
        connection.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        connection.settimeout(HEADER_TIMEOUT_S + 10)
        response = b""
        while b"</html>" not in response:
            response += connection.recv(65536)
        started = time.monotonic()
        assert connection.recv(1024) == b""
        assert time.monotonic() - started <= HEADER_TIMEOUT_S + 5


def test_a_socket_that_stops_answering_pings_is_dropped(server):
    live = websocket.create_connection(
        f"ws://{HOST}:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=20
    )
    started = time.monotonic()
    handshake = json.loads(live.recv()[1:])
    assert handshake["pingInterval"] == PING_INTERVAL_S * 1000
    assert handshake["pingTimeout"] == PING_TIMEOUT_S * 1000
    received = []
    try:
        with contextlib.suppress(websocket.WebSocketConnectionClosedException):
            while message := live.recv():  # pings ("2"), never answered
                received.append(message)
    finally:
        live.shutdown()
    assert "2" in received
    assert time.monotonic() - started <= PING_INTERVAL_S + PING_TIMEOUT_S + 5


def test_malformed_requests_leave_no_client_address_in_the_log(server):
    """gevent's own error log writes ``(from ('127.0.0.1', port))`` and the socket."""
    garbage = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"NOT A REQUEST\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ]
    for payload in garbage:
        with socket.create_connection((HOST, server.port), timeout=10) as connection:
            connection.sendall(payload)
            assert connection.recv(1024).startswith(b"HTTP/1.1 400")
    deadline = time.monotonic() + 10
    while "Invalid Content-Length" not in server.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.stderr()
    assert "Invalid HTTP method" in log and "Invalid Content-Length" in log  # they were logged
    assert HOST not in log and "raddr" not in log


@pytest.mark.sqlite_only("checkpoints SQLite's WAL into the database file")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_once_stopped_the_database_file_alone_holds_everything(tmp_path, signum):
    server = PalabreServer(tmp_path / "instance")
    with server:
        with Facilitator(server) as facilitator:
            code = facilitator.live_cafe()
        cookie = join(server, code)
        phone = phone_socket(server, code, cookie)
        assert note(phone, "A library open on Sundays")["ok"]
        phone.disconnect()
        # Stopped in the middle of the session, with a phone still connected.
        still_connected = RawSocket(server, code, cookie)
        try:
            assert still_connected.accepted
            started = time.monotonic()
            assert server.stop(signum) == 0
            assert time.monotonic() - started < 15
        finally:
            still_connected.close()
    assert "Everything is saved" in server.output()
    alone = tmp_path / "copied" / "palabre.db"
    alone.parent.mkdir()
    shutil.copyfile(server.database, alone)  # without palabre.db-wal
    assert bodies(alone) == {"A library open on Sundays"}


@pytest.mark.sqlite_only("palabre backup and restore copy an SQLite file (PostgreSQL: pg_dump)")
def test_backup_while_serving_and_restore_once_stopped(tmp_path):
    server = PalabreServer(tmp_path / "instance")
    backup = tmp_path / "backups" / "before-round-2.db"
    backup.parent.mkdir()
    with server:
        with Facilitator(server) as facilitator:
            code = facilitator.live_cafe()
        phone = phone_socket(server, code, join(server, code))
        assert note(phone, "Round 1: more evening classes")["ok"]
        made = palabre("backup", str(backup), env=server.env)
        assert made.returncode == 0, made.stderr
        assert "1 contributions" in made.stdout
        assert note(phone, "Round 2: a crèche during classes")["ok"]
        refused = palabre("restore", str(backup), env=server.env)
        assert refused.returncode != 0
        assert "a Palabre server is using" in refused.stderr and "Stop it first" in refused.stderr
        phone.disconnect()
        assert server.stop() == 0

    assert bodies(backup) == {"Round 1: more evening classes"}
    restored = palabre("restore", str(backup), env=server.env)
    assert restored.returncode == 0, restored.stderr
    assert bodies(server.database) == {"Round 1: more evening classes"}
    kept = [p for p in server.instance.glob("palabre.db.replaced-*") if not p.name.endswith("-wal")]
    assert len(kept) == 1 and kept[0].name in restored.stdout
    assert bodies(kept[0]) == {"Round 1: more evening classes", "Round 2: a crèche during classes"}
    # The restored instance serves again, with what the backup held.
    with PalabreServer(server.instance) as again:
        assert again.stop() == 0
    assert bodies(server.database) == {"Round 1: more evening classes"}


@pytest.mark.sqlite_only("palabre restore replaces an SQLite file")
def test_restore_refuses_what_is_not_a_palabre_database(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    env = PalabreServer(instance).env
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:
        connection.execute("CREATE TABLE recipe (name TEXT)")
    for candidate, reason in [
        (text, "is not an SQLite database"),
        (other, "is not a Palabre database"),
        (tmp_path / "missing.db", "does not exist"),
    ]:
        result = palabre("restore", str(candidate), env=env)
        assert result.returncode != 0
        assert f"Nothing was restored: {candidate} {reason}" in result.stderr
    assert not (instance / "palabre.db").exists()


def _damaged_database(path):
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE contribution (body TEXT)")
        connection.executemany(
            "INSERT INTO contribution VALUES (?)", [("x" * 500,) for _ in range(200)]
        )
        connection.commit()
    with open(path, "r+b") as file:
        file.seek(4096 * 3)
        file.write(b"\xff" * 4096)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda path: path.write_bytes(b""), "is empty (0 bytes)"),
        (
            lambda path: path.write_bytes(b"PK\x03\x04" + b"\x00" * 5000),
            "is not an SQLite database",
        ),
        (_damaged_database, "is damaged"),
    ],
    ids=["empty", "not sqlite", "damaged"],
)
@pytest.mark.sqlite_only("checks an SQLite database file")
def test_serve_refuses_an_unusable_database_file(tmp_path, make, reason):
    instance = tmp_path / "instance"
    instance.mkdir()
    database = instance / "palabre.db"
    make(database)
    before = database.read_bytes()
    result = palabre("serve", "--host", HOST, "--port", "9", env=PalabreServer(instance).env)
    assert result.returncode == 1
    assert f"the database file {database} {reason}" in result.stderr
    assert "palabre restore BACKUP_FILE" in result.stderr
    assert database.read_bytes() == before  # left as it was, for someone to recover


def test_served_on_loopback_without_a_base_url_it_warns_and_encodes_an_address_that_answers(
    tmp_path,
):
    """``scripts/run --host 127.0.0.1`` as the README has it: the QR must not point elsewhere."""
    server = PalabreServer(tmp_path)
    del server.env["PALABRE_BASE_URL"]
    with server, Facilitator(server) as facilitator:
        code = facilitator.live_cafe()
        run_page = facilitator.browser.get(server.url + "/sessions/", timeout=30)
        session_page = re.search(r'href="(/sessions/\d+)"', run_page.text).group(1)
        page = facilitator.browser.get(server.url + session_page, timeout=30).text
        join_url = f"{server.url}/j/{code}"
        assert join_url in page
        with urllib.request.urlopen(join_url, timeout=10) as answer:
            assert answer.status == 200
        host_links = re.findall(r'class="role-link-url" href="([^"]+)"', page)
        assert host_links and all(link.startswith(server.url + "/") for link in host_links)
    assert f"Phones join at {server.url}/" in server.output()
    assert "listens on 127.0.0.1 only" in server.stderr()
    assert "--host 0.0.0.0" in server.stderr()


def test_several_workers_need_postgresql_and_a_message_queue(tmp_path):
    """On SQLite, or without Redis between them, ``--workers`` refuses to start, saying why."""
    instance = tmp_path / "instance"
    instance.mkdir()
    env = PalabreServer(instance).env
    result = palabre("serve", "--host", HOST, "--port", "9", "--workers", "2", env=env)
    assert result.returncode == 1
    assert "Several workers need a PostgreSQL database" in result.stderr
    assert "docs/deploy.md" in result.stderr
