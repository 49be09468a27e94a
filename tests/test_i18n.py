"""Every string in every language: complete catalogs, an up-to-date template, pages that speak.

There is one catalog for the core (``core/translations``) and one per
built-in plugin (``plugins/<name>/translations``), and each is held to the
same rules. The core's are compiled by the ``compiled_catalogs`` fixture and
the plugins' by the app when it starts, whenever a ``.mo`` is missing or
older than its ``.po``, so these tests do not depend on ``scripts/setup``
having run first.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po
from sqlalchemy import select

from palabre.extensions import db
from palabre.i18n import DEFAULT_LANGUAGE, LANGUAGES, STAFF_LANGUAGES
from palabre.models import Session
from palabre.plugin_host import BUILTIN_PLUGINS
from palabre.printing import in_each_language
from tests.conftest import csrf_token, join

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "core" / "translations"
#: Every catalog: the core's, then each built-in plugin's, beside its module.
PLUGIN_CATALOGS = [
    ROOT / "plugins" / name.rsplit(".", 1)[1] / "translations" for name in BUILTIN_PLUGINS
]
CATALOGS = [TRANSLATIONS, *PLUGIN_CATALOGS]
#: Every language but the one the code is written in has a catalog.
TRANSLATED = [code for code in LANGUAGES if code != DEFAULT_LANGUAGE]

#: The extraction commands of core/translations/README.md, minus the output file.
KEYWORDS = ["-k", "_l", "-k", "lazy_gettext"]
EXTRACT_CORE = [
    "pybabel",
    "-q",
    "extract",
    "-F",
    str(ROOT / "babel.cfg"),
    *KEYWORDS,
    "--ignore-dirs=.* _* node_modules tests bench",
]
EXTRACT_PLUGIN = ["pybabel", "-q", "extract", "-F", str(ROOT / "plugins" / "babel.cfg"), *KEYWORDS]

PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]")

catalogs = pytest.mark.parametrize(
    "catalog_folder", CATALOGS, ids=lambda folder: str(folder.relative_to(ROOT))
)


def po_path(language: str, folder: Path = TRANSLATIONS) -> Path:
    return folder / language / "LC_MESSAGES" / "messages.po"


def read_catalog(path: Path, language: str | None = None):
    with path.open("rb") as file:
        return read_po(file, locale=language)


def msgids(catalog) -> set:
    """The identities of a catalog's messages: (context, id or (singular, plural))."""
    return {(m.context, m.id) for m in catalog if m.id}


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def stray_percent(text: str) -> bool:
    """A ``%`` that is neither a placeholder nor ``%%``: templates would fail to format it."""
    return "%" in PLACEHOLDER.sub("", text).replace("%%", "")


def translation(language: str, msgid: str) -> str:
    """What a page shows for ``msgid`` in ``language``: the core's catalog first."""
    for folder in CATALOGS:
        message = read_catalog(po_path(language, folder), language).get(msgid)
        if message is not None:
            return message.string
    raise KeyError(msgid)


def files_with_strings(pattern: str) -> set[str]:
    """The files matching ``pattern`` (from the repository root) that hold translatable strings."""
    return {
        str(path.relative_to(ROOT))
        for path in ROOT.glob(pattern)
        if re.search(r"\b(_|_l|gettext|ngettext|lazy_gettext)\(", path.read_text(encoding="utf-8"))
    }


def extracted_files(template) -> set[str]:
    return {path for message in template for path, _line in message.locations}


# --- the catalogs -------------------------------------------------------------


@catalogs
def test_every_language_has_its_catalog(catalog_folder):
    """Each language of LANGUAGES but English has a catalog in every folder."""
    missing = [code for code in TRANSLATED if not po_path(code, catalog_folder).is_file()]
    assert missing == [], "pybabel init each (core/translations/README.md, a new language)"


def test_every_language_has_a_name_of_its_own_and_a_direction():
    assert len(LANGUAGES) == 15
    assert {code for code, (_name, way) in LANGUAGES.items() if way == "rtl"} == {"ar", "fa"}
    assert len({name for name, _way in LANGUAGES.values()}) == 15
    assert list(STAFF_LANGUAGES) == list(LANGUAGES)[:10]  # Arabic's staff pages stay


