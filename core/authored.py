"""What a facilitator writes for the room, in each of the session's languages.

A question, a scene, a synopsis, a prompt: every text a facilitator
authors and participants read (on phones, the projector, the poster, paper
cards, reports) is a :class:`Texts`, one version per language code, stored
in ``Session.config`` as a plain ``{code: text}`` dict. A reader sees their
language, else the session's first, else the next of the session's
languages written, else whatever was written (:meth:`Texts.shown`).

Sessions made before texts were kept per language stored a plain string:
:meth:`Texts.of` reads both shapes, a plain string becoming a text whose
language is not known (the key ``""``), shown in the session's first
language. Nothing needs migrating.

The one form field, :class:`TextsField`, gives one real input per language
(``<name>-<code>``), the session's languages first and the others folded
away; the filter ``in_language`` and the macros of
``components/texts.html`` (imported ``with context``) show a text with its ``lang`` and ``dir``, so
that read-aloud and screen readers use the language of the text shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from flask import g, has_request_context, render_template
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from jinja2 import pass_context
from markupsafe import Markup, escape
from wtforms.fields import Field
from wtforms.utils import unset_value
from wtforms.validators import ValidationError

from .i18n import DEFAULT_LANGUAGE, LANGUAGES, current_language, direction
from .inputs import clean_text

#: The key of a text whose language is not known (stored before texts had languages).
UNKNOWN = ""


@dataclass(frozen=True)
class Shown:
    """One version of a :class:`Texts` as a reader gets it: the text and its language."""

    text: str
    lang: str

    @property
    def dir(self) -> str:
        """``"rtl"`` or ``"ltr"``: the writing direction of the text's language."""
        return direction(self.lang)

    def __str__(self) -> str:
        return self.text

    def __html__(self) -> str:
        return str(escape(self.text))

    def __bool__(self) -> bool:
        return bool(self.text)


class Texts(Mapping):
    """One text in several languages: ``{language code: text}``, immutable and hashable.

    Empty versions are left out. ``str(texts)`` is the first version written;
    read a version with :meth:`shown`. Store ``dict(texts)`` (what
    :meth:`to_json` returns) in ``Session.config``.
    """

    __slots__ = ("_items",)

    def __init__(self, texts: Mapping | Iterable[tuple[str, str]] | None = None):
        pairs = texts.items() if isinstance(texts, Mapping) else (texts or ())
        items = {}
        for code, text in pairs:
            text = clean_text(text).strip() if text is not None else ""
            if text:
                items[str(code)] = text
        self._items = tuple(items.items())

    @classmethod
    def of(cls, stored, language: str = UNKNOWN) -> Texts:
        """Read a stored text in either shape: a ``{code: text}`` dict, or a plain string
        (from before texts had languages: its language is ``language``, unknown by default).
        ``None`` is an empty text."""
        if isinstance(stored, Texts):
            return stored
        if isinstance(stored, Mapping):
            return cls(stored)
        if stored is None:
            return cls()
        return cls({language: stored})

    @classmethod
    def from_catalog(cls, make: Callable[[], str], languages: Iterable[str] | None = None) -> Texts:
        """``make()`` (a ``gettext`` call) in each language whose catalog translates it, and in
        English: a default text offered in every language it is really written in, never
        English marked as another language."""
        with force_locale(DEFAULT_LANGUAGE):
            english = str(make())
        texts = {}
        for code in languages if languages is not None else LANGUAGES:
            with force_locale(code):
                text = str(make())
            if code == DEFAULT_LANGUAGE or text != english:
                texts[code] = text
        return cls(texts)

    @classmethod
    def from_form(cls, data: Mapping, name: str, languages: Iterable[str]) -> Texts:
        """The text ``name`` posted by ``components/texts.html``'s ``texts_inputs`` (one input
        ``<name>-<code>`` per language), in ``languages``; what a method action receives."""
        return cls(
            (code, value)
            for code in languages
            if isinstance(value := data.get(f"{name}-{code}"), str)
        )

    def shown(self, language: str | None, languages: Iterable[str] = ()) -> Shown:
        """The version for a reader of ``language``: theirs, else the first of ``languages``
        (the session's) written, else the first written. A text of unknown language is
        taken as written in the first of ``languages``."""
        languages = [code for code in languages if code]
        first = languages[0] if languages else (language or DEFAULT_LANGUAGE)
        texts = dict(self.with_language(first)._items)
        for code in (language, *languages):
            if code and texts.get(code):
                return Shown(texts[code], code)
        for code, text in texts.items():
            return Shown(text, code or first)
        return Shown("", first)

    def with_language(self, language: str) -> Texts:
        """The version of unknown language given ``language``, unless one is written in it."""
        texts = dict(self._items)
        unknown = texts.pop(UNKNOWN, None)
        if unknown and language and not texts.get(language):
            texts = {language: unknown, **texts}
        return Texts(texts)

    def only(self, languages: Iterable[str]) -> Texts:
        """The versions in ``languages`` (and one of unknown language), the others dropped."""
        keep = {*languages, UNKNOWN}
        return Texts((code, text) for code, text in self._items if code in keep)

    def to_json(self) -> dict[str, str]:
        return dict(self._items)

    def __getitem__(self, code: str) -> str:
        return dict(self._items)[code]

    def __iter__(self):
        return (code for code, _text in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other) -> bool:
        if isinstance(other, Texts):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __str__(self) -> str:
        return self._items[0][1] if self._items else ""

    def __repr__(self) -> str:
        return f"Texts({dict(self._items)!r})"


