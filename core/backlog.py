"""The one backlog of needs and actions that every method feeds.

Needs come from sessions (with provenance down to the contributions) or are
typed in; duplicates are merged, never deleted; actions address needs and
carry an owner, a timeline and a status.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields import SelectMultipleField
from wtforms.validators import DataRequired, Length

from .database import write_transaction
from .extensions import db
from .forms import CleanForm, options
from .methods import ACTION, NEED, BacklogCandidate
from .models import (
    Action,
    ActionSource,
    ActionStatus,
    Contribution,
    Need,
    NeedSource,
    Session,
    Theme,
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
STATUS_LABELS = {
    ActionStatus.PROPOSED: _l("Proposed"),
    ActionStatus.PLANNED: _l("Planned"),
    ActionStatus.IN_PROGRESS: _l("In progress"),
    ActionStatus.DONE: _l("Done"),
    ActionStatus.DROPPED: _l("Dropped"),
}


@bp.before_request
@login_required
def require_facilitator():
    """The backlog is edited by facilitators only."""


@bp.app_template_global()
def theme_label(theme: str) -> str:
    return str(THEME_LABELS.get(theme, theme))


@bp.app_template_global()
def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


class NeedForm(CleanForm):
    title = StringField(_l("Need"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Length(max=4000)])
    theme = SelectField(_l("Theme"), choices=options(THEME_LABELS.items()), default=Theme.OTHER)
    submit = SubmitField(_l("Save the need"))


class ActionForm(CleanForm):
    title = StringField(_l("Action"), validators=[DataRequired(), Length(max=200)])
    objective = TextAreaField(_l("Objective"), validators=[Length(max=4000)])
    indicator = TextAreaField(_l("Indicator"), validators=[Length(max=2000)])
    owner = StringField(_l("Responsible stakeholder"), validators=[Length(max=200)])
    resources = TextAreaField(_l("Resources or budget"), validators=[Length(max=2000)])
    timeline = StringField(_l("Timeline"), validators=[Length(max=200)])
    status = SelectField(_l("Status"), choices=options(STATUS_LABELS.items()))
    needs = SelectMultipleField(_l("Needs it addresses"), coerce=int)
    submit = SubmitField(_l("Save the action"))


class MergeForm(CleanForm):
    into = SelectField(_l("Duplicate of"), coerce=int)
    submit = SubmitField(_l("Merge"))


class HarvestForm(CleanForm):
    """Turning a session's candidates into needs: checkboxes and themes come as raw fields."""

    submit = SubmitField(_l("Add the chosen needs to the backlog"))


# --- operations ------------------------------------------------------------------


def open_needs() -> list[Need]:
    """Needs not merged into another, highest priority first."""
    return db.session.scalars(
        select(Need).where(Need.merged_into_id.is_(None)).order_by(Need.priority.desc(), Need.id)
    ).all()


def create_need(
    title: str,
    *,
    description: str = "",
    theme: str = Theme.OTHER,
    priority: int = 0,
    session: Session | None = None,
    contribution_ids: list[int] = (),
) -> Need:
    """Add a need, with the session and contributions it came from."""
    with write_transaction():
        need = _new_need(
            title,
            description=description,
            theme=theme,
            priority=priority,
            session=session,
            contribution_ids=contribution_ids,
        )
    plugin_host().notify("backlog_item_created", item=need)
    return need


def _new_need(title, *, description, theme, priority, session, contribution_ids) -> Need:
    """Add a need inside the caller's write transaction (no hook called)."""
    need = Need(title=title, description=description, theme=theme, priority=priority)
    if session is not None:
        need.sources = [
            NeedSource(session_id=session.id, contribution_id=cid)
            for cid in (contribution_ids or [None])
        ]
    db.session.add(need)
    return need


def merge_needs(duplicate: Need, into: Need) -> None:
    """Fold ``duplicate`` into ``into``: provenance, votes and actions move over."""
    if duplicate.id == into.id or into.merged_into_id is not None:
        raise ValueError("cannot merge a need into itself or into a merged need")
    with write_transaction():
        for source in list(duplicate.sources):
            source.need = into
        into.priority += duplicate.priority
        for action in list(duplicate.actions):
            if into not in action.needs:
                action.needs.append(into)
            action.needs.remove(duplicate)
        duplicate.merged_into_id = into.id


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