def test_each_built_in_plugin_has_its_catalog():
    for folder in PLUGIN_CATALOGS:
        assert (folder / "messages.pot").is_file(), folder


def test_core_template_covers_the_core_and_every_shared_template():
    template = read_catalog(TRANSLATIONS / "messages.pot")
    files = extracted_files(template)
    assert any(f.startswith("core/") and f.endswith(".py") for f in files)
    assert not any(f.startswith("plugins/") for f in files), "plugins have their own catalogs"
    missing = files_with_strings("templates/**/*.html") - files
    assert missing == set(), "templates whose strings were not extracted"
    # Lazy strings defined at import time (form labels) are in too.
    assert "Session code" in template


@pytest.mark.parametrize("folder", PLUGIN_CATALOGS, ids=lambda folder: folder.parent.name)
def test_plugin_template_covers_its_code_and_templates(folder):
    template = read_catalog(folder / "messages.pot")
    plugin = folder.parent.relative_to(ROOT)
    files = extracted_files(template)
    assert files <= files_with_strings(f"{plugin}/**/*.py") | files_with_strings(
        f"{plugin}/templates/**/*.html"
    )
    assert f"{plugin}/__init__.py" in files
    missing = files_with_strings(f"{plugin}/templates/**/*.html") - files
    assert missing == set(), "templates whose strings were not extracted"


def test_lazy_method_titles_are_in_their_plugins_catalog():
    assert "World café" in read_catalog(PLUGIN_CATALOGS[0] / "messages.pot")


@catalogs
def test_template_is_up_to_date(catalog_folder, tmp_path):
    """Extracting again finds the same strings: a new string fails until it is translated."""
    fresh = tmp_path / "messages.pot"
    if catalog_folder == TRANSLATIONS:
        command = [*EXTRACT_CORE, "-o", str(fresh), str(ROOT)]
    else:
        command = [*EXTRACT_PLUGIN, "-o", str(fresh), str(catalog_folder.parent)]
    CommandLineInterface().run(command)
    now, stored = msgids(read_catalog(fresh)), msgids(read_catalog(catalog_folder / "messages.pot"))
    assert now == stored, (
        f"{catalog_folder / 'messages.pot'} is out of date; follow core/translations/README.md. "
        f"New: {sorted(map(str, now - stored))}; gone: {sorted(map(str, stored - now))}"
    )


@catalogs
@pytest.mark.parametrize("language", TRANSLATED)
def test_catalog_holds_exactly_the_template(catalog_folder, language):
    template = read_catalog(catalog_folder / "messages.pot")
    catalog = read_catalog(po_path(language, catalog_folder), language)
    assert msgids(catalog) == msgids(template), "run pybabel update (core/translations/README.md)"
    assert not catalog.fuzzy, "the catalog's header is marked fuzzy: pybabel compile skips it"


@catalogs
@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_and_keeps_its_placeholders(catalog_folder, language):
    catalog = read_catalog(po_path(language, catalog_folder), language)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            problems.append(("fuzzy", message.id))
        if message.pluralizable:
            source = placeholders(message.id[0]) | placeholders(message.id[1])
            forms = list(message.string)
            if len(forms) != catalog.num_plurals:
                problems.append((f"{len(forms)} of {catalog.num_plurals} forms", message.id))
            # A form for one or two may leave out the number; the general one keeps all.
            if forms and placeholders(forms[-1]) != source:
                problems.append(("placeholders", message.id))
            for form in forms:
                if not form.strip():
                    problems.append(("empty", message.id))
                if not placeholders(form) <= source or stray_percent(form):
                    problems.append(("placeholders", message.id))
        else:
            if not (message.string or "").strip():
                problems.append(("empty", message.id))
            elif placeholders(message.string) != placeholders(message.id):
                problems.append(("placeholders", message.id))
            elif stray_percent(message.string):
                problems.append(("stray %", message.id))
    assert problems == []


