"""Figures for charts: who took part, by language, table and part of the session.

The charts themselves are server-rendered SVG (``templates/components/charts.html``),
so that the projector, the facilitator's screen and the printed reports show
the same picture; this module only counts. Nothing here identifies anyone:
only counts per language, table and phase.
"""

from __future__ import annotations

from babel import Locale, UnknownLocaleError
from sqlalchemy import func, select

from .extensions import db
from .i18n import current_language
from .models import Contribution, Participant, Session
from .phases import plan
from .plugin_host import get_method


def language_name(code: str) -> str:
    """A language's name in the reader's language ("Arabic" for an English page).

    Not the language's own name: a chart's SVG text is drawn without shaping or
    right-to-left ordering by the PDF renderer, so "العربية" would print garbled.
    """
    try:
        name = Locale.parse(code).get_display_name(current_language()) or code
    except (ValueError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:]  # a label: "Anglais", not "anglais"


def participation(session: Session) -> dict[str, list[tuple[str, int]]]:
    """``(label, count)`` rows of a session's participation, largest first where it helps.

    ``languages``: participants per language chosen; ``tables``: participants per
    sub-group now (a café's tables; empty for methods without groups);
    ``phases``: visible contributions per part of the session, in the plan's order,
    parts without any left out; ``people``: for the same parts, how many people
    wrote (each phone once; each note typed in from paper counts as one person).
    """
    by_language = db.session.execute(
        select(Participant.language, func.count())
        .where(Participant.session_id == session.id)
        .group_by(Participant.language)
    ).all()
    by_group = dict(
        db.session.execute(
            select(Participant.group, func.count())
            .where(Participant.session_id == session.id, Participant.group.is_not(None))
            .group_by(Participant.group)
        ).all()
    )
    by_phase = dict(
        db.session.execute(
            select(Contribution.phase_index, func.count())
            .where(Contribution.session_id == session.id, Contribution.hidden.is_(False))
            .group_by(Contribution.phase_index)
        ).all()
    )
    writers = db.session.execute(
        select(
            Contribution.phase_index,
            func.count(func.distinct(Contribution.participant_id)),
            func.count().filter(Contribution.participant_id.is_(None)),
        )
        .where(Contribution.session_id == session.id, Contribution.hidden.is_(False))
        .group_by(Contribution.phase_index)
    ).all()
    people = {index: phones + on_paper for index, phones, on_paper in writers}
    groups = get_method(session.method).groups(session.config)
    return {
        "languages": sorted(
            ((language_name(code), n) for code, n in by_language),
            key=lambda row: (-row[1], row[0]),
        ),
        "tables": [(str(label), by_group.get(value, 0)) for value, label in groups],
        "phases": [
            (str(phase.title), by_phase[index])
            for index, phase in enumerate(plan(session))
            if by_phase.get(index)
        ],
        "people": [
            (str(phase.title), people[index])
            for index, phase in enumerate(plan(session))
            if by_phase.get(index)
        ],
    }
