"""The strategy's policy cycle around the backlog: stakeholders, outputs, exchange, assessment.

- the stakeholder register and its power-interest matrix (actions pick
  their owner and partners from it);
- the council outputs: the action plan and the monitoring report, whose
  context is built here with eager loading (as many queries however large
  the backlog), printed by a background job of :mod:`palabre.printing`
  off the live loop and kept until the backlog changes;
- the public, anonymous "you said, we did" page for the whole city;
- CSV (UTF-8 with BOM, formula injection neutralised) and JSON exports, and
  the import of actions from CSV, all rows or none;
- the guide's self-assessment of the seven key success factors, with history;
- evaluation entries a session's method records on actions, resting on its
  contributions (an audit's agreed findings).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import date, datetime, time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, IntegerField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange

from . import access
from .backlog import (
    STATUS_LABELS,
    MonitoringReportForm,
    action_gaps,
    all_actions,
    open_needs,
    parse_number,
    plain_number,
    status_label,
    theme_choices,
    theme_label,
)
from .concurrency import page_off_the_loop
from .database import write_transaction
from .extensions import db
from .forms import CleanForm, options
from .i18n import current_language
from .inputs import clean_text
from .models import (
    Action,
    ActionStatus,
    ActionUpdate,
    AssessmentMark,
    Contribution,
    Need,
    Stakeholder,
    UpdateKind,
    utcnow,
)
from .print_jobs import print_jobs
from .printing import print_in_background, render_document

bp = Blueprint("policy_cycle", __name__, url_prefix="/backlog")
city = Blueprint("city", __name__, url_prefix="/city")


# The register, the outputs, exports and the assessment are the backlog's: for
# administrators, and facilitators when the administrators allow it.
access.protect(bp, access.BACKLOG)


# --- stakeholders -----------------------------------------------------------------

STAKEHOLDER_KINDS = {
    "city": _l("City department"),
    "public": _l("Other public body"),
    "ngo": _l("Association or NGO"),
    "migrants": _l("Migrant representatives’ group"),
    "business": _l("Business or employer"),
    "other": _l("Other"),
}
SCALE = [(n, str(n)) for n in range(1, 6)]


class StakeholderForm(CleanForm):
    name = StringField(_l("Organisation or group"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=options(STAKEHOLDER_KINDS.items()))
    role = TextAreaField(_l("Role in the strategy"), validators=[Length(max=2000)])
    already_involved = BooleanField(_l("Already involved"))
    interest = IntegerField(
        _l("Interest in the strategy (1 low to 5 high)"),
        default=3,
        validators=[DataRequired(), NumberRange(min=1, max=5)],
    )
    influence = IntegerField(
        _l("Influence over it (1 low to 5 high)"),
        default=3,
        validators=[DataRequired(), NumberRange(min=1, max=5)],
    )
    knowledge = TextAreaField(
        _l("What they know that the strategy needs"), validators=[Length(max=2000)]
    )
    how_to_involve = TextAreaField(_l("How to involve them"), validators=[Length(max=2000)])
    submit = SubmitField(_l("Save the stakeholder"))


def stakeholders_list() -> list[Stakeholder]:
    return db.session.scalars(select(Stakeholder).order_by(Stakeholder.name)).all()


def _save_stakeholder(stakeholder: Stakeholder, form: StakeholderForm) -> None:
    for name in ("name", "kind", "role", "knowledge", "how_to_involve"):
        setattr(stakeholder, name, (getattr(form, name).data or "").strip())
    stakeholder.already_involved = bool(form.already_involved.data)
    stakeholder.interest = form.interest.data
    stakeholder.influence = form.influence.data


@bp.route("/stakeholders", methods=["GET", "POST"])
def stakeholders():
    """The register, its power-interest matrix, and a form to add to it."""
    form = StakeholderForm()
    if form.validate_on_submit():
        with write_transaction():
            stakeholder = Stakeholder()
            _save_stakeholder(stakeholder, form)
            db.session.add(stakeholder)
        flash(_("Stakeholder added."), "success")
        return redirect(url_for("policy_cycle.stakeholders"))
    return render_template(
        "backlog/stakeholders.html",
        stakeholders=stakeholders_list(),
        form=form,
        kinds=STAKEHOLDER_KINDS,
    )


@bp.route("/stakeholders/<int:stakeholder_id>", methods=["GET", "POST"])
def stakeholder(stakeholder_id: int):
    stakeholder = db.session.get(Stakeholder, stakeholder_id) or abort(404)
    form = StakeholderForm(obj=stakeholder)
    if form.validate_on_submit():
        with write_transaction():
            _save_stakeholder(stakeholder, form)
        flash(_("Stakeholder saved."), "success")
        return redirect(url_for("policy_cycle.stakeholders"))
    owned = db.session.scalars(select(Action).where(Action.owner_id == stakeholder.id)).all()
    return render_template(
        "backlog/stakeholder.html", stakeholder=stakeholder, form=form, owned=owned
    )


# --- council outputs ---------------------------------------------------------------


def _by_theme(needs: list[Need]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for need in needs:
        counts[need.theme] = counts.get(need.theme, 0) + 1
    return sorted(
        ((theme_label(theme), count) for theme, count in counts.items()), key=lambda r: -r[1]
    )


def _by_status(actions: list[Action]) -> list[tuple[str, int]]:
    return [
        (status_label(status), count)
        for status in ActionStatus
        if (count := sum(1 for a in actions if a.status == status))
    ]


#: The order of the plan's groups by status: what is under way first, dropped last.
STATUS_ORDER = [
    ActionStatus.IN_PROGRESS,
    ActionStatus.PLANNED,
    ActionStatus.PROPOSED,
    ActionStatus.DONE,
    ActionStatus.DROPPED,
]


def main_theme(action: Action) -> str:
    """The theme most of an action's needs share (the first one's on a tie), or ``""``."""
    counts = Counter(need.theme for need in action.needs)
    return counts.most_common(1)[0][0] if counts else ""


def _action_groups(actions: list[Action], by: str) -> list[tuple[str, list[Action]]]:
    """``actions`` in groups of one theme (``by="theme"``) or one status, each in plan order.

    Themes come in the order of the theme list, actions linked to no need
    last; inside a group, actions go by status (:data:`STATUS_ORDER`), then
    as they were added.
    """
    rank = {status: n for n, status in enumerate(STATUS_ORDER)}
    ordered = sorted(actions, key=lambda a: (rank.get(a.status, len(rank)), a.id))
    if by == "status":
        keys = [str(status) for status in STATUS_ORDER]
        label, key_of = status_label, lambda a: a.status
    else:
        keys = [key for key, _label in theme_choices()] + [""]
        label = lambda key: theme_label(key) if key else _("Not linked to a need")  # noqa: E731
        key_of = main_theme
    groups: dict[str, list[Action]] = {}
    for action in ordered:
        groups.setdefault(key_of(action), []).append(action)
    order = {key: n for n, key in enumerate(keys)}
    return [
        (label(key), groups[key]) for key in sorted(groups, key=lambda k: order.get(k, len(order)))
    ]


def action_plan_context(theme: str = "") -> dict:
    """Everything the action plan prints, loaded in a handful of queries.

    ``theme`` keeps its needs and the actions addressing them. The summary
    reads in minutes: figures, charts, a table of themes by status, what the
    plan still lacks, the needs with most support, and every action on one
    line, grouped by theme (by status within one theme); the detail of
    each need and action follows as appendices, actions in the same order
    and with the same numbers.
    """
    needs = open_needs()
    actions = all_actions()
    if theme:
        needs = [need for need in needs if need.theme == theme]
        kept = {need.id for need in needs}
        actions = [a for a in actions if any(n.id in kept for n in a.needs)]
    budgets: dict[str, float] = {}
    for action in actions:
        if action.budget_amount is not None and action.status != ActionStatus.DROPPED:
            currency = action.budget_currency or "—"
            budgets[currency] = budgets.get(currency, 0) + action.budget_amount
    numbers = {need.id: number for number, need in enumerate(needs, start=1)}
    groups = _action_groups(actions, "status" if theme else "theme")
    in_plan_order = [action for _label, of_group in groups for action in of_group]
    # What backs each action: the needs it addresses, and the sessions they came from.
    backing = {
        action.id: (
            len(addressed := [n for n in action.needs if n.id in numbers]),
            len({s.session_id for n in addressed for s in n.visible_sources}),
        )
        for action in actions
    }
    open_actions = [a for a in actions if a.status not in (ActionStatus.DONE, ActionStatus.DROPPED)]
    lacking = Counter(gap for action in open_actions for gap in action_gaps(action))
    by_theme_status = Counter((main_theme(a), a.status) for a in actions)
    return {
        "title": _("Integration strategy: action plan"),
        "theme": theme,
        "theme_name": theme_label(theme) if theme else "",
        # Named once, not for each of a thousand needs.
        "theme_names": dict(theme_choices()),
        "status_names": {status: str(label) for status, label in STATUS_LABELS.items()},
        "needs": needs,
        "need_numbers": numbers,
        "top_needs": needs[:10],
        "actions": in_plan_order,
        "action_groups": groups,
        "action_numbers": {a.id: n for n, a in enumerate(in_plan_order, start=1)},
        "grouped_by": "status" if theme else "theme",
        "backing": backing,
        "open_actions": len(open_actions),
        "lacking": lacking.most_common(),
        # Rows of themes, columns of statuses (STATUS_ORDER): how many actions in each.
        "theme_rows": [
            (label, counts)
            for label, counts in (
                (
                    theme_label(key) if key else _("Not linked to a need"),
                    [by_theme_status[(key, status)] for status in STATUS_ORDER],
                )
                for key in [*(k for k, _label in theme_choices()), ""]
            )
            if any(counts)
        ],
        "status_columns": [status_label(status) for status in STATUS_ORDER],
        "needs_without_action": sum(1 for need in needs if not need.actions),
        "budgets": sorted(budgets.items()),
        "needs_by_theme": _by_theme(needs),
        "actions_by_status": _by_status(actions),
        "statuses": list(ActionStatus),
    }


#: Where an open action stands, for those who oversee the plan (the monitoring report).
PROGRESS_STATES = {
    "on_track": _l("On track"),
    "late": _l("Late"),
    "blocked": _l("Blocked"),
    "done": _l("Done"),
    "not_planned": _l("Not planned yet"),
    "dropped": _l("Dropped"),
}
#: The report's headline states, in its order; the others are counted apart.
HEADLINE_STATES = ("on_track", "late", "blocked", "done")


def progress_state(action: Action, today: date) -> tuple[str, str]:
    """Where ``action`` stands on ``today``: a key of :data:`PROGRESS_STATES`, and why.

    Done and dropped are its status. An open action is *blocked* when it has
    no owner or no resources (nobody can carry it out); *late* when its end
    has passed, or its start has while it is still proposed or planned; *not
    planned yet* when it is proposed with no start date; else *on track*.
    The reason is a short sentence for the report ("" when on track or done).
    """
    if action.status == ActionStatus.DONE:
        return "done", ""
    if action.status == ActionStatus.DROPPED:
        return "dropped", ""
    missing = []
    if action.owner_id is None:
        missing.append(_("no owner"))
    if action.budget_amount is None and not action.in_kind.strip():
        missing.append(_("no resources"))
    if missing:
        return "blocked", ", ".join(missing)
    if action.end_date and action.end_date < today:
        return "late", _("end was %(date)s", date=format_date(action.end_date, "medium"))
    not_started = action.status in (ActionStatus.PROPOSED, ActionStatus.PLANNED)
    if not_started and action.start_date and action.start_date < today:
        return "late", _("start was %(date)s", date=format_date(action.start_date, "medium"))
    if action.status == ActionStatus.PROPOSED and action.start_date is None:
        return "not_planned", ""
    return "on_track", ""


def monitoring_context(since: date, today: date | None = None) -> dict:
    """What those who oversee the plan read: where every action stands and what changed.

    A summary (how many actions are on track, late, blocked or done, and
    what changed since ``since``: new needs and actions, actions changed,
    progress reports and evaluations), an overview of the states by theme,
    the details only where they are needed (the late and blocked actions,
    the progress and evaluations reported since ``since``, grouped by
    action), and every open action on one line in an appendix. In a handful
    of queries however large the backlog (see :func:`all_actions`).
    """
    today = today or utcnow().date()
    start = datetime.combine(since, time.min)
    actions = all_actions()
    states = {action.id: progress_state(action, today) for action in actions}
    counts = Counter(state for state, _why in states.values())
    recent: dict[int, list[ActionUpdate]] = {}
    for action in actions:
        for update in action.updates:
            if update.on_date >= since:
                recent.setdefault(action.id, []).append(update)
    groups = _action_groups(actions, "theme")
    numbers = {a.id: n for n, a in enumerate((a for _label, g in groups for a in g), start=1)}
    by_theme = [
        (label, [sum(1 for a in group if states[a.id][0] == key) for key in PROGRESS_STATES])
        for label, group in groups
    ]
    in_order = [a for _label, group in groups for a in group]
    new_needs = [need for need in open_needs() if need.created_at >= start]
    return {
        "title": _("Integration strategy: monitoring report"),
        "since": since,
        "today": today,
        "states": states,
        "state_names": {key: str(label) for key, label in PROGRESS_STATES.items()},
        "headline": [(key, counts[key]) for key in HEADLINE_STATES],
        "others": [(key, counts[key]) for key in PROGRESS_STATES if key not in HEADLINE_STATES],
        "by_theme": by_theme,
        "theme_totals": [
            sum(row[n] for _label, row in by_theme) for n in range(len(PROGRESS_STATES))
        ],
        "numbers": numbers,
        "late": [a for a in in_order if states[a.id][0] == "late"],
        "blocked": [a for a in in_order if states[a.id][0] == "blocked"],
        "recent": [(a, recent[a.id]) for a in in_order if a.id in recent],
        "open_actions": [a for a in in_order if states[a.id][0] not in ("done", "dropped")],
        "closed_actions": [a for a in in_order if states[a.id][0] in ("done", "dropped")],
        "new_needs": new_needs,
        "new_actions": [a for a in in_order if a.created_at >= start],
        "changed_actions": [a for a in in_order if a.created_at < start <= a.updated_at],
        "progress_count": sum(
            1 for ups in recent.values() for u in ups if u.kind == UpdateKind.MONITORING
        ),
        "evaluation_count": sum(
            1 for ups in recent.values() for u in ups if u.kind == UpdateKind.EVALUATION
        ),
    }


@bp.get("/action-plan.pdf")
def action_plan():
    """The action plan for the council, for every theme or one (``?theme=``).

    Printed by a background job (its progress page first), then kept until
    the backlog changes.
    """
    theme = request.args.get("theme", "")
    if theme and theme not in dict(theme_choices()):
        abort(404)
    return print_in_background(
        "print/action_plan.html",
        "action-plan",
        theme or "all",
        lambda: action_plan_context(theme),
    )


@bp.get("/monitoring.pdf")
def monitoring_report():
    """The monitoring report of what changed since ``?since=`` (a link without it: 90 days ago).

    A date that cannot be read is refused: a page of the form alone (not
    the whole backlog, heavy to build) comes back with the date as typed
    and a message, and nothing is printed.
    Printed and kept like the action plan.
    """
    if "since" in request.args:
        form = MonitoringReportForm(formdata=request.args)
        if not form.validate():
            return render_template("backlog/monitoring_form.html", form=form), 400
        since = form.since.data
    else:
        since = date.fromordinal(utcnow().date().toordinal() - 90)
    return print_in_background(
        "print/monitoring.html",
        "monitoring",
        since.isoformat(),
        lambda: monitoring_context(since),
    )


# --- evaluation entries a session records ----------------------------------------------

MAX_EVALUATION_METHOD = 200
MAX_EVALUATION_BODY = 4000


def record_evaluation(
    action: Action, evidence: Contribution, *, method: str, body: str
) -> ActionUpdate:
    """Record on ``action`` an evaluation entry resting on ``evidence``, and return it.

    ``evidence`` is a contribution of a session (a mystery-shopping audit's
    agreed finding): the entry names that session as its evidence and keeps
    the contribution, so that it leads back to it. ``method`` says how the
    action was evaluated, ``body`` what was found; both are cleaned and cut
    to their columns' lengths, and must not identify anyone. Recording the
    same evidence on the same action again rewrites that entry (one entry
    per action and piece of evidence). For :meth:`palabre.Method.run_action`:
    runs inside its write transaction.
    """
    entry = db.session.scalar(
        select(ActionUpdate).where(
            ActionUpdate.action_id == action.id,
            ActionUpdate.evidence_contribution_id == evidence.id,
        )
    )
    if entry is None:
        entry = ActionUpdate(
            action_id=action.id,
            kind=UpdateKind.EVALUATION,
            evidence_session_id=evidence.session_id,
            evidence_contribution_id=evidence.id,
        )
        db.session.add(entry)
    entry.method = clean_text(method).strip()[:MAX_EVALUATION_METHOD]
    entry.body = clean_text(body).strip()[:MAX_EVALUATION_BODY]
    db.session.flush()
    return entry


def withdraw_evaluation(action: Action, evidence: Contribution) -> bool:
    """Remove the entry :func:`record_evaluation` made on ``action`` from ``evidence``.

    Returns whether there was one. For :meth:`palabre.Method.run_action`:
    runs inside its write transaction. Entries the team typed on the
    action's page rest on no contribution and are never removed here.
    """
    entry = db.session.scalar(
        select(ActionUpdate).where(
            ActionUpdate.action_id == action.id,
            ActionUpdate.evidence_contribution_id == evidence.id,
        )
    )
    if entry is None:
        return False
    db.session.delete(entry)
    db.session.flush()
    return True


def session_evaluations(session) -> list[ActionUpdate]:
    """The evaluation entries resting on ``session``'s contributions, oldest first.

    Each with its ``action`` loaded, for the session's screens and report.
    """
    return db.session.scalars(
        select(ActionUpdate)
        .join(Contribution, Contribution.id == ActionUpdate.evidence_contribution_id)
        .where(Contribution.session_id == session.id)
        .order_by(ActionUpdate.id)
        .options(joinedload(ActionUpdate.action))
    ).all()


# --- "you said, we did" for the whole city ---------------------------------------------


def public_needs() -> list[Need]:
    """Open needs fit to show anyone: those resting only on hidden contributions are left out.

    Nothing identifying is read: titles, themes, actions and their progress.
    """
    # Their contributions are loaded with them (see backlog._with_support).
    return [need for need in open_needs() if need.visible_sources or not need.sources]


def public_context() -> dict:
    """The city page's needs by theme and the actions shown with them, in a few queries.

    An action is shown (unless dropped) when it addresses a need shown, or
    when a session proposed it from something not hidden.
    """
    needs = public_needs()
    shown_ids = {need.id for need in needs}
    shown = [
        action
        for action in all_actions()
        if action.status != ActionStatus.DROPPED
        and (any(need.id in shown_ids for need in action.needs) or action.visible_sources)
    ]
    themes: dict[str, list[Need]] = {}
    for need in needs:
        themes.setdefault(need.theme, []).append(need)
    return {
        "themes": sorted(themes.items(), key=lambda item: theme_label(item[0])),
        "needs": needs,
        "actions": shown,
        "other_actions": [a for a in shown if not {n.id for n in a.needs} & shown_ids],
        "needs_by_theme": _by_theme(needs),
        "actions_by_status": _by_status(shown),
    }


@city.get("/")
def you_said_we_did():
    """The city-wide "you said, we did": public, anonymous, in the reader's language.

    Built off the live loop: anyone may open it, during a live session too.
    """
    return render_template("city/you_said_we_did.html", body=city_page_body())


#: ``app.extensions`` key of the city page's body, by language, for one backlog generation.
CITY_PAGE_KEY = "palabre.city_page"


def city_page_body() -> Markup:
    """The city page's content in the reader's language, built once until the backlog changes.

    Built off the live loop (anyone may open it, a whole room at the end
    of a session) and kept under the backlog's generation (see
    :mod:`palabre.print_jobs`), read before the backlog is: a write landing
    meanwhile leaves it under an older generation, never served again.
    Hiding a contribution starts a new generation too.
    """
    generation = print_jobs().generation()
    key = (current_language(), generation)
    kept = current_app.extensions.get(CITY_PAGE_KEY, {})
    body = kept.get(key)
    if body is None:
        body = Markup(
            page_off_the_loop(lambda: render_template("city/_body.html", **public_context()))
        )
        kept = {k: v for k, v in kept.items() if k[1] == generation}
        kept[key] = body
        current_app.extensions[CITY_PAGE_KEY] = kept
    return body


# --- exports and imports -----------------------------------------------------------------

#: Spreadsheets run a cell starting with these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

NEED_COLUMNS = [
    "id",
    "title",
    "description",
    "theme",
    "people",
    "dots",
    "rating",
    "ratings",
    "sessions",
    "actions",
    "created_at",
]
ACTION_COLUMNS = [
    "title",
    "objective",
    "indicator",
    "indicator_baseline",
    "indicator_target",
    "indicator_unit",
    "owner",
    "partners",
    "budget_amount",
    "budget_currency",
    "in_kind",
    "start_date",
    "end_date",
    "status",
    "needs",
]
STAKEHOLDER_COLUMNS = [
    "id",
    "name",
    "kind",
    "role",
    "already_involved",
    "interest",
    "influence",
    "knowledge",
    "how_to_involve",
]


def neutralise(value) -> str:
    """A cell as text that no spreadsheet runs as a formula.

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    gets a leading apostrophe; numbers are written as they are.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return plain_number(value)
    text = value.isoformat() if isinstance(value, date) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def unneutralise(text: str) -> str:
    """The text a neutralised cell stood for (the exports' own apostrophe removed)."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def to_csv(columns: list[str], rows: list[dict]) -> bytes:
    """A CSV file spreadsheets open right: UTF-8 with a BOM, every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(row.get(column)) for column in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def need_rows() -> list[dict]:
    rows = []
    for need in open_needs():
        support = need.support
        rows.append(
            {
                "id": need.id,
                "title": need.title,
                "description": need.description,
                "theme": need.theme,
                "people": support.people,
                "dots": support.dots,
                "rating": support.rating,
                "ratings": support.rating_count,
                "sessions": support.sessions,
                "actions": "; ".join(str(a.id) for a in need.actions),
                "created_at": need.created_at.replace(microsecond=0),
            }
        )
    return rows


