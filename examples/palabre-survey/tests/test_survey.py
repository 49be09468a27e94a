"""The survey, tested with the fixtures Palabre ships (no conftest.py needed).

Every test gets its own app and database; ``palabre_survey`` is found through
its entry point, as once ``pip install``-ed.
"""

from __future__ import annotations

import io
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from pypdf import PdfReader

STATEMENTS = ["Buses run late in the evening", "I feel welcome at the library"]


@pytest.fixture
def palabre_config():
    # A room of phones rates faster than a person would: no rate limit in these tests.
    return {"RATE_LIMIT_WRITES": "1000/minute"}


@pytest.fixture
def survey(make_session, go_to_phase):
    """A session whose survey has started: its statements are written."""

    def start(config=None):
        session = make_session("survey", {"statements": STATEMENTS, **(config or {})}, phase=0)
        go_to_phase(session, 1)
        return session

    return start


def statement_ids(page) -> list[int]:
    """The statements on a participant page, in order, from their rating forms."""
    return [int(i) for i in re.findall(r'name="contribution" value="(\d+)"', page.text)]


def csrf(page) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)


def pdf_text(response) -> str:
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(response.data))
    # Spaces and line breaks fall where the PDF's layout put them: compare words.
    return " ".join("".join(page.extract_text() for page in reader.pages).split())


def test_the_survey_keeps_the_plugin_contract(assert_method_conforms):
    assert_method_conforms("survey")


def test_the_contract_holds_on_a_seven_point_scale_without_comments(assert_method_conforms):
    assert_method_conforms("survey", {"scale": "7", "comments": False})


def test_the_survey_serves_its_own_script_and_styles(palabre_app):
    client = palabre_app.test_client()
    for name in ("survey.js", "survey.css"):
        served = client.get(f"/plugins/survey/static/{name}")
        assert served.status_code == 200 and b"survey" in served.data
        served.close()


def test_statements_are_written_once_when_the_survey_starts(survey, make_phone, go_to_phase):
    session = survey()
    go_to_phase(session, 0)
    go_to_phase(session, 1)
    phone = make_phone(session.code)
    page = phone.page()
    assert len(statement_ids(page)) == 2
    assert all(text in page.text for text in STATEMENTS)


def test_a_phone_rates_and_comments(survey, make_phone, facilitator_client):
    session = survey()
    phone = make_phone(session.code, language="ar")
    buses, library = statement_ids(phone.page())

    assert phone.vote(buses, 2) == {"ok": True, "rating": 2}
    assert phone.vote(buses, 1) == {"ok": True, "rating": 1}  # a change of mind replaces
    off_scale = phone.vote(library, 6)
    assert off_scale["ok"] is False and "1" in off_scale["error"] and "5" in off_scale["error"]
    assert phone.contribute("comment", "الحافلة الأخيرة عند التاسعة", reply_to=buses)["ok"]
    about_nothing = phone.contribute("comment", "Hello")
    assert about_nothing["ok"] is False and about_nothing["error"]

    page = phone.page()
    assert re.search(r'value="1" class="survey-value chosen"\s+aria-pressed="true"', page.text)
    assert "الحافلة الأخيرة عند التاسعة" in page.text
    assert 'dir="rtl"' in page.text
    assert "إلى أي حدّ توافق؟" in page.text  # the survey's own catalog, in Arabic
    run = facilitator_client.get(f"/sessions/{session.id}").text
    assert "الحافلة الأخيرة عند التاسعة" in run
    distribution = phone.events("votes.changed")[-1]["data"]["distribution"]
    assert distribution == {"1": 1, "2": 0, "3": 0, "4": 0, "5": 0}


def test_a_phone_without_javascript_rates_with_a_plain_form(survey, make_phone):
    session = survey()
    phone = make_phone(session.code)
    page = phone.page()
    buses, _library = statement_ids(page)
    posted = phone.client.post(
        f"/j/{session.code}/vote",
        data={"csrf_token": csrf(page), "cid": "plain-1", "contribution": buses, "value": "4"},
    )
    assert posted.status_code == 302
    assert re.search(r'value="4" class="survey-value chosen"', phone.page().text)


