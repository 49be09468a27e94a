"""World café: small tables, several rounds, one question per round.

As in Zaragoza's café on its intercultural plan: people talk at tables, move
between rounds to meet new people, a host stays at each table and carries
the previous round's summary, staff take notes; the harvest gathers each
table's key insights and everyone prioritises them with dots.
"""

from __future__ import annotations

import random

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import bindparam, func, select
from wtforms import BooleanField, IntegerField, RadioField
from wtforms.validators import NumberRange, ValidationError

from palabre import (
    HOST,
    VOTE,
    BacklogCandidate,
    CleanForm,
    Contribution,
    ContributionKind,
    Method,
    Participant,
    Phase,
    Role,
    Session,
    Texts,
    TextsField,
    Vote,
    contribute,
    current_phase,
    db,
    hookimpl,
    options,
    session_needs,
    visible,
    vote_totals,
    votes_used,
)
from palabre import (
    plan as phases_of,
)

from .seating import encounters, seat

MAX_ROUNDS = 8
MAX_QUESTION = 300


def default_questions() -> Texts:
    """The first questions, in every language whose catalog has them, one per line."""
    return Texts.from_catalog(
        lambda: "\n".join(
            [
                _("What has helped you most since you arrived in the city?"),
                _("What is hardest for you or your family here?"),
                _("What should the city do first to make things better?"),
            ]
        )
    )


class WorldCafeConfig(CleanForm):
    tables = IntegerField(
        _l("Number of tables"), default=5, validators=[NumberRange(min=1, max=40)]
    )
    questions = TextsField(
        _l("Questions, one per round (one per line)"),
        default=default_questions,
        multiline=True,
        required=True,
        max_length=MAX_QUESTION,
        rows=4,
        description=_l("The same questions in the same order in each language."),
    )
    round_minutes = IntegerField(
        _l("Minutes per round"),
        default=20,
        validators=[NumberRange(min=3, max=120)],
        description=_l("Changed while a round runs: from the next round on."),
    )
    assignment = RadioField(
        _l("Seating"),
        choices=options(
            [
                ("assign", _l("Palabre seats people, mixing them between rounds")),
                ("choose", _l("Participants choose their first table")),
            ]
        ),
        default="assign",
    )
    hosts_stay = BooleanField(_l("Table hosts stay at their table between rounds"), default=True)
    dots = IntegerField(
        _l("Dots each participant gives in the harvest"),
        default=3,
        validators=[NumberRange(min=1, max=10)],
    )
    hide_totals = BooleanField(
        _l("Hide the dot totals on phones until voting closes (nobody follows the crowd)"),
        default=True,
    )

    def validate_questions(self, field):
        counts = {code: len(lines) for code, lines in field.lines().items()}
        if len(set(counts.values())) > 1:
            raise ValidationError(
                _("Write as many questions in each language, one per line, in the same order.")
            )
        if max(counts.values(), default=0) > MAX_ROUNDS:
            raise ValidationError(
                ngettext("At most %(num)d round.", "At most %(num)d rounds.", MAX_ROUNDS)
            )


def round_question(round_: dict) -> Texts:
    """A round's question in each language; a round stored before questions had languages
    (``{"question": <text>, "translations": {code: text}}``) is read the same way."""
    question = Texts.of(round_.get("question"))
    return Texts({**question, **(round_.get("translations") or {})})