def action_rows() -> list[dict]:
    return [
        {
            "title": a.title,
            "objective": a.objective,
            "indicator": a.indicator,
            "indicator_baseline": a.indicator_baseline,
            "indicator_target": a.indicator_target,
            "indicator_unit": a.indicator_unit,
            "owner": a.owner.name if a.owner else "",
            "partners": "; ".join(p.name for p in a.partners),
            "budget_amount": a.budget_amount,
            "budget_currency": a.budget_currency,
            "in_kind": a.in_kind,
            "start_date": a.start_date,
            "end_date": a.end_date,
            "status": a.status,
            "needs": "; ".join(str(n.id) for n in a.needs),
        }
        for a in all_actions()
    ]


def stakeholder_rows() -> list[dict]:
    return [{c: getattr(s, c) for c in STAKEHOLDER_COLUMNS} for s in stakeholders_list()]


EXPORTS = {
    "needs": (NEED_COLUMNS, need_rows),
    "actions": (ACTION_COLUMNS, action_rows),
    "stakeholders": (STAKEHOLDER_COLUMNS, stakeholder_rows),
}


class ImportForm(CleanForm):
    file = FileField(_l("CSV file of actions"))
    submit = SubmitField(_l("Import the actions"))


@bp.get("/exchange")
def exchange():
    """Exports, and the import of actions."""
    return render_template(
        "backlog/exchange.html", form=ImportForm(), columns=ACTION_COLUMNS, problems=[]
    )


