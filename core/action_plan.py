"""The council's documents on the backlog, each read in a few queries: the action plan and
the monitoring report.

:func:`action_plan` loads every open need and every action with what the
printout shows of them, in a constant number of SQL statements however
large the backlog is (no lazy loading from the template), and works out the
summary a councillor reads first: figures, needs by theme with the most
supported ones, actions by status. It runs in a print job, off the live
layer's loop, so it must not touch anything request-bound. :func:`monitoring_report`
loads what changed since a date: progress reported, actions and needs added.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, subqueryload

from .extensions import db
from .models import (
    Action,
    ActionStatus,
    ActionUpdate,
    Need,
    NeedSource,
    Session,
    Theme,
    need_action,
)

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
        actions_query = actions_query.where(Action.id.in_(_actions_of_theme(theme)))
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


@dataclass
class MonitoringReport:
    """What changed in the backlog since a date: progress reported, actions and needs added."""

    since: datetime
    #: Actions with progress reported since, each with those updates (oldest first).
    progress: list[tuple[Action, list[ActionUpdate]]]
    new_actions: list[Action]
    new_needs: list[Need]
    theme: str | None = None

    @property
    def updates(self) -> int:
        return sum(len(updates) for _action, updates in self.progress)


def monitoring_report(since: datetime, theme: str | None = None) -> MonitoringReport:
    """Load what changed since ``since`` (about one ``theme``'s needs, if given).

    Statements: the updates with their actions, the new actions, their needs,
    the new needs: four, whatever the sizes.
    """
    updates_query = (
        select(ActionUpdate)
        .options(joinedload(ActionUpdate.action))
        .where(ActionUpdate.created_at >= since)
        .order_by(ActionUpdate.action_id, ActionUpdate.created_at)
    )
    actions_query = (
        select(Action)
        .options(subqueryload(Action.needs))
        .where(Action.created_at >= since)
        .order_by(Action.id)
    )
    needs_query = (
        select(Need)
        .where(Need.merged_into_id.is_(None), Need.created_at >= since)
        .order_by(Need.priority.desc(), Need.id)
    )
    if theme:
        of_theme = _actions_of_theme(theme)
        updates_query = updates_query.where(ActionUpdate.action_id.in_(of_theme))
        actions_query = actions_query.where(Action.id.in_(of_theme))
        needs_query = needs_query.where(Need.theme == theme)
    progress: dict[int, tuple[Action, list[ActionUpdate]]] = {}
    for update in db.session.scalars(updates_query):
        progress.setdefault(update.action_id, (update.action, []))[1].append(update)
    return MonitoringReport(
        since=since,
        # Most recent news first.
        progress=sorted(progress.values(), key=lambda pair: pair[1][-1].created_at, reverse=True),
        new_actions=db.session.scalars(actions_query).all(),
        new_needs=db.session.scalars(needs_query).all(),
        theme=theme,
    )


def _actions_of_theme(theme: str):
    return (
        select(need_action.c.action_id)
        .join(Need, Need.id == need_action.c.need_id)
        .where(Need.theme == theme)
    )
