"""Editing a session after it was made: what may change in each state, and telling the room.

A facilitator fixes a typo in a question, adds a language or a table, changes
a round's length, whether the session is a draft, running or closed. What is
already stored is never lost or reshuffled:

* a draft may change in every way;
* once open, live or closed, the phases already reached keep their place (new
  rounds or scenes may come after the current one, never before it), a group
  (a café's table) where people sit or that holds contributions stays, and a
  language people joined in stays offered;
* an archived session does not change.

The method has its say through :meth:`palabre.Method.edited_config` (the
audit's rubric is fixed once fieldwork starts). Everything is checked inside
the one write transaction; phones, the projector and the staff screens hear
``session.changed`` after the commit, and show the new texts.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, or_, select

from . import phases
from .database import write_transaction
from .errors import Refused
from .events import ALL, record_event
from .extensions import db
from .i18n import LANGUAGES
from .models import Contribution, Participant, Session, Status
from .plugin_host import get_method


def edit_session(session: Session, details: dict, languages: list[str], config_form=None) -> None:
    """Save a session's new ``details`` (columns), ``languages`` and configuration.

    ``config_form`` is the method's validated configuration form, or ``None``
    for a method without one. Raises :class:`Refused`, with a message for the
    facilitator, when the change would lose or move what is stored; nothing is
    saved then. Running sessions broadcast ``session.changed`` after the commit.
    """
    method = get_method(session.method)
    with write_transaction():
        if session.status == Status.ARCHIVED:
            raise Refused(_("An archived session cannot be changed."))
        _check_languages(session, languages)
        old_plan = phases.plan(session)
        old_groups = dict(method.groups(session.config))
        config = (
            method.edited_config(session, config_form)
            if config_form is not None
            else session.config
        )
        new_plan = tuple(method.phases(config))
        if session.status != Status.DRAFT:
            _check_plan(session, old_plan, new_plan)
        _check_groups(session, old_groups, dict(method.groups(config)))
        for name, value in details.items():
            setattr(session, name, value)
        session.languages = list(languages)
        session.config = config
        if session.status != Status.DRAFT:
            record_event(session, "session.changed", phases.phase_payload(session), [ALL])


def _check_languages(session: Session, languages: list[str]) -> None:
    kept = set(languages)
    rows = db.session.execute(
        select(Participant.language, func.count())
        .where(Participant.session_id == session.id)
        .group_by(Participant.language)
    ).all()
    for language, people in rows:
        if language not in kept and language in LANGUAGES:
            raise Refused(
                ngettext(
                    "%(num)d person joined in %(language)s: keep %(language)s offered.",
                    "%(num)d people joined in %(language)s: keep %(language)s offered.",
                    people,
                    language=LANGUAGES[language][0],
                )
            )


def _check_plan(session: Session, old_plan, new_plan) -> None:
    """The phases up to the current one keep their place and kind."""
    if session.status == Status.CLOSED and len(new_plan) != len(old_plan):
        raise Refused(_("A closed session keeps its parts: reopen it to add some."))
    reached = session.phase_index + 1
    if [p.id for p in old_plan[:reached]] != [p.id for p in new_plan[:reached]] or [
        p.number for p in old_plan[:reached]
    ] != [p.number for p in new_plan[:reached]]:
        raise Refused(
            _(
                "The parts of the session already reached (up to “%(phase)s”) stay as they "
                "are: add or remove only those still to come.",
                phase=old_plan[session.phase_index].title,
            )
        )


def _check_groups(session: Session, old: dict, new: dict) -> None:
    """A group where people sit, or that holds contributions, is not removed."""
    removed = [value for value in old if value not in new]
    if not removed:
        return
    used = set(
        db.session.scalars(
            select(Participant.group).where(
                Participant.session_id == session.id, Participant.group.in_(removed)
            )
        )
    ) | set(
        db.session.scalars(
            select(Contribution.group).where(
                Contribution.session_id == session.id,
                or_(*(Contribution.group == value for value in removed)),
            )
        )
    )
    for value in removed:
        if value in used:
            raise Refused(
                _(
                    "%(group)s has people or contributions: it cannot be removed. "
                    "Nothing was changed.",
                    group=old[value],
                )
            )
