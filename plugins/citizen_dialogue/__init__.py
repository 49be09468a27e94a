"""Citizen dialogue: weeks of listening, a perspective report, dialogue meetings, feedback.

As in Mörsil (Sweden): staff and community connectors interview residents
where they are, in their own languages; residents may also answer the
interview guide themselves through the session's QR code. The facilitator
clusters the answers into themes (the "perspective report"), then schedules
dialogue meetings on chosen themes, each an evening of its own where people
add views and ideas and give dots (:mod:`.meetings`: a session that is part
of the dialogue, with its own date, place, join code, projector and, if
wanted, an external facilitator who runs that meeting only); ideas become
citizen-led project proposals, which go to the backlog as actions owned by
their citizen group and linked to their theme's needs. A three-question
feedback form closes the process, and the final report tells the whole of it.

Everything is stored in the core's tables through the plugin API: the guide
in ``Session.config``, interviews, feedback, themes and projects as
contributions with their fields in ``Contribution.data``, meetings as
sessions whose ``parent`` is the dialogue. Connectors are the role
``connector`` (codes C-01, C-02, ...). No table of its own.
"""

from __future__ import annotations

import csv
import io
import re

from flask import Blueprint, Response, abort, request
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from wtforms import IntegerField, SelectMultipleField, TextAreaField
from wtforms.validators import DataRequired, NumberRange, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from palabre import (
    ACTION,
    LANGUAGES,
    NEED,
    BacklogCandidate,
    CleanForm,
    Contribution,
    ContributionKind,
    Method,
    Phase,
    Refused,
    Role,
    Session,
    Texts,
    TextsField,
    Theme,
    add_by_staff,
    contribute,
    current_phase,
    db,
    hookimpl,
    options,
    parse_int,
    session_actions,
    session_needs,
    session_required,
    update_data,
    visible,
)

from . import meetings, reach, theming
from .theming import first_text, theme_name, theme_prompt, theme_prompt_language, themes_of

CONNECTOR = "connector"
MAX_QUESTIONS = 10
MAX_QUESTION = 300
MAX_ANSWER = 2000
MAX_POPULATION = 10_000_000
FEEDBACK_SCALE = (1, 5)
FEEDBACK_FIELDS = ("heard", "express", "change")
QUESTION_FIELDS = tuple(f"q{n}" for n in range(1, MAX_QUESTIONS + 1))

PROJECT_STATUSES = {
    "proposed": _l("Proposal"),
    "started": _l("Under way"),
    "done": _l("Carried out"),
    "dropped": _l("Given up"),
}
_POPULATION_LINE = re.compile(r"^\s*([\w+]+)\s*[:=]\s*(\d+)\s*$")

DEFAULT_GUIDE = (
    _l("What is good about living here?"),
    _l("What is hard in your everyday life here?"),
    _l("What would make your life here better?"),
    _l("What could you and your neighbours do together?"),
)
DEFAULT_FEEDBACK = (
    _l("Did you feel heard?"),
    _l("Could you express your views?"),
    _l("Could you contribute to change?"),
)