@pytest.mark.parametrize("folder", PLUGIN_CATALOGS, ids=lambda folder: folder.parent.name)
@pytest.mark.parametrize("language", TRANSLATED)
def test_a_plugin_translates_the_cores_strings_as_the_core_does(folder, language):
    """The core's catalog wins for a string both have: a different wording would never show."""
    core = read_catalog(po_path(language), language)
    plugin = read_catalog(po_path(language, folder), language)
    differ = [
        (m.id, m.string, core[m.id].string)
        for m in plugin
        if m.id and core.get(m.id, m.context) is not None and core[m.id].string != m.string
    ]
    assert differ == []


@catalogs
def test_french_uses_the_typographic_apostrophe(catalog_folder):
    catalog = read_catalog(po_path("fr", catalog_folder), "fr")
    straight = [
        m.id
        for m in catalog
        if m.id
        for text in (m.string if m.pluralizable else (m.string,))
        if "'" in text
    ]
    assert straight == []


# --- pages in French and Arabic ----------------------------------------------------


def test_home_page_in_french_from_the_browser(client):
    page = client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr" dir="ltr">' in page.text
    assert translation("fr", "Join a session") in page.text
    assert translation("fr", "Session code") in page.text  # a lazy form label
    assert "Join a session" not in page.text


def test_home_page_in_arabic_from_the_chosen_language(client):
    with client.session_transaction() as cookie:
        cookie["lang"] = "ar"
    page = client.get("/", headers={"Accept-Language": "fr"})  # the choice wins
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "انضمّ إلى جلسة" in page.text
    assert translation("ar", "No name, no e-mail, no account: you take part anonymously.") in (
        page.text
    )


def test_catalogs_read_before_the_plugins_folders_are_read_again(app):
    from flask_babel import force_locale, gettext

    from palabre.i18n import use_catalogs

    with app.test_request_context():
        app.extensions["babel"].translation_directories = app.extensions[
            "babel"
        ].translation_directories[-1:]
        app.extensions.pop("palabre.translations_cache", None)
        with force_locale("ar"):
            assert gettext("Round %(n)d", n=1) == "Round 1"  # the café's catalog is not read yet
        use_catalogs(app, app.extensions["palabre"])
        with force_locale("ar"):
            assert gettext("Round %(n)d", n=1) == "الجولة 1"


def test_join_page_and_participant_page_in_arabic(client, make_cafe):
    code = make_cafe(status="live", phase_index=1)
    form = client.get(f"/j/{code}", headers={"Accept-Language": "ar"})
    assert '<html lang="ar" dir="rtl">' in form.text
    assert translation("ar", "Your language") in form.text
    join(client, code, language="ar")
    page = client.get(f"/j/{code}")
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "الجولة 1" in page.text  # "Round 1": a phase title made at request time
    assert translation("ar", "Send") in page.text


def test_plain_form_refusal_in_the_participants_language(client, make_cafe):
    code = make_cafe(status="live", phase_index=1)
    join(client, code, language="fr")
    page = client.get(f"/j/{code}")
    refused = client.post(
        f"/j/{code}/contribute",
        data={"csrf_token": csrf_token(page), "cid": "c1", "kind": "note", "body": "  "},
    )
    # The page comes back at once, the reason on it.
    assert refused.status_code == 400
    assert "Écrivez quelque chose avant d’envoyer." in refused.text


def test_facilitator_pages_in_french(client, auth):
    auth.login()
    page = client.get("/sessions/", headers={"Accept-Language": "fr"})
    assert '<html lang="fr" dir="ltr">' in page.text
    assert translation("fr", "Your sessions") in page.text
    assert translation("fr", "Start a new session") in page.text


