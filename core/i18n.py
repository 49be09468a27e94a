"""Languages: which one a page speaks, and which way it is written.

Every string goes through gettext (``flask_babel``), in one domain,
``messages``. The core's catalog lives in ``core/translations``; each plugin
may bring its own in a ``translations/`` folder beside its module (and its
``templates/``), which :func:`catalog_folders` finds and
:func:`compile_stale_catalogs` compiles when the app starts. A page's
language is, in order: the one the person chose (kept in their cookie), the
best match for their browser, English.
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
from flask_babel import Domain, _get_current_context, get_locale
from wtforms.i18n import messages_path

#: The core's own catalog folder.
CORE_TRANSLATIONS = Path(__file__).parent / "translations"

log = logging.getLogger(__name__)

#: Languages with a complete catalog: code -> (name in that language, direction).
LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("English", "ltr"),
    "fr": ("Français", "ltr"),
    "ar": ("العربية", "rtl"),
}
DEFAULT_LANGUAGE = "en"


def select_locale() -> str:
    """Flask-Babel's locale selector."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def current_language() -> str:
    return str(get_locale() or DEFAULT_LANGUAGE)


def direction(language: str) -> str:
    """``"rtl"`` or ``"ltr"`` for a language code."""
    return LANGUAGES.get(language, ("", "ltr"))[1]


def template_globals() -> dict:
    language = current_language()
    return {
        "page_lang": language,
        "page_dir": direction(language),
        "languages": LANGUAGES,
    }


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