class MultiCheckboxField(SelectMultipleField):
    """Several choices as a list of checkboxes (a real input each, with its label)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _population_example(field: str) -> str:
    return f"{next(iter(reach.PROFILE[field][1]))}: 140"


def population_field(field: str) -> TextAreaField:
    """The area's population by the :data:`reach.PROFILE` question ``field``, where known:
    "key: people" lines, the keys listed in the label (read by :func:`parse_population`)."""
    title, answers = reach.PROFILE[field]
    example = _population_example(field)

    def lines_of_known_keys(form, text_field):
        try:
            parse_population(text_field.data, field)
        except ValueError:
            raise ValidationError(
                _(
                    "Write one answer per line, one of the keys listed and a number, "
                    "such as “%(example)s”.",
                    example=example,
                )
            ) from None

    return TextAreaField(
        _l(
            "%(question)s: people living in the area, where known (one per line, such as "
            "“%(example)s”; keys: %(keys)s)",
            question=title,
            example=example,
            keys=", ".join(answers),
        ),
        default="",
        validators=[lines_of_known_keys],
    )


def _default_lines(lines) -> Texts:
    return Texts.from_catalog(lambda: "\n".join(str(line) for line in lines))


class CitizenDialogueConfig(CleanForm):
    """The guide and feedback questions in each language, the area's population, who is
    interviewed. Each language's questions are a real input of their own, so that a
    translation is typed, never guessed."""

    guide = TextsField(
        _l("Interview guide, one question per line"),
        default=lambda: _default_lines(DEFAULT_GUIDE),
        description=_l("The same questions in the same order in each language."),
        multiline=True,
        required=True,
        max_length=MAX_QUESTION,
        rows=5,
    )
    feedback = TextsField(
        _l("The three feedback questions, one per line"),
        default=lambda: _default_lines(DEFAULT_FEEDBACK),
        multiline=True,
        required=True,
        max_length=MAX_QUESTION,
    )
    population = IntegerField(
        _l("People living in the area"),
        default=875,
        validators=[NumberRange(min=1, max=MAX_POPULATION)],
    )
    population_by_age = population_field("age")
    population_by_gender = population_field("gender")
    population_by_time_in_city = population_field("time_in_city")
    population_by_home_language = population_field("home_language")
    respondent_types = MultiCheckboxField(
        _l("Who the interviews may be with"),
        choices=options(reach.RESPONDENT_TYPES.items()),
        default=list(reach.DEFAULT_RESPONDENT_TYPES),
        validators=[DataRequired(_l("Choose at least one."))],
    )

    def validate_guide(self, field):
        counts = {len(lines) for lines in field.lines().values()}
        if len(counts) > 1:
            raise ValidationError(
                _("Give each language the same number of questions, or leave a language empty.")
            )
        if max(counts, default=0) > MAX_QUESTIONS:
            raise ValidationError(
                ngettext("At most %(num)d question.", "At most %(num)d questions.", MAX_QUESTIONS)
            )

    def validate_feedback(self, field):
        if any(len(lines) != len(FEEDBACK_FIELDS) for lines in field.lines().values()):
            raise ValidationError(_("Write the three feedback questions, one per line."))


def _non_empty_lines(text) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def parse_population(text, field: str) -> dict[str, int]:
    """``{"18_29": 140, ...}`` from "key: people" lines, each key an answer to the
    :data:`reach.PROFILE` question ``field``; ``ValueError`` on anything else."""
    answers = reach.PROFILE[field][1]
    found = {}
    for line in _non_empty_lines(text):
        match = _POPULATION_LINE.match(line)
        if not match or match.group(1) not in answers:
            raise ValueError(line)
        found[match.group(1)] = int(match.group(2))
    return found


def in_language(per_language: dict, language: str | None, session) -> list[str]:
    """Texts in ``language``, else in the session's first language that has them."""
    code = language_of(per_language, language, session)
    return per_language[code] if code else []


def language_of(per_language: dict, language: str | None, session) -> str | None:
    """The language :func:`in_language` shows ``per_language`` in (for ``lang`` attributes)."""
    for code in (language, *(session.languages or ()), *per_language):
        if code and per_language.get(code):
            return code
    return None


