"""Editing a session after it was made: what may change in each state, for every method (#8),
and texts in each of the session's languages (#14)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from palabre import Texts, text_in
from palabre.database import write_transaction
from palabre.extensions import db
from palabre.i18n import LANGUAGES
from palabre.models import Session


class _FormFields(HTMLParser):
    """What a browser would post from the page's form that posts to ``/edit``."""

    def __init__(self):
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._textarea = None
        self._inside = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._inside = (attrs.get("action") or "").endswith("/edit")
        if not self._inside or "name" not in attrs:
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            if kind != "submit":
                self.fields.append((attrs["name"], attrs.get("value", "")))
        elif tag == "textarea":
            self._textarea = [attrs["name"], ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False
        if tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self.fields.append((name, text.removeprefix("\n")))
            self._textarea = None


def edit_form(client, session_id) -> dict:
    """The edit page's fields as filled with what is stored (a field sent several times: a list)."""
    page = client.get(f"/sessions/{session_id}/edit")
    assert page.status_code == 200
    parser = _FormFields()
    parser.feed(page.text)
    data: dict = {}
    for name, value in parser.fields:
        if name in data:
            data[name] = (
                [*data[name], value] if isinstance(data[name], list) else [data[name], value]
            )
        else:
            data[name] = value
    return data


def save(client, session_id, data):
    return client.post(f"/sessions/{session_id}/edit", data=data)


def stored(app, session_id) -> Session:
    with app.app_context():
        session = db.session.get(Session, session_id)
        db.session.expunge(session)
        return session


def test_the_form_as_stored_saves_unchanged_for_every_method(
    palabre_app, facilitator_client, make_session
):
    """Every method's edit page is its creation form filled with what is stored."""
    for method in ("world_cafe", "forum_theatre", "citizen_dialogue", "mystery_shopping"):
        # In every language: the default texts are written in each language that has a
        # catalog, and the form keeps only the session's languages.
        session = make_session(method, phase=0, languages=list(LANGUAGES))
        before = stored(palabre_app, session.id).config
        response = save(facilitator_client, session.id, edit_form(facilitator_client, session.id))
        assert response.status_code == 302, (method, response.text[-3000:])
        assert stored(palabre_app, session.id).config == before, method


def test_a_running_cafes_question_is_fixed_and_phones_show_it_at_once(
    palabre_app, facilitator_client, make_session, make_phone
):
    session = make_session("world_cafe", phase=1, languages=("en", "fr", "ar"))
    french = make_phone(session.code, language="fr")
    data = edit_form(facilitator_client, session.id)
    assert "What has helped you most" in data["config-questions-en"]
    data["config-questions-en"] = data["config-questions-en"].replace(
        "What has helped you most", "What helped you most"
    )
    data["config-questions-fr"] = "Qu’est-ce qui vous a aidé ?\nLe plus dur ?\nEn premier ?"
    data["config-round_minutes"] = "25"
    response = save(facilitator_client, session.id, data)
    assert response.status_code == 302
    assert (
        "Phones and the projector show the change now"
        in facilitator_client.get(f"/sessions/{session.id}").text
    )
    changed = french.events("session.changed")
    assert len(changed) == 1
    assert changed[0]["data"]["question"]["fr"] == "Qu’est-ce qui vous a aidé ?"
    page = french.page().text
    assert 'lang="fr" dir="ltr">Qu’est-ce qui vous a aidé ?</h1>' in page
    english = make_phone(session.code, language="en").page().text
    assert "What helped you most since you arrived in the city?" in english
    config = stored(palabre_app, session.id).config
    assert config["round_minutes"] == 25
    assert config["rounds"][0]["question"]["en"].startswith("What helped you most")
    projector = facilitator_client.get(f"/sessions/{session.id}/projector").text
    # The projector shows the question in each of the session's languages.
    assert 'class="question in-first-language" lang="en"' in projector
    assert 'class="in-other-language" lang="fr" dir="ltr">Qu’est-ce qui vous a aidé ?' in projector


def test_what_a_running_cafe_keeps(palabre_app, facilitator_client, make_session, make_phone):
    """Rounds reached, tables with people or notes and languages people joined in stay."""
    session = make_session(
        "world_cafe",
        phase=2,
        languages=("en", "fr", "ar"),
        config={"tables": 3, "assignment": "choose"},
    )
    phone = make_phone(session.code, language="ar", group="3")
    assert phone.contribute("note", "ملاحظة")["ok"]
    base = edit_form(facilitator_client, session.id)

    fewer_rounds = {
        **base,
        "config-questions-en": "Only one?",
        "config-questions-fr": "",
        "config-questions-ar": "",
    }
    refused = save(facilitator_client, session.id, fewer_rounds)
    assert refused.status_code == 400
    assert "already reached" in refused.text and "Only one?" in refused.text  # kept as typed

    one_table = {**base, "config-tables": "1"}
    refused = save(facilitator_client, session.id, one_table)
    assert refused.status_code == 400
    assert "Table 3 has people or contributions" in refused.text

    no_arabic = {**base, "languages": ["en", "fr"]}
    refused = save(facilitator_client, session.id, no_arabic)
    assert refused.status_code == 400 and "1 person joined in العربية" in refused.text
    assert stored(palabre_app, session.id).config["tables"] == 3

    # A round still to come, a table and a language may be added: nothing written is lost.
    more = {
        **base,
        "config-tables": "4",
        "languages": ["en", "fr", "ar", "en"][:3],
        "config-questions-en": base["config-questions-en"] + "\nWhat next?",
        "config-questions-fr": base["config-questions-fr"] + "\nEt ensuite ?",
        "config-questions-ar": base["config-questions-ar"] + "\nوبعد؟",
    }
    assert save(facilitator_client, session.id, more).status_code == 302
    config = stored(palabre_app, session.id).config
    assert config["tables"] == 4 and len(config["rounds"]) == 4
    assert [n["data"]["body"] for n in phone.events("contribution.added")] == ["ملاحظة"]


def test_a_closed_session_fixes_texts_but_keeps_its_parts(
    palabre_app, facilitator_client, make_session
):
    session = make_session("world_cafe", phase=5, languages=("en",))
    assert stored(palabre_app, session.id).status == "closed"
    base = edit_form(facilitator_client, session.id)
    typo = {**base, "config-questions-en": base["config-questions-en"].replace("hardest", "hard")}
    assert save(facilitator_client, session.id, typo).status_code == 302
    more = {**base, "config-questions-en": base["config-questions-en"] + "\nOne more?"}
    refused = save(facilitator_client, session.id, more)
    assert refused.status_code == 400 and "reopen it to add some" in refused.text
    with palabre_app.app_context():
        db_session = db.session.scalar(select(Session).where(Session.id == session.id))
        with write_transaction():
            db_session.status = "archived"
    refused = save(facilitator_client, session.id, base)
    assert refused.status_code == 400 and "An archived session cannot be changed." in refused.text


def test_a_draft_changes_in_every_way(palabre_app, facilitator_client, make_session):
    session = make_session("world_cafe", phase=0, status="draft", languages=("en",))
    data = {
        **edit_form(facilitator_client, session.id),
        "config-tables": "2",
        "config-questions-en": "Just one?",
        "languages": ["fr", "en"],
        "config-questions-fr": "Une seule ?",
    }
    assert save(facilitator_client, session.id, data).status_code == 302
    saved = stored(palabre_app, session.id)
    assert saved.languages == ["fr", "en"]
    assert saved.config["rounds"] == [{"question": {"en": "Just one?", "fr": "Une seule ?"}}]


def test_a_forum_stored_before_texts_had_languages_is_edited_in_its_first_language(
    palabre_app, facilitator_client, make_session, make_phone
):
    """Plain texts (the play, the protagonist, a scene with its translations) show in the
    session's first language's inputs, and are saved in the new shape."""
    legacy = {
        "play_title": "The Roundabout",
        "protagonist": "Amal",
        "synopsis": {"": "Amal seeks asylum."},
        "scenes": [
            {
                "title": "The interview",
                "description": "",
                "language": "en",
                "translations": {"ar": {"title": "المقابلة", "description": ""}},
            },
            {"title": "The housing office", "description": "A letter is missing"},
        ],
        "on_stage": True,
    }
    session = make_session("forum_theatre", config=legacy, phase=1, languages=("en", "ar"))
    arabic = make_phone(session.code, language="ar")
    assert "المقابلة" in arabic.page().text
    data = edit_form(facilitator_client, session.id)
    assert data["config-play_title-en"] == "The Roundabout"
    assert data["config-scenes-0-title-ar"] == "المقابلة"
    assert data["config-synopsis-en"] == "Amal seeks asylum."
    data["config-scenes-1-title-ar"] = "مكتب السكن"
    data["config-protagonist-ar"] = "أمل"
    assert save(facilitator_client, session.id, data).status_code == 302
    config = stored(palabre_app, session.id).config
    assert config["play_title"] == {"en": "The Roundabout"}
    assert config["scenes"][1]["title"] == {"en": "The housing office", "ar": "مكتب السكن"}
    assert arabic.events("session.changed")
    assert 'lang="ar" dir="rtl">المقابلة</h1>' in arabic.page().text


def test_the_audits_rubric_scale_is_fixed_once_fieldwork_starts(
    palabre_app, facilitator_client, make_session
):
    session = make_session("mystery_shopping", phase=1, languages=("en",))
    data = {**edit_form(facilitator_client, session.id), "config-scale": "5"}
    refused = save(facilitator_client, session.id, data)
    assert refused.status_code == 400 and "The rubric is fixed" in refused.text
    data = {**edit_form(facilitator_client, session.id), "config-hourly_rate": "18.50"}
    assert save(facilitator_client, session.id, data).status_code == 302
    config = stored(palabre_app, session.id).config
    assert config["hourly_rate"] == "18.50" and config["criteria"]  # the preparation is kept


def test_the_dialogue_guide_is_not_shortened_once_interviews_are_in(
    palabre_app, facilitator_client, make_session, make_phone
):
    session = make_session("citizen_dialogue", phase=1, languages=("en",))
    phone = make_phone(session.code)
    assert phone.contribute("interview", "", q1="The quiet.", consent="yes", place="self")["ok"]
    data = edit_form(facilitator_client, session.id)
    shorter = {**data, "config-guide-en": "\n".join(data["config-guide-en"].splitlines()[:2])}
    refused = save(facilitator_client, session.id, shorter)
    assert refused.status_code == 400 and "keep its questions" in refused.text
    longer = {**data, "config-guide-en": data["config-guide-en"] + "\nWhat else?"}
    assert save(facilitator_client, session.id, longer).status_code == 302
    assert stored(palabre_app, session.id).config["guide"]["en"][-1] == "What else?"


def test_a_dialogue_meeting_without_configuration_edits_its_facts_and_languages(
    palabre_app, facilitator_client, make_session
):
    dialogue = make_session("citizen_dialogue", phase=3, languages=("en",))
    with palabre_app.test_request_context(), write_transaction():
        from palabre import add_session

        meeting = add_session(
            "dialogue_meeting",
            title="Meeting at the school",
            languages=["en"],
            config={"themes": []},
            parent_id=dialogue.id,
        )
        meeting_id = meeting.id
    data = {**edit_form(facilitator_client, meeting_id), "languages": ["en", "ar"]}
    assert save(facilitator_client, meeting_id, data).status_code == 302
    assert stored(palabre_app, meeting_id).languages == ["en", "ar"]


@pytest.mark.parametrize(
    ("stored_text", "language", "expected"),
    [
        ({"en": "Hello", "fr": "Bonjour"}, "fr", ("Bonjour", "fr")),
        ({"en": "Hello", "fr": "Bonjour"}, "ar", ("Hello", "en")),
        ("Plain, from an older session", "ar", ("Plain, from an older session", "en")),
        ({"fr": "Seulement en français"}, "ar", ("Seulement en français", "fr")),
        (None, "ar", ("", "en")),
    ],
)
def test_a_text_is_shown_in_the_readers_language_else_the_sessions_first(
    palabre_app, stored_text, language, expected
):
    class Room:
        languages = ["en", "fr", "ar"]

    with palabre_app.test_request_context():
        shown = text_in(stored_text, Room(), language)
    assert (shown.text, shown.lang) == expected
    assert shown.dir == ("rtl" if expected[1] == "ar" else "ltr")


def test_texts_are_immutable_read_both_shapes_and_store_as_a_dict():
    texts = Texts.of({"en": " Hello ", "fr": "", "ar": "مرحبا"})
    assert dict(texts) == {"en": "Hello", "ar": "مرحبا"} == texts.to_json()
    assert hash(texts) == hash(Texts({"en": "Hello", "ar": "مرحبا"}))
    assert Texts.of("Hi").with_language("fr") == {"fr": "Hi"}
    assert Texts.of("Hi", "en").only(["fr"]) == {}
    assert Texts.from_form(
        {"name-en": "A", "name-xx": "B", "name-fr": 3}, "name", ["en", "fr"]
    ) == {"en": "A"}
