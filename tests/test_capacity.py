"""Capacity limits: one browser or one script cannot fill the room's server.

Sockets are capped per participant and per facilitator (the oldest goes),
joins per session, QR images and typed codes per browser and overall. The
last test runs the real server: one cookie opens hundreds of sockets, and
30 other phones still connect and write.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import close_app, csrf_token, join, make_app
from .serving import Facilitator, PalabreServer, RawSocket, phone_socket
from .serving import join as join_over_http


@pytest.fixture
def app(tmp_path):
    """The suite's app with small limits, so that tests reach them quickly."""
    app = make_app(
        tmp_path,
        SERVER_NAME="palabre.test",
        SOCKETS_PER_PARTICIPANT=2,
        SOCKETS_PER_FACILITATOR=3,
        RATE_LIMIT_JOINS="2/minute",
        RATE_LIMIT_QR_PER_BROWSER="3/minute",
        RATE_LIMIT_QR_OVERALL="5/minute",
        RATE_LIMIT_CODES_PER_BROWSER="2/minute",
        RATE_LIMIT_CODES_OVERALL="3/minute",
    )
    yield app
    close_app(app)


def test_a_participant_keeps_only_their_newest_sockets(app, make_cafe, socket_client):
    code = make_cafe()
    phone, neighbour = app.test_client(), app.test_client()
    join(phone, code)
    join(neighbour, code)
    other = socket_client(neighbour, code=code)
    tabs = [socket_client(phone, code=code) for _ in range(4)]
    assert [tab.is_connected() for tab in tabs] == [False, False, True, True]
    assert other.is_connected()  # another participant's socket is not theirs to count
    newest = tabs[-1].emit(
        "contribute", {"cid": uuid.uuid4().hex, "kind": "note", "body": "Still here"}, callback=True
    )
    assert newest["ok"]


def test_a_facilitator_has_a_cap_of_their_own(app, client, auth, make_cafe, socket_client):
    code = make_cafe()
    auth.login()
    screens = [socket_client(client, view="facilitator", code=code) for _ in range(3)]
    projector = socket_client(client, view="projector", code=code)
    assert [s.is_connected() for s in [*screens, projector]] == [False, True, True, True]


def test_joins_per_session_are_limited_with_a_page_that_says_so(app, make_cafe):
    code, other_code = make_cafe(), make_cafe()
    for _ in range(2):
        join(app.test_client(), code)
    late = app.test_client()
    page = late.get(f"/j/{code}")
    refused = late.post(f"/j/{code}", data={"csrf_token": csrf_token(page), "language": "en"})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    assert "Many people are joining at once" in refused.text
    assert 'name="language"' in refused.text  # the form is still there to tap again
    # The limit is per session: another café in the same building is not affected.
    join(app.test_client(), other_code)


@pytest.mark.parametrize(
    "language, wait", [("fr", "Attendez quelques secondes"), ("ar", "انتظر بضع ثوانٍ")]
)
def test_the_join_limit_page_speaks_the_language_just_chosen(app, make_cafe, language, wait):
    code = make_cafe()
    for _ in range(2):
        join(app.test_client(), code)
    late = app.test_client()
    page = late.get(f"/j/{code}")
    refused = late.post(f"/j/{code}", data={"csrf_token": csrf_token(page), "language": language})
    assert refused.status_code == 429
    assert wait in refused.text


def test_qr_codes_are_limited_per_browser_and_overall(app, make_cafe):
    code = make_cafe()
    screen, poster_printer = app.test_client(), app.test_client()
    answers = [screen.get(f"/s/{code}/qr.svg").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    # Another browser gets its own allowance within the overall one (5), which the
    # refused request above did not use up.
    answers = [poster_printer.get(f"/s/{code}/qr.png").status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    refused = poster_printer.get(f"/s/{code}/qr.png")
    assert refused.headers["Retry-After"] == "60"
    assert "Wait a minute" in refused.text


def test_typed_codes_are_limited_per_browser(app, make_cafe):
    code = make_cafe()
    phone = app.test_client()
    answers = []
    for _ in range(3):
        page = phone.get("/")
        answers.append(phone.post("/", data={"csrf_token": csrf_token(page), "code": code.lower()}))
    assert [a.status_code for a in answers] == [302, 302, 429]
    assert "Many codes were typed in this browser" in answers[-1].text


def test_typed_codes_are_limited_overall(app, make_cafe):
    """A script that drops its cookie looks like a new browser each time."""
    code = make_cafe()
    answers = []
    for _ in range(4):
        fresh = app.test_client()
        page = fresh.get("/")
        answers.append(fresh.post("/", data={"csrf_token": csrf_token(page), "code": code}))
    assert [a.status_code for a in answers] == [302, 302, 302, 429]


ABUSIVE_SOCKETS = 400
PHONES = 30
CAP = 4


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_one_cookie_cannot_lock_out_the_room(tmp_path: Path):
    """400 idle sockets from one cookie, on a server allowed 512 open files.

    Before the cap, about 506 such sockets stopped a laptop accepting phones.
    Now the cookie keeps its newest 4, the server's open files stay few, and
    30 other phones connect and have every note acknowledged.
    """
    server = PalabreServer(
        tmp_path / "instance", file_limit=(512, 512), SOCKETS_PER_PARTICIPANT=CAP
    )
    with server:
        with Facilitator(server) as facilitator:
            code = facilitator.live_cafe()
        abuser = join_over_http(server, code)
        with ThreadPoolExecutor(8) as pool:
            cookies = list(pool.map(lambda _: join_over_http(server, code), range(PHONES)))
        files_before = _open_files(server.process.pid)

        abusive = []
        try:
            abusive.extend(RawSocket(server, code, abuser) for _ in range(ABUSIVE_SOCKETS))
            assert all(raw.accepted for raw in abusive)
            still_open = [raw for raw in abusive if not raw.closed_by_server(wait_s=0.5)]
            assert len(still_open) <= CAP
            # Each WebSocket holds two files; the closed ones' are given back.
            assert _files_settle(server.process.pid, files_before + 2 * CAP + 10)

            with ThreadPoolExecutor(PHONES) as pool:
                acks = list(
                    pool.map(lambda cookie: _connect_and_write(server, code, cookie), cookies)
                )
            assert [ack["ok"] for ack in acks] == [True] * PHONES
        finally:
            for raw in abusive:
                raw.close()


def _files_settle(pid: int, at_most: int, within_s: float = 10) -> bool:
    """Whether process ``pid`` comes down to ``at_most`` open files within ``within_s``."""
    deadline = time.monotonic() + within_s
    while _open_files(pid) > at_most:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _connect_and_write(server: PalabreServer, code: str, cookie: str) -> dict:
    """A phone connects, sends one note and returns its acknowledgement."""
    phone = phone_socket(server, code, cookie)
    try:
        return phone.call(
            "contribute",
            {"cid": uuid.uuid4().hex, "kind": "note", "body": "We need a crèche"},
            timeout=30,
        )
    finally:
        phone.disconnect()