class CitizenDialogue(Method):
    slug = "citizen_dialogue"
    title = _l("Citizen dialogue")
    description = _l(
        "Weeks of listening where people are, in their own languages; themes in a perspective "
        "report; dialogue meetings on the themes leading to citizen-led projects; a feedback form."
    )
    config_form = CitizenDialogueConfig
    # Connectors interview people where they are (homes, shops, schools), away from any venue.
    roles = {CONNECTOR: Role(CONNECTOR, _l("Community connector"), code_prefix="C", away=True)}
    contribution_kinds = {
        "interview": ContributionKind(
            "interview",
            _l("Interview"),
            max_length=MAX_ANSWER,
            grouped=False,
            staff_only=True,
            needs_text=False,
            fields=(
                *QUESTION_FIELDS,
                "language",
                "place",
                "respondent",
                "consent",
                *reach.PROFILE,
            ),
        ),
        "feedback": ContributionKind(
            "feedback",
            _l("Feedback"),
            max_length=1000,
            grouped=False,
            staff_only=True,
            needs_text=False,
            fields=FEEDBACK_FIELDS,
        ),
        "theme": ContributionKind("theme", _l("Theme"), max_length=200, grouped=False),
        "project": ContributionKind("project", _l("Project"), max_length=200, grouped=False),
    }
    audit_phrases = {
        "citizen_dialogue.reach_csv": _l("Downloaded the reach, as a spreadsheet"),
        "citizen_dialogue.feedback_csv": _l("Downloaded the feedback, as a spreadsheet"),
        # What each of the facilitator’s actions did.
        "interview.transcribe": _l("Typed in an interview written on paper"),
        "theme.create": _l("Added a theme"),
        "theme.rename": _l("Renamed a theme"),
        "theme.merge": _l("Merged two themes"),
        "answers.move": _l("Moved answers to another theme"),
        "quote.toggle": _l("Picked an answer as a quote, or undid it"),
        "meeting.schedule": _l("Scheduled a dialogue meeting"),
        "project.propose": _l("Made an idea a project proposal"),
        "project.update": _l("Updated a project"),
        "feedback.transcribe": _l("Typed in a feedback form filled in on paper"),
    }
    facilitator_actions = (
        "interview.transcribe",
        "theme.create",
        "theme.rename",
        "theme.merge",
        "answers.move",
        "quote.toggle",
        "meeting.schedule",
        "project.propose",
        "project.update",
        "feedback.transcribe",
    )

    # --- configuration and plan ------------------------------------------------

    def config_from_form(self, form) -> dict:
        return {
            "guide": form.guide.lines(),
            "feedback": form.feedback.lines(),
            "population": form.population.data,
            **{
                reach.population_key(field): parse_population(
                    form[reach.population_key(field)].data, field
                )
                for field in reach.PROFILE
            },
            "respondent_types": [
                key for key in reach.RESPONDENT_TYPES if key in (form.respondent_types.data or ())
            ],
        }

    def form_data(self, session) -> dict:
        config = session.config
        return {
            **config,
            "guide": {code: "\n".join(lines) for code, lines in config.get("guide", {}).items()},
            "feedback": {
                code: "\n".join(lines) for code, lines in config.get("feedback", {}).items()
            },
            **{
                reach.population_key(field): "\n".join(
                    f"{key}: {n}"
                    for key, n in (config.get(reach.population_key(field)) or {}).items()
                )
                for field in reach.PROFILE
            },
        }

    def edited_config(self, session, form) -> dict:
        """Once interviews are in, their answers are numbered by the guide's questions: the
        guide may be corrected and added to, never shortened."""
        config = super().edited_config(session, form)
        before = max((len(q) for q in session.config.get("guide", {}).values()), default=0)
        after = max((len(q) for q in config.get("guide", {}).values()), default=0)
        if after < before and _count(session, "interview"):
            raise Refused(
                _(
                    "Interviews were recorded with this guide: keep its questions (correct "
                    "them, or add new ones at the end)."
                )
            )
        return config

    def phases(self, config: dict) -> list[Phase]:
        listening = frozenset({contribute("interview")})
        return [
            Phase("citizen_dialogue:preparation", _("Preparation")),
            Phase("citizen_dialogue:listening", _("Listening"), allows=listening),
            # Listening goes on while the facilitator starts grouping answers.
            Phase("citizen_dialogue:theming", _("Theming, listening goes on"), allows=listening),
            # The meetings are sessions of their own (see .meetings), scheduled here.
            Phase("citizen_dialogue:meetings", _("Dialogue meetings")),
            Phase("citizen_dialogue:projects", _("Projects")),
            Phase(
                "citizen_dialogue:feedback",
                _("Feedback"),
                allows=frozenset({contribute("feedback")}),
            ),
            Phase("citizen_dialogue:closed", _("Closed")),
        ]

    def _phase(self, session) -> Phase:
        return current_phase(session)

    # --- participants' contributions ---------------------------------------------

    def check_contribution(self, session, participant, kind, data):
        fields = data["fields"]
        if kind.name == "interview":
            if participant.role_link_id is not None and participant.role != CONNECTOR:
                return _(
                    "Your connector link was withdrawn: this interview was not sent. "
                    "The interviews you sent before are kept. Ask the facilitator for a new link."
                )
            try:
                interview_data(session, fields, **_interviewer(participant))
            except Refused as refusal:
                return refusal.message
        elif kind.name == "feedback":
            try:
                feedback_data(fields)
            except Refused as refusal:
                return refusal.message
        return None

    def prepare_contribution(self, session, participant, contribution):
        fields = contribution.data or {}
        if contribution.kind == "interview":
            contribution.data = interview_data(session, fields, **_interviewer(participant))
            contribution.body = interview_body(contribution.data)
        elif contribution.kind == "feedback":
            # With the write lock held: two quick taps cannot both count.
            if _mine(participant, "feedback"):
                raise Refused(_("Your answers are already counted. Thank you!"))
            contribution.data = feedback_data(fields)

    # --- the facilitator's actions ---------------------------------------------------

    def run_action(self, session, name, data):
        if name == "interview.transcribe":
            interview = interview_data(session, data, by="paper", connector=None)
            add_by_staff(session, "interview", interview_body(interview), interview)
        elif name == "theme.create":
            names = _texts_by_language(data, "name", 120)
            if not names:
                raise Refused(_("Name the theme in at least one language."))
            add_by_staff(
                session,
                "theme",
                first_text(names, session),
                {
                    "names": names,
                    "prompts": _texts_by_language(data, "prompt", 300),
                    "category": _category(data.get("category")),
                    "answers": [],
                    "quotes": [],
                },
            )
        elif name == "theme.rename":
            theme = _theme(session, data.get("theme"))
            names = _texts_by_language(data, "name", 120)
            if not names:
                raise Refused(_("Name the theme in at least one language."))
            prompts = _texts_by_language(data, "prompt", 300)
            theme.body = first_text(names, session)
            update_data(
                session,
                theme,
                names=names,
                prompts=prompts,
                category=_category(data.get("category")),
            )
        elif name == "theme.merge":
            merged = _theme(session, data.get("theme"))
            into = _theme(session, data.get("into"))
            if merged.id == into.id:
                raise Refused(_("Choose two different themes."))
            answers = _unique([*into.data.get("answers", []), *merged.data.get("answers", [])])
            quotes = _unique([*into.data.get("quotes", []), *merged.data.get("quotes", [])])
            update_data(session, into, answers=answers, quotes=quotes)
            update_data(session, merged, answers=[], quotes=[], merged_into=into.id)
            _replace_in_meetings(session, merged.id, into.id)
        elif name == "answers.move":
            refs = data.get("answers") or []
            refs = refs if isinstance(refs, list) else [refs]
            known = theming.answers_of(visible(session, kind="interview"))
            refs = [ref for ref in refs if ref in known]
            if not refs:
                raise Refused(_("Tick the answers to move."))
            target = _theme(session, data.get("theme")) if data.get("theme") else None
            for theme in themes_of(session):
                if theme is target:
                    continue
                kept = [ref for ref in theme.data.get("answers", []) if ref not in refs]
                if kept != theme.data.get("answers", []):
                    quotes = [ref for ref in theme.data.get("quotes", []) if ref not in refs]
                    update_data(session, theme, answers=kept, quotes=quotes)
            if target is not None:
                update_data(
                    session, target, answers=_unique([*target.data.get("answers", []), *refs])
                )
        elif name == "quote.toggle":
            theme = _theme(session, data.get("theme"))
            ref = str(data.get("answer", ""))
            if ref not in theme.data.get("answers", []):
                raise Refused(_("A quote must be one of the theme’s answers."))
            quotes = list(theme.data.get("quotes", []))
            quotes = [q for q in quotes if q != ref] if ref in quotes else [*quotes, ref]
            update_data(session, theme, quotes=quotes)
        elif name == "meeting.schedule":
            meetings.schedule(session, data)
        elif name == "project.propose":
            idea = db.session.get(Contribution, parse_int(data.get("idea"), default=-1))
            if (
                idea is None
                or idea.kind != "idea"
                or idea.hidden
                or idea.session.parent_id != session.id
            ):
                raise Refused(_("This idea is not here any more."))
            if any(p.data.get("idea") == idea.id for p in visible(session, kind="project")):
                raise Refused(_("This idea is already a project proposal."))
            title = str(data.get("title") or idea.body).strip()[:200]
            add_by_staff(
                session,
                "project",
                title,
                {
                    "idea": idea.id,
                    "meeting": idea.session_id,
                    "theme": idea.data.get("theme"),
                    "lead_group": _required(
                        data, "lead_group", 200, _("Name the group leading it.")
                    ),
                    "from_city": str(data.get("from_city", "")).strip()[:1000],
                    "status": "proposed",
                },
            )
        elif name == "project.update":
            project = db.session.get(Contribution, parse_int(data.get("project"), default=-1))
            if project is None or project.session_id != session.id or project.kind != "project":
                raise Refused(_("This project is not here any more."))
            status = str(data.get("status", ""))
            if status not in PROJECT_STATUSES:
                raise Refused(_("Choose a status."))
            update_data(
                session,
                project,
                status=status,
                lead_group=_required(data, "lead_group", 200, _("Name the group leading it.")),
                from_city=str(data.get("from_city", "")).strip()[:1000],
            )
        elif name == "feedback.transcribe":
            comment = str(data.get("comment", "")).strip()[:1000]
            add_by_staff(
                session, "feedback", comment or "-", {**feedback_data(data), "paper": True}
            )
        return []

    # --- views -------------------------------------------------------------------

    def view_context(self, session, view, participant=None):
        phase = self._phase(session)
        # Every screen shows the team's texts in the language it is read in, where the team
        # wrote them in it: a phone may switch after joining, a projector or a run screen
        # may be set to another language than the session's first.
        language = str(get_locale())
        themes = themes_of(session)
        theme_names = {t.id: theme_name(t, language, session) for t in themes}
        scheduled = meetings.meetings_of(session)
        meeting_theme_names = {
            m.id: [theme_name(t, language, session) for t in meetings.meeting_themes(m)]
            for m in scheduled
        }
        context = {
            "guide": in_language(session.config.get("guide", {}), language, session),
            "feedback_questions": in_language(
                session.config.get("feedback", {}), language, session
            ),
            # The languages they are shown in, which "Listen" and screen readers use.
            "guide_language": language_of(session.config.get("guide", {}), language, session),
            "feedback_language": language_of(session.config.get("feedback", {}), language, session),
            "place_types": reach.PLACE_TYPES,
            "interview_languages": reach.INTERVIEW_LANGUAGES,
            "respondent_types": respondent_types(session),
            "profile": reach.PROFILE,
            "dialogue_themes": themes,
            "theme_names": theme_names,
            "theme_prompts": {t.id: theme_prompt(t, language, session) for t in themes},
            "theme_prompt_languages": {
                t.id: theme_prompt_language(t, language, session) for t in themes
            },
            "scheduled_meetings": [(m, meeting_theme_names[m.id]) for m in scheduled],
            "projects": visible(session, kind="project"),
            "project_statuses": PROJECT_STATUSES,
            "scale": range(FEEDBACK_SCALE[0], FEEDBACK_SCALE[1] + 1),
            "interview_count": _count(session, "interview"),
        }
        if view == "participant":
            context["is_connector"] = participant.role == CONNECTOR
            context["link_withdrawn"] = (
                participant.role_link_id is not None and participant.role != CONNECTOR
            )
            context["connector_code"] = (
                participant.role_link.code if participant.role_link else None
            )
            context["my_interviews"] = len(_mine(participant, "interview"))
            context["my_feedback"] = bool(_mine(participant, "feedback"))
            context["needs"] = session_needs(session) if phase.name == "closed" else []
            context["actions"] = session_actions(session) if phase.name == "closed" else []
        if view == "facilitator":
            context.update(self._theming_context(session, themes))
            context.update(reach_context(session, *_chosen_filter()))
            summaries = [meetings.meeting_summary(m) for m in scheduled]
            context["meeting_summaries"] = summaries
            context["all_ideas"] = [
                (idea, summary) for summary in summaries for idea in summary["ideas"]
            ]
            context["feedback"] = feedback_summary(session)
            context["categories"] = list(Theme)
            context["project_of_idea"] = {p.data.get("idea"): p for p in context["projects"]}
        if view == "projector":
            context.update(reach_context(session, None, None))
            context["feedback"] = feedback_summary(session)
        return context

    def _theming_context(self, session, themes) -> dict:
        interviews = visible(session, kind="interview")
        answers = theming.answers_of(interviews)
        placed = {ref for t in themes for ref in t.data.get("answers", [])}
        return {
            "answers": answers,
            "unthemed": [a for ref, a in answers.items() if ref not in placed],
            "suggested": theming.suggestions(answers, themes),
            "shared_words": theming.shared_words(answers, themes),
            "guide_first": in_language(session.config.get("guide", {}), None, session),
        }

    def raw_answers(self, session, *, leave_out=()):
        """Interview answers by question of the guide, then the meetings' views, ideas and
        feedback by part of the session (not in the perspective report, which stops before
        the meetings). Themes and projects are the team's own words, left out."""
        questions = in_language(session.config.get("guide", {}), str(get_locale()), session)
        by_question: dict[int, list[str]] = {}
        for answer in theming.answers_of(visible(session, kind="interview")).values():
            by_question.setdefault(answer["question"], []).append(answer["text"])
        interviews = [
            (questions[q] if q < len(questions) else str(q + 1), texts)
            for q, texts in sorted(by_question.items())
        ]
        if request.args.get("part") == "perspective":
            return interviews
        later = super().raw_answers(
            session, leave_out=("interview", "theme", "project", *leave_out)
        )
        # A feedback form from paper without a comment is stored as "-": not a text.
        written = [(heading, [t for t in texts if str(t) != "-"]) for heading, texts in later]
        return interviews + [(heading, texts) for heading, texts in written if texts]

    def report_context(self, session):
        """The final report; with ``?part=perspective``, the perspective report only.

        The team's texts (guide, feedback questions, theme names and prompts) are
        printed in the language the report is printed in, where the team wrote
        them in it, else in the session's first language.
        """
        themes = themes_of(session)
        interviews = visible(session, kind="interview")
        language = str(get_locale())
        return {
            "perspective": request.args.get("part") == "perspective",
            "guide": in_language(session.config.get("guide", {}), language, session),
            "feedback_questions": in_language(
                session.config.get("feedback", {}), language, session
            ),
            "themes": sorted(themes, key=lambda t: (-len(t.data.get("answers", [])), t.id)),
            "theme_names": {t.id: theme_name(t, language, session) for t in themes},
            "theme_prompts": {t.id: theme_prompt(t, language, session) for t in themes},
            "answers": theming.answers_of(interviews),
            "meetings": [meetings.meeting_summary(m) for m in meetings.meetings_of(session)],
            "projects": visible(session, kind="project"),
            "project_statuses": PROJECT_STATUSES,
            "feedback": feedback_summary(session),
            "needs": session_needs(session),
            "actions": session_actions(session),
            **reach_context(session, None, None),
        }

    def backlog_candidates(self, session):
        themes = sorted(themes_of(session), key=lambda t: (-len(t.data.get("answers", [])), t.id))
        candidates = []
        for theme in themes:
            refs = theme.data.get("answers", [])
            interviews = _unique(
                [theming.parse_ref(ref)[0] for ref in refs if theming.parse_ref(ref)]
            )
            candidates.append(
                BacklogCandidate(
                    title=theme_name(theme, None, session)[:200],
                    description=_(
                        "A theme of the citizen dialogue’s perspective report "
                        "(%(answers)s, %(interviews)s).",
                        answers=ngettext("%(num)d answer", "%(num)d answers", len(refs)),
                        interviews=ngettext(
                            "%(num)d interview", "%(num)d interviews", len(interviews)
                        ),
                    ),
                    theme=theme.data.get("category", ""),
                    contribution_ids=[theme.id, *interviews],
                    # Support by kind: the people heard on it, one per interview.
                    people=len(interviews),
                )
            )
        for project in visible(session, kind="project"):
            data = project.data
            candidates.append(
                BacklogCandidate(
                    title=project.body[:200],
                    description=_(
                        "A citizen-led project from the dialogue meetings, led by %(group)s. "
                        "What it needs from the city: %(needs)s",
                        group=data.get("lead_group", ""),
                        needs=data.get("from_city") or "-",
                    ),
                    contribution_ids=[project.id, *([data["idea"]] if data.get("idea") else [])],
                    kind=ACTION,
                    owner=data.get("lead_group", ""),
                    # The theme's need candidate, keyed on the theme (its subject).
                    addresses=[f"{NEED}-{data['theme']}"] if data.get("theme") else [],
                )
            )
        return candidates


