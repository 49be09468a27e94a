"""The one backlog of needs and actions that every method feeds.

Needs come from sessions (with provenance down to the contributions and
their support, kept by kind) or are typed in; duplicates are merged with a
confirmation, never deleted, and a merge can be undone. Actions address
needs and carry an objective, an indicator, an owner and partners from the
stakeholder register, resources, dates and a status; monitoring updates
and evaluations are recorded against them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload, subqueryload
from wtforms import DateField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields import SelectMultipleField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from . import access
from .concurrency import page_off_the_loop
from .database import write_transaction
from .extensions import db
from .forms import CleanForm, MultiCheckboxField, options
from .inputs import clean_text
from .methods import ACTION, NEED, BacklogCandidate
from .models import (
    Action,
    ActionSource,
    ActionStatus,
    ActionUpdate,
    Contribution,
    CustomTheme,
    Need,
    NeedMerge,
    NeedSource,
    Session,
    Stakeholder,
    Support,
    Theme,
    UpdateKind,
    need_action,
    utcnow,
)
from .plugin_host import get_method, plugin_host

bp = Blueprint("backlog", __name__, url_prefix="/backlog")

THEME_LABELS = {
    Theme.HOUSING: _l("Housing"),
    Theme.HEALTH: _l("Health"),
    Theme.WORK: _l("Work"),
    Theme.EDUCATION: _l("Education"),
    Theme.LANGUAGE: _l("Language"),
    Theme.RIGHTS: _l("Rights and status"),
    Theme.SOCIAL_LIFE: _l("Social life"),
    Theme.SERVICES: _l("Public services"),
    Theme.OTHER: _l("Other"),
}
#: Words that suggest a default theme, in the languages Palabre speaks. A
#: word matches any word containing it ("rent" in "rents", "سكن" in "السكن").
THEME_WORDS = {
    Theme.HOUSING: "housing house home flat rent landlord shelter evict logement loger loyer "
    "appartement propriétaire hébergement expulsion سكن منزل بيت شقة إيجار ايجار مأوى",
    Theme.HEALTH: "health doctor hospital clinic medic illness care mental santé médecin "
    "hôpital soin malad psych صحة طبيب مستشفى علاج مرض عيادة",
    Theme.WORK: "work job employ career wage salary business travail emploi métier salaire "
    "chômage entreprise عمل وظيف شغل راتب توظيف",
    Theme.EDUCATION: "school education child pupil student university training diploma "
    "école éducation enfant élève étudiant université formation diplôme مدرس تعليم طفل أطفال "
    "طالب جامعة تدريب شهادة",
    Theme.LANGUAGE: "language class interpret translat english french arabic langue cours "
    "interprète tradu français anglais لغة لغات دروس ترجم مترجم",
    Theme.RIGHTS: "right asylum permit visa status residence legal lawyer discrimin racis "
    "droit asile titre séjour statut avocat juridique لجوء إقامة حقوق قانون تمييز محامي",
    Theme.SOCIAL_LIFE: "friend neighbour neighbor community sport culture club lonel isolat "
    "voisin ami communauté culture loisir isolement أصدقاء جيران مجتمع رياضة ثقافة عزلة",
    Theme.SERVICES: "office desk form paperwork service appointment administration counter "
    "bureau guichet formulaire papier démarche rendez-vous مكتب استمارة ورق خدمة موعد إدارة",
}
STATUS_LABELS = {
    ActionStatus.PROPOSED: _l("Proposed"),
    ActionStatus.PLANNED: _l("Planned"),
    ActionStatus.IN_PROGRESS: _l("In progress"),
    ActionStatus.DONE: _l("Done"),
    ActionStatus.DROPPED: _l("Dropped"),
}
NEED_SORTS = {
    "sessions": _l("Number of sessions"),
    "people": _l("People who raised it"),
    "dots": _l("Dots"),
    "rating": _l("Rating"),
    "newest": _l("Newest first"),
    "oldest": _l("Oldest first"),
    "title": _l("Title"),
}
NEED_STATES = {
    "": _l("All open needs"),
    "no_action": _l("No action yet"),
    "with_action": _l("With an action"),
    "merged": _l("Merged into another"),
}
#: What a date that cannot be read gets as its message, wherever a date is typed.
WRITE_DATE = _l("Write the date as year-month-day, such as 2027-03-01.")
#: Needs the action form's picker lists at most for one search (the chosen ones besides).
NEED_PICKER_LIMIT = 30
#: How alike two needs' titles must be (shared words over all words) to be suggested as duplicates.
DUPLICATE_THRESHOLD = 0.5


# Administrators, and facilitators when the administrators allow it (the instance
# setting); a session's harvest for those of them who run it.
access.protect(bp, access.BACKLOG)


@bp.app_template_global()
def theme_label(theme: str) -> str:
    """A theme's name: a default's translation, or what the team called its own theme."""
    if theme in THEME_LABELS:
        return str(THEME_LABELS[theme])
    custom = db.session.get(CustomTheme, theme)
    return custom.label if custom else theme


@bp.app_template_filter()
def format_number(value) -> str:
    """A number as the reader's language writes it (1 200,5 in French)."""
    return format_decimal(value)


@bp.app_template_global()
def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def theme_choices() -> list[tuple[str, str]]:
    """Every theme as ``(key, label)``: the defaults, the team's own, and "Other" last."""
    custom = db.session.scalars(select(CustomTheme).order_by(CustomTheme.label)).all()
    return [
        *((key, str(label)) for key, label in THEME_LABELS.items() if key != Theme.OTHER),
        *((theme.key, theme.label) for theme in custom),
        (Theme.OTHER, str(THEME_LABELS[Theme.OTHER])),
    ]


