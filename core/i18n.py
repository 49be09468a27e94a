"""Languages: which one a page speaks, and which way it is written.

Every string goes through gettext (``flask_babel``), in one domain,
``messages``. The core's catalog lives in ``core/translations``; each plugin
may bring its own in a ``translations/`` folder beside its module (and its
``templates/``), which :func:`catalog_folders` finds and
:func:`compile_stale_catalogs` compiles when the app starts. A page's
language is, in order: the one the person chose (kept in their cookie), the
best match for their browser, English.

Participants' pages (joining, every method's phone views, the projector
the room reads, "you said, we did") speak every language of
:data:`LANGUAGES`; staff pages (running a session, the backlog, printed
reports, accounts) speak :data:`STAFF_LANGUAGES`: the nine European
languages of the cities' teams, and Arabic, whose staff pages were
translated and reviewed before the other languages came. A staff member
who chose another language gets staff pages in the best of their
browser's languages among those, else English, and keeps their choice
for participants' pages (the join page they check, the poster's blocks).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from pathlib import Path

from babel import support
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, request, session
from flask_babel import Domain, _get_current_context, get_locale, get_translations
from jinja2 import pass_context
from markupsafe import Markup
from wtforms.i18n import messages_path

#: The core's own catalog folder.
CORE_TRANSLATIONS = Path(__file__).parent / "translations"

log = logging.getLogger(__name__)

#: Languages with a complete catalog: code -> (name in that language, direction). The
#: languages of the cities and of the people they work with; staff pages speak the first
#: ten (:data:`STAFF_LANGUAGES`).
LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("English", "ltr"),
    "fr": ("Français", "ltr"),
    "de": ("Deutsch", "ltr"),
    "it": ("Italiano", "ltr"),
    "es": ("Español", "ltr"),
    "el": ("Ελληνικά", "ltr"),
    "fi": ("Suomi", "ltr"),
    "cs": ("Čeština", "ltr"),
    "hr": ("Hrvatski", "ltr"),
    "ar": ("العربية", "rtl"),
    "fa": ("فارسی", "rtl"),
    "uk": ("Українська", "ltr"),
    "so": ("Soomaali", "ltr"),
    "ti": ("ትግርኛ", "ltr"),
    "tr": ("Türkçe", "ltr"),
}
DEFAULT_LANGUAGE = "en"
#: The languages of staff pages; on those, any other language falls back (:func:`select_locale`).
STAFF_LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "it", "es", "el", "fi", "cs", "hr", "ar")
#: The pages participants see, by blueprint or endpoint: in every language. The rest are
#: staff pages. A request outside any route (a socket event, an unknown address) counts as
#: a participant's.
PARTICIPANT_PAGES = frozenset({"join", "city", "role_links.take", "sessions.projector", "static"})


def for_participants() -> bool:
    """Whether the current request is for a participant's page (:data:`PARTICIPANT_PAGES`)."""
    endpoint = request.endpoint
    return (
        endpoint is None or endpoint in PARTICIPANT_PAGES or request.blueprint in PARTICIPANT_PAGES
    )


def page_languages() -> dict[str, tuple[str, str]]:
    """The languages the current page may be read in: all, or the staff's."""
    if for_participants():
        return LANGUAGES
    return {code: LANGUAGES[code] for code in STAFF_LANGUAGES}


def browser_language(offered) -> str | None:
    """The first of the browser's languages (Accept-Language, best first) among ``offered``.

    ``fa-IR`` asks for ``fa``: unlike werkzeug's ``best_match``, which
    takes a later exact ``en`` over an earlier ``fa-IR``, a phone set to
    Persian (Iran) with English as its second language gets Persian.
    """
    for value, _quality in request.accept_languages:
        code = value.lower().replace("_", "-").split("-")[0]
        if code in offered:
            return code
    return None


def select_locale() -> str:
    """Flask-Babel's locale selector: the choice, else the browser's, else English.

    Among the languages of the page (:func:`page_languages`): a choice
    another kind of page does not speak is kept for the next page that does.
    """
    offered = page_languages()
    chosen = session.get("lang")
    if chosen in offered:
        return chosen
    return browser_language(offered) or DEFAULT_LANGUAGE


def current_language() -> str:
    return str(get_locale() or DEFAULT_LANGUAGE)


def direction(language: str) -> str:
    """``"rtl"`` or ``"ltr"`` for a language code."""
    return LANGUAGES.get(language, ("", "ltr"))[1]


def template_globals() -> dict:
    language = current_language()
    switch = page_languages()
    return {
        "page_lang": language,
        "page_dir": direction(language),
        "languages": LANGUAGES,
        "switch_languages": switch,
        "language_options": _language_options(language, tuple(switch)),
        # Overrides the environment's gettext (Jinja's ``_()`` looks it up in the
        # context) for this page: its catalog found once, not at each of its strings.
        "gettext": _page_gettext(get_translations().ugettext),
    }