# --- interviews, meetings, feedback --------------------------------------------


def _interviewer(participant) -> dict:
    if participant.role == CONNECTOR:
        return {"by": CONNECTOR, "connector": participant.role_link.code}
    return {"by": "self", "connector": None, "language": participant.language}


def interview_data(session, fields: dict, *, by: str, connector, language=None) -> dict:
    """An interview's stored fields from what was sent, or :class:`Refused` saying what is wrong.

    ``by`` is ``"connector"`` (with the connector's code), ``"self"`` (a
    resident through the public QR code: the place is ``self`` and the
    language the phone's) or ``"paper"`` (typed in by staff). Consent must
    be confirmed; at least one answer is needed; each answer, the language,
    the place, who the interview was with (one of the session's
    :func:`respondent_types`; a person answering alone may skip it) and each
    profile answer must be one of the fixed values or skipped (profile only).
    """
    questions = in_language(session.config.get("guide", {}), None, session)
    answers = []
    for index in range(len(questions)):
        text = str(fields.get(f"q{index + 1}") or "").strip()
        if len(text) > MAX_ANSWER:
            raise Refused(
                ngettext(
                    "This is too long: %(num)d character at most.",
                    "This is too long: %(num)d characters at most.",
                    MAX_ANSWER,
                )
            )
        if text:
            answers.append({"q": index, "text": text})
    if str(fields.get("consent", "")) not in ("yes", "1", "on", "y"):
        raise Refused(_("Confirm that the person agreed to take part before sending."))
    if not answers:
        raise Refused(_("Write at least one answer before sending."))
    if by == "self":
        place, language = "self", language if language in reach.INTERVIEW_LANGUAGES else "other"
    else:
        place, language = str(fields.get("place", "")), str(fields.get("language", ""))
        if place not in reach.PLACE_TYPES or place == "self":
            raise Refused(_("Choose where the interview took place."))
        if language not in reach.INTERVIEW_LANGUAGES:
            raise Refused(_("Choose the language of the interview."))
    offered = respondent_types(session)
    respondent = str(fields.get("respondent") or "")
    if not respondent and by != "self" and len(offered) == 1:
        respondent = next(iter(offered))
    if respondent and respondent not in offered or not respondent and by != "self":
        raise Refused(_("Choose who the interview was with."))
    profile = {}
    for field, (_title, values) in reach.PROFILE.items():
        value = str(fields.get(field) or "")
        if value and value not in values:
            raise Refused(_("Choose one of the answers offered, or skip the question."))
        if value:
            profile[field] = value
    data = {"answers": answers, "language": language, "place": place, "profile": profile, "by": by}
    if respondent:
        data["respondent"] = respondent
    if connector:
        data["connector"] = connector
    return data


