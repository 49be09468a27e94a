"""Languages: which one a page speaks, and which way it is written.

Every string goes through gettext (``flask_babel``); the catalogs live in
``core/translations`` and cover the core and the built-in plugins. A page's
language is, in order: the one the person chose (kept in their cookie), the
best match for their browser, English.
"""

from __future__ import annotations

from flask import request, session
from flask_babel import get_locale

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