class WorldCafe(Method):
    slug = "world_cafe"
    title = _l("World café")
    description = _l(
        "Small tables, a question per round; people change tables between rounds, "
        "hosts carry each table's summary, and everyone prioritises the harvest."
    )
    config_form = WorldCafeConfig
    contribution_kinds = {
        "note": ContributionKind("note", _l("Note")),
        "summary": ContributionKind("summary", _l("Table summary")),
        "insight": ContributionKind("insight", _l("Key insight"), max_length=500, seen_by_all=True),
    }
    votable_kinds = ("insight",)
    roles = {HOST: Role(HOST, _l("Table host"), per_group=True)}

    def config_from_form(self, form) -> dict:
        lines = form.questions.lines()
        rounds = max((len(questions) for questions in lines.values()), default=0)
        return {
            "tables": form.tables.data,
            "rounds": [
                {"question": {code: questions[n] for code, questions in lines.items()}}
                for n in range(rounds)
            ],
            "round_minutes": form.round_minutes.data,
            "assignment": form.assignment.data,
            "hosts_stay": bool(form.hosts_stay.data),
            "dots": form.dots.data,
            "hide_totals": bool(form.hide_totals.data),
        }

    def form_data(self, session) -> dict:
        rounds = [round_question(r) for r in session.config.get("rounds", [])]
        first = (session.languages or [""])[0]
        languages = dict.fromkeys(
            code for question in rounds for code in question.with_language(first)
        )
        questions = {
            code: "\n".join(str(q.with_language(first).shown(code, [code])) for q in rounds)
            for code in languages
        }
        return {**session.config, "questions": questions}

    def phases(self, config: dict) -> list[Phase]:
        rounds = [
            Phase(
                "world_cafe:round",
                _("Round %(n)d", n=number),
                allows=frozenset({contribute("note"), contribute("summary")}),
                number=number,
                minutes=config.get("round_minutes"),
                question=round_question(round_),
            )
            for number, round_ in enumerate(config.get("rounds", []), start=1)
        ]
        return [
            Phase("world_cafe:welcome", _("Welcome")),
            *rounds,
            Phase(
                "world_cafe:harvest",
                _("Harvest"),
                allows=frozenset({contribute("insight"), VOTE}),
            ),
            Phase("world_cafe:closed", _("Closed")),
        ]

    def groups(self, config: dict) -> list[tuple[str, str]]:
        return [(table, _table_label(table)) for table in _tables(config)]

    def participants_choose_group(self, config: dict) -> bool:
        return config.get("assignment") == "choose"

    def vote_budget(self, config: dict) -> int:
        return config.get("dots", 3)

    def phones_see_vote_totals(self, config: dict) -> bool:
        # Hidden unless the facilitator chose otherwise: a dot should not follow the crowd.
        return not config.get("hide_totals", True)

    # --- seating -------------------------------------------------------

    def on_join(self, session, participant, choices):
        tables = _tables(session.config)
        if choices.get("group") in tables:
            participant.group = choices["group"]
        elif session.phase_index > 0:
            # Arriving during the café: sit at the emptiest table. Counted by
            # the database: a full room's joins each read one row per table.
            sizes = {t: 0 for t in tables}
            sizes.update(_table_sizes(session, excluding=participant))
            participant.group = min(tables, key=lambda t: (sizes[t], random.random()))
        round_number = self._round_number(session)
        if participant.group and round_number:
            _remember_seat(participant, round_number)

    def on_enter_phase(self, session, phase):
        if phase.name != "round":
            return []
        people = _participants(session)
        round_number = phase.number
        if any(str(round_number) in p.state.get("seats", {}) for p in people):
            return []  # re-entering a round (going back) keeps its seating
        tables = _tables(session.config)
        hosts_stay = session.config.get("hosts_stay", True)
        fixed = {p.id: p.group for p in people if p.is_host and hosts_stay and p.group in tables}
        if round_number == 1 and session.config.get("assignment") == "choose":
            movers = [p for p in people if p.id not in fixed and p.group not in tables]
            for p in people:
                if p.group in tables and p.id not in fixed:
                    fixed[p.id] = p.group
        else:
            movers = [p for p in people if p.id not in fixed]
        history = [
            {p.id: p.state["seats"][str(r)] for p in people if str(r) in p.state.get("seats", {})}
            for r in range(1, round_number)
        ]
        placed = seat([p.id for p in movers], fixed, tables, encounters(history))
        for p in people:
            p.group = placed.get(p.id, p.group)
            if p.group:
                _remember_seat(p, round_number)
        return []

    def _round_number(self, session) -> int:
        return current_phase(session).number or 0

    def check_contribution(self, session, participant, kind, data):
        if kind.grouped and not participant.group:
            return _("You do not have a table yet. Wait for the next round.")
        hosts_write = kind.name in ("summary", "insight")
        if hosts_write and not participant.is_host and _table_has_host(session, participant.group):
            return _("Your table's host writes this.")
        return None

    # --- views ---------------------------------------------------------

    def view_context(self, session, view, participant=None):
        plan = phases_of(session)
        phase = plan[session.phase_index]
        if view == "participant":
            # A phone's page shows its current phase only (it reloads when the phase
            # changes): nothing is read for the others, in a burst of joins least of all.
            table = participant.group
            context = {
                "table_label": _table_label(table) if table in _tables(session.config) else ""
            }
            context["notes"] = (
                visible(session, kind="note", group=table, phase_index=session.phase_index)
                if table and phase.name == "round"
                else []
            )
            previous = _previous_round_index(plan, session.phase_index)
            round_ = phase.name == "round" and table and previous is not None
            context["previous_summary"] = (
                visible(session, kind="summary", group=table, phase_index=previous)
                if round_
                else []
            )
            context["previous_notes"] = (
                visible(session, kind="note", group=table, phase_index=previous)
                if round_ and participant.is_host
                else []
            )
            if phase.name == "harvest":
                context.update(self._dots_context(session, participant))
            # "You said, we did": what became of the café's harvest.
            context["needs"] = session_needs(session) if phase.name == "closed" else []
            return context
        context = {"table_labels": dict(self.groups(session.config))}
        totals = vote_totals(session)
        insights = sorted(
            visible(session, kind="insight"), key=lambda c: (-totals.get(c.id, 0), c.id)
        )
        context["vote_totals"] = totals
        context["insights"] = insights
        context["dot_rows"] = [(c.body, totals.get(c.id, 0)) for c in insights]
        round_notes = _all_of_phase(
            session, "note", session.phase_index, include_hidden=view != "projector"
        )
        context["notes_by_table"] = _by_group(round_notes)
        context["newest_notes"] = round_notes[::-1]
        context["summaries_by_table"] = _by_group(
            _all_of_kind(session, "summary", include_hidden=view != "projector")
        )
        context["people_by_table"] = _people_by_table(session)
        if view == "facilitator" and phase.name == "harvest":
            context["all_insights"] = _all_of_kind(session, "insight", include_hidden=True)
        return context

    def _dots_context(self, session, participant) -> dict:
        """What a phone shows in the harvest: the insights, its dots given and left."""
        totals = vote_totals(session)
        show_totals = self.phones_see_vote_totals(session.config)
        insights = visible(session, kind="insight")
        if show_totals:
            insights.sort(key=lambda c: (-totals.get(c.id, 0), c.id))
        # Otherwise in the order they were written: the ranking would give the totals away.
        return {
            "vote_totals": totals,
            "insights": insights,
            "show_totals": show_totals,
            "dots_left": self.vote_budget(session.config) - votes_used(participant),
            "my_votes": _my_votes(participant),
        }

    def report_context(self, session):
        plan = phases_of(session)
        totals = vote_totals(session)
        rounds = []
        for index, phase in enumerate(plan):
            if phase.name != "round":
                continue
            rounds.append(
                {
                    "phase": phase,
                    "notes": _by_group(visible(session, kind="note", phase_index=index)),
                    "summaries": _by_group(visible(session, kind="summary", phase_index=index)),
                }
            )
        everything = visible(session)
        insights = sorted(
            visible(session, kind="insight"), key=lambda c: (-totals.get(c.id, 0), c.id)
        )
        return {
            "rounds": rounds,
            "table_labels": dict(self.groups(session.config)),
            "insights": insights,
            "vote_totals": totals,
            "dot_rows": [(c.body, totals.get(c.id, 0)) for c in insights],
            "needs": session_needs(session),
            "participant_total": len(_participants(session)),
            "contribution_total": len(everything),
            "transcribed_total": sum(1 for c in everything if c.transcribed),
            "vote_total": sum(totals.values()),
        }

    def backlog_candidates(self, session):
        totals = vote_totals(session)
        labels = dict(self.groups(session.config))
        insights = sorted(
            visible(session, kind="insight"), key=lambda c: (-totals.get(c.id, 0), c.id)
        )
        return [
            BacklogCandidate(
                title=insight.body[:200],
                description=_(
                    "Key insight of %(table)s at “%(session)s”.",
                    table=labels.get(insight.group) or _("the plenary"),
                    session=session.title,
                ),
                contribution_ids=[insight.id],
                votes=totals.get(insight.id, 0),
            )
            for insight in insights
        ]