def respondent_types(session) -> dict:
    """The kinds of person this dialogue's interviews may be with: ``{key: label}``."""
    chosen = session.config.get("respondent_types") or reach.DEFAULT_RESPONDENT_TYPES
    return {key: label for key, label in reach.RESPONDENT_TYPES.items() if key in chosen}


def interview_body(data: dict) -> str:
    """The answers one after the other: the text the core hides, scrubs and searches."""
    return "\n\n".join(answer["text"] for answer in data["answers"])


def feedback_data(fields: dict) -> dict:
    """The three ratings, each from 1 to 5, or :class:`Refused`."""
    low, high = FEEDBACK_SCALE
    data = {}
    for name in FEEDBACK_FIELDS:
        value = parse_int(fields.get(name), default=0)
        if not low <= value <= high:
            raise Refused(
                _("Answer the three questions from %(low)d to %(high)d.", low=low, high=high)
            )
        data[name] = value
    return data


def reach_context(session, by, value) -> dict:
    """The reach, protected: share of the population, profile tables, each profile question
    against the population where the facilitator gave it.

    The share of the area's population counts the residents heard (and those
    who did not say who they are), not staff or politicians, unless these are
    fewer than five: then everyone heard counts, so that no figure tells them.
    """
    interviews = visible(session, kind="interview")
    chosen, refusal = reach.filtered(interviews, by, value)
    population = session.config.get("population") or 0
    by_profile = reach.populations(session.config)
    residents = len(reach.residents(interviews))
    if 0 < len(interviews) - residents < reach.MINIMUM_GROUP:
        # Staff and politicians fewer than five: counted in, lest the share tell their number.
        residents = len(interviews)
    return {
        "population": population or None,
        "reached": len(interviews),
        "residents_reached": residents,
        "reached_share": round(100 * residents / population, 1) if population else None,
        "recorded_by": reach.recorded_by(interviews),
        "connectors": reach.per_connector(interviews),
        "reach_filter": {"by": by, "value": value, "refused": refusal, "count": len(chosen)},
        "reach_filters": reach.FILTERS,
        "reach_tables": [] if refusal else reach.reach_tables(chosen, by_profile),
        "against_population": []
        if refusal
        else [
            {
                "field": field,
                "title": str(reach.PROFILE[field][0]),
                "rows": reach.against_population(chosen, field, known),
            }
            for field, known in by_profile.items()
        ],
        "minimum_group": reach.MINIMUM_GROUP,
    }