def test_thirty_phones_rating_at_once_give_the_right_distribution(
    survey, make_phone, go_to_phase, facilitator_client
):
    session = survey()
    phones = [make_phone(session.code, language=("en", "fr", "ar")[i % 3]) for i in range(32)]
    buses, _library = statement_ids(phones[0].page())
    ratings = [1 + i % 5 for i in range(32)]  # 1 to 5 in turn: 7, 7, 6, 6, 6

    with ThreadPoolExecutor(max_workers=8) as pool:
        acks = list(
            pool.map(lambda pair: pair[0].vote(buses, pair[1]), zip(phones, ratings, strict=True))
        )

    assert all(ack["ok"] for ack in acks)
    latest = max(phones[0].events("votes.changed"), key=lambda e: e["seq"])["data"]
    assert latest["id"] == buses and latest["count"] == 32
    assert latest["distribution"] == {"1": 7, "2": 7, "3": 6, "4": 6, "5": 6}
    go_to_phase(session, 2)
    projector = facilitator_client.get(f"/sessions/{session.id}/projector").text
    # The first statement's bar, one part per value of the scale.
    parts = re.findall(
        r'class="survey-seg" data-share="\d" data-n="(\d)"[^>]*>(\d*)</span>', projector
    )
    assert parts[:5] == [("1", "7"), ("2", "7"), ("3", "6"), ("4", "6"), ("5", "6")]


def test_the_report_prints_bars_means_and_comments(survey, make_phone, facilitator_client):
    session = survey()
    first, second = make_phone(session.code), make_phone(session.code, language="fr")
    buses, library = statement_ids(first.page())
    first.vote(buses, 1)
    second.vote(buses, 2)
    first.vote(library, 5)
    second.vote(library, 4)
    first.contribute("comment", "The last bus leaves at nine", reply_to=buses)

    text = pdf_text(facilitator_client.get(f"/print/sessions/{session.id}/report.pdf"))
    assert "Buses run late in the evening" in text and "I feel welcome at the library" in text
    assert "Mean 1.5 from 2 answers" in text and "Mean 4.5 from 2 answers" in text
    assert "The last bus leaves at nine" in text
    # The low statement is flagged, and only it.
    assert text.count("Under the threshold: proposed for the backlog.") == 1


def test_low_scores_become_backlog_candidates_with_their_comments(
    survey, make_phone, go_to_phase, facilitator_client
):
    session = survey({"threshold": 3})
    phones = [make_phone(session.code) for _ in range(3)]
    buses, library = statement_ids(phones[0].page())
    for phone, rating in zip(phones, (1, 2, 4), strict=True):
        phone.vote(buses, rating)
        phone.vote(library, 5)
    phones[0].contribute("comment", "Nothing runs after nine", reply_to=buses)
    go_to_phase(session, 3)

    harvest = facilitator_client.get(f"/backlog/from-session/{session.id}").text
    assert 'value="Buses run late in the evening"' in harvest
    assert "from 3 ratings; 2 in the lower half" in harvest
    assert "Nothing runs after nine" in harvest  # the comment is part of the provenance
    assert "I feel welcome at the library" not in harvest


def test_the_configuration_refuses_a_threshold_off_the_scale(facilitator_client):
    page = facilitator_client.get("/sessions/new/survey")
    assert "Strongly disagree" in page.text and "registering with the city" in page.text
    refused = facilitator_client.post(
        "/sessions/new/survey",
        data={
            "csrf_token": csrf(page),
            "title": "Bus survey",
            "languages": ["en"],
            "config-statements": "Buses run late",
            "config-scale": "5",
            "config-low_label": "No",
            "config-high_label": "Yes",
            "config-threshold": "6",
            "config-minutes": "10",
        },
    )
    assert refused.status_code == 200 and "Choose a score above 1 and up to 5." in refused.text
