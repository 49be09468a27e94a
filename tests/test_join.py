"""Creating a session, and joining it from a phone: codes, the join form, the cookie, languages."""

from __future__ import annotations

import re

from sqlalchemy import select

from palabre.extensions import db
from palabre.models import Participant, Session, Status, hash_token
from tests.conftest import FACILITATOR_EMAIL, csrf_token, join, new_cid, post_form

CAFE_FORM = {
    "title": "Café on the intercultural plan",
    "venue": "Casa de las Culturas",
    "languages": ["en", "fr"],
    "config-tables": "4",
    "config-questions": "What helped you?\n\nWhat was hard?\n",
    "config-round_minutes": "15",
    "config-assignment": "choose",
    "config-hosts_stay": "y",
    "config-dots": "2",
}


def session_by_code(app, code) -> Session:
    with app.app_context():
        return db.session.scalar(select(Session).where(Session.code == code))


def participants(app) -> list[Participant]:
    with app.app_context():
        return db.session.scalars(select(Participant)).all()


# --- creating a session ---------------------------------------------------------------


def test_new_session_page_shows_method_defaults(client, auth):
    auth.login()
    page = client.get("/sessions/new/world_cafe")
    assert page.status_code == 200
    assert 'name="config-tables"' in page.text
    assert 'value="5"' in page.text  # the café's default number of tables
    assert "What has helped you most" in page.text
    assert '<label for="title">' in page.text
    assert client.get("/sessions/new/no_such_method").status_code == 404


def test_create_world_cafe_session(app, client, auth):
    auth.login()
    url = "/sessions/new/world_cafe"
    response = post_form(client, url, url, CAFE_FORM)
    assert response.status_code == 302
    with app.app_context():
        session = db.session.scalar(select(Session))
        assert response.location.endswith(f"/sessions/{session.id}")
        assert session.method == "world_cafe"
        assert session.status == Status.DRAFT
        assert session.title == CAFE_FORM["title"]
        assert session.venue == CAFE_FORM["venue"]
        assert session.languages == ["en", "fr"]
        assert session.config == {
            "tables": 4,
            # Posted as one text: the session's first language's.
            "rounds": [
                {"question": {"en": "What helped you?"}},
                {"question": {"en": "What was hard?"}},
            ],
            "round_minutes": 15,
            "assignment": "choose",
            "hosts_stay": True,
            "dots": 2,
            # A form post without the box ticked: the facilitator chose to show totals.
            "hide_totals": False,
        }
        assert re.fullmatch(r"[34679ACDEFGHJKMNPQRTUVWXY]{6}", session.code)
        assert session.created_by.email == FACILITATOR_EMAIL
        # The audit log's entry names the session made, though the request checked none.
        from palabre.models import AuditEntry

        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "sessions.create"))
        assert entry.session_id == session.id


def test_create_session_shows_errors(app, client, auth):
    auth.login()
    url = "/sessions/new/world_cafe"
    response = post_form(
        client, url, url, {**CAFE_FORM, "title": "", "languages": [], "config-tables": "0"}
    )
    assert response.status_code == 200
    assert response.text.count('role="alert"') >= 3
    assert "Choose at least one language." in response.text
    with app.app_context():
        assert db.session.scalar(select(Session)) is None


def test_sessions_list(app, client, auth, make_cafe):
    code = make_cafe(status="open")
    join(app.test_client(), code)
    auth.login()
    page = client.get("/sessions/")
    assert page.status_code == 200
    assert code in page.text
    assert "Café on the intercultural plan" in page.text
    assert "World café" in page.text
    assert re.search(r"<td>\s*1\s*</td>", page.text)  # one participant
    assert "/sessions/new/world_cafe" in page.text


def test_archived_sessions_hidden_unless_asked(app, client, auth, make_cafe):
    code = make_cafe(status="archived")
    auth.login()
    assert code not in client.get("/sessions/").text
    assert code in client.get("/sessions/?archived=1").text


# --- the home page and codes ----------------------------------------------------------