def feedback_summary(session) -> dict:
    """The feedback forms, protected: no answer given by fewer than five people on its own.

    For each question, ``rows`` are the histogram's ``(value, people)`` bars
    from 1 to 5: a value chosen by fewer than five people is counted with
    others in one bar labelled with its values (``"1 · 2"``; see
    :func:`palabre.plugins.citizen_dialogue.reach.protect`), and ``pooled``
    lists those values. The ``average`` is given only when nothing was
    pooled: with the other bars it would tell how the pooled bar splits.
    Under five forms in all, ``shown`` is false and no figure is given.
    ``paper`` (forms typed in from paper) is ``None`` when it, or the forms
    sent by phone, are fewer than five.
    """
    forms = visible(session, kind="feedback")
    low, high = FEEDBACK_SCALE
    questions = {}
    for name in FEEDBACK_FIELDS:
        values = [f.data.get(name) for f in forms if f.data.get(name)]
        counts = {str(v): values.count(v) for v in range(low, high + 1)}
        protected = {row.key: row.count for row in reach.protect(counts, {k: k for k in counts})}
        pooled = [key for key in counts if counts[key] and key not in protected]
        rows = []
        for key, count in counts.items():
            if key in pooled:
                if key == pooled[0]:
                    rows.append((" · ".join(pooled), protected.get(reach.SMALL_GROUPS)))
            else:
                rows.append((key, count))
        questions[name] = {
            "rows": rows,
            "pooled": pooled,
            "count": len(values),
            "shown": len(values) >= reach.MINIMUM_GROUP,
            "average": round(sum(values) / len(values), 1) if values and not pooled else None,
        }
    paper = sum(1 for f in forms if f.data.get("paper"))
    return {
        "count": len(forms),
        "paper": paper
        if meetings.protected(paper) and meetings.protected(len(forms) - paper)
        else None,
        "questions": questions,
        "comments": [f.body for f in forms if f.body and f.body != "-"],
        "minimum_group": reach.MINIMUM_GROUP,
    }


