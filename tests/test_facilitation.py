"""Running a session as a facilitator: the next step, going back, closing and reopening."""

from __future__ import annotations

import io
import subprocess

import pytest
from sqlalchemy import select

from palabre import phases
from palabre.extensions import db
from palabre.models import Contribution, NeedSource, Session, Status
from palabre.settings import instance_settings, save_settings
from palabre.testing import role_link
from tests.conftest import csrf_token, join, new_cid
from tests.test_printing import make_cafe as make_printed_cafe
from tests.test_printing import page_count, pdf_text

# The café's plan with three questions: 0 welcome, 1-3 rounds, 4 harvest, 5 closed.
CLOSED = 5


def session_by_code(code) -> Session:
    return db.session.scalar(select(Session).where(Session.code == code))


def test_the_run_screen_names_the_current_step_and_offers_next_and_back(
    app, make_cafe, client, auth
):
    code = make_cafe(phase_index=2)
    auth.login()
    with app.app_context():
        session_id = session_by_code(code).id
    page = client.get(f"/sessions/{session_id}").text
    assert "Now</span> <strong>Round 2</strong>" in page
    assert "Next: Round 3" in page and page.count("data-next-phase") == 1
    assert "Back to </span>Round 1" in page
    # Going back is allowed, and phones follow.
    token = csrf_token(client.get(f"/sessions/{session_id}"))
    client.post(f"/sessions/{session_id}/phase", data={"csrf_token": token, "index": 1})
    with app.app_context():
        assert session_by_code(code).phase_index == 1


def test_closing_asks_first_and_a_closed_session_reopens_until_archived(
    app, make_cafe, client, auth
):
    code = make_cafe(phase_index=4)
    phone = app.test_client()
    join(phone, code)
    auth.login()
    with app.app_context():
        session_id = session_by_code(code).id
    run = client.get(f"/sessions/{session_id}").text
    # The closing step is a link to a confirmation page, not a button that closes at once.
    assert f'href="/sessions/{session_id}/close"' in run
    confirm = client.get(f"/sessions/{session_id}/close")
    assert "1 participant will see the thank-you page" in confirm.text
    with app.app_context():
        assert session_by_code(code).status == Status.LIVE

    client.post(f"/sessions/{session_id}/close", data={"csrf_token": csrf_token(confirm)})
    with app.app_context():
        assert session_by_code(code).status == Status.CLOSED
    closed = client.get(f"/sessions/{session_id}")
    assert "Reopen the session" in closed.text
    assert "Thank you!" in phone.get(f"/j/{code}").text

    client.post(f"/sessions/{session_id}/reopen", data={"csrf_token": csrf_token(closed)})
    with app.app_context():
        session = session_by_code(code)
        assert (session.status, session.phase_index, session.closed_at) == (
            Status.LIVE,
            CLOSED - 1,
            None,
        )
    # Phones contribute again.
    page = phone.get(f"/j/{code}")
    assert "Thank you!" not in page.text
    phone.post(
        f"/j/{code}/contribute",
        data={"csrf_token": csrf_token(page), "cid": new_cid(), "kind": "insight", "body": "Back"},
    )
    with app.app_context():
        assert db.session.scalar(select(Contribution.body)) == "Back"

    # Archived, it stays archived.
    with app.test_request_context():
        phases.go_to(session_by_code(code), CLOSED)
    page = client.get(f"/sessions/{session_id}")
    client.post(f"/sessions/{session_id}/archive", data={"csrf_token": csrf_token(page)})
    refused = client.post(
        f"/sessions/{session_id}/reopen",
        data={"csrf_token": csrf_token(page)},
        follow_redirects=True,
    )
    assert "Only a closed session can be reopened." in refused.text
    with app.app_context():
        assert session_by_code(code).status == Status.ARCHIVED


@pytest.mark.pdf
def test_emoji_and_flags_print_in_colour_not_as_empty_boxes(app, client, auth, tmp_path):
    session_id = make_printed_cafe(app)
    auth.login()
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(client.get(f"/print/sessions/{session_id}/report.pdf").data)
    fonts = subprocess.run(["pdffonts", plain], capture_output=True, text=True, check=True).stdout
    # Digits and "#" stay in the text font: the emoji font holds them too (keycaps).
    assert "Noto-Sans" in fonts and "Noto-Color-Emoji" not in fonts
    said = "Merci 🙏 on se tient la main 🤝 fête 🎉 🇫🇷 🇸🇾"
    with app.app_context():
        db.session.add(
            Contribution(
                session_id=session_id,
                client_id=new_cid(),
                kind="note",
                phase_index=1,
                group="1",
                body=said,
            )
        )
        db.session.commit()
    auth.login()
    report = client.get(f"/print/sessions/{session_id}/report.pdf")
    assert report.status_code == 200 and report.mimetype == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(report.data)
    fonts = subprocess.run(["pdffonts", pdf], capture_output=True, text=True, check=True).stdout
    assert "Noto-Color-Emoji" in fonts
    text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True, check=True)
    printed = " ".join(text.stdout.split())
    for emoji in ("🙏", "🤝", "🎉", "🇫🇷", "🇸🇾"):
        assert emoji in printed