def test_home_page_has_code_field(client):
    page = client.get("/")
    assert page.status_code == 200
    assert '<label for="code">' in page.text
    assert 'autocomplete="off"' in page.text
    assert "no account" in page.text.lower()


def test_home_code_form_redirects_to_join_url(client, make_cafe):
    code = make_cafe(status="open")
    typed = f" {code[:3].lower()}-{code[3:]} "
    response = post_form(client, "/", "/", {"code": typed})
    assert response.status_code == 302
    assert response.location.endswith(f"/j/{code}")
    assert client.get(response.location).status_code == 200


def test_lowercase_join_url_redirects_to_canonical(client, make_cafe):
    code = make_cafe(status="open")
    response = client.get(f"/j/{code.lower()}")
    assert response.status_code == 302
    assert response.location.endswith(f"/j/{code}")


def test_unknown_code_gives_friendly_page(client):
    response = client.get("/j/QQQQQQ")
    assert response.status_code == 404
    assert "could not find" in response.text
    assert "QQQQQQ" in response.text
    assert 'name="code"' in response.text  # a form to try again
    assert 'name="csrf_token"' in response.text


def test_the_join_page_isolates_the_venue_in_its_own_direction(client, make_cafe):
    """A Spanish venue on an Arabic page reads in its own order, not mixed into the line."""
    code = make_cafe(status="open")
    page = client.get(f"/j/{code}")
    client.post("/language", data={"csrf_token": csrf_token(page), "language": "ar"})
    page = client.get(f"/j/{code}").text
    assert 'lang="ar"' in page and "<bdi>Casa de las Culturas</bdi>" in page


def test_draft_session_cannot_be_joined(client, make_cafe):
    code = make_cafe(status="draft")
    assert client.get(f"/j/{code}").status_code == 404


def test_repeated_wrong_codes_are_slowed_down(client):
    statuses = [client.get(f"/j/QQQQQ{letter}").status_code for letter in "ACDEFGHJKMN"]
    assert statuses[:10] == [404] * 10
    assert statuses[10] == 429
    response = client.get("/j/QQQQQQ")
    assert response.status_code == 429
    assert "wait" in response.text.lower()


def test_wrong_codes_slow_down_one_browser_not_the_venue(app, client):
    for _ in range(11):
        client.get("/j/QQQQQQ")
    assert client.get("/j/QQQQQQ").status_code == 429
    assert app.test_client().get("/j/QQQQQQ").status_code == 404


def test_closed_session_says_thank_you(client, make_cafe):
    code = make_cafe(status="closed")
    page = client.get(f"/j/{code}")
    assert page.status_code == 200
    assert "This session is over" in page.text
    assert 'id="language-0"' not in page.text  # no join form


# --- joining --------------------------------------------------------------------------


def test_join_page(client, make_cafe):
    code = make_cafe(status="open", languages=("fr", "ar"))
    page = client.get(f"/j/{code}")
    assert page.status_code == 200
    assert "Café on the intercultural plan" in page.text
    # Each language in its own name, marked with its language and direction.
    assert re.search(r'id="language-0"[^>]*value="fr"> <span lang="fr" dir="ltr">', page.text)
    assert re.search(r'id="language-1"[^>]*value="ar"> <span lang="ar" dir="rtl">', page.text)
    assert "Français" in page.text and "العربية" in page.text
    assert "English</span>" not in page.text  # only the session's languages
    assert 'name="group"' not in page.text  # Palabre seats people by default
    assert "No name" in page.text


def test_join_sets_cookie_and_stores_only_a_hash(app, client, make_cafe):
    code = make_cafe(status="open")
    response = join(client, code, language="fr")
    assert response.location.endswith(f"/j/{code}")
    session = session_by_code(app, code)
    with client.session_transaction() as cookie:
        token = cookie["p"][str(session.id)]
        assert cookie["lang"] == "fr"
    (participant,) = participants(app)
    assert participant.token_hash == hash_token(token)
    assert participant.token_hash != token
    assert participant.language == "fr"
    columns = {column.name.lower() for column in Participant.__table__.columns}
    for personal in ("ip", "address", "user_agent", "agent", "name", "email", "fingerprint"):
        assert not any(personal in column for column in columns), columns


