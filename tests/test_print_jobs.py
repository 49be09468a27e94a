"""The backlog's documents printed by a background job: queries, worker, progress, cache.

The PDF's text is read with ``pdftotext``, as a council officer's tools would.
Jobs run in a thread here (in a greenlet under ``palabre serve``); the
room test in tests/test_room_printing.py prints while phones write.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
from flask_babel import force_locale
from sqlalchemy import event

from palabre import printing
from palabre.backlog import create_need
from palabre.database import write_transaction
from palabre.extensions import db
from palabre.models import (
    Action,
    ActionStatus,
    ActionUpdate,
    Contribution,
    CustomTheme,
    Need,
    NeedSource,
    Session,
    Stakeholder,
)
from palabre.pdf_worker import __file__ as WORKER_FILE
from palabre.policy_cycle import action_plan_context, monitoring_context
from palabre.print_jobs import print_jobs
from palabre.render_pool import PrintError, Rendered
from palabre.testing.large_backlog import fill_backlog

from .test_printing import assert_no_personal_data, make_cafe

JOB_WAIT_S = 120


# --- helpers -------------------------------------------------------------------------------------


PLAN = "/backlog/action-plan.pdf"
MONITORING = "/backlog/monitoring.pdf?since=2025-01-01"


def start_print(client, url: str = PLAN) -> str:
    """Ask for the plan; the job page's address (the plan is not ready yet)."""
    response = client.get(url)
    assert response.status_code == 303, response.status_code
    return response.headers["Location"]


def job_state(client, job_url: str) -> dict:
    response = client.get(job_url + ".json")
    assert response.status_code == 200
    return response.get_json()


def wait_for_job(client, job_url: str) -> dict:
    deadline = time.monotonic() + JOB_WAIT_S
    while time.monotonic() < deadline:
        state = job_state(client, job_url)
        if state["done"] or state["failed"]:
            return state
        time.sleep(0.05)
    raise AssertionError(f"the print job did not end within {JOB_WAIT_S} s: {state}")


def print_plan(client, url: str = PLAN) -> bytes:
    """The plan's PDF, through its job."""
    state = wait_for_job(client, start_print(client, url))
    assert state["done"], state
    response = client.get(state["pdf_url"])
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    return response.data


def pdftotext(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "plan.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
    )
    return done.stdout.decode()


def flat(text: str) -> str:
    return " ".join(text.split())


class FakeRenderer:
    """Stands in for WeasyPrint: reports pages laid out, waits when told, returns a PDF."""

    def __init__(self, pages: int = 4):
        self.pages = pages
        self.calls: list[str] = []
        self.hold = threading.Event()
        self.hold.set()
        self.laid_out_half = threading.Event()

    def __call__(self, html: str, base_url: str, progress) -> Rendered:
        self.calls.append(html)
        progress("parse", None)
        for page in range(1, self.pages + 1):
            progress("layout", page)
            if page == self.pages // 2:
                self.laid_out_half.set()
                assert self.hold.wait(JOB_WAIT_S)
        progress("pdf", None)
        return Rendered(b"%PDF-1.7 fake " + str(len(self.calls)).encode(), self.pages, 0.1, 60.0)


@pytest.fixture
def renderer(monkeypatch) -> FakeRenderer:
    fake = FakeRenderer()
    monkeypatch.setattr(printing, "_render_job", fake)
    return fake


def statements_while(app, action) -> list[str]:
    """The SQL queries (``SELECT`` statements) run while ``action()`` runs."""
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            action()
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    return seen


# --- the HTML: a constant, small number of queries -----------------------------------------------


@pytest.mark.parametrize("theme", ["", "housing"])
def test_the_plan_is_read_in_a_few_queries_whatever_its_size(app, theme):
    """The plan's context and HTML, as its job builds them: no lazy loading from the template."""

    def build_in_context():
        with app.test_request_context(), force_locale("en"):
            html = printing.document_html(
                "print/action_plan.html", "action-plan", **action_plan_context(theme)
            )
        assert "Appendix B: every action in detail" in html

    with app.app_context():
        fill_backlog(needs=30, actions=10, sessions=3, seed=1)
    small = statements_while(app, build_in_context)
    with app.app_context():
        fill_backlog(needs=600, actions=180, sessions=12, seed=2)
    large = statements_while(app, build_in_context)
    assert len(large) == len(small) <= 15, large


# --- the worker: WeasyPrint and nothing of Palabre -----------------------------------------------