# --- queries -------------------------------------------------------------------


def _participants(session: Session) -> list[Participant]:
    return db.session.scalars(
        select(Participant).where(Participant.session_id == session.id).order_by(Participant.id)
    ).all()


def _tables(config: dict) -> list[str]:
    """The café's tables, as participants' groups: "1", "2"..."""
    return [str(n) for n in range(1, config.get("tables", 1) + 1)]


def _table_label(table: str) -> str:
    return _("Table %(n)d", n=int(table))


#: Every phone joining during the café asks: built once (building costs more than running it).
_TABLE_SIZES = (
    select(Participant.group, func.count())
    .where(
        Participant.session_id == bindparam("session_id"),
        Participant.id != bindparam("excluding_id"),
    )
    .group_by(Participant.group)
)


def _table_sizes(session: Session, excluding: Participant) -> dict[str, int]:
    """How many participants sit at each table, ``excluding`` one."""
    rows = db.session.execute(
        _TABLE_SIZES, {"session_id": session.id, "excluding_id": excluding.id}
    )
    return {group: count for group, count in rows if group is not None}


def _remember_seat(participant: Participant, round_number: int) -> None:
    seats = dict(participant.state.get("seats", {}))
    seats[str(round_number)] = participant.group
    # Reassign the dict so SQLAlchemy sees the JSON column change.
    participant.state = {**participant.state, "seats": seats}