@bp.get("/export/<any(needs, actions, stakeholders):what>.<any(csv, json):kind>")
def export(what: str, kind: str):
    columns, rows = EXPORTS[what]
    data = rows()
    name = f"palabre-{what}-{utcnow().date().isoformat()}.{kind}"
    if kind == "csv":
        body, mimetype = to_csv(columns, data), "text/csv; charset=utf-8"
    else:
        body = json.dumps(
            [{c: _json_value(row.get(c)) for c in columns} for row in data],
            ensure_ascii=False,
            indent=1,
        )
        mimetype = "application/json"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _json_value(value):
    return value.isoformat() if isinstance(value, date) else value


def read_actions_csv(raw: bytes) -> tuple[list[dict], list[str]]:
    """Actions read from a CSV file, and every problem found, each naming its row.

    Nothing is stored here: the caller stores all rows when there is no
    problem, none otherwise. Accepts a BOM, commas or semicolons, the
    columns of :data:`ACTION_COLUMNS` (only ``title`` is required).
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [_("The file is not UTF-8 text. Save it as “CSV UTF-8” and try again.")]
    text = clean_text(text)
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip() for h in reader.fieldnames or []]
    if "title" not in header:
        return [], [_("The first line must name the columns, among them “title”.")]
    reader.fieldnames = header
    unknown = [h for h in header if h and h not in ACTION_COLUMNS]
    problems = [_("Unknown column: %(name)s.", name=name) for name in unknown]
    stakeholders = {s.name.casefold(): s for s in stakeholders_list()}
    needs = {n.id: n for n in db.session.scalars(select(Need).where(Need.merged_into_id.is_(None)))}
    statuses = {s.value: s.value for s in ActionStatus} | {
        str(label).casefold(): key for key, label in STATUS_LABELS.items()
    }
    actions = []
    for number, row in enumerate(reader, start=2):
        cells = {k: unneutralise((v or "").strip()) for k, v in row.items() if k}
        if not any(cells.values()):
            continue
        found, action = _read_action_row(cells, stakeholders, needs, statuses)
        problems.extend(_("Line %(line)d: %(problem)s", line=number, problem=p) for p in found)
        actions.append(action)
    if not actions and not problems:
        problems.append(_("The file holds no actions."))
    return actions, problems


def _read_action_row(cells, stakeholders, needs, statuses) -> tuple[list[str], dict]:
    problems = []
    action = {"title": cells.get("title", "")}
    if not action["title"]:
        problems.append(_("the title is missing."))
    elif len(action["title"]) > 200:
        problems.append(_("the title is longer than 200 characters."))
    for name in ("objective", "indicator", "indicator_unit", "in_kind"):
        action[name] = cells.get(name, "")
    for name in ("indicator_baseline", "indicator_target", "budget_amount"):
        try:
            action[name] = parse_number(cells.get(name))
        except ValueError:
            problems.append(
                _("“%(value)s” is not a number (%(column)s).", value=cells[name], column=name)
            )
    currency = cells.get("budget_currency", "").upper()
    if currency and (len(currency) != 3 or not currency.isalpha() or not currency.isascii()):
        problems.append(_("the currency must be three letters, such as EUR."))
    action["budget_currency"] = currency
    for name in ("start_date", "end_date"):
        try:
            action[name] = date.fromisoformat(cells[name]) if cells.get(name) else None
        except ValueError:
            problems.append(
                _(
                    "“%(value)s” is not a date written as 2027-03-01 (%(column)s).",
                    value=cells[name],
                    column=name,
                )
            )
            action[name] = None
    if action["start_date"] and action["end_date"] and action["end_date"] < action["start_date"]:
        problems.append(_("the end comes before the start."))
    status = cells.get("status", "") or ActionStatus.PROPOSED
    if status.casefold() not in statuses:
        problems.append(_("unknown status “%(value)s”.", value=status))
    action["status"] = statuses.get(status.casefold(), ActionStatus.PROPOSED)
    owner = cells.get("owner", "")
    action["owner"] = stakeholders.get(owner.casefold()) if owner else None
    if owner and action["owner"] is None:
        problems.append(_("“%(name)s” is not in the stakeholder register.", name=owner))
    action["partners"] = []
    for name in filter(None, (p.strip() for p in cells.get("partners", "").split(";"))):
        if name.casefold() in stakeholders:
            action["partners"].append(stakeholders[name.casefold()])
        else:
            problems.append(_("“%(name)s” is not in the stakeholder register.", name=name))
    action["needs"] = []
    for ref in filter(None, (p.strip() for p in cells.get("needs", "").split(";"))):
        need = needs.get(int(ref)) if ref.isdigit() and len(ref) < 12 else None
        if need is None:
            problems.append(_("there is no open need number %(ref)s.", ref=ref))
        else:
            action["needs"].append(need)
    return problems, action


def import_actions(actions: list[dict]) -> None:
    """Store actions read by :func:`read_actions_csv`, all in one transaction."""
    with write_transaction():
        for fields in actions:
            action = Action(**{k: v for k, v in fields.items() if k not in ("partners", "needs")})
            action.partners = fields["partners"]
            action.needs = fields["needs"]
            db.session.add(action)


@bp.post("/import")
def import_csv():
    form = ImportForm()
    problems = []
    if not form.validate_on_submit() or not request.files.get("file"):
        problems = [_("Choose a CSV file to import.")]
    else:
        actions, problems = read_actions_csv(request.files["file"].read())
        if not problems:
            import_actions(actions)
            flash(
                ngettext("%(num)d action imported.", "%(num)d actions imported.", len(actions)),
                "success",
            )
            return redirect(url_for("backlog.index"))
    return render_template(
        "backlog/exchange.html", form=form, columns=ACTION_COLUMNS, problems=problems
    ), 400


# --- the guide's self-assessment ---------------------------------------------------------

#: The seven key success factors for co-designing integration strategies (the
#: UNITES framework at the end of the guide), each with its criteria.
FACTORS = [
    (
        _l("Political leadership for co-design in the integration strategy"),
        [
            _l("A positive, explicit vision of migration in the city"),
            _l("A commitment to integration and to carrying out the strategy"),
            _l("Integration placed within a wider frame of equality"),
            _l("Clear communication of the purpose and results of co-design, at each stage"),
        ],
    ),
    (
        _l("A wide culture of participation"),
        [
            _l("Earlier commitments to co-design in other policy areas"),
            _l("Participatory methods used regularly across services, with inclusion guidelines"),
        ],
    ),
    (
        _l("A true integration strategy"),
        [
            _l("It covers all or most areas of service relevant to migrants’ lives"),
            _l("It sets objectives, with concrete actions for each"),
            _l("It sets a timeline or an order for these actions"),
            _l("It has a budget, identified by each stakeholder responsible for an action"),
        ],
    ),
    (
        _l("Channels for migrants to shape policy at every stage"),
        [
            _l("Migrants express their needs, what they can bring and what should change"),
            _l("Migrants work with the authorities and stakeholders on solutions"),
            _l("Migrants oversee implementation, test its impact and take part in the evaluation"),
            _l("Migrants in these roles get training, support, access to data and pay"),
        ],
    ),
    (
        _l("A long-term structure coordinating stakeholders"),
        [
            _l("A steering body set up for at least the strategy’s duration"),
            _l("A clear mandate to oversee implementation"),
            _l("All stakeholders carrying out actions take part in it"),
            _l("Migrants are strongly represented in it"),
        ],
    ),
    (
        _l("Participation covering all the diversity of migrant residents"),
        [
            _l("Across equality categories: origin, gender, age, social background, legal status"),
            _l("Vulnerable groups reached, such as women and unaccompanied young people"),
            _l("The process promoted widely, through social media and community organisations"),
            _l("Support for inclusion: training, family-friendly times, childcare, pay"),
        ],
    ),
    (
        _l("Co-design on integration linked with co-design in other policy areas"),
        [
            _l(
                "Exchanges between migrant co-designers and residents co-designing other strategies"
            ),
            _l("The public is told about these exchanges"),
        ],
    ),
]
MARKS = {"met": _l("Met"), "partly": _l("Partly"), "not_yet": _l("Not yet")}
MARK_SCORES = {"met": 100, "partly": 50, "not_yet": 0}


def criteria() -> list[tuple[str, str, object]]:
    """Every criterion as ``(key, factor title, criterion)``; keys look like ``"3.2"``."""
    return [
        (f"{f}.{c}", factor, criterion)
        for f, (factor, items) in enumerate(FACTORS, start=1)
        for c, criterion in enumerate(items, start=1)
    ]


def assessment_history() -> dict:
    """Marks by date (newest last), the latest mark of each criterion, and scores per factor."""
    marks = db.session.scalars(
        select(AssessmentMark).order_by(AssessmentMark.assessed_on, AssessmentMark.id)
    ).all()
    by_date: dict[date, dict[str, AssessmentMark]] = {}
    for mark in marks:
        by_date.setdefault(mark.assessed_on, {})[mark.criterion] = mark
    dates = sorted(by_date)
    series = []
    for number, (factor, _items) in enumerate(FACTORS, start=1):
        values = []
        for day in dates:
            scores = [
                MARK_SCORES[m.mark]
                for key, m in by_date[day].items()
                if key.split(".")[0] == str(number) and m.mark in MARK_SCORES
            ]
            values.append(round(sum(scores) / len(scores)) if scores else None)
        series.append((f"{number}. {factor}", values))
    latest = {}
    for day in dates:
        latest.update(by_date[day])
    return {"dates": dates, "by_date": by_date, "series": series, "latest": latest}


class AssessmentForm(CleanForm):
    assessed_on = StringField(_l("Date of this assessment"), validators=[DataRequired()])
    submit = SubmitField(_l("Save this assessment"))


@bp.route("/assessment", methods=["GET", "POST"])
def assessment():
    """Mark each criterion met, partly or not yet, with evidence; earlier marks are kept."""
    form = AssessmentForm()
    problems = []
    if request.method == "POST" and form.validate_on_submit():
        try:
            day = date.fromisoformat(form.assessed_on.data.strip())
        except ValueError:
            day = None
            problems.append(_("Write the date as year-month-day, such as 2027-03-01."))
        rows = []
        for key, _factor, _criterion in criteria():
            mark = request.form.get(f"mark-{key}", "")
            evidence = clean_text(request.form.get(f"evidence-{key}", "")).strip()[:4000]
            if mark in MARKS:
                rows.append(AssessmentMark(criterion=key, mark=mark, evidence=evidence))
        if not rows:
            problems.append(_("Mark at least one criterion."))
        if not problems:
            with write_transaction():
                for row in rows:
                    row.assessed_on = day
                    db.session.add(row)
            flash(_("Assessment saved."), "success")
            return redirect(url_for("policy_cycle.assessment"))
    if not form.assessed_on.data:
        form.assessed_on.data = utcnow().date().isoformat()
    return render_template(
        "backlog/assessment.html",
        form=form,
        factors=FACTORS,
        marks=MARKS,
        problems=problems,
        **assessment_history(),
    ), (400 if problems else 200)


@bp.get("/assessment.pdf")
def assessment_pdf():
    context = assessment_history()
    return render_document(
        "print/assessment.html",
        "assessment",
        title=_("Self-assessment of the key success factors"),
        factors=FACTORS,
        marks=MARKS,
        **context,
    )