def test_a_session_has_a_date_and_the_venue_wifi_and_the_list_shows_them(app, client, auth):
    auth.login()
    form = client.get("/sessions/new/world_cafe")
    assert 'type="datetime-local"' in form.text
    created = client.post(
        "/sessions/new/world_cafe",
        data={
            "csrf_token": csrf_token(form),
            "title": "Café at the library",
            "starts_at": "2026-03-14T18:30",
            "venue": "Biblioteca",
            "wifi_name": "Biblioteca-Libre",
            "wifi_password": "bienvenidos",
            "languages": "en",
            "config-tables": "2",
            "config-questions": "What helps?",
            "config-round_minutes": "20",
            "config-assignment": "assign",
            "config-dots": "3",
        },
    )
    assert created.status_code == 302
    with app.app_context():
        session = db.session.scalar(select(Session))
        assert (session.starts_at.isoformat(), session.wifi_name, session.wifi_password) == (
            "2026-03-14T18:30:00",
            "Biblioteca-Libre",
            "bienvenidos",
        )
    listed = client.get("/sessions/").text
    assert "Mar 14, 2026" in listed and "Draft" in listed
    # Nothing archived: no link to show archived sessions.
    assert "archived" not in listed.lower()
    bad = client.post(
        "/sessions/new/world_cafe",
        data={"csrf_token": csrf_token(form), "title": "x", "starts_at": "soon", "languages": "en"},
    )
    assert bad.status_code == 200 and "Not a valid datetime value." in bad.text


# A 1x1 PNG: the smallest logo there is.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def test_facilitators_set_the_organiser_and_its_logo(app, client, auth):
    auth.login()
    page = client.get("/settings/")
    assert page.status_code == 200
    saved = client.post(
        "/settings/",
        data={
            "csrf_token": csrf_token(page),
            "organiser_name": "Ayuntamiento de Zaragoza",
            "logo": (io.BytesIO(PNG), "logo.png"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Settings saved." in saved.text and 'src="data:image/png;base64,' in saved.text
    refused = client.post(
        "/settings/",
        data={
            "csrf_token": csrf_token(page),
            "organiser_name": "Ayuntamiento de Zaragoza",
            "logo": (io.BytesIO(b"<svg onload='alert(1)'/>"), "logo.svg"),
        },
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400 and "PNG or JPEG" in refused.text
    with app.app_context():
        assert instance_settings()["organiser_logo"].startswith("data:image/png;base64,")
    client.get("/auth/logout")


def test_settings_need_a_signed_in_facilitator(client):
    assert client.get("/settings/").status_code in (302, 401)


@pytest.mark.pdf
def test_the_report_has_the_organiser_a_summary_with_a_chart_and_says_what_to_do(app, client, auth):
    session_id = make_printed_cafe(app)
    with app.app_context():
        save_settings({"organiser_name": "Ayuntamiento de Zaragoza"})
        # Printed before the backlog step: the summary says what to do.
        for source in db.session.scalars(select(NeedSource)):
            db.session.delete(source)
        db.session.commit()
    auth.login()
    report = client.get(f"/print/sessions/{session_id}/report.pdf")
    text = " ".join(pdf_text(report).split())
    assert "Ayuntamiento de Zaragoza" in text
    assert "Summary" in text and "Dots per key insight" in text
    # The chart's text equivalent: each insight with its dots.
    assert "More social housing for newcomers 3" in text
    assert "Open the session, choose “Turn insights into needs in the backlog”" in text
    assert "No needs yet" not in text


@pytest.mark.pdf
def test_printable_host_cards_one_per_table_with_the_link_and_questions(
    app, client, auth, make_cafe
):
    code = make_cafe(tables=2)
    auth.login()
    with app.app_context():
        session = session_by_code(code)
        session_id = session.id
    link = role_link(app, code, "host", "2")
    run = client.get(f"/sessions/{session_id}").text
    assert f"/sessions/{session_id}/host-cards.pdf" in run
    cards = client.get(f"/sessions/{session_id}/host-cards.pdf")
    assert page_count(cards) == 2
    text = " ".join(pdf_text(cards).split())
    assert "Table 1" in text and "Table 2" in text
    assert "What is hardest for you or your family here?" in text
    # The host link, on the join URL's address (BASE_URL in tests), wraps but is all there.
    flat_text = text.replace(" ", "")
    assert f"http://palabre.test{link}" in flat_text


def test_the_wifi_and_date_can_be_changed_while_the_session_runs(app, client, auth, make_cafe):
    code = make_cafe()
    auth.login()
    with app.app_context():
        session_id = session_by_code(code).id
    page = client.get(f"/sessions/{session_id}/edit")
    assert 'value="Café on the intercultural plan"' in page.text
    saved = client.post(
        f"/sessions/{session_id}/edit",
        data={
            "csrf_token": csrf_token(page),
            "title": "Café on the intercultural plan",
            "starts_at": "2026-03-14T18:30",
            "venue": "Casa de las Culturas",
            "wifi_name": "Casa-Invitados",
            "wifi_password": "bienvenida",
            "languages": ["en", "fr", "ar"],
        },
    )
    assert saved.status_code == 302
    projector = client.get(f"/sessions/{session_id}/projector").text
    assert "Casa-Invitados" in projector and "bienvenida" in projector
    refused = client.post(
        f"/sessions/{session_id}/edit", data={"csrf_token": csrf_token(page), "title": ""}
    )
    assert refused.status_code == 200 and "This field is required." in refused.text
    with app.app_context():
        assert session_by_code(code).title == "Café on the intercultural plan"