def test_joining_twice_keeps_one_participant(app, client, make_cafe):
    code = make_cafe(status="open")
    join(client, code)
    page = client.get(f"/j/{code}")  # now the participant page, not the join form
    assert page.status_code == 200
    assert 'id="language-0"' not in page.text  # no join form
    assert len(participants(app)) == 1


def test_a_phone_in_two_sessions_is_itself_in_each_and_only_by_each_token(
    app, client, make_cafe, socket_client
):
    """The page and the socket find a phone's participant by the token kept for that session."""
    first, second = make_cafe(status="open"), make_cafe(status="open")
    join(client, first)
    join(client, second)
    for code in (first, second):
        assert 'id="language-0"' not in client.get(f"/j/{code}").text  # the participant page
        assert socket_client(client, code=code).is_connected()
    first_id, second_id = session_by_code(app, first).id, session_by_code(app, second).id
    with client.session_transaction() as cookie:
        tokens = cookie["p"]
        # The second session's token kept for the first one: it names nobody there.
        cookie["p"] = {str(first_id): tokens[str(second_id)]}
    assert 'id="language-0"' in client.get(f"/j/{first}").text  # the join form again
    assert not socket_client(client, code=first).is_connected()
    assert not socket_client(client, code=second).is_connected()


def test_a_phones_pages_use_kept_rows_as_they_are_now(app, client, make_cafe, socket_client):
    """A phone's session and participant come from the rows this worker keeps, never stale.

    Rows changed without this worker's ORM (another worker, a script) show
    at the next page; and what is kept holds what the ORM would have read.
    """
    from sqlalchemy import inspect, update

    from palabre import connections
    from palabre.database import write_transaction

    code = make_cafe(status="live", tables=2, assignment="choose")
    join(client, code, group="1")
    assert "Table 1" in client.get(f"/j/{code}").text
    with app.app_context(), write_transaction():
        db.session.execute(update(Participant.__table__).values(group="2"))
        db.session.execute(update(Session.__table__).values(title="Evening café"))
    page = client.get(f"/j/{code}").text
    assert "Table 2" in page and "Evening café" in page
    with client:  # the last request's context stays open, with the phone's cookie
        client.get(f"/j/{code}")
        kept_session, kept_participant = connections.session_and_phone(code)
        assert kept_participant is not None
        db.session.expunge_all()
        for kept in (kept_session, kept_participant):
            loaded = db.session.get(type(kept), kept.id)
            for attribute in inspect(type(kept)).column_attrs:
                assert getattr(kept, attribute.key) == getattr(loaded, attribute.key), attribute
    # This worker's note numbers an event on the copies it keeps; then only the event number
    # moves (another worker's note): the page has the new number, not the copy's.
    phone = socket_client(client, code=code)
    note = {"cid": new_cid(), "kind": "note", "body": "Hola"}
    assert phone.emit("contribute", note, callback=True)["ok"]
    with app.app_context(), write_transaction():
        db.session.execute(update(Session.__table__).values(seq=Session.__table__.c.seq + 7))
        moved = db.session.scalar(select(Session.seq))
    assert f"data-seq='{moved}'" in client.get(f"/j/{code}").text
    with app.app_context(), write_transaction():
        db.session.execute(update(Session.__table__).values(status="draft"))
    assert client.get(f"/j/{code}").status_code == 404  # a draft is joined by nobody


def test_join_without_csrf_token_is_refused(app, client, make_cafe):
    code = make_cafe(status="open")
    assert client.post(f"/j/{code}", data={"language": "en"}).status_code == 400
    assert participants(app) == []