def test_the_pdf_worker_imports_weasyprint_and_nothing_of_the_app():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-I", WORKER_FILE],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ready = json.loads(done.stdout.splitlines()[0])["ready"]
    assert ready["import_s"] > 0
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "weasyprint" in imported
    assert not imported & {"palabre", "flask", "sqlalchemy", "jinja2", "gevent", "werkzeug"}


@pytest.mark.pdf
def test_a_warm_worker_reports_each_page_and_renders_again(app):
    html = "<html><body>" + "<p>Line of the plan.</p>" * 400 + "</body></html>"
    seen = []
    with app.app_context():
        first = printing.render_pdf(html, lambda step, page: seen.append((step, page)))
        pool = printing.render_pool()
        workers = [worker.pid for worker in pool._idle]
        again = printing.render_pdf(html)
        assert [worker.pid for worker in pool._idle] == workers  # the same warm process
    assert first.pdf.startswith(b"%PDF") and again.pages == first.pages > 1
    assert 20 < first.rss_mb < 1000  # its own memory, not the server's it was forked from
    pages = [page for step, page in seen if step == "layout"]
    assert pages[: first.pages] == list(range(1, first.pages + 1))
    assert [step for step, _ in seen][-1] == "pdf"


@pytest.mark.pdf
def test_a_render_past_its_time_is_stopped_and_the_next_one_prints(app):
    long = "<html><body>" + "<p>A long plan.</p>" * 20000 + "</body></html>"
    with app.app_context():
        with pytest.raises(PrintError, match="worker stopped"):
            printing.render_pdf(long, timeout=0.5)
        assert printing.html_to_pdf("<p>Still here</p>").startswith(b"%PDF")


# --- jobs: progress, result ----------------------------------------------------------------------


def test_a_print_job_shows_its_progress_then_its_pdf(app, client, auth, renderer):
    make_cafe(app)
    auth.login()
    renderer.hold.clear()
    job_url = start_print(client)
    assert renderer.laid_out_half.wait(JOB_WAIT_S)

    state = job_state(client, job_url)
    assert not state["done"] and not state["failed"]
    assert state["step"] == "layout" and state["page"] == 2
    assert "Laying out page 2" in state["message"]
    # The page works without JavaScript: it refreshes itself and can be reloaded.
    page = client.get(job_url).text
    assert '<noscript><meta http-equiv="refresh"' in page
    assert "Laying out page 2" in page and f'href="{job_url}"' in page
    assert "/static/print_job.js" in page and "<script>" not in page
    # A second facilitator asking meanwhile joins the same job.
    assert start_print(client) == job_url
    assert client.get(job_url + "/document.pdf").status_code == 303

    renderer.hold.set()
    state = wait_for_job(client, job_url)
    assert state["done"] and state["percent"] == 100 and state["pages"] == renderer.pages
    assert "4 pages" in state["message"]
    page = client.get(job_url).text
    assert "refresh" not in page and state["pdf_url"] in page
    pdf = client.get(state["pdf_url"])
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-1.7 fake")
    assert len(renderer.calls) == 1


def test_a_failed_job_says_so_and_offers_to_try_again(app, client, auth, monkeypatch):
    def broken(html, base_url, progress):
        raise PrintError("the worker stopped")

    monkeypatch.setattr(printing, "_render_job", broken)
    auth.login()
    job_url = start_print(client)
    state = wait_for_job(client, job_url)
    assert state["failed"] and not state["done"]
    assert "Printing failed" in state["message"]
    assert 'href="/backlog/action-plan.pdf?' in client.get(job_url).text
    # The monitoring report prints through the same jobs.
    assert "Printing failed" in wait_for_job(client, start_print(client, MONITORING))["message"]
    assert client.get("/print/jobs/unknown").status_code == 404


def test_print_jobs_are_for_facilitators(app, client):
    assert client.get("/print/jobs/anything").status_code == 302


# --- the cache: kept until the backlog changes ---------------------------------------------------