def _new_action(title, *, objective, session, contribution_ids) -> Action:
    """Add a proposed action inside the caller's write transaction (no hook called)."""
    action = Action(title=title, objective=objective, status=ActionStatus.PROPOSED)
    if session is not None:
        action.sources = [
            ActionSource(session_id=session.id, contribution_id=cid)
            for cid in (contribution_ids or [None])
        ]
    db.session.add(action)
    return action


def harvested_keys(session: Session) -> set[str]:
    """Keys of the session's backlog candidates already turned into needs or actions.

    A candidate's key comes from its subject contribution (see
    :attr:`palabre.methods.BacklogCandidate.key`), so this holds however the
    candidates have been reordered or reworded since.
    """
    keys = set()
    for kind, source, item in ((NEED, NeedSource, Need), (ACTION, ActionSource, Action)):
        rows = db.session.execute(
            select(source.contribution_id, item.title)
            .join(item)
            .where(source.session_id == session.id)
        )
        for contribution_id, title in rows:
            keys.add(
                BacklogCandidate(
                    title=title,
                    kind=kind,
                    contribution_ids=[contribution_id] if contribution_id else [],
                ).key
            )
    return keys


def harvest(session: Session, chosen: list[tuple[BacklogCandidate, str, str]]) -> tuple[int, int]:
    """Turn chosen candidates, each with its (reworded) title and theme, into needs and actions.

    One transaction: a candidate already harvested (a form sent twice, two
    facilitators at once) is skipped, so nothing is created twice. Returns
    how many needs and actions were made.
    """
    made = []
    # Needs first, so that an action harvested with the needs it addresses finds them.
    chosen = sorted(chosen, key=lambda row: row[0].kind == ACTION)
    with write_transaction():
        done = harvested_keys(session)
        for candidate, title, theme in chosen:
            if candidate.key in done:
                continue
            done.add(candidate.key)
            if candidate.kind == ACTION:
                item = _new_action(
                    title,
                    objective=candidate.description,
                    session=session,
                    contribution_ids=candidate.contribution_ids,
                )
                item.owner = candidate.owner[:200]
                db.session.flush()
                item.needs = _needs_from(session, candidate.addresses)
            else:
                item = _new_need(
                    title,
                    description=candidate.description,
                    theme=theme,
                    priority=candidate.votes,
                    session=session,
                    contribution_ids=candidate.contribution_ids,
                )
            made.append(item)
    for item in made:
        plugin_host().notify("backlog_item_created", item=item)
    actions = sum(isinstance(item, Action) for item in made)
    return len(made) - actions, actions


def _needs_from(session: Session, contribution_ids: list[int]) -> list[Need]:
    """The needs of ``session`` that came from any of ``contribution_ids``, merged ones followed."""
    if not contribution_ids:
        return []
    needs = db.session.scalars(
        select(Need)
        .join(NeedSource)
        .where(
            NeedSource.session_id == session.id,
            NeedSource.contribution_id.in_(list(contribution_ids)),
        )
        .distinct()
        .order_by(Need.id)
    ).all()
    found = []
    for need in needs:
        while need.merged_into_id is not None:
            need = db.session.get(Need, need.merged_into_id)
        if need not in found:
            found.append(need)
    return found


def create_action(form: ActionForm) -> Action:
    with write_transaction():
        action = Action()
        _fill_action(action, form)
        db.session.add(action)
    plugin_host().notify("backlog_item_created", item=action)
    return action


def _fill_action(action: Action, form: ActionForm) -> None:
    for name in ("title", "objective", "indicator", "owner", "resources", "timeline", "status"):
        setattr(action, name, (getattr(form, name).data or "").strip())
    action.needs = [db.session.get(Need, need_id) for need_id in form.needs.data or []]


def _action_form(**kwargs) -> ActionForm:
    form = ActionForm(**kwargs)
    form.needs.choices = options((need.id, need.title) for need in open_needs())
    if not form.is_submitted() and "needs" in kwargs:
        # With ``obj``, WTForms would read ``obj.needs`` (objects, not ids) instead.
        form.needs.data = kwargs["needs"]
    return form


# --- pages -------------------------------------------------------------------------


@bp.get("/")
def index():
    """Needs by priority with their actions: the plan the council reads."""
    return render_template(
        "backlog/index.html",
        needs=open_needs(),
        actions=db.session.scalars(select(Action).order_by(Action.id)).all(),
        need_form=NeedForm(),
    )


