"""Dialogue meetings: evenings of their own, each a session that is part of its dialogue.

In Mörsil four dialogue meetings were held on different evenings, each with an
external facilitator, each on some of the perspective report's themes. So a
meeting is a session of its own (method ``dialogue_meeting``) whose
``Session.parent`` is the dialogue, rather than a phase of the dialogue or a
record inside it, because everything a meeting needs is what the core gives
every session:

* a date and a place (``starts_at``, ``venue``), shown in the session list, on
  its poster and its report, and changed on the core's details page;
* its own join code, QR code, poster and projector, and its own live rooms, so
  that the phones of one evening never see another's;
* its own team: whoever runs the dialogue runs its meetings
  (:func:`palabre.may_run` follows ``parent``), and an invitation link made on
  the meeting's team page lets an external facilitator run that meeting only,
  never the dialogue's interviews, reach or other meetings.

The facilitator schedules a meeting from the dialogue (its action
``meeting.schedule``: date, place, themes). The meeting reads its themes'
names and prompts from the dialogue, in each phone's language; its ideas and
dots come back to the dialogue, where an idea becomes a citizen-led project.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from palabre import (
    VOTE,
    Contribution,
    ContributionKind,
    Method,
    Phase,
    Refused,
    Session,
    add_session,
    contribute,
    db,
    may_run,
    parse_int,
    visible,
    vote_totals,
    votes_used,
)

from . import reach
from .theming import answers_of, theme_name, theme_prompt, theme_prompt_language, themes_of

SLUG = "dialogue_meeting"
DOTS_PER_MEETING = 3
_STARTS_AT = "%Y-%m-%dT%H:%M"


class DialogueMeeting(Method):
    """One dialogue meeting: phones add views and ideas on its themes and give dots."""

    slug = SLUG
    part_of = "citizen_dialogue"
    title = _l("Dialogue meeting")
    description = _l(
        "An evening of a citizen dialogue on some of its themes: people add views and ideas "
        "and give dots; the ideas can become citizen-led projects."
    )
    contribution_kinds = {
        "view": ContributionKind(
            "view", _l("View"), max_length=500, grouped=False, fields=("theme",)
        ),
        "idea": ContributionKind(
            "idea", _l("Idea"), max_length=500, grouped=False, fields=("theme",)
        ),
    }
    votable_kinds = ("idea",)
    facilitator_actions = ("meeting.themes",)
    audit_phrases = {"meeting.themes": _l("Chose the meeting’s themes")}

    def phases(self, config: dict) -> list[Phase]:
        return [
            Phase(f"{SLUG}:welcome", _("Welcome")),
            Phase(
                f"{SLUG}:meeting",
                _("Views, ideas and dots"),
                allows=frozenset({contribute("view"), contribute("idea"), VOTE}),
            ),
            Phase(f"{SLUG}:closed", _("Closed")),
        ]

    def vote_budget(self, config) -> int:
        return DOTS_PER_MEETING

    def check_contribution(self, session, participant, kind, data):
        try:
            chosen_theme(session, data["fields"].get("theme"))
        except Refused as refusal:
            return refusal.message
        if not data["body"]:
            return _("Write something before sending.")
        return None

    def prepare_contribution(self, session, participant, contribution):
        theme = chosen_theme(session, (contribution.data or {}).get("theme"))
        contribution.data = {"theme": theme}

    def run_action(self, session, name, data):
        if name == "meeting.themes":
            session.config = {**session.config, "themes": theme_ids_from(session.parent, data)}
        return []

    def view_context(self, session, view, participant=None):
        # The projector and run screen show the themes in the language they are read in.
        language = participant.language if participant else str(get_locale())
        dialogue = session.parent
        themes = meeting_themes(session)
        totals = vote_totals(session)
        context = {
            "dialogue": dialogue,
            "meeting_themes": themes,
            "theme_names": {t.id: theme_name(t, language, dialogue) for t in themes},
            "theme_prompts": {t.id: theme_prompt(t, language, dialogue) for t in themes},
            "theme_prompt_languages": {
                t.id: theme_prompt_language(t, language, dialogue) for t in themes
            },
            "totals": totals,
            "meeting_ideas": ranked(visible(session, kind="idea"), totals),
            "meeting_views": visible(session, kind="view"),
        }
        if view == "participant":
            context["dots_left"] = self.vote_budget(session.config) - votes_used(participant)
        if view == "facilitator":
            every_theme = themes_of(dialogue)
            context["dialogue_themes"] = every_theme
            context["every_theme_name"] = {t.id: theme_name(t, None, dialogue) for t in every_theme}
            context["runs_dialogue"] = may_run(current_user, dialogue)
        return context

    def report_context(self, session):
        """The meeting's printout: before the evening, its themes as the perspective report
        tells them (answers counted, the quotes picked); after, its ideas and views."""
        dialogue = session.parent
        answers = answers_of(visible(dialogue, kind="interview"))
        return {
            **self.view_context(session, "report"),
            **meeting_summary(session),
            "theme_quotes": {
                t.id: [answers[ref]["text"] for ref in t.data.get("quotes", []) if ref in answers]
                for t in meeting_themes(session)
            },
            "minimum_group": reach.MINIMUM_GROUP,
        }


def meetings_of(dialogue) -> list[Session]:
    """The dialogue's meetings, by date (undated last), then in the order they were made."""
    found = db.session.scalars(
        select(Session).where(Session.parent_id == dialogue.id, Session.method == SLUG)
    ).all()
    return sorted(found, key=lambda m: (m.starts_at is None, m.starts_at or datetime.min, m.id))