def test_the_plan_is_kept_until_the_backlog_changes(app, client, auth, renderer):
    session_id = make_cafe(app)
    auth.login()
    first = print_plan(client)
    # Asked again: the same PDF at once, no job.
    again = client.get("/backlog/action-plan.pdf")
    assert again.status_code == 200 and again.data == first
    assert len(renderer.calls) == 1
    # Each theme (and each language) is a document of its own.
    housing = print_plan(client, "/backlog/action-plan.pdf?theme=housing")
    assert housing != first and len(renderer.calls) == 2

    def reprinted() -> bool:
        response = client.get("/backlog/action-plan.pdf")
        if response.status_code == 200:
            return False
        state = wait_for_job(client, response.headers["Location"])
        assert state["done"]
        return True

    # Live writes that the plan does not show leave it as it is ...
    with app.test_request_context(), write_transaction():
        session = db.session.get(Session, session_id)
        session.seq += 1
        db.session.add(
            Contribution(
                session_id=session_id, client_id="c-1", kind="note", phase_index=1, body="Hi"
            )
        )
    assert not reprinted()
    # ... any backlog write, however made, prints it anew.
    writes = [
        lambda: create_need("Interpreters at the job centre"),
        lambda: _in_write(lambda: _first(Need).__setattr__("title", "Renamed need")),
        lambda: _in_write(lambda: _first(Action).__setattr__("status", ActionStatus.DONE)),
        lambda: _in_write(lambda: db.session.add(ActionUpdate(action_id=1, body="Started"))),
        lambda: _in_write(lambda: _first(NeedSource).__setattr__("dots", 9)),
        lambda: _in_write(lambda: _first(Stakeholder).__setattr__("name", "Housing office")),
        lambda: _in_write(_add_a_partner),
        lambda: _in_write(lambda: db.session.add(CustomTheme(key="sport", label="Sport"))),
        lambda: _in_write(lambda: _first(Action).__setattr__("needs", [])),
        lambda: _in_write(
            lambda: db.session.execute(db.update(Need).values(theme="work")),
        ),
        lambda: _in_write(lambda: db.session.get(Session, session_id).__setattr__("title", "New")),
        lambda: _committed(lambda: db.session.delete(_first(ActionUpdate))),
    ]
    for number, write in enumerate(writes):
        with app.test_request_context():
            write()
        assert reprinted(), f"write {number} did not make the plan print anew"
        assert not reprinted()
    assert len(renderer.calls) == 2 + len(writes)


def _first(model):
    return db.session.scalars(db.select(model).order_by(model.id)).first()


def _add_a_partner() -> None:
    action = _first(Action)
    action.partners = [*action.partners, Stakeholder(name="Red Cross")]


def _in_write(change) -> None:
    with write_transaction():
        change()


def _committed(change) -> None:
    change()
    db.session.commit()


def test_a_write_while_printing_leaves_that_pdf_unused(app, client, auth, renderer):
    make_cafe(app)
    auth.login()
    renderer.hold.clear()
    job_url = start_print(client)
    assert renderer.laid_out_half.wait(JOB_WAIT_S)
    with app.test_request_context():
        create_need("Written while the plan printed")
    renderer.hold.set()
    assert wait_for_job(client, job_url)["done"]
    # The PDF printed lacks the new need: the next ask prints anew.
    assert client.get("/backlog/action-plan.pdf").status_code == 303


def test_old_pdfs_are_deleted_when_a_new_one_is_stored(app, client, auth, renderer):
    auth.login()
    print_plan(client)
    with app.test_request_context():
        create_need("A need")
    print_plan(client)
    folder = print_jobs(app).folder
    assert len(list(folder.glob("action-plan-en-all.*.pdf"))) == 1


# --- the PDF itself ------------------------------------------------------------------------------


@pytest.mark.pdf
def test_the_plan_pdf_summary_then_appendices(app, client, auth, tmp_path):
    make_cafe(app)
    with app.test_request_context():
        create_need("مترجمون في المركز الصحي", theme="health")
    auth.login()
    text = pdftotext(print_plan(client), tmp_path)
    words = flat(text)

    assert "Integration strategy: action plan" in words
    headings = (
        "Summary",
        "Needs by theme",
        "Actions by status",
        "Actions by theme and status",
        "What the plan still lacks",
        "The needs with most support",
        "Every action on one line",
        "Appendix A: every need",
        "Appendix B: every action in detail",
    )
    for heading in headings:
        assert heading in words
    positions = [words.index(heading) for heading in headings]
    assert positions == sorted(positions)
    # The need, its support by kind and provenance; the action's fields.
    assert "Affordable housing for newcomers" in words
    assert "3 dots" in words
    assert "Café on the intercultural plan" in words
    assert "Rental guarantee fund" in words
    assert "Help 50 families rent a first flat" in words
    assert "Families housed within a year" in words
    assert "Housing department" in words
    assert "120,000 EUR" in words
    assert "Sep 1, 2025" in words and "Jun 30, 2026" in words
    assert "Planned" in words
    assert "Needs with no action yet 1" in words
    assert "مترجمون" in text
    assert_no_personal_data(words)