@bp.post("/needs")
def add_need():
    form = NeedForm()
    if form.validate_on_submit():
        create_need(
            form.title.data.strip(), description=form.description.data, theme=form.theme.data
        )
        flash(_("Need added."), "success")
    else:
        flash(_("A need needs a title."), "error")
    return redirect(url_for("backlog.index"))


@bp.route("/needs/<int:need_id>", methods=["GET", "POST"])
def need(need_id: int):
    """Edit a need, see where it came from, merge it into another."""
    need = db.session.get(Need, need_id) or abort(404)
    form = NeedForm(obj=need)
    merge_form = MergeForm()
    merge_form.into.choices = options((n.id, n.title) for n in open_needs() if n.id != need.id)
    if form.submit.data and form.validate_on_submit():
        with write_transaction():
            need.title = form.title.data.strip()
            need.description = form.description.data
            need.theme = form.theme.data
        flash(_("Need saved."), "success")
        return redirect(url_for("backlog.index"))
    return render_template("backlog/need.html", need=need, form=form, merge_form=merge_form)


@bp.post("/needs/<int:need_id>/merge")
def merge(need_id: int):
    duplicate = db.session.get(Need, need_id) or abort(404)
    form = MergeForm()
    form.into.choices = options((n.id, n.title) for n in open_needs())
    into = db.session.get(Need, form.into.data or 0) if form.validate_on_submit() else None
    if into is None or into.id == duplicate.id or into.merged_into_id is not None:
        flash(_("Choose another need to merge into."), "error")
        return redirect(url_for("backlog.need", need_id=need_id))
    merge_needs(duplicate, into)
    flash(_("Needs merged."), "success")
    return redirect(url_for("backlog.need", need_id=into.id))


@bp.route("/actions/new", methods=["GET", "POST"])
def new_action():
    form = _action_form(needs=request.args.getlist("need", type=int))
    if form.validate_on_submit():
        create_action(form)
        flash(_("Action added."), "success")
        return redirect(url_for("backlog.index"))
    return render_template("backlog/action.html", form=form, action=None)


@bp.route("/actions/<int:action_id>", methods=["GET", "POST"])
def action(action_id: int):
    action = db.session.get(Action, action_id) or abort(404)
    form = _action_form(obj=action, needs=[n.id for n in action.needs])
    if form.validate_on_submit():
        with write_transaction():
            _fill_action(action, form)
        flash(_("Action saved."), "success")
        return redirect(url_for("backlog.index"))
    return render_template("backlog/action.html", form=form, action=action)


@bp.route("/from-session/<int:session_id>", methods=["GET", "POST"])
def from_session(session_id: int):
    """Turn a session's harvest into needs and proposed actions, keeping where each came from."""
    session = db.session.get(Session, session_id) or abort(404)
    candidates: list[BacklogCandidate] = get_method(session.method).backlog_candidates(session)
    form = HarvestForm()
    if form.validate_on_submit():
        chosen = []
        for candidate in candidates:
            key = candidate.key
            if request.form.get(f"take-{key}") != "1":
                continue
            title = request.form.get(f"title-{key}", "").strip()[:200] or candidate.title
            theme = request.form.get(f"theme-{key}", candidate.theme or Theme.OTHER)
            chosen.append((candidate, title, theme if theme in THEME_LABELS else Theme.OTHER))
        created, proposed = harvest(session, chosen)
        flash(_("Needs added to the backlog: %(count)d.", count=created), "success")
        if proposed:
            flash(_("Actions proposed: %(count)d.", count=proposed), "success")
        return redirect(url_for("backlog.index"))
    return render_template(
        "backlog/from_session.html",
        session=session,
        candidates=candidates,
        harvested=harvested_keys(session),
        form=form,
        themes=THEME_LABELS,
        contributions={
            c.id: c
            for c in db.session.scalars(
                select(Contribution).where(Contribution.session_id == session.id)
            )
        },
    )


def session_needs(session: Session) -> list[Need]:
    """Needs that came (at least partly) from ``session``, for its report."""
    return db.session.scalars(
        select(Need)
        .join(NeedSource, NeedSource.need_id == Need.id)
        .where(NeedSource.session_id == session.id)
        .distinct()
        .order_by(Need.priority.desc(), Need.id)
    ).all()


def session_actions(session: Session) -> list[Action]:
    """Actions proposed from ``session``, for its report."""
    return db.session.scalars(
        select(Action)
        .join(ActionSource, ActionSource.action_id == Action.id)
        .where(ActionSource.session_id == session.id)
        .distinct()
        .order_by(Action.id)
    ).all()
