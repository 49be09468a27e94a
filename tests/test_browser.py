"""End to end in headless Chromium against a real `palabre serve`.

A facilitator signs in, creates and runs a café; two phones join by the join
URL, choose tables and post notes that appear on the projector; the
facilitator moves through the rounds and the harvest; the harvest PDF holds
the notes.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import websocket
from pypdf import PdfReader

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EMAIL, PASSWORD = "facilitator@example.org", "a long enough password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def palabre(*args, env, **kwargs):
    command = [sys.executable, "-c", "from core.cli import main; main()", *args]
    return subprocess.Popen(command, env=env, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real Palabre server on loopback, with one facilitator account."""
    port = free_port()
    instance = tmp_path_factory.mktemp("instance")
    env = {
        **os.environ,
        "PALABRE_INSTANCE": str(instance),
        "PALABRE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    log = open(instance / "server.log", "w+")  # noqa: SIM115 (closed below)
    process = palabre(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"palabre serve did not start:\n{log.read()}")
            time.sleep(0.3)
    created = palabre("create-facilitator", EMAIL, "--password", PASSWORD, env=env)
    assert created.wait(timeout=60) == 0
    yield base
    process.terminate()
    process.wait(timeout=20)
    log.seek(0)
    server_log = log.read()
    log.close()
    # Nothing that identifies a visitor is logged.
    assert "127.0.0.1 - -" not in server_log and "Mozilla" not in server_log


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: scripts/setup --test installs it")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def phone(browser, url):
    context = browser.new_context(viewport={"width": 390, "height": 800}, is_mobile=True)
    page = context.new_page()
    page.goto(url)
    return page


def signed_in_facilitator(browser, server):
    page = browser.new_context().new_page()
    page.goto(server + "/auth/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    return page


def advance(facilitator, to: str) -> None:
    """Move to the next phase and wait until the facilitator's screen shows it."""
    facilitator.click("[data-next-phase]")
    facilitator.wait_for_selector(f".plan li.current button:has-text('{to}')")


def test_a_world_cafe_from_qr_scan_to_printed_harvest(server, browser):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Café on the intercultural plan")
    facilitator.fill("input[name=config-tables]", "2")
    facilitator.fill(
        "textarea[name=config-questions]",
        "What helped you when you arrived?\nWhat should the city change?",
    )
    facilitator.check("input[name=languages][value=fr]")
    facilitator.check("input[name=config-assignment][value=choose]")
    facilitator.click("form [type=submit]:not(.link)")
    facilitator.wait_for_url(re.compile(r"/sessions/\d+$"))
    run_url = facilitator.url
    facilitator.click("text=Open the session")
    code = facilitator.locator(".join-code strong").first.inner_text().strip()

    projector = browser.new_context(storage_state=facilitator.context.storage_state()).new_page()
    projector.goto(run_url + "/projector")
    assert code in projector.content()

    amina = phone(browser, f"{server}/j/{code}")
    amina.check("input[name=language][value=en]")
    amina.check("input[name=group][value='1']")
    amina.click("button[type=submit], input[type=submit]")
    jonas = phone(browser, f"{server}/j/{code}")
    jonas.check("input[name=language][value=fr]")
    jonas.check("input[name=group][value='2']")
    jonas.click("button[type=submit], input[type=submit]")
    assert jonas.locator("html").get_attribute("lang") == "fr"

    # Round 1: phones reload by themselves when the facilitator moves on.
    advance(facilitator, "Round 1")
    amina.wait_for_selector("text=What helped you when you arrived?")
    projector.wait_for_selector("text=What helped you when you arrived?")
    amina.fill("textarea[name=body]", "The library's <b>free</b> language café")
    amina.click(".note-form [type=submit]")
    projector.wait_for_selector("text=The library's <b>free</b> language café")
    jonas.wait_for_selector("textarea[name=body]")
    jonas.fill("textarea[name=body]", "Des horaires du soir à la mairie")
    jonas.click(".note-form [type=submit]")
    projector.wait_for_selector("text=Des horaires du soir à la mairie")
    facilitator.wait_for_selector("text=Des horaires du soir à la mairie")
    # Table 2's note did not reach table 1.
    assert "Des horaires du soir" not in amina.content()

    # Round 2, then the harvest.
    advance(facilitator, "Round 2")
    amina.wait_for_selector("text=What should the city change?")
    amina.fill("textarea[name=body]", "Interpreters at the town hall")
    amina.click(".note-form [type=submit]")
    projector.wait_for_selector("text=Interpreters at the town hall")
    advance(facilitator, "Harvest")
    amina.locator("details.insight-form summary").click()
    amina.fill("textarea[name=body]", "One desk for all newcomer questions")
    amina.click("details.insight-form [type=submit]")
    jonas.wait_for_selector("text=One desk for all newcomer questions")
    jonas.locator(".vote-form button").first.click()
    projector.wait_for_selector(".insights [data-votes='1']")

    # Into the backlog, then the printed harvest.
    facilitator.goto(run_url.replace("/sessions/", "/backlog/from-session/"))
    facilitator.check("input[name=take-0]")
    facilitator.click("form [type=submit]:not(.link)")
    facilitator.wait_for_selector("text=One desk for all newcomer questions")
    report_url = run_url.replace("/sessions/", "/print/sessions/") + "/report.pdf"
    report = facilitator.request.get(report_url)
    assert report.ok and report.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(report.body())).pages)
    for expected in (
        "The library's <b>free</b> language café",
        "Des horaires du soir à la mairie",
        "Interpreters at the town hall",
        "One desk for all newcomer questions",
    ):
        assert expected in " ".join(text.split())


def test_phone_offline_keeps_its_note_and_sends_it_later(server, browser):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Weak Wi-Fi café")
    facilitator.fill("input[name=config-tables]", "1")
    facilitator.click("form [type=submit]:not(.link)")
    facilitator.wait_for_url(re.compile(r"/sessions/\d+$"))
    facilitator.click("text=Open the session")
    code = facilitator.locator(".join-code strong").first.inner_text().strip()
    amina = phone(browser, f"{server}/j/{code}")
    amina.click("button[type=submit], input[type=submit]")
    advance(facilitator, "Round 1")
    amina.wait_for_selector(".note-form")
    amina.wait_for_function("document.documentElement.classList.contains('live-connected')")

    amina.context.set_offline(True)
    amina.evaluate("window.palabreLive.socket.io.engine.close()")
    amina.fill("textarea[name=body]", "Sent from the basement")
    amina.click(".note-form [type=submit]")
    assert "Sent from the basement" in amina.evaluate("JSON.stringify(localStorage)")
    amina.context.set_offline(False)
    facilitator.wait_for_selector("text=Sent from the basement", timeout=30000)
    amina.wait_for_function("!JSON.stringify(localStorage).includes('Sent from the basement')")


def test_sockets_from_another_origin_are_refused(server):
    url = server.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, origin="http://evil.example", timeout=5)
    same = websocket.create_connection(url, origin=server, timeout=5)
    assert same.recv().startswith("0{")  # Engine.IO open packet
    same.close()