def _table_has_host(session: Session, table: str | None) -> bool:
    return (
        db.session.scalar(
            select(Participant.id).where(
                Participant.session_id == session.id,
                Participant.group == table,
                Participant.role == HOST,
            )
        )
        is not None
    )


def _previous_round_index(plan: list[Phase], index: int) -> int | None:
    for earlier in range(index - 1, -1, -1):
        if plan[earlier].name == "round":
            return earlier
    return None


def _all_of_kind(session, kind, include_hidden):
    query = select(Contribution).where(
        Contribution.session_id == session.id, Contribution.kind == kind
    )
    if not include_hidden:
        query = query.where(Contribution.hidden.is_(False))
    return db.session.scalars(query.order_by(Contribution.id)).all()


def _all_of_phase(session, kind, phase_index, include_hidden):
    return [c for c in _all_of_kind(session, kind, include_hidden) if c.phase_index == phase_index]


def _by_group(contributions) -> dict[str, list[Contribution]]:
    grouped: dict[str, list[Contribution]] = {}
    for contribution in contributions:
        grouped.setdefault(contribution.group or "", []).append(contribution)
    return grouped


def _people_by_table(session: Session) -> dict[str, int]:
    counts: dict[str, int] = {}
    for participant in _participants(session):
        if participant.group:
            counts[participant.group] = counts.get(participant.group, 0) + 1
    return counts


def _my_votes(participant: Participant) -> dict[int, int]:
    votes: dict[int, int] = {}
    for vote in db.session.scalars(select(Vote).where(Vote.participant_id == participant.id)):
        votes[vote.contribution_id] = votes.get(vote.contribution_id, 0) + vote.value
    return votes


@hookimpl
def register_methods():
    return [WorldCafe]