def _words(text: str) -> list[str]:
    """Lower-case words of ``text`` without accents (Arabic letters are kept as they are)."""
    text = unicodedata.normalize("NFKD", str(text).casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return [word for word in re.split(r"\W+", text) if word]


@functools.cache
def _default_stems() -> dict[str, tuple[str, ...]]:
    """The default themes' words, as :func:`_words` writes them; computed once."""
    return {
        key: tuple(stem for word in words.split() for stem in _words(word)[:1] if len(stem) >= 3)
        for key, words in THEME_WORDS.items()
    }


def suggest_theme(text: str) -> str:
    """The theme whose words ``text`` uses most, or "other"; computed here, nothing leaves."""
    words = _words(text)
    if not words:
        return Theme.OTHER
    vocabularies = dict(_default_stems())
    for custom in db.session.scalars(select(CustomTheme)):
        custom_words = _words(custom.keywords.replace(",", " ")) + _words(custom.label)
        vocabularies[custom.key] = tuple(stem for stem in custom_words if len(stem) >= 3)
    best, best_hits = Theme.OTHER, 0
    for key, stems in vocabularies.items():
        hits = sum(1 for word in words if any(stem in word for stem in stems))
        if hits > best_hits:
            best, best_hits = key, hits
    return best


# --- duplicates ------------------------------------------------------------------

_STOP_WORDS = frozenset(
    {
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "are",
        "was",
        "not",
        "but",
        "all",
        "any",
        "can",
        "our",
        "their",
        "more",
        "need",
        "needs",
        "les",
        "des",
        "une",
        "pour",
        "avec",
        "dans",
        "que",
        "qui",
        "pas",
        "par",
        "sur",
        "aux",
        "est",
        "sont",
        "plus",
        "leur",
        "besoin",
        "besoins",
        "في",
        "من",
        "على",
        "إلى",
        "عن",
        "مع",
        "هذا",
        "هذه",
        "التي",
        "الذي",
    }
)


def _title_stems(title: str) -> frozenset[str]:
    """The significant words of a title, cut to a crude stem so that plurals match."""
    return frozenset(
        word[:6] for word in _words(title) if len(word) >= 3 and word not in _STOP_WORDS
    )


def similarity(a: str, b: str) -> float:
    """How alike two titles are: shared significant words over all of them (0 to 1)."""
    first, second = _title_stems(a), _title_stems(b)
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


def duplicate_suggestions(
    needs: list[Need], limit: int = 20, threshold: float = DUPLICATE_THRESHOLD
) -> list[tuple[Need, Need, float]]:
    """Pairs of needs whose titles are alike, most alike first; computed locally.

    Only needs sharing a word are compared, so a thousand needs take a
    fraction of a second.
    """
    stems = {need.id: _title_stems(need.title) for need in needs}
    by_word: dict[str, list[Need]] = {}
    for need in needs:
        for stem in stems[need.id]:
            by_word.setdefault(stem, []).append(need)
    seen: set[tuple[int, int]] = set()
    pairs = []
    for group in by_word.values():
        if len(group) > 200:  # a word most needs share says nothing
            continue
        for i, first in enumerate(group):
            for second in group[i + 1 :]:
                key = (min(first.id, second.id), max(first.id, second.id))
                if key in seen:
                    continue
                seen.add(key)
                a, b = stems[first.id], stems[second.id]
                score = len(a & b) / len(a | b)
                if score >= threshold:
                    pairs.append((first, second, score))
    pairs.sort(key=lambda pair: (-pair[2], pair[0].id, pair[1].id))
    return pairs[:limit]


# --- forms -----------------------------------------------------------------------


def parse_number(text: str | None) -> float | None:
    """A number typed by a person ("1 200,50", "1200.5"), or ``None`` when the text is empty.

    Raises ``ValueError`` when there is text that is not a number.
    """
    cleaned = re.sub(r"[\s\u00a0\u202f']", "", text or "")
    if not cleaned:
        return None
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    cleaned = cleaned.replace(",", "")
    if not re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", cleaned):
        raise ValueError(text)
    value = float(cleaned)
    if abs(value) >= 1e15:
        raise ValueError(text)
    return value


def plain_number(value: float | None) -> str:
    """A stored number as a form or a file writes it back: ``120000.5``, ``50``, or ``""``."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def number_field_check(form, field) -> None:
    """A WTForms validator: the field holds a number or nothing."""
    try:
        parse_number(field.data)
    except ValueError:
        raise ValidationError(_("Write a number, such as 1200 or 1200.50.")) from None


class NeedForm(CleanForm):
    title = StringField(_l("Need"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Length(max=4000)])
    theme = SelectField(
        _l("Theme"),
        default="",
        description=_l("Left on “Suggest”, the theme is chosen from the words of the need."),
    )
    submit = SubmitField(_l("Save the need"))


class ConfirmForm(CleanForm):
    submit = SubmitField(_l("Yes, merge them"))


class UndoForm(CleanForm):
    submit = SubmitField(_l("Undo this merge"))


class ActionForm(CleanForm):
    title = StringField(_l("Action"), validators=[DataRequired(), Length(max=200)])
    objective = TextAreaField(_l("Objective"), validators=[Length(max=4000)])
    indicator = StringField(
        _l("Indicator"),
        description=_l("What is measured, such as “people helped per month”."),
        validators=[Length(max=2000)],
    )
    indicator_baseline = StringField(
        _l("Baseline"), validators=[Length(max=40), number_field_check]
    )
    indicator_target = StringField(_l("Target"), validators=[Length(max=40), number_field_check])
    indicator_unit = StringField(_l("Unit"), validators=[Length(max=40)])
    owner_id = SelectField(_l("Responsible stakeholder"), coerce=int, default=0)
    partners = MultiCheckboxField(_l("Partners"), coerce=int)
    budget_amount = StringField(_l("Budget"), validators=[Length(max=40), number_field_check])
    budget_currency = StringField(
        _l("Currency"),
        default="EUR",
        description=_l("Three letters, such as EUR."),
        validators=[Length(max=3)],
    )
    in_kind = TextAreaField(
        _l("Resources in kind"),
        description=_l("Staff time, rooms, volunteers…"),
        validators=[Length(max=2000)],
    )
    start_date = DateField(_l("Start"), validators=[Optional()], invalid_value_message=WRITE_DATE)
    end_date = DateField(_l("End"), validators=[Optional()], invalid_value_message=WRITE_DATE)
    status = SelectField(_l("Status"), choices=options(STATUS_LABELS.items()))
    needs = SelectMultipleField(_l("Needs it addresses"), coerce=int)
    submit = SubmitField(_l("Save the action"))

    def validate_budget_currency(self, field):
        field.data = (field.data or "").strip().upper()
        if field.data and not re.fullmatch("[A-Z]{3}", field.data):
            raise ValidationError(_("Write the currency as three letters, such as EUR."))
        if not field.data and (self.budget_amount.data or "").strip():
            raise ValidationError(_("Say in which currency the budget is."))

    def validate_end_date(self, field):
        if field.data and self.start_date.data and field.data < self.start_date.data:
            raise ValidationError(_("The end cannot come before the start."))


class UpdateForm(CleanForm):
    """A monitoring update: where the indicator stands, and who reported it."""

    on_date = DateField(
        _l("Date"),
        default=lambda: utcnow().date(),
        validators=[DataRequired(message=WRITE_DATE)],
        invalid_value_message=WRITE_DATE,
    )
    progress = StringField(
        _l("Indicator value now"), validators=[Length(max=40), number_field_check]
    )
    body = TextAreaField(_l("What happened"), validators=[DataRequired(), Length(max=4000)])
    reported_by = SelectField(_l("Reported by"), coerce=int, default=0)
    submit = SubmitField(_l("Record the progress"))


class EvaluationForm(CleanForm):
    """An evaluation entry: how it was evaluated, what was found, and the evidence."""

    on_date = DateField(
        _l("Date"),
        default=lambda: utcnow().date(),
        validators=[DataRequired(message=WRITE_DATE)],
        invalid_value_message=WRITE_DATE,
    )
    method = StringField(
        _l("Evaluation method"),
        description=_l("Such as a mystery-shopping audit, a survey, interviews."),
        validators=[DataRequired(), Length(max=200)],
    )
    body = TextAreaField(_l("Findings"), validators=[DataRequired(), Length(max=4000)])
    evidence = SelectField(_l("Evidence: a session"), coerce=int, default=0)
    submit = SubmitField(_l("Record the evaluation"))


class MonitoringReportForm(CleanForm):
    """The monitoring report's one question, since when; sent by GET, so without a token."""

    class Meta:
        csrf = False

    since = DateField(
        _l("Since"),
        validators=[DataRequired(message=WRITE_DATE)],
        invalid_value_message=WRITE_DATE,
    )


class ThemeForm(CleanForm):
    label = StringField(_l("Theme"), validators=[DataRequired(), Length(max=80)])
    keywords = StringField(
        _l("Words that suggest it"),
        description=_l("Separated by commas, in any language, such as: transport, bus, autobus."),
        validators=[Length(max=2000)],
    )
    submit = SubmitField(_l("Add the theme"))


class HarvestForm(CleanForm):
    """Turning a session's candidates into needs: checkboxes and themes come as raw fields."""

    submit = SubmitField(_l("Add the chosen needs to the backlog"))


def stakeholder_choices(blank) -> list:
    people = db.session.scalars(select(Stakeholder).order_by(Stakeholder.name)).all()
    return options([(0, blank), *((s.id, s.name) for s in people)])


# --- needs -------------------------------------------------------------------------


def _with_support(query):
    # Subquery loads, not "select in" ones: those take 500 ids a query, so a
    # city's backlog of thousands of needs would cost a query per 500.
    # The contributions too: whether one is hidden decides what participants see.
    return query.options(
        subqueryload(Need.sources).joinedload(NeedSource.session),
        subqueryload(Need.sources).joinedload(NeedSource.contribution),
        subqueryload(Need.actions).subqueryload(Action.updates),
    )


def open_needs() -> list[Need]:
    """Needs not merged into another, those raised in most sessions first.

    Ties go to the needs more people raised, then to those with more dots:
    the kinds of support are compared one after the other, never added.
    """
    needs = db.session.scalars(
        _with_support(select(Need).where(Need.merged_into_id.is_(None)).order_by(Need.id))
    ).all()
    return sort_needs(needs, "sessions")


def sort_needs(needs: list, sort: str) -> list:
    """``needs`` (or their :class:`NeedFacts`) in the order ``sort`` (a key of
    :data:`NEED_SORTS`) names.

    Support counts no hidden contribution (see :attr:`palabre.models.Need.support`).
    """

    def by_support(need):
        s = need.support
        first = {
            "sessions": s.sessions,
            "people": s.people,
            "dots": s.dots,
            "rating": s.rating or 0,
        }[sort]
        return (-first, -s.sessions, -s.people, -s.dots, need.id)

    if sort == "newest":
        return sorted(needs, key=lambda n: (n.created_at, n.id), reverse=True)
    if sort == "oldest":
        return sorted(needs, key=lambda n: (n.created_at, n.id))
    if sort == "title":
        return sorted(needs, key=lambda n: (n.title.casefold(), n.id))
    return sorted(needs, key=by_support)


#: Needs and actions the backlog's main page shows at once; the others are a page away.
NEEDS_PER_PAGE = 50
ACTIONS_PER_PAGE = 25


@dataclass(frozen=True)
class NeedFacts:
    """What the needs list filters, counts and sorts a need by, read without loading it."""

    id: int
    title: str
    theme: str
    created_at: datetime
    merged: bool
    has_action: bool
    sessions: frozenset[int]
    methods: frozenset[str]
    #: Counted as :attr:`palabre.models.Need.support` is: no hidden contribution.
    support: Support


def need_facts() -> list[NeedFacts]:
    """Every need's :class:`NeedFacts`, in three light queries however large the backlog."""
    shown = or_(Contribution.id.is_(None), Contribution.hidden.is_(False))
    sources: dict[int, list] = {}
    for row in db.session.execute(
        select(
            NeedSource.need_id,
            NeedSource.session_id,
            Session.method,
            NeedSource.people,
            NeedSource.dots,
            NeedSource.rating_sum,
            NeedSource.rating_count,
        )
        .join(Session, Session.id == NeedSource.session_id)
        .outerjoin(Contribution, Contribution.id == NeedSource.contribution_id)
        .where(shown)
    ):
        sources.setdefault(row.need_id, []).append(row)
    with_action = set(db.session.scalars(select(need_action.c.need_id).distinct()))
    return [
        NeedFacts(
            id=need.id,
            title=need.title,
            theme=need.theme,
            created_at=need.created_at,
            merged=need.merged_into_id is not None,
            has_action=need.id in with_action,
            sessions=frozenset(r.session_id for r in sources.get(need.id, ())),
            methods=frozenset(r.method for r in sources.get(need.id, ())),
            support=Support.of(sources.get(need.id, ())),
        )
        for need in db.session.execute(
            select(Need.id, Need.title, Need.theme, Need.created_at, Need.merged_into_id)
        )
    ]


def _in_state(facts: NeedFacts, state: str) -> bool:
    if state == "merged":
        return facts.merged
    if facts.merged:
        return False
    return {"no_action": not facts.has_action, "with_action": facts.has_action}.get(state, True)


#: Each filter of the needs list, and whether a need passes it. An empty value filters
#: nothing, but the state's: its "" keeps the open needs (see :data:`NEED_STATES`).
_NEED_FILTERS = {
    "theme": lambda facts, theme: facts.theme == theme,
    "method": lambda facts, method: method in facts.methods,
    "session_id": lambda facts, session_id: session_id in facts.sessions,
    "state": _in_state,
    "since": lambda facts, since: facts.created_at.date() >= since,
}


def _passes(facts: NeedFacts, filters: dict, leave_out: str = "") -> bool:
    """Whether ``facts`` passes every filter but ``leave_out`` (the one being counted)."""
    return all(
        check(facts, filters[name])
        for name, check in _NEED_FILTERS.items()
        if name != leave_out and (filters.get(name) or name == "state")
    )


def filter_counts(facts: list[NeedFacts], filters: dict) -> dict[str, Counter]:
    """How many needs each choice of each filter would show, the other filters kept.

    ``{"theme": Counter({"housing": 12, ...}), "method": ..., "session_id": ...,
    "state": ...}``, so that a choice's count is what choosing it lists.
    """
    counts = {name: Counter() for name in ("theme", "method", "session_id", "state")}
    for need in facts:
        if _passes(need, filters, "theme"):
            counts["theme"][need.theme] += 1
        if _passes(need, filters, "method"):
            counts["method"].update(need.methods)
        if _passes(need, filters, "session_id"):
            counts["session_id"].update(need.sessions)
        if _passes(need, filters, "state"):
            counts["state"].update(key for key in NEED_STATES if _in_state(need, key))
    return counts


def filtered_needs(
    *,
    theme: str = "",
    method: str = "",
    session_id: int | None = None,
    state: str = "",
    since: date | None = None,
    sort: str = "sessions",
    facts: list[NeedFacts] | None = None,
) -> list[NeedFacts]:
    """The needs list across all sessions and methods, filtered and sorted, as facts.

    ``state`` is a key of :data:`NEED_STATES`; ``since`` keeps needs added on
    or after that day; ``method`` and ``session_id`` keep needs with at
    least one source from that method or session (hidden contributions
    aside). Load the needs of one page with :func:`load_needs`.
    """
    filters = {
        "theme": theme,
        "method": method,
        "session_id": session_id,
        "state": state,
        "since": since,
    }
    kept = [need for need in (need_facts() if facts is None else facts) if _passes(need, filters)]
    return sort_needs(kept, sort if sort in NEED_SORTS else "sessions")


def load_needs(ids: list[int]) -> list[Need]:
    """The needs ``ids`` with their sources, support and actions, in the order of ``ids``."""
    found = {
        need.id: need
        for need in db.session.scalars(_with_support(select(Need).where(Need.id.in_(ids))))
    }
    return [found[need_id] for need_id in ids if need_id in found]


@dataclass
class Page:
    """One page of a list: its ``number`` (from 1), how many ``pages``, ``total`` rows."""

    number: int
    pages: int
    total: int
    size: int

    @classmethod
    def of(cls, asked: int | None, total: int, size: int) -> Page:
        """The page ``asked`` for (any number: kept within the pages there are)."""
        pages = max(1, -(-total // size))
        return cls(number=min(max(asked or 1, 1), pages), pages=pages, total=total, size=size)

    @property
    def start(self) -> int:
        return (self.number - 1) * self.size

    def cut(self, rows: list) -> list:
        return rows[self.start : self.start + self.size]


def create_need(
    title: str,
    *,
    description: str = "",
    theme: str = "",
    session: Session | None = None,
    contribution_ids: list[int] = (),
    dots: int = 0,
    people: int = 0,
) -> Need:
    """Add a need, with the session, contributions and support it came from.

    Without a theme, one is suggested from its words (:func:`suggest_theme`).
    """
    theme = theme or suggest_theme(f"{title} {description}")
    with write_transaction():
        need = _new_need(
            title,
            description=description,
            theme=theme,
            session=session,
            contribution_ids=contribution_ids,
            support={"dots": dots, "people": people},
        )
    plugin_host().notify("backlog_item_created", item=need)
    return need


def _sources(model, session, contribution_ids, support: dict):
    """Provenance rows; the first (the subject contribution's) carries the support."""
    rows = [
        model(session_id=session.id, contribution_id=cid) for cid in (contribution_ids or [None])
    ]
    for name, value in support.items():
        setattr(rows[0], name, value)
    return rows


def _new_need(title, *, description, theme, session, contribution_ids, support) -> Need:
    """Add a need inside the caller's write transaction (no hook called)."""
    need = Need(title=title, description=description, theme=theme)
    if session is not None:
        need.sources = _sources(NeedSource, session, contribution_ids, support)
    db.session.add(need)
    return need


class MergeRefused(ValueError):
    """A merge or its undo that would lose or loop provenance; the message says why."""


def merge_needs(duplicate: Need, into: Need) -> NeedMerge:
    """Fold ``duplicate`` into ``into``: provenance (with its support) and actions move over.

    Both stay stored; the merge is recorded so :func:`undo_merge` can take
    it back. Refused (:class:`MergeRefused`) for a need into itself, and
    for either need already merged (which would make a chain or a cycle).
    """
    with write_transaction():
        db.session.refresh(duplicate)
        db.session.refresh(into)
        if duplicate.id == into.id:
            raise MergeRefused(_("A need cannot be merged into itself."))
        if duplicate.merged_into_id is not None or into.merged_into_id is not None:
            raise MergeRefused(
                _("One of these needs is already merged into another; choose an open need.")
            )
        merge = NeedMerge(
            duplicate_id=duplicate.id,
            into_id=into.id,
            source_ids=[source.id for source in duplicate.sources],
            action_ids=[action.id for action in duplicate.actions],
            added_action_ids=[a.id for a in duplicate.actions if into not in a.needs],
        )
        for source in list(duplicate.sources):
            source.need = into
        for action in list(duplicate.actions):
            if into not in action.needs:
                action.needs.append(into)
            action.needs.remove(duplicate)
        duplicate.merged_into_id = into.id
        db.session.add(merge)
    return merge


def undo_merge(merge: NeedMerge) -> None:
    """Take a merge back: the duplicate's provenance and actions return to it.

    Refused when already undone, or when the kept need was since merged
    into a third one (undo that merge first).
    """
    with write_transaction():
        db.session.refresh(merge)
        if merge.undone_at is not None:
            raise MergeRefused(_("This merge was already undone."))
        if merge.into.merged_into_id is not None:
            raise MergeRefused(_("The kept need was merged again since; undo that merge first."))
        duplicate, into = merge.duplicate, merge.into
        for source in db.session.scalars(
            select(NeedSource).where(
                NeedSource.id.in_(merge.source_ids), NeedSource.need_id == into.id
            )
        ):
            source.need = duplicate
        for action in db.session.scalars(select(Action).where(Action.id.in_(merge.action_ids))):
            if duplicate not in action.needs:
                action.needs.append(duplicate)
            if action.id in merge.added_action_ids and into in action.needs:
                action.needs.remove(into)
        duplicate.merged_into_id = None
        merge.undone_at = utcnow()


# --- actions ------------------------------------------------------------------------


def propose_action(
    title: str,
    *,
    objective: str = "",
    session: Session | None = None,
    contribution_ids: list[int] = (),
    needs: list[Need] = (),
) -> Action:
    """Add a proposed action distilled from a session, with where it came from."""
    with write_transaction():
        action = _new_action(
            title, objective=objective, session=session, contribution_ids=contribution_ids
        )
        action.needs = list(needs)
    plugin_host().notify("backlog_item_created", item=action)
    return action


def _new_action(title, *, objective, session, contribution_ids, support=None) -> Action:
    """Add a proposed action inside the caller's write transaction (no hook called)."""
    action = Action(title=title, objective=objective, status=ActionStatus.PROPOSED)
    if session is not None:
        action.sources = _sources(ActionSource, session, contribution_ids, support or {})
    db.session.add(action)
    return action


def create_action(form: ActionForm) -> Action:
    with write_transaction():
        action = Action()
        _fill_action(action, form)
        db.session.add(action)
    plugin_host().notify("backlog_item_created", item=action)
    return action


def _fill_action(action: Action, form: ActionForm) -> None:
    for name in ("title", "objective", "indicator", "indicator_unit", "in_kind", "status"):
        setattr(action, name, (getattr(form, name).data or "").strip())
    for name in ("indicator_baseline", "indicator_target", "budget_amount"):
        setattr(action, name, parse_number(getattr(form, name).data))
    action.budget_currency = form.budget_currency.data or ""
    action.start_date = form.start_date.data
    action.end_date = form.end_date.data
    action.owner_id = form.owner_id.data or None
    action.partners = [db.session.get(Stakeholder, sid) for sid in form.partners.data or [] if sid]
    action.needs = [db.session.get(Need, need_id) for need_id in form.needs.data or []]


def _action_form(action: Action | None = None, needs: list[int] = ()) -> ActionForm:
    form = ActionForm(obj=action)
    # Only titles: the choices check what is sent; the picker shows a few (see need_picker).
    form.needs.choices = options(
        db.session.execute(
            select(Need.id, Need.title).where(Need.merged_into_id.is_(None)).order_by(Need.id)
        )
    )
    form.owner_id.choices = stakeholder_choices(_("Not chosen yet"))
    form.owner_id.data = form.owner_id.data or 0
    form.partners.choices = stakeholder_choices("")[1:]
    if not form.is_submitted():
        # With ``obj``, WTForms would read objects, not ids, for these.
        form.needs.data = [n.id for n in action.needs] if action else list(needs)
        form.partners.data = [p.id for p in action.partners] if action else []
        for name in ("indicator_baseline", "indicator_target", "budget_amount"):
            value = getattr(action, name, None) if action else None
            getattr(form, name).data = plain_number(value)
        form.budget_currency.data = form.budget_currency.data or "EUR"
    return form


def action_gaps(action: Action) -> list[str]:
    """What an action still lacks to be a plan: owner, resources, dates, indicator."""
    gaps = []
    if action.owner_id is None:
        gaps.append(_("no owner"))
    if action.budget_amount is None and not action.in_kind.strip():
        gaps.append(_("no resources"))
    if action.start_date is None or action.end_date is None:
        gaps.append(_("no dates"))
    if not action.indicator.strip() or action.indicator_target is None:
        gaps.append(_("no indicator"))
    return gaps


def all_actions():
    """Every action with what its pages and printouts read, in as many queries however many.

    (Subquery loads: see :func:`_with_support`.)
    """
    return db.session.scalars(_with_plan(select(Action).order_by(Action.id))).all()


def _with_plan(query):
    """``query`` of actions loading what pages and printouts read of them, eagerly."""
    return query.options(
        joinedload(Action.owner),
        subqueryload(Action.partners),
        subqueryload(Action.needs),
        subqueryload(Action.updates).joinedload(ActionUpdate.reported_by),
        subqueryload(Action.sources).joinedload(ActionSource.session),
        subqueryload(Action.sources).joinedload(ActionSource.contribution),
    )


# --- harvest -------------------------------------------------------------------------


def harvested_keys(session: Session) -> set[str]:
    """Keys of the session's backlog candidates already turned into needs or actions.

    A candidate's key comes from its subject contribution (see
    :attr:`palabre.methods.BacklogCandidate.key`), so this holds however the
    candidates have been reordered or reworded since.
    """
    return set(_harvested_needs(session)) | {
        BacklogCandidate(title=title, kind=ACTION, contribution_ids=[cid] if cid else []).key
        for cid, title in db.session.execute(
            select(ActionSource.contribution_id, Action.title)
            .join(Action)
            .where(ActionSource.session_id == session.id)
        )
    }


def _harvested_needs(session: Session) -> dict[str, Need]:
    """The session's harvested need candidates' keys, each with the open need it now is in."""
    found = {}
    rows = db.session.execute(
        select(NeedSource.contribution_id, Need)
        .join(Need, NeedSource.need_id == Need.id)
        .where(NeedSource.session_id == session.id)
    )
    for contribution_id, need in rows:
        key = BacklogCandidate(
            title=need.title,
            kind=NEED,
            contribution_ids=[contribution_id] if contribution_id else [],
        ).key
        found.setdefault(key, need)
    return found


def harvest(
    session: Session, chosen: list[tuple[BacklogCandidate, str, str, list[str]]]
) -> tuple[int, int]:
    """Turn chosen candidates into needs and actions, linking actions to their needs.

    Each chosen item is ``(candidate, title, theme, need keys)``: the need
    keys (for an action) name need candidates of the same session it
    addresses, harvested now or before. One transaction: a candidate already
    harvested (a form sent twice, two facilitators at once) is skipped, so
    nothing is created twice. Returns how many needs and actions were made.
    """
    made = []
    with write_transaction():
        done = harvested_keys(session)
        needs_by_key = _harvested_needs(session)
        for candidate, title, theme, _keys in sorted(chosen, key=lambda c: c[0].kind == ACTION):
            if candidate.key in done:
                continue
            done.add(candidate.key)
            rating_sum, rating_count = 0.0, 0
            if candidate.rating:
                rating_sum = candidate.rating[0] * candidate.rating[1]
                rating_count = candidate.rating[1]
            support = {
                "people": candidate.people,
                "dots": candidate.votes,
                "rating_sum": rating_sum,
                "rating_count": rating_count,
            }
            if candidate.kind == ACTION:
                item = _new_action(
                    title,
                    objective="",
                    session=session,
                    contribution_ids=candidate.contribution_ids,
                    support=support,
                )
                item.needs = _open_needs_for(needs_by_key, _keys)
                if candidate.owner:
                    item.owner = _stakeholder_named(candidate.owner)
            else:
                item = _new_need(
                    title,
                    description=candidate.description,
                    theme=theme,
                    session=session,
                    contribution_ids=candidate.contribution_ids,
                    support=support,
                )
                needs_by_key[candidate.key] = item
            made.append(item)
    for item in made:
        plugin_host().notify("backlog_item_created", item=item)
    actions = sum(isinstance(item, Action) for item in made)
    return len(made) - actions, actions


def _stakeholder_named(name: str) -> Stakeholder:
    """The register's stakeholder called ``name`` (a citizen group leading a project).

    Added to the register when it is not there yet.
    """
    name = name.strip()[:200]
    found = db.session.scalar(select(Stakeholder).where(Stakeholder.name == name))
    if found is None:
        found = Stakeholder(name=name, kind="other", interest=5, influence=2)
        db.session.add(found)
    return found


def _open_needs_for(needs_by_key: dict[str, Need], keys: list[str]) -> list[Need]:
    """The open needs behind ``keys``, following merges to the need each was merged into."""
    found = []
    for key in keys:
        need = needs_by_key.get(key)
        while need is not None and need.merged_into_id is not None:
            need = db.session.get(Need, need.merged_into_id)
        if need is not None and need not in found:
            found.append(need)
    return found


# --- pages -----------------------------------------------------------------------------


def _need_form(**kwargs) -> NeedForm:
    form = NeedForm(**kwargs)
    form.theme.choices = options([("", _("Suggest from its words")), *theme_choices()])
    return form


@bp.get("/")
def index():
    """The needs list across sessions and methods, filtered and sorted, with the actions."""
    return page_off_the_loop(_index_page)


def _index_page() -> tuple[str, int]:
    """The backlog's main page for the filters in the address, and its status code.

    Everything the page shows is in its address (filters, sort, the page of
    needs and the page of actions), so that a link, a bookmark or a form
    sent without JavaScript gives the same page. Only the needs and actions
    of the pages shown are loaded in full. A date that cannot be read is
    kept as typed with a message (answer 400).
    """
    args = request.args
    since_text = args.get("since", "").strip()
    since_error = ""
    try:
        since = date.fromisoformat(since_text) if since_text else None
    except ValueError:
        since, since_error = None, str(WRITE_DATE)
    session_id = args.get("session", type=int)
    filters = {
        "theme": args.get("theme", ""),
        "method": args.get("method", ""),
        "session_id": session_id if session_id and 0 < session_id < 2**31 else None,
        "state": args.get("state", "") if args.get("state", "") in NEED_STATES else "",
        "since": since,
        "sort": args.get("sort", "sessions") if args.get("sort") in NEED_SORTS else "sessions",
    }
    facts = need_facts()
    listed = filtered_needs(**filters, facts=facts)
    needs_page = Page.of(args.get("page", type=int), len(listed), NEEDS_PER_PAGE)
    action_status = args.get("action_status", "")
    action_status = action_status if action_status in STATUS_LABELS else ""
    by_status = dict(
        db.session.execute(select(Action.status, func.count()).group_by(Action.status)).all()
    )
    actions_total = by_status.get(action_status, 0) if action_status else sum(by_status.values())
    actions_page = Page.of(args.get("actions_page", type=int), actions_total, ACTIONS_PER_PAGE)
    return render_template(
        "backlog/index.html",
        needs=load_needs([need.id for need in needs_page.cut(listed)]),
        needs_page=needs_page,
        filters=filters,
        counts=filter_counts(facts, filters),
        since_text=since_text,
        since_error=since_error,
        monitoring_form=MonitoringReportForm(formdata=None),
        themes=theme_choices(),
        methods=plugin_host().methods,
        sessions=db.session.scalars(select(Session).order_by(Session.created_at.desc())).all(),
        sorts=NEED_SORTS,
        states=NEED_STATES,
        duplicates=duplicate_suggestions(listed) if filters["state"] != "merged" else [],
        actions=page_of_actions(action_status, actions_page),
        actions_page=actions_page,
        action_status=action_status,
        actions_by_status=by_status,
        status_labels=STATUS_LABELS,
    ), (400 if since_error else 200)


@bp.app_template_global()
def index_url(**changes) -> str:
    """The backlog's main page as now (its filters, sort and pages), with ``changes``.

    A change to a filter or the sort goes back to the first page of needs;
    a value of ``None`` or ``""`` drops that part of the address.
    """
    args = {key: value for key, value in request.args.items() if value}
    if set(changes) - {"page", "actions_page", "action_status"}:
        args.pop("page", None)
    if "action_status" in changes:
        args.pop("actions_page", None)
    args.update(changes)
    for first in ("page", "actions_page"):
        if args.get(first) in (1, "1"):
            del args[first]
    return url_for("backlog.index", **{k: v for k, v in args.items() if v not in (None, "")})


def page_of_actions(status: str, page: Page) -> list[Action]:
    """The actions of one page of the main page's list (of one ``status``, or all), as added."""
    query = _with_plan(select(Action).order_by(Action.id))
    if status:
        query = query.where(Action.status == status)
    return db.session.scalars(query.offset(page.start).limit(page.size)).all()


@bp.app_template_global()
def carry_back() -> dict[str, str]:
    """``{"back": ...}`` for a link or redirect onwards when :func:`back_to_backlog` is a
    page of the main list other than its first, else nothing."""
    back = back_to_backlog()
    return {"back": back} if back != url_for("backlog.index") else {}


@bp.app_template_global()
def back_to_backlog() -> str:
    """Where "back" leads: the backlog's page and filters the facilitator came from.

    That is the ``back`` value of the request when it is an address of the
    backlog's main page on this server, else the main page itself. Links and
    forms from the main page carry it, so that after editing, merging or
    planning the facilitator lands on the same page of the same list.
    """
    back = request.values.get("back", "")
    index = url_for("backlog.index")
    parts = urlsplit(back)
    if (
        back.startswith(index)
        and parts.path == index
        and not (parts.scheme or parts.netloc)
        and back.isprintable()
        and len(back) < 2000
    ):
        return back
    return index


@bp.route("/needs/new", methods=["GET", "POST"])
def add_need():
    """Type in a need that no session produced (a letter, a meeting with an association)."""
    form = _need_form()
    if form.validate_on_submit():
        need = create_need(
            form.title.data.strip(), description=form.description.data, theme=form.theme.data
        )
        flash(
            _("Need added, under the theme “%(theme)s”.", theme=theme_label(need.theme)),
            "success",
        )
        return redirect(back_to_backlog())
    return render_template("backlog/new_need.html", form=form)


@bp.route("/needs/<int:need_id>", methods=["GET", "POST"])
def need(need_id: int):
    """Edit a need, see where it came from and its support, merge it into another."""
    need = db.session.get(Need, need_id) or abort(404)
    form = _need_form(obj=need)
    if form.submit.data and form.validate_on_submit():
        with write_transaction():
            need.title = form.title.data.strip()
            need.description = form.description.data
            need.theme = form.theme.data or suggest_theme(f"{need.title} {need.description}")
        flash(_("Need saved."), "success")
        return redirect(back_to_backlog())
    merges = db.session.scalars(
        select(NeedMerge)
        .where(NeedMerge.into_id == need.id, NeedMerge.undone_at.is_(None))
        .order_by(NeedMerge.id.desc())
    ).all()
    return render_template(
        "backlog/need.html",
        need=need,
        form=form,
        merge_picker=None if need.merged_into_id else merge_picker(need),
        merges=merges,
        undo_form=UndoForm(),
    )


def merge_picker(need: Need, suggested: int = 5) -> dict | None:
    """What the need page's merge form offers: the ``suggested`` open needs whose titles are
    most alike (:func:`similarity`) first, then those the picker's search finds.

    Reads titles only, so that it scales to a city's backlog; ``None`` when
    there is no other open need to merge into. ``selected`` is the need chosen
    before a search sent the form back (``?into=``).
    """
    others = db.session.execute(
        select(Need.id, Need.title).where(Need.merged_into_id.is_(None), Need.id != need.id)
    ).all()
    if not others:
        return None
    scored = sorted(
        ((similarity(need.title, o.title), o.id, o.title) for o in others), reverse=True
    )
    alike = [(i, title) for score, i, title in scored if score >= DUPLICATE_THRESHOLD][:suggested]
    search = _picker_search()
    found, total = find_needs(**search, leave_out={need.id, *(need_id for need_id, _t in alike)})
    return {
        **search,
        "chosen": alike,
        "selected": request.values.get("into", type=int),
        "found": found,
        "message": _found_message(len(found), total),
        "themes": theme_choices(),
        "sessions": db.session.scalars(select(Session).order_by(Session.created_at.desc())).all(),
    }


@bp.route("/needs/<int:need_id>/merge", methods=["GET", "POST"])
def merge(need_id: int):
    """Merging a duplicate: first a confirmation page showing both needs, then the merge."""
    duplicate = db.session.get(Need, need_id) or abort(404)
    into_id = request.values.get("into", type=int) or 0
    into = db.session.get(Need, into_id) if into_id else None
    if into is None:
        flash(_("Choose the need it repeats."), "error")
        return redirect(url_for("backlog.need", need_id=need_id, **carry_back()))
    confirm = ConfirmForm()
    if request.form.get("confirmed") == "1" and confirm.validate_on_submit():
        try:
            merge_needs(duplicate, into)
        except MergeRefused as refused:
            flash(str(refused), "error")
            return redirect(url_for("backlog.need", need_id=need_id, **carry_back()))
        flash(_("Needs merged. You can undo it below."), "success")
        return redirect(url_for("backlog.need", need_id=into.id, **carry_back()))
    if duplicate.id == into.id or duplicate.merged_into_id or into.merged_into_id:
        flash(
            _("A need cannot be merged into itself.")
            if duplicate.id == into.id
            else _("One of these needs is already merged into another; choose an open need."),
            "error",
        )
        return redirect(url_for("backlog.need", need_id=need_id, **carry_back()))
    return render_template("backlog/merge.html", duplicate=duplicate, into=into, form=confirm)


@bp.post("/merges/<int:merge_id>/undo")
def undo(merge_id: int):
    merge = db.session.get(NeedMerge, merge_id) or abort(404)
    if UndoForm().validate_on_submit():
        try:
            undo_merge(merge)
            flash(_("Merge undone: both needs are back as they were."), "success")
        except MergeRefused as refused:
            flash(str(refused), "error")
    return redirect(url_for("backlog.need", need_id=merge.into_id, **carry_back()))


# --- the action form's picker of needs ----------------------------------------------------


def find_needs(
    text: str = "",
    *,
    theme: str = "",
    session_id: int | None = None,
    leave_out: set[int] = frozenset(),
    limit: int = NEED_PICKER_LIMIT,
) -> tuple[list, int]:
    """Open needs for the action form's picker, and how many matched in all.

    Keeps needs of ``theme`` and ``session_id`` (when given) whose title
    holds every word of ``text`` (accents and case aside, in any
    language), but those in ``leave_out`` (already chosen); at most
    ``limit`` rows of ``id``, ``title`` and ``theme``, by title. Reads only
    those three columns: it answers as someone types, on the live server.
    """
    query = select(Need.id, Need.title, Need.theme).where(Need.merged_into_id.is_(None))
    if theme:
        query = query.where(Need.theme == theme)
    if session_id:
        query = query.where(
            Need.id.in_(select(NeedSource.need_id).where(NeedSource.session_id == session_id))
        )
    wanted = _words(text)

    def matches(title: str) -> bool:
        written = " ".join(_words(title))
        return all(word in written for word in wanted)

    found = [
        row for row in db.session.execute(query) if row.id not in leave_out and matches(row.title)
    ]
    found.sort(key=lambda row: (row.title.casefold(), row.id))
    return found[:limit], len(found)


def _picker_search() -> dict:
    """The picker's search as sent (form or address), cleaned: text, theme and session."""
    theme = request.values.get("need_theme", "")
    session_id = request.values.get("need_session", type=int) or 0
    return {
        "text": clean_text(request.values.get("need_q", "")).strip()[:200],
        "theme": theme if theme in dict(theme_choices()) else "",
        # A number the database can hold; anything else is no session.
        "session_id": session_id if 0 < session_id < 2**31 else None,
    }


def _found_message(shown: int, total: int) -> str:
    if total > shown:
        return ngettext(
            "%(shown)d of %(num)d need shown: write more words or pick a theme or a session.",
            "%(shown)d of %(num)d needs shown: write more words or pick a theme or a session.",
            total,
            shown=shown,
        )
    return ngettext("%(num)d need found.", "%(num)d needs found.", total)


def need_picker(form: ActionForm) -> dict:
    """What the action form's picker shows: the chosen needs, then those the search finds."""
    search = _picker_search()
    titles = {choice.value: choice.label for choice in form.needs.choices}
    chosen = [(need_id, titles[need_id]) for need_id in form.needs.data or [] if need_id in titles]
    found, total = find_needs(**search, leave_out={need_id for need_id, _title in chosen})
    return {
        **search,
        "chosen": chosen,
        "found": found,
        "message": _found_message(len(found), total),
        "themes": theme_choices(),
        "sessions": db.session.scalars(select(Session).order_by(Session.created_at.desc())).all(),
    }


@bp.get("/needs/find.json")
def find_needs_json():
    """The picker's search as it is typed (need_picker.js): ``?need_q=&need_theme=&need_session=``,
    ``&chosen=`` for each need already chosen."""
    chosen = set(request.args.getlist("chosen", type=int))
    found, total = find_needs(**_picker_search(), leave_out=chosen)
    return jsonify(
        {
            "needs": [
                {"id": row.id, "title": row.title, "theme": theme_label(row.theme)} for row in found
            ],
            "message": _found_message(len(found), total),
        }
    )


def _searching_needs() -> bool:
    """Whether the action form came back for its picker's "Find needs", not to be saved."""
    return "find_needs" in request.form


@bp.route("/actions/new", methods=["GET", "POST"])
def new_action():
    form = _action_form(needs=request.args.getlist("need", type=int))
    if not _searching_needs() and form.validate_on_submit():
        action = create_action(form)
        flash(_("Action added."), "success")
        return redirect(url_for("backlog.action", action_id=action.id, **carry_back()))
    return render_template("backlog/action.html", form=form, action=None, picker=need_picker(form))


def _update_forms() -> tuple[UpdateForm, EvaluationForm]:
    update, evaluation = UpdateForm(prefix="update"), EvaluationForm(prefix="evaluation")
    update.reported_by.choices = stakeholder_choices(_("The team"))
    sessions = db.session.scalars(select(Session).order_by(Session.created_at.desc())).all()
    evaluation.evidence.choices = options([(0, _("None")), *((s.id, s.title) for s in sessions)])
    return update, evaluation


@bp.route("/actions/<int:action_id>", methods=["GET", "POST"])
def action(action_id: int):
    action = db.session.get(Action, action_id) or abort(404)
    form = _action_form(action)
    if form.submit.data and not _searching_needs() and form.validate_on_submit():
        with write_transaction():
            _fill_action(action, form)
        flash(_("Action saved."), "success")
        return redirect(url_for("backlog.action", action_id=action.id, **carry_back()))
    update_form, evaluation_form = _update_forms()
    return render_template(
        "backlog/action.html",
        form=form,
        action=action,
        update_form=update_form,
        evaluation_form=evaluation_form,
        gaps=action_gaps(action),
        picker=need_picker(form),
    )


@bp.post("/actions/<int:action_id>/updates")
def add_update(action_id: int):
    """Record a monitoring update or an evaluation entry against an action."""
    action = db.session.get(Action, action_id) or abort(404)
    update_form, evaluation_form = _update_forms()
    if "update-submit" in request.form and update_form.validate_on_submit():
        with write_transaction():
            db.session.add(
                ActionUpdate(
                    action_id=action.id,
                    kind=UpdateKind.MONITORING,
                    on_date=update_form.on_date.data,
                    progress=parse_number(update_form.progress.data),
                    body=update_form.body.data.strip(),
                    reported_by_id=update_form.reported_by.data or None,
                )
            )
        flash(_("Progress recorded."), "success")
        return redirect(url_for("backlog.action", action_id=action.id, **carry_back()))
    if "evaluation-submit" in request.form and evaluation_form.validate_on_submit():
        with write_transaction():
            db.session.add(
                ActionUpdate(
                    action_id=action.id,
                    kind=UpdateKind.EVALUATION,
                    on_date=evaluation_form.on_date.data,
                    method=evaluation_form.method.data.strip(),
                    body=evaluation_form.body.data.strip(),
                    evidence_session_id=evaluation_form.evidence.data or None,
                )
            )
        flash(_("Evaluation recorded."), "success")
        return redirect(url_for("backlog.action", action_id=action.id, **carry_back()))
    form = _action_form(action)
    return render_template(
        "backlog/action.html",
        form=form,
        action=action,
        update_form=update_form,
        evaluation_form=evaluation_form,
        gaps=action_gaps(action),
        picker=need_picker(form),
    ), 400


@bp.get("/gaps")
def gaps():
    """What the plan still lacks: needs with no action, actions missing a part."""

    def page() -> str:
        needs = [n for n in open_needs() if not n.actions]
        actions = [
            (action, action_gaps(action))
            for action in all_actions()
            if action.status != ActionStatus.DROPPED and action_gaps(action)
        ]
        return render_template("backlog/gaps.html", needs=needs, actions=actions)

    return page_off_the_loop(page)


def _theme_key(label: str) -> str:
    """A stable key for a new theme from its label, unlike any existing theme's."""
    base = "-".join(_words(label))[:30] or "theme"
    taken = {key for key, _label in theme_choices()}
    key, n = f"custom-{base}", 1
    while key in taken:
        n += 1
        key = f"custom-{base}-{n}"
    return key


@bp.route("/themes", methods=["GET", "POST"])
def themes():
    """The theme list: the guide's defaults, and the team's own, with words that suggest them."""
    form = ThemeForm()
    if form.validate_on_submit():
        label = form.label.data.strip()
        if label.casefold() in {str(name).casefold() for _key, name in theme_choices()}:
            form.label.errors.append(_("There is already a theme with this name."))
        else:
            with write_transaction():
                db.session.add(
                    CustomTheme(key=_theme_key(label), label=label, keywords=form.keywords.data)
                )
            flash(_("Theme added."), "success")
            return redirect(url_for("backlog.themes"))
    in_use = set(db.session.scalars(select(Need.theme).distinct()))
    return render_template(
        "backlog/themes.html",
        defaults=[(key, label) for key, label in THEME_LABELS.items()],
        custom=db.session.scalars(select(CustomTheme).order_by(CustomTheme.label)).all(),
        in_use=in_use,
        form=form,
        remove_form=UndoForm(),
    )


@bp.post("/themes/<key>/remove")
def remove_theme(key: str):
    """Remove a theme of the team's own; refused while a need has it, so nothing is lost."""
    theme = db.session.get(CustomTheme, key) or abort(404)
    if UndoForm().validate_on_submit():
        if db.session.scalar(select(Need.id).where(Need.theme == key).limit(1)) is not None:
            flash(_("Needs still have this theme: give them another one first."), "error")
        else:
            with write_transaction():
                db.session.delete(theme)
            flash(_("Theme removed."), "success")
    return redirect(url_for("backlog.themes"))


@bp.route("/from-session/<int:session_id>", methods=["GET", "POST"])
def from_session(session_id: int):
    """Turn a session's harvest into needs and proposed actions, keeping where each came from."""
    session = db.session.get(Session, session_id) or abort(404)
    # A purged session's contributions have no text left to distil candidates from.
    candidates: list[BacklogCandidate] = (
        [] if session.purged_at else get_method(session.method).backlog_candidates(session)
    )
    for candidate in candidates:
        if candidate.kind != ACTION and not candidate.theme:
            candidate.theme = suggest_theme(candidate.title)
    form = HarvestForm()
    if form.validate_on_submit():
        need_keys = {c.key for c in candidates if c.kind != ACTION}
        themes = dict(theme_choices())
        chosen = []
        for candidate in candidates:
            key = candidate.key
            if request.form.get(f"take-{key}") != "1":
                continue
            title = request.form.get(f"title-{key}", "").strip()[:200] or candidate.title
            theme = request.form.get(f"theme-{key}", candidate.theme or Theme.OTHER)
            addresses = [k for k in request.form.getlist(f"addresses-{key}") if k in need_keys]
            chosen.append((candidate, title, theme if theme in themes else Theme.OTHER, addresses))
        created, proposed = harvest(session, chosen)
        flash(_("Needs added to the backlog: %(count)d.", count=created), "success")
        if proposed:
            flash(_("Actions proposed: %(count)d.", count=proposed), "success")
        return redirect(url_for("backlog.index"))
    return render_template(
        "backlog/from_session.html",
        session=session,
        candidates=candidates,
        need_candidates=[c for c in candidates if c.kind != ACTION],
        harvested=harvested_keys(session),
        form=form,
        themes=theme_choices(),
        contributions={
            c.id: c
            for c in db.session.scalars(
                select(Contribution).where(Contribution.session_id == session.id)
            )
        },
    )


# --- what a session's report and participants see -----------------------------------


def _shown_in_session(source_model, session: Session, include_hidden: bool):
    """The condition on ``source_model`` rows for a session's page: of ``session``, and
    (unless ``include_hidden``) resting on no contribution or on one still shown."""
    condition = source_model.session_id == session.id
    if include_hidden:
        return condition
    shown = select(Contribution.id).where(Contribution.hidden.is_(False))
    return condition & (
        source_model.contribution_id.is_(None) | source_model.contribution_id.in_(shown)
    )


def session_needs(session: Session, *, include_hidden: bool = False) -> list[Need]:
    """Needs that came (at least partly) from ``session``, for its report and its participants.

    A need whose every source in ``session`` is a hidden contribution is
    left out; a need with some hidden sources is kept, and its
    :attr:`~palabre.models.Need.visible_sources` and ``support`` say only
    what can still be seen. ``include_hidden=True`` keeps them all,
    for the pages of those who run the session.
    """
    needs = db.session.scalars(
        _with_support(
            select(Need)
            .join(NeedSource, NeedSource.need_id == Need.id)
            .where(_shown_in_session(NeedSource, session, include_hidden))
            .distinct()
            .order_by(Need.id)
        )
    ).all()
    return sort_needs(needs, "sessions")


def session_actions(session: Session, *, include_hidden: bool = False) -> list[Action]:
    """Actions proposed from ``session``, for its report; hidden as in :func:`session_needs`."""
    return db.session.scalars(
        select(Action)
        .join(ActionSource, ActionSource.action_id == Action.id)
        .where(_shown_in_session(ActionSource, session, include_hidden))
        .distinct()
        .order_by(Action.id)
    ).all()