# --- small helpers -----------------------------------------------------------------


def _chosen_filter() -> tuple[str | None, str | None]:
    """The reach filter of the request, ``?filter=<field>:<value>``, as ``(field, value)``."""
    field, _sep, value = request.args.get("filter", "").partition(":")
    return (field or None, value or None)


def _texts_by_language(data: dict, prefix: str, limit: int) -> dict[str, str]:
    """What ``texts_inputs`` posted for ``prefix``, in every language, each cut at ``limit``."""
    return {code: text[:limit] for code, text in Texts.from_form(data, prefix, LANGUAGES).items()}


def _required(data: dict, name: str, limit: int, message: str) -> str:
    value = str(data.get(name, "")).strip()[:limit]
    if not value:
        raise Refused(message)
    return value


def _category(value) -> str:
    return value if value in {t.value for t in Theme} else Theme.OTHER.value


def _theme(session, theme_id) -> Contribution:
    wanted = parse_int(theme_id, default=-1)
    for theme in themes_of(session):
        if theme.id == wanted:
            return theme
    raise Refused(_("This theme is not here any more."))


def _replace_in_meetings(session, old: int, new: int) -> None:
    """A merged theme's meetings work on the theme it was merged into."""
    for meeting in meetings.meetings_of(session):
        ids = meeting.config.get("themes", [])
        if old in ids:
            replaced = _unique([new if tid == old else tid for tid in ids])
            meeting.config = {**meeting.config, "themes": replaced}