def staff_language(language: str) -> str:
    """The language of a staff page for someone whose browser asks only for ``language``."""
    return language if language in STAFF_LANGUAGES else DEFAULT_LANGUAGE


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_page_sets_lang_and_dir(app, client, auth, make_cafe, language):
    """Participants' pages speak every language; staff pages the first ten, else English."""
    live = make_cafe(status="live", phase_index=1)
    with app.app_context():
        session_id = db.session.scalar(select(Session.id).where(Session.code == live))
    urls = ["/", f"/j/{live}", "/j/NOSUCH", "/city/"]
    signed_in = [
        "/auth/login",
        "/sessions/",
        "/sessions/new/world_cafe",
        f"/sessions/{session_id}",
        "/backlog/",
        f"/backlog/from-session/{session_id}",
        "/backlog/actions/new",
    ]
    headers = {"Accept-Language": language}
    for url in urls:
        page = client.get(url, headers=headers).text
        assert f'<html lang="{language}" dir="{LANGUAGES[language][1]}">' in page, url
    auth.login()
    # The projector is read by the room.
    page = client.get(f"/sessions/{session_id}/projector", headers=headers).text
    assert f'<html lang="{language}" dir="{LANGUAGES[language][1]}">' in page
    staff = staff_language(language)
    expected = f'<html lang="{staff}" dir="{LANGUAGES[staff][1]}">'
    for url in signed_in:
        page = client.get(url, headers=headers)
        assert page.status_code == 200, url
        assert expected in page.text, url


def switch_choices(page: str) -> list[str]:
    """The language codes the top bar's switch offers on ``page``, in order."""
    switch = page[page.index('id="language-select"') : page.index("</select>")]
    return re.findall(r'<option value="(\w+)"', switch)


def test_a_staff_member_in_a_participants_language_gets_staff_pages_in_their_browsers(
    client, auth, make_cafe
):
    """Someone who chose Farsi reads the join page in Farsi, staff pages in the best of their
    browser's staff languages (French here), and keeps Farsi for the next join page."""
    code = make_cafe(status="live", phase_index=1)
    auth.login()
    headers = {"Accept-Language": "fa, fr;q=0.8, en;q=0.5"}
    client.post("/language", data={"language": "fa", "next": "/sessions/"})
    staff_page = client.get("/sessions/", headers=headers).text
    assert '<html lang="fr" dir="ltr">' in staff_page
    assert switch_choices(staff_page) == list(STAFF_LANGUAGES)
    join_page = client.get(f"/j/{code}", headers=headers).text
    assert '<html lang="fa" dir="rtl">' in join_page
    assert switch_choices(join_page) == list(LANGUAGES)
    # Without a staff language in the browser: English.
    assert (
        '<html lang="en" dir="ltr">'
        in client.get("/sessions/", headers={"Accept-Language": "fa"}).text
    )


def test_each_language_is_named_in_its_own_language_and_direction(client, make_cafe):
    code = make_cafe(status="live", phase_index=1, languages=tuple(LANGUAGES))
    page = client.get(f"/j/{code}").text
    for code_, (name, way) in LANGUAGES.items():
        assert f'<span lang="{code_}" dir="{way}">{name}</span>' in page, code_
        assert f'<option value="{code_}" lang="{code_}" dir="{way}"' in page, code_


@pytest.mark.parametrize("language", ["fa", "ti", "uk", "el"])
def test_the_phones_language_is_ticked_on_the_join_form(client, make_cafe, language):
    code = make_cafe(status="live", phase_index=1, languages=tuple(LANGUAGES))
    page = client.get(f"/j/{code}", headers={"Accept-Language": f"{language}-XX, en;q=0.5"}).text
    ticked = re.search(
        r'<input checked[^>]*name="language"[^>]*value="(\w+)"|'
        r'<input[^>]*name="language"[^>]*value="(\w+)"[^>]*checked',
        page,
    )
    assert ticked and language in ticked.groups()


def test_poster_instructions_in_each_language_of_the_session(app, make_cafe):
    code = make_cafe(status="open", languages=("fr", "ar"))
    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        french, arabic = in_each_language(
            session, "print/poster_instructions.html", home_url="http://palabre.test/"
        )
    assert 'lang="fr" dir="ltr"' in french
    assert translation("fr", "Join in from your phone") in french
    assert 'lang="ar" dir="rtl"' in arabic
    assert translation("ar", "Join in from your phone") in arabic