def session_languages(session) -> list[str]:
    """A session's languages that Palabre speaks, in its order; all of them if none."""
    codes = [code for code in getattr(session, "languages", None) or () if code in LANGUAGES]
    return codes or list(LANGUAGES)


def text_in(stored, session, language: str | None = None) -> Shown:
    """A stored text (either shape) for a reader of ``language`` in ``session``
    (default: the page's language)."""
    return Texts.of(stored).shown(language or current_language(), session_languages(session))


@pass_context
def in_language_filter(context, stored, language: str | None = None) -> Shown:
    """Template filter ``in_language``: ``{{ phase.question|in_language }}`` is the text in the
    page's language, else the session's first (the ``session`` of the template)."""
    from .models import Session

    session = context.get("session")
    languages = session_languages(session) if isinstance(session, Session) else list(LANGUAGES)
    return Texts.of(stored).shown(
        language or context.get("page_lang") or current_language(), languages
    )


@pass_context
def every_language_filter(context, stored) -> list[Shown]:
    """Template filter ``in_every_language``: the versions of a text in the session's
    languages, in its order, each language once (the projector and the paper cards show
    them all; a language without its own version is left out, the first always shown)."""
    from .models import Session

    session = context.get("session")
    languages = session_languages(session) if isinstance(session, Session) else list(LANGUAGES)
    texts = Texts.of(stored)
    versions = [texts.shown(code, languages) for code in languages]
    seen, shown = set(), []
    for index, version in enumerate(versions):
        if version and (index == 0 or version.lang == languages[index]) and version not in seen:
            seen.add(version)
            shown.append(version)
    return shown


# --- the form field ---------------------------------------------------------------------


def offer_languages(codes: Iterable[str]) -> None:
    """Say which languages the session being made or edited speaks (a request's session
    form), before its configuration form is built: :class:`TextsField` offers them first
    and keeps only their versions."""
    g.palabre_text_languages = [code for code in codes if code in LANGUAGES]


def offered_languages() -> list[str]:
    """The languages :func:`offer_languages` named, else the page's language."""
    offered = getattr(g, "palabre_text_languages", None) if has_request_context() else None
    return offered or [current_language()]


class TextsWidget:
    """Draws a :class:`TextsField`: a fieldset with one labelled input per language."""

    #: The page's field macro lets this widget draw its own label, help and errors.
    whole = True

    def __call__(self, field, **kwargs):
        offered = offered_languages()
        others = [code for code in LANGUAGES if code not in offered]
        return Markup(
            render_template(
                "components/texts_field.html",
                field=field,
                offered=offered,
                others=others,
                attrs=kwargs,
            )
        )


class TextsField(Field):
    """A facilitator's text in each language: one input per language, ``<name>-<code>``.

    Its ``data`` is a :class:`Texts`, holding only the languages offered
    (:func:`offer_languages`): a version left in a language the session no
    longer speaks is dropped when the form is saved. ``default`` and the
    form's ``data`` may be a dict, a :class:`Texts` or a plain string (taken as
    the first offered language's). A post with one value under the field's own
    name (a script, an older form) gives the first offered language's text.

    :param multiline: a text area (one item per line, such as a round's questions)
        rather than a line.
    :param required: refused unless written in at least one language.
    :param max_length: the most characters of each version (of each line, with
        ``multiline``).
    :param rows: the text areas' height.
    """

    widget = TextsWidget()

    def __init__(
        self,
        label=None,
        validators=None,
        *,
        multiline: bool = False,
        required: bool = False,
        max_length: int | None = None,
        rows: int = 3,
        **kwargs,
    ):
        super().__init__(label, validators, **kwargs)
        self.multiline = multiline
        self.required = required
        self.max_length = max_length
        self.rows = rows

    def input_name(self, code: str) -> str:
        return f"{self.name}-{code}"

    def input_id(self, code: str) -> str:
        return f"{self.id}-{code}"

    def process(self, formdata, data=unset_value, extra_filters=None):
        self.process_errors = []
        if data is unset_value:
            data = self.default() if callable(self.default) else self.default
        self.object_data = data
        offered = offered_languages()
        self.data = Texts.of(data, offered[0]).with_language(offered[0])
        if formdata is None or not formdata:
            return
        posted = {
            code: formdata.get(self.input_name(code))
            for code in LANGUAGES
            if self.input_name(code) in formdata
        }
        if not posted and self.name in formdata:
            posted = {offered[0]: formdata.get(self.name)}
        self.data = Texts(posted).only(offered)

    def pre_validate(self, form):
        if self.required and not self.data:
            raise ValidationError(_("Write this in at least one language."))
        if self.max_length is None:
            return
        for code, text in self.data.items():
            parts = text.splitlines() if self.multiline else [text]
            if any(len(part) > self.max_length for part in parts):
                name = LANGUAGES.get(code, (code,))[0]
                raise ValidationError(
                    ngettext(
                        "%(language)s: at most %(num)d character.",
                        "%(language)s: at most %(num)d characters.",
                        self.max_length,
                        language=name,
                    )
                    if not self.multiline
                    else ngettext(
                        "%(language)s: at most %(num)d character per line.",
                        "%(language)s: at most %(num)d characters per line.",
                        self.max_length,
                        language=name,
                    )
                )

    def lines(self) -> dict[str, list[str]]:
        """A multiline field's non-empty lines, by language."""
        return {
            code: [line.strip() for line in text.splitlines() if line.strip()]
            for code, text in self.data.items()
        }

    def _value(self) -> str:
        return str(self.data or "")
