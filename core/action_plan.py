"""The action plan as the council reads it: the whole backlog, read in a few queries.

:func:`action_plan` loads every open need and every action with what the
printout shows of them, in a constant number of SQL statements however
large the backlog is (no lazy loading from the template), and works out the
summary a councillor reads first: figures, needs by theme with the most
supported ones, actions by status. It runs in a print job, off the live
layer's loop, so it must not touch anything request-bound.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import subqueryload

from .extensions import db
from .models import Action, ActionStatus, Need, NeedSource, Session, Theme, need_action

#: Needs shown per theme in the summary; the rest are in the appendix.
TOP_NEEDS_PER_THEME = 5
#: Actions named per status in the summary.
ACTIONS_PER_STATUS = 8
#: Statuses in the order the summary shows them: what is moving first.
SUMMARY_STATUSES = (
    ActionStatus.IN_PROGRESS,
    ActionStatus.PLANNED,
    ActionStatus.PROPOSED,
    ActionStatus.DONE,
    ActionStatus.DROPPED,
)


@dataclass
class ThemeSummary:
    theme: str
    needs: list[Need]
    support: int

    @property
    def key(self) -> str:
        return self.theme

    @property
    def count(self) -> int:
        return len(self.needs)

    @property
    def top(self) -> list[Need]:
        return self.needs[:TOP_NEEDS_PER_THEME]


@dataclass
class StatusSummary:
    status: str
    actions: list[Action]

    @property
    def key(self) -> str:
        return self.status

    @property
    def count(self) -> int:
        return len(self.actions)

    @property
    def named(self) -> list[Action]:
        return self.actions[:ACTIONS_PER_STATUS]


@dataclass
class ActionPlan:
    """Everything the printed plan shows, loaded."""

    needs: list[Need]
    actions: list[Action]
    #: Need id -> [(session title, contributions behind the need from it)], oldest first.
    provenance: dict[int, list[tuple[str, int]]]
    #: Need id -> "N12", action id -> "A7": how the summary points to the appendix.
    need_ref: dict[int, str]
    action_ref: dict[int, str]
    #: Need id -> its actions.
    actions_of: dict[int, list[Action]]
    themes: list[ThemeSummary] = field(default_factory=list)
    statuses: list[StatusSummary] = field(default_factory=list)
    sessions: int = 0
    theme: str | None = None

    @property
    def needs_without_action(self) -> int:
        return sum(1 for need in self.needs if not self.actions_of.get(need.id))


def action_plan(theme: str | None = None) -> ActionPlan:
    """Load the plan, or the part of it about one ``theme`` (its needs and their actions).

    Statements: the needs, their provenance (grouped in SQL), the actions,
    the needs of those actions and their monitoring updates: five, whatever
    the numbers of needs, actions, sources and updates.
    """
    open_need = Need.merged_into_id.is_(None)
    needs_query = select(Need).where(open_need).order_by(Need.priority.desc(), Need.id)
    actions_query = (
        select(Action)
        .options(subqueryload(Action.needs), subqueryload(Action.updates))
        .order_by(Action.id)
    )
    provenance_query = (
        select(
            NeedSource.need_id,
            NeedSource.session_id,
            Session.title,
            func.count(NeedSource.contribution_id),
        )
        .join(Session, Session.id == NeedSource.session_id)
        .join(Need, Need.id == NeedSource.need_id)
        .where(open_need)
        .group_by(NeedSource.need_id, NeedSource.session_id, Session.title)
        .order_by(NeedSource.need_id, func.min(NeedSource.id))
    )
    if theme:
        needs_query = needs_query.where(Need.theme == theme)
        provenance_query = provenance_query.where(Need.theme == theme)
        of_theme = (
            select(need_action.c.action_id)
            .join(Need, Need.id == need_action.c.need_id)
            .where(Need.theme == theme)
        )
        actions_query = actions_query.where(Action.id.in_(of_theme))
    needs = db.session.scalars(needs_query).all()
    provenance: dict[int, list[tuple[str, int]]] = defaultdict(list)
    sessions = set()
    for need_id, session_id, title, contributions in db.session.execute(provenance_query):
        provenance[need_id].append((title, contributions))
        sessions.add(session_id)
    actions = db.session.scalars(actions_query).all()

    need_ref = {need.id: f"N{number}" for number, need in enumerate(needs, 1)}
    action_ref = {action.id: f"A{number}" for number, action in enumerate(actions, 1)}
    actions_of: dict[int, list[Action]] = defaultdict(list)
    for action in actions:
        for need in action.needs:
            actions_of[need.id].append(action)

    by_theme: dict[str, list[Need]] = defaultdict(list)
    for need in needs:
        by_theme[need.theme].append(need)
    themes = sorted(
        (
            ThemeSummary(name, of_theme, sum(n.priority for n in of_theme))
            for name, of_theme in by_theme.items()
        ),
        # Most needs first; "Other" last whatever its size: it says least.
        key=lambda summary: (summary.theme == Theme.OTHER, -len(summary.needs), summary.theme),
    )
    by_status: dict[str, list[Action]] = defaultdict(list)
    for action in actions:
        by_status[action.status].append(action)
    statuses = [StatusSummary(s, by_status[s]) for s in SUMMARY_STATUSES if by_status.get(s)]
    return ActionPlan(
        needs=needs,
        actions=actions,
        provenance=provenance,
        need_ref=need_ref,
        action_ref=action_ref,
        actions_of=actions_of,
        themes=themes,
        statuses=statuses,
        sessions=len(sessions),
        theme=theme,
    )