def test_the_join_page_kept_rendered_gives_each_phone_its_token_and_follows_the_session(
    app, client, auth, make_cafe
):
    """A burst of phones asks for the same join page: it is rendered once per session and
    language, yet each phone gets its own CSRF token, and a changed session shows at once."""
    code = make_cafe(status="open", languages=("en", "fr"))
    phones = [app.test_client() for _ in range(3)]
    pages = [phone.get(f"/j/{code}") for phone in phones]
    tokens = [csrf_token(page) for page in pages]
    assert len(set(tokens)) == 3
    assert "\x00" not in pages[1].text
    assert pages[1].text.replace(tokens[1], "") == pages[2].text.replace(tokens[2], "")
    # Each token is the one its phone's own cookie signs: each phone joins with it,
    # and a phone cannot join with another's.
    assert (
        phones[0].post(f"/j/{code}", data={"csrf_token": tokens[1], "language": "fr"}).status_code
        == 400
    )
    for phone, token in zip(phones, tokens, strict=True):
        response = phone.post(f"/j/{code}", data={"csrf_token": token, "language": "fr"})
        assert response.status_code == 302
    assert len(participants(app)) == 3
    # The same page in another language, and for the phone's own language ticked.
    french = app.test_client().get(f"/j/{code}", headers={"Accept-Language": "fr"})
    assert '<html lang="fr" dir="ltr">' in french.text
    assert re.search(r'<input checked[^>]*value="fr"|value="fr"[^>]*checked', french.text)
    # A renamed session shows its new name on the next phone's page.
    with app.app_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        session.title = "Café on housing"
        db.session.commit()
    assert "Café on housing" in app.test_client().get(f"/j/{code}").text
    # A signed-in facilitator's page has their menu; a phone's never does.
    auth.login()
    assert "Sign out" in client.get(f"/j/{code}").text
    assert "Sign out" not in app.test_client().get(f"/j/{code}").text


def test_participants_choose_their_table(app, client, make_cafe):
    code = make_cafe(status="open", assignment="choose", tables=3)
    page = client.get(f"/j/{code}")
    assert page.text.count('name="group"') == 3
    assert "Table 3" in page.text
    join(client, code, group="2")
    (participant,) = participants(app)
    assert participant.group == "2"


def test_language_chosen_on_join_page_sets_lang_and_dir(app, client, make_cafe):
    code = make_cafe(status="open", languages=("en", "ar"))
    join(client, code, language="ar")
    page = client.get(f"/j/{code}")  # the café's participant page
    assert '<html lang="ar" dir="rtl">' in page.text
    home = client.get("/")
    assert '<html lang="ar" dir="rtl">' in home.text


def test_the_join_form_ticks_the_phones_own_language(client, make_cafe):
    code = make_cafe(status="open", languages=("en", "fr", "ar"))
    arabic_phone = {"Accept-Language": "ar-MA,ar;q=0.9,fr;q=0.5"}
    page = client.get(f"/j/{code}", headers=arabic_phone)
    assert '<html lang="ar" dir="rtl">' in page.text
    assert re.search(r'<input checked[^>]*value="ar"|value="ar"[^>]*checked', page.text)
    # A language chosen on this phone before wins over the phone's setting.
    client.post("/language", data={"language": "fr", "csrf_token": csrf_token(page)})
    page = client.get(f"/j/{code}", headers=arabic_phone)
    assert re.search(r'<input checked[^>]*value="fr"|value="fr"[^>]*checked', page.text)
    # A phone language the session does not offer falls back to the session's first.
    other = client.application.test_client().get(f"/j/{code}", headers={"Accept-Language": "tr"})
    assert re.search(r'<input checked[^>]*value="en"|value="en"[^>]*checked', other.text)


def test_left_to_right_by_default(client):
    page = client.get("/", headers={"Accept-Language": "fr"})
    assert '<html lang="fr" dir="ltr">' in page.text


def test_language_switch(client):
    response = post_form(client, "/", "/language", {"language": "ar", "next": "/"})
    assert response.status_code == 302
    assert '<html lang="ar" dir="rtl">' in client.get("/").text
    # Only local paths are followed.
    response = post_form(client, "/", "/language", {"language": "en", "next": "//evil.example"})
    assert response.location.endswith("/")
    assert "evil" not in response.location