def meeting_themes(meeting) -> list[Contribution]:
    """The meeting's themes, still standing in its dialogue, in the order chosen."""
    by_id = {t.id: t for t in themes_of(meeting.parent)}
    return [by_id[tid] for tid in meeting.config.get("themes", []) if tid in by_id]


def theme_ids_from(dialogue, data: dict) -> list[int]:
    """The dialogue's theme ids ticked in ``data["themes"]``, or :class:`Refused`."""
    chosen = data.get("themes") or []
    chosen = chosen if isinstance(chosen, list) else [chosen]
    ids = [t.id for t in themes_of(dialogue) if str(t.id) in chosen]
    if not ids:
        raise Refused(_("Choose at least one theme for the meeting."))
    return ids


def chosen_theme(meeting, chosen) -> int:
    """The theme a view or idea is about: one of the meeting's, or its only one.

    Reads the meeting's configuration only, no query: it also runs with the
    write lock held (``prepare_contribution``). A merge in the dialogue
    rewrites the ids there, so they are always themes still standing.
    """
    ids = list(meeting.config.get("themes", []))
    if not ids:
        raise Refused(_("The meeting’s themes are being chosen. Wait a moment and send again."))
    if len(ids) == 1 and chosen in (None, ""):
        return ids[0]
    theme = parse_int(chosen, default=-1)
    if theme not in ids:
        raise Refused(_("Choose one of this meeting’s themes."))
    return theme


def schedule(dialogue, data: dict) -> Session:
    """Make a meeting of ``dialogue`` from the scheduling form; inside the write transaction.

    ``data`` holds ``starts_at`` (``YYYY-MM-DDTHH:MM``, as a date-time input
    sends it), ``venue`` and the ticked ``themes``. The meeting is a draft
    session in the dialogue's languages, owned by who scheduled it.
    """
    try:
        starts_at = datetime.strptime(str(data.get("starts_at", "")).strip(), _STARTS_AT)
    except ValueError:
        raise Refused(_("Give the date and time of the meeting.")) from None
    venue = str(data.get("venue", "")).strip()[:200]
    if not venue:
        raise Refused(_("Say where the meeting takes place."))
    ids = theme_ids_from(dialogue, data)
    names = [theme_name(t, None, dialogue) for t in themes_of(dialogue) if t.id in ids]
    # No number in the title: reports number meetings by date, scheduled in any order.
    title = _("Dialogue meeting: %(themes)s", themes=", ".join(names))
    owner = current_user.id if getattr(current_user, "is_authenticated", False) else None
    return add_session(
        SLUG,
        title=title[:200],
        languages=dialogue.languages,
        config={"themes": ids},
        parent_id=dialogue.id,
        created_by_id=owner or dialogue.created_by_id,
        starts_at=starts_at,
        venue=venue,
    )


def ranked(ideas, totals) -> list[Contribution]:
    return sorted(ideas, key=lambda idea: (-totals.get(idea.id, 0), idea.id))


def protected(count: int) -> int | None:
    """``count``, or ``None`` when it is a group under five (shown as "fewer than 5")."""
    return count if count >= reach.MINIMUM_GROUP else None


def meeting_summary(meeting) -> dict:
    """What a meeting gave, for the dialogue's screens and reports; no group under five.

    ``people`` (phones that sent a view or an idea) is ``None`` under five;
    ``people_label`` says it in words.
    """
    people = db.session.scalar(
        select(func.count(func.distinct(Contribution.participant_id))).where(
            Contribution.session_id == meeting.id, Contribution.participant_id.is_not(None)
        )
    )
    totals = vote_totals(meeting)
    return {
        "meeting": meeting,
        "themes": [theme_name(t, None, meeting.parent) for t in meeting_themes(meeting)],
        "people": protected(people),
        "people_label": people_label(protected(people)),
        "views": visible(meeting, kind="view"),
        "ideas": ranked(visible(meeting, kind="idea"), totals),
        "totals": totals,
    }


def people_label(people: int | None) -> str:
    """ "12 people took part from a phone", or "fewer than 5" for a small meeting."""
    if people is None:
        return _("Fewer than %(n)d people took part from a phone", n=reach.MINIMUM_GROUP)
    return ngettext(
        "%(num)d person took part from a phone", "%(num)d people took part from a phone", people
    )