@pytest.mark.pdf
def test_three_hundred_actions_fit_a_few_pages_of_one_line_each_before_the_appendices(
    app, client, auth, tmp_path
):
    """The council reads a summary and an overview; the detail of each action is an appendix."""
    with app.app_context():
        fill_backlog(needs=100, actions=300, sessions=8, seed=3)
    auth.login()
    pdf = print_plan(client)
    path = tmp_path / "plan.pdf"
    path.write_bytes(pdf)
    pages = []
    while True:
        done = subprocess.run(
            ["pdftotext", "-f", str(len(pages) + 1), "-l", str(len(pages) + 1), "-enc", "UTF-8"]
            + [str(path), "-"],
            capture_output=True,
        )
        if done.returncode != 0:
            break
        pages.append(flat(done.stdout.decode()))
    appendix_a = next(n for n, page in enumerate(pages) if "Appendix A: every need" in page)
    # The cover, a summary of two pages, then 300 actions at about fifty a page.
    assert appendix_a <= 10, appendix_a
    before = " ".join(pages[:appendix_a])
    assert "Every action on one line" in before and "Actions by theme and status" in before
    for number in (1, 150, 300):
        assert f"A{number} " in before
    assert "Housing · " in before and "In progress" in before and "none yet" in before
    appendix_b = " ".join(pages[appendix_a:])
    assert "Appendix B: every action in detail" in appendix_b
    # The same numbers, in the same order, in the appendix.
    positions = [appendix_b.index(f"A{number} ") for number in (1, 2, 150, 300)]
    assert positions == sorted(positions)


@pytest.mark.pdf
def test_the_plan_can_be_limited_to_one_theme(app, client, auth, tmp_path):
    make_cafe(app)
    with app.test_request_context():
        create_need("Evening classes near the station", theme="language")
    auth.login()
    words = flat(pdftotext(print_plan(client, PLAN + "?theme=language"), tmp_path))
    assert "Theme Language" in words
    assert "Evening classes near the station" in words
    assert "Affordable housing for newcomers" not in words
    assert "Rental guarantee fund" not in words


def test_finished_jobs_are_forgotten_beyond_a_few(app, client, auth, renderer, monkeypatch):
    monkeypatch.setattr("palabre.print_jobs.JOBS_KEPT", 3)
    auth.login()
    pages = []
    for number in range(6):
        with app.test_request_context():
            create_need(f"Need {number}")
        pages.append(start_print(client))
        wait_for_job(client, pages[-1])
    assert [client.get(page).status_code for page in pages] == [404, 404, 200, 200, 200, 200]


# --- the monitoring report -----------------------------------------------------------------------


def test_the_monitoring_report_is_read_in_a_few_queries_whatever_its_size(app):
    from datetime import date

    def build_in_context():
        with app.test_request_context(), force_locale("en"):
            html = printing.document_html(
                "print/monitoring.html", "monitoring", **monitoring_context(date(2025, 6, 1))
            )
        assert "monitoring report" in html

    with app.app_context():
        fill_backlog(needs=30, actions=10, sessions=3, seed=1)
    small = statements_while(app, build_in_context)
    with app.app_context():
        fill_backlog(needs=400, actions=150, sessions=8, seed=2)
    large = statements_while(app, build_in_context)
    assert len(large) == len(small) <= 15, large


@pytest.mark.pdf
def test_the_monitoring_report_shows_what_changed_since_a_date(app, client, auth, tmp_path):
    from datetime import date, datetime

    make_cafe(app)
    with app.app_context():
        old = Need(title="Named long ago", created_at=datetime(2024, 1, 5))
        db.session.add(old)
        action = db.session.scalar(db.select(Action))
        db.session.add(ActionUpdate(action=action, body="First families housed"))
        db.session.add(ActionUpdate(action=action, body="Old news", on_date=date(2024, 2, 1)))
        db.session.commit()
    auth.login()
    words = flat(pdftotext(print_plan(client, MONITORING), tmp_path))
    assert "Integration strategy: monitoring report" in words
    assert "Rental guarantee fund" in words and "First families housed" in words
    assert "Affordable housing for newcomers" in words  # named since
    assert "Old news" not in words and "Named long ago" not in words
    assert_no_personal_data(words)