def _unique(items: list) -> list:
    return list(dict.fromkeys(items))


def _count(session, kind) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Contribution)
        .where(
            Contribution.session_id == session.id,
            Contribution.kind == kind,
            Contribution.hidden.is_(False),
        )
    )


def _mine(participant, kind) -> list[Contribution]:
    return db.session.scalars(
        select(Contribution).where(
            Contribution.participant_id == participant.id, Contribution.kind == kind
        )
    ).all()


# --- the reach export and the phones' script -------------------------------------

blueprint = Blueprint(
    "citizen_dialogue",
    __name__,
    url_prefix="/citizen-dialogue",
    static_folder="static",
    static_url_path="/static",
)


@blueprint.get("/<int:session_id>/reach.csv")
@session_required
def reach_csv(session_id: int):
    """The reach as CSV for a spreadsheet, protected exactly as on screen and in print.

    Takes the run screen's filter (``filter=place:home``); a filter that would
    show a group under five answers with its message and no figures.
    """
    session = db.session.get(Session, session_id)
    if session is None or session.method != CitizenDialogue.slug:
        abort(404)
    context = reach_context(session, *_chosen_filter())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("Question"), _("Answer"), _("People heard"), _("People living in the area")])
    if context["reach_filter"]["refused"]:
        writer.writerow([context["reach_filter"]["refused"]])
    else:
        writer.writerow(
            [_("Reach"), _("Interviews"), context["reached"], session.config.get("population")]
        )
        for table in context["reach_tables"]:
            for row in table["rows"]:
                count = (
                    row.count
                    if row.count is not None
                    else _("fewer than %(n)d", n=reach.MINIMUM_GROUP)
                )
                writer.writerow([table["title"], row.label, count, row.population or ""])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="reach-{session.code}.csv"'},
    )


@blueprint.get("/<int:session_id>/feedback.csv")
@session_required
def feedback_csv(session_id: int):
    """The feedback forms' figures as CSV, protected exactly as on screen and in print.

    One row per question and answer (values chosen by fewer than five people
    share one row), then the averages where they can be given.
    """
    session = db.session.get(Session, session_id)
    if session is None or session.method != CitizenDialogue.slug:
        abort(404)
    summary = feedback_summary(session)
    questions = in_language(session.config.get("feedback", {}), None, session)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [_("Question"), _("Answer, from 1 (not at all) to 5 (completely)"), _("People")]
    )
    for question, name in zip(questions, FEEDBACK_FIELDS, strict=False):
        figures = summary["questions"][name]
        if not figures["shown"]:
            writer.writerow([question, "", _("fewer than %(n)d", n=reach.MINIMUM_GROUP)])
            continue
        for answer, people in figures["rows"]:
            writer.writerow([question, answer, people])
        if figures["average"] is not None:
            writer.writerow([question, _("Average"), figures["average"]])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="feedback-{session.code}.csv"'},
    )


@hookimpl
def register_methods():
    return [CitizenDialogue, meetings.DialogueMeeting]


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def import_session(session, ids):
    """An imported dialogue: themes, answers, meetings, views, ideas and projects by new ids.

    The meetings' themes (``config``), a theme's answers and quotes (``"<interview
    id>:<question>"``) and what it was merged into, the theme of a view or an idea, and a
    project's idea and theme all name contributions.
    """
    if session.method != CitizenDialogue.slug:
        return None

    def answer(ref):
        parsed = theming.parse_ref(ref)
        new = ids.contribution(parsed[0]) if parsed else None
        return theming.answer_ref(new, parsed[1]) if new is not None else None

    def present(values):
        return [value for value in values if value is not None]

    meetings = {
        number: present(ids.contribution(t) for t in themes)
        for number, themes in session.config.get("meeting_themes", {}).items()
    }
    if meetings:
        session.config = {**session.config, "meeting_themes": meetings}
    for contribution in db.session.scalars(
        select(Contribution).where(Contribution.session_id == session.id)
    ):
        data = dict(contribution.data)
        for key in ("theme", "idea", "merged_into"):
            if data.get(key) is not None:
                data[key] = ids.contribution(data[key])
        for key in ("answers", "quotes"):
            if key in data and contribution.kind == "theme":
                data[key] = present(answer(ref) for ref in data[key])
        if data != contribution.data:
            contribution.data = data
    return None
