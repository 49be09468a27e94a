"""What clients send, made safe to store: text, integers, identifiers, redirect targets.

Phones, staff forms and plugin actions all pass their values through these
few functions, so that hostile or broken input is refused or repaired in one
way everywhere: no text with NUL, stray control or bidi override
characters, or lone surrogates reaches the database; no integer beyond
SQLite's 64 bits reaches a query; no redirect leaves the site or carries a
line break into a header.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from sqlalchemy import JSON, String, event
from werkzeug.routing import IntegerConverter

#: The integers every database column holds: Palabre's integer columns are
#: PostgreSQL ``integer`` (SQLite holds 64 bits). Python's ints are unbounded; a
#: larger one fails the query (``integer out of range``, or ``OverflowError``).
SQL_INT_MIN = -(2**31)
SQL_INT_MAX = 2**31 - 1

#: NUL and the other C0/C1 controls except tab, line feed and carriage return;
#: the bidi embeddings and overrides (U+202A..U+202E) and isolates
#: (U+2066..U+2069), which let a note reorder the text shown after it.
#: Left and right marks (U+200E, U+200F, U+061C) stay: Arabic text needs them.
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_text(value) -> str:
    """``value`` as text fit to store and show; ``None`` becomes ``""``.

    Lone surrogates (which JSON can carry and no encoding can store) become
    U+FFFD; a surrogate pair left split becomes its character. NUL, other
    control characters but tab and line breaks, and bidi override and
    isolate characters are removed. Nothing else changes: not the case, not
    the spaces, not the length beyond what is removed.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return _UNWANTED.sub("", text)
    # UTF-16 pairs split surrogates back up; decoding replaces the lone ones.
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _UNWANTED.sub("", text)


def is_clean(value: str) -> bool:
    """Whether ``value`` is text that :func:`clean_text` leaves as it is."""
    return clean_text(value) == value


def clean_json(value):
    """A JSON-like value with every string in it, keys too, passed through :func:`clean_text`.

    Dicts, lists and tuples (which become lists) are walked; other values are kept.
    """
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key): clean_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    return value


def parse_int(
    value, default: int | None = None, *, low: int = SQL_INT_MIN, high: int = SQL_INT_MAX
) -> int | None:
    """An integer a client sent, or ``default`` when it is not one within ``low``..``high``.

    Accepts an ``int`` (not a ``bool``), a float with no fractional part, or
    a string of digits with an optional sign and surrounding spaces. Never
    raises: huge numbers, ``NaN``, infinities, lists, ``None`` and text all
    give ``default``.
    """
    if isinstance(value, bool):
        return default
    if isinstance(value, float):
        if not value.is_integer():
            return default
        value = int(value)
    elif isinstance(value, str):
        # Python's int() would also read other scripts' digits and underscores.
        if not _INTEGER.fullmatch(value.strip()):
            return default
        value = int(value)
    elif not isinstance(value, int):
        return default
    return value if low <= value <= high else default


def local_path(target, fallback: str) -> str:
    """``target`` if it is a path on this site, safe in a ``Location`` header; else ``fallback``.

    Refuses other sites (``//host``, ``https://host``, ``/\\host`` which
    browsers read as ``//host``) and any control character, so that a
    ``next`` or ``Referer`` with a line break never reaches a header. Any
    space or tab is refused (browsers drop tabs, so ``/<tab>/host`` becomes
    ``//host``), and so is a target that starts so once percent-decoded
    (``/%09/host``, ``/%5Chost``), in case something decodes it once more.
    """
    if not isinstance(target, str) or not target.startswith("/") or not is_clean(target):
        return fallback
    if any(ch.isspace() for ch in target):
        return fallback
    decoded = unquote(target)
    if any(
        text.startswith(("//", "/\\")) or not is_clean(text[:2]) or text[1:2].isspace()
        for text in (target, decoded)
    ):
        return fallback
    return target


def same_site_path(url, fallback: str, host: str) -> str:
    """The path (and query) of ``url`` when it points at ``host``, else ``fallback``.

    For going back to the page a form came from (its ``Referer``), never to
    another site's page.
    """
    if not isinstance(url, str):
        return fallback
    try:
        parts = urlsplit(url)
    except ValueError:
        return fallback
    if parts.netloc and parts.netloc != host:
        return fallback
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return local_path(path, fallback)


class DatabaseIdConverter(IntegerConverter):
    """``<int:...>`` in routes, bounded to what a database id can be.

    Werkzeug's own converter accepts any number of digits, and a query with
    a 30-digit id raises ``OverflowError``; beyond :data:`SQL_INT_MAX` the
    URL matches no route (404), as a missing id would.
    """

    def __init__(self, map, fixed_digits=0, min=None, max=SQL_INT_MAX, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def keep_stored_text_clean(session_factory) -> None:
    """Pass every text and JSON column of rows being written through :func:`clean_text`.

    The forms, the live layer and the contribution rules clean what they
    receive, so that validation sees the text as it will be stored; this is
    the backstop for every other way text reaches a row (a method's own
    fields, a page reading ``request.form`` directly, a third-party plugin),
    so that no stored row holds what :func:`clean_text` removes. Installed
    once on ``session_factory`` (``db.session``), before each flush.
    """
    if not event.contains(session_factory, "before_flush", _clean_rows):
        event.listen(session_factory, "before_flush", _clean_rows)


def _clean_rows(session, flush_context, instances) -> None:
    for row in (*session.new, *session.dirty):
        clean_row(row)


def clean_row(row) -> None:
    """Pass the text and JSON columns of ``row`` (an ORM object) through :func:`clean_text`.

    What :func:`keep_stored_text_clean` does before each flush, for rows
    written without one (:func:`palabre.database.insert_now`).
    """
    for column in row.__mapper__.columns:
        if not isinstance(column.type, String | JSON):
            continue
        name = row.__mapper__.get_property_by_column(column).key
        value = getattr(row, name)
        cleaned = clean_json(value) if isinstance(column.type, JSON) else value
        if isinstance(cleaned, str):
            cleaned = clean_text(cleaned)
        if cleaned != value:
            setattr(row, name, cleaned)