def _page_gettext(translate):
    """Jinja's new-style ``gettext`` (as Flask-Babel installs it) over ``translate``.

    The same result as the environment's: escaped when the template is, and
    always a ``%`` format string (``%%`` for a percent sign).
    """

    @pass_context
    def gettext(context, string: str, **variables) -> str:
        translated = translate(string)
        if context.eval_ctx.autoescape:
            translated = Markup(translated)
        return translated % variables

    return gettext


@functools.lru_cache(maxsize=64)
def _language_options(selected: str, codes: tuple[str, ...]) -> Markup:
    """The language switch's ``<option>`` list, ``selected`` ticked: built once per page language.

    Every page shows it; escaping fifteen languages' names at each page of a
    burst of joins costs more than the rest of the switch.
    """
    return Markup("").join(
        Markup('<option value="{0}" lang="{0}" dir="{1}"{2}>{3}</option>').format(
            code,
            LANGUAGES[code][1],
            Markup(" selected") if code == selected else "",
            LANGUAGES[code][0],
        )
        for code in codes
    )


class PerAppDomain(Domain):
    """Flask-Babel's ``messages`` domain, with one cache of loaded catalogs per app.

    Flask-Babel caches catalogs per extension object, and Palabre has one
    extension object for every app of the process; but apps differ by the
    plugins they load, hence by their catalog folders (a test suite builds
    many apps). Each app keeps its own cache in ``app.extensions``.
    """

    def get_translations_cache(self, ctx):
        return current_app.extensions.setdefault("palabre.translations_cache", {})

    def get_translations(self):
        """The catalog of the current locale, looked up once per request.

        A page calls gettext a hundred times; Flask-Babel would find the
        locale and its catalog again at each call. The catalog is kept where
        Flask-Babel itself clears it when the locale changes
        (``refresh()``, ``force_locale()``).
        """
        context = _get_current_context()
        if context is None:
            return super().get_translations()
        translations = getattr(context, "babel_translations", None)
        if translations is None:
            translations = context.babel_translations = super().get_translations()
        return translations


@functools.cache
def _wtforms_catalog(language: str) -> support.Translations:
    return support.Translations.load(messages_path(), [language], domain="wtforms")


def wtforms_translations() -> support.Translations:
    """WTForms' own messages ("Not a valid choice.") in the page's language, loaded once.

    Flask-WTF would read WTForms' catalog from disk for each request.
    """
    return _wtforms_catalog(current_language())


def catalog_folders(host) -> list[Path]:
    """Every loaded plugin's ``translations/`` folder, in load order, then the core's.

    A plugin's folder sits beside the module it is registered from, and
    beside the module of each method it declares (next to the method's
    ``templates/``); folders that do not exist are left out. Flask-Babel
    merges the catalogs of all the folders into one, a later folder winning
    for a message several translate: the core's comes last, so a plugin
    cannot change the wording of the core's own pages.
    """
    folders: list[Path] = []
    for loaded in host.loaded:
        plugin = host.pm.get_plugin(loaded.name)
        module = plugin if hasattr(plugin, "__file__") else sys.modules.get(type(plugin).__module__)
        if getattr(module, "__file__", None):
            folders.append(Path(module.__file__).parent / "translations")
    folders += [method.template_folder.parent / "translations" for method in host.methods.values()]
    unique = dict.fromkeys(f.resolve() for f in folders if f.is_dir() and f != CORE_TRANSLATIONS)
    return [*unique, CORE_TRANSLATIONS]


def compile_stale_catalogs(folder: Path) -> list[Path]:
    """Compile each ``<lang>/LC_MESSAGES/*.po`` in ``folder`` whose ``.mo`` is missing or older.

    What ``pybabel compile`` does, so that a plugin installed or edited with
    its ``.po`` files only is translated at the next start. Each ``.mo`` is
    written to a temporary file then renamed, so a concurrent reader never
    sees half a file. A catalog that cannot be compiled (a read-only folder,
    a broken ``.po``) is logged as a warning and skipped: its strings stay as
    they were (untranslated, or as its old ``.mo`` has them), and the app
    starts anyway. Returns the ``.mo`` files written.
    """
    written = []
    for po in sorted(folder.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            handle, temporary = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
            try:
                with os.fdopen(handle, "wb") as target:
                    write_mo(target, catalog)
                os.chmod(temporary, 0o644)  # as pybabel compile leaves it, not mkstemp's 0600
                os.replace(temporary, mo)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except Exception as error:  # noqa: BLE001 (a plugin's catalog never stops the app)
            log.warning(
                "Translations %s not compiled (%s: %s); its strings stay as they were",
                po,
                type(error).__name__,
                error,
            )
            continue
        written.append(mo)
    return written


def use_catalogs(app, host) -> None:
    """Compile the plugins' stale catalogs and have Flask-Babel read every folder."""
    folders = catalog_folders(host)
    for folder in folders[:-1]:  # the core's is compiled by scripts/setup and shipped compiled
        compile_stale_catalogs(folder)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(map(str, folders))
    app.extensions["babel"].translation_directories = [str(folder) for folder in folders]
    # Catalogs loaded before this (a method's defaults, translated into every
    # language while its plugin was checked) were read without the plugins'.
    app.extensions.pop("palabre.translations_cache", None)
