"""Mystery shopping: trained volunteers audit public services and report, compiled per service.

As in the guide's Toynbee Hall audit of immigration advice in East London:
the facilitator prepares the services to visit, a rubric and scenarios with
the lead evaluators, and hands each evaluator a personal link (code
``E-01``, no name stored). In the fieldwork each evaluator, back from a
visit, files a report on the phone: scores with notes, the scenario
followed, what was said, time and expenses, and an ethics concern that
alerts the facilitator at once. The debrief gathers context and agrees
findings; the report shows a scorecard per service and criterion (never
from fewer than three reports), anonymised quotes and the findings, which
go to the backlog as needs and as evidence on the actions they evaluate.

Everything is stored through the plugin contract: the preparation in
``Session.config``, reports, context and findings as contributions with
their fields in ``Contribution.data``. No table of its own.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from flask import Blueprint, Response, abort, current_app
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import DecimalField, RadioField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from palabre import (
    NEED,
    Action,
    BacklogCandidate,
    CleanForm,
    Contribution,
    ContributionKind,
    Method,
    Participant,
    Phase,
    Refused,
    Role,
    RoleLink,
    Session,
    Theme,
    add_by_staff,
    contribute,
    db,
    hookimpl,
    options,
    role_links_of,
    session_actions,
    session_needs,
    session_required,
    update_data,
    visible,
)

from .audit import ITEMS, by_id, default_audit, save_item, text_in
from .scorecard import SMALL_NUMBER, payment_csv, payment_rows, scorecard

SLUG = "mystery_shopping"
#: What a visit report sends besides what was said: one score and note per criterion.
VISIT_FIELDS = (
    "assignment",
    "date",
    "followed",
    "minutes",
    "expenses",
    "ethics",
    "score-*",
    "note-*",
)
EVALUATOR = "evaluator"
PREPARATION, FIELDWORK, DEBRIEF, REPORT, CLOSED = range(5)

MAX_SAID = 4000
MAX_NOTE = 500
MAX_FINDING = 500
MAX_CONTEXT = 1000
MAX_MINUTES = 24 * 60
MAX_EXPENSES = Decimal("10000")
#: How far back a visit may be dated: an audit's fieldwork lasts weeks, not years.
OLDEST_VISIT = timedelta(days=366)
FOLLOWED = ("yes", "partly", "no")
_AMOUNT = re.compile(r"^\d{1,7}([.,]\d{1,2})?$")


class MysteryShoppingConfig(CleanForm):
    scale = RadioField(
        _l("Rubric scale"),
        choices=options([("4", _l("1 to 4")), ("5", _l("1 to 5"))]),
        default="4",
    )
    hourly_rate = DecimalField(
        _l("Evaluators' pay per hour (0 if they are not paid for time)"),
        default=Decimal("15.00"),
        places=2,
        validators=[NumberRange(min=0, max=1000)],
    )
    currency = StringField(
        _l("Currency of pay and expenses"),
        default="EUR",
        validators=[DataRequired(), Length(max=10)],
    )


class MysteryShopping(Method):
    slug = SLUG
    title = _l("Mystery shopping")
    description = _l(
        "Trained volunteers, paid for their time, visit public services as ordinary users "
        "following prepared scenarios, report on their phones, and the results are compiled "
        "per service and criterion for the evaluation."
    )
    config_form = MysteryShoppingConfig
    contribution_kinds = {
        "visit": ContributionKind(
            "visit",
            _l("Visit report"),
            max_length=MAX_SAID,
            grouped=False,
            # Reports name their evaluator's code: only staff hear of them live.
            staff_only=True,
            fields=VISIT_FIELDS,
        ),
        "context": ContributionKind(
            "context",
            _l("Context from an evaluator"),
            max_length=MAX_CONTEXT,
            grouped=False,
            fields=("service",),
        ),
        "finding": ContributionKind(
            "finding", _l("Finding"), max_length=MAX_FINDING, grouped=False
        ),
    }
    facilitator_actions = (
        "service.save",
        "criterion.save",
        "scenario.save",
        "item.remove",
        "assignment.add",
        "assignment.remove",
        "finding.add",
        "finding.agree",
    )
    roles = {EVALUATOR: Role(EVALUATOR, _l("Evaluator"), code_prefix="E")}

    def config_from_form(self, form) -> dict:
        rate = form.hourly_rate.data if form.hourly_rate.data is not None else Decimal("0")
        return {
            **default_audit(int(form.scale.data or 4)),
            "hourly_rate": f"{rate:.2f}",
            "currency": form.currency.data.strip(),
        }

    def phases(self, config: dict) -> list[Phase]:
        return [
            Phase(f"{SLUG}:preparation", _("Preparation")),
            Phase(f"{SLUG}:fieldwork", _("Fieldwork"), allows=frozenset({contribute("visit")})),
            Phase(f"{SLUG}:debrief", _("Debrief"), allows=frozenset({contribute("context")})),
            Phase(f"{SLUG}:report", _("Report")),
            Phase(f"{SLUG}:closed", _("Closed")),
        ]

    # --- evaluators' reports and context -------------------------------------------

    def check_contribution(self, session, participant, kind, data):
        if participant.role != EVALUATOR:
            if participant.role_link_id is not None:
                return _("Your evaluator link was withdrawn: nothing was stored.")
            return _("Only the audit’s evaluators can send this.")
        if kind.name == "finding":
            return _("The facilitator records the findings.")
        return None

    def prepare_contribution(self, session, participant, contribution):
        if contribution.kind == "visit":
            contribution.data = read_visit(session, participant, contribution.data or {})
        elif contribution.kind == "context":
            service = str((contribution.data or {}).get("service", ""))
            contribution.data = {"service": service} if service in _services(session) else {}

    # --- the facilitator's preparation and debrief -----------------------------------

    def run_action(self, session, name, data):
        stage = session.phase_index
        config = session.config
        if name in ("service.save", "scenario.save", "criterion.save"):
            item_type = name.split(".")[0]
            if item_type == "criterion" and (stage > PREPARATION or _reports(session)):
                raise Refused(_("The rubric is fixed once fieldwork has started."))
            if stage > FIELDWORK:
                raise Refused(_("The audit’s preparation is closed once the debrief starts."))
            session.config = save_item(config, session.languages, item_type, data)
        elif name == "item.remove":
            session.config = self._removed(session, data)
        elif name == "assignment.add":
            if stage > FIELDWORK:
                raise Refused(_("The audit’s preparation is closed once the debrief starts."))
            session.config = _assigned(session, data)
        elif name == "assignment.remove":
            wanted = data.get("id", "")
            if any(v.data.get("assignment") == wanted for v in _reports(session)):
                raise Refused(_("A report was filed for this visit: it stays."))
            assignments = [a for a in config.get("assignments", []) if a["id"] != wanted]
            session.config = {**config, "assignments": assignments}
        elif name == "finding.add":
            if stage not in (DEBRIEF, REPORT):
                raise Refused(_("Findings are agreed in the debrief."))
            add_by_staff(
                session, "finding", str(data.get("body", "")), _finding_data(session, data)
            )
        elif name == "finding.agree":
            if stage not in (DEBRIEF, REPORT):
                raise Refused(_("Findings are agreed in the debrief."))
            finding = db.session.get(Contribution, _int(data.get("id")))
            if finding is None or finding.session_id != session.id or finding.kind != "finding":
                raise Refused(_("This finding does not exist."))
            update_data(session, finding, agreed=str(data.get("agreed", "1")) == "1")
        return []

    def _removed(self, session, data) -> dict:
        """``session.config`` without the item ``data`` names, if nothing depends on it."""
        config = session.config
        item_type = str(data.get("type", ""))
        if item_type not in ITEMS:
            raise Refused(_("This item is not part of the audit any more. Reload the page."))
        key = ITEMS[item_type][0]
        wanted = data.get("id", "")
        if item_type == "criterion" and (session.phase_index > PREPARATION or _reports(session)):
            raise Refused(_("The rubric is fixed once fieldwork has started."))
        if item_type == "criterion" and len(config.get("criteria", [])) <= 1:
            raise Refused(_("Keep at least one criterion in the rubric."))
        if item_type in ("service", "scenario") and any(
            a[item_type] == wanted for a in config.get("assignments", [])
        ):
            raise Refused(_("Visits are assigned to it: remove those assignments first."))
        return {**config, key: [item for item in config.get(key, []) if item["id"] != wanted]}

    # --- views ---------------------------------------------------------------------

    def view_context(self, session, view, participant=None):
        config = session.config
        language = participant.language if participant else str(get_locale() or "en")
        context = {
            "tr": lambda texts: text_in(texts, language, session.languages),
            "services": config.get("services", []),
            "criteria": config.get("criteria", []),
            "scenarios": config.get("scenarios", []),
            "scale": range(1, config.get("scale", 4) + 1),
            "service_by_id": by_id(config, "services"),
            "criterion_by_id": by_id(config, "criteria"),
            "scenario_by_id": by_id(config, "scenarios"),
            "findings": visible(session, kind="finding"),
            "contexts": visible(session, kind="context")[::-1],
        }
        if view == "participant":
            mine = _mine(session, participant)
            reported = {v.data.get("assignment") for v in _reports(session, participant)}
            context.update(
                is_evaluator=participant.role == EVALUATOR,
                link_withdrawn=participant.role != EVALUATOR
                and participant.role_link_id is not None,
                my_assignments=mine,
                reported=reported,
                today=date.today().isoformat(),
                followed_choices=_followed_choices(),
            )
            return context
        reports = _reports(session, include_hidden=view == "facilitator")
        context.update(
            assignments=config.get("assignments", []),
            reports=reports[::-1],
            reported={v.data.get("assignment") for v in reports if not v.hidden},
            concerns=[v for v in reports if v.data.get("ethics")][::-1],
            evaluator_links=role_links_of(session, EVALUATOR),
            public_address=bool(current_app.config.get("BASE_URL")),
            scorecard=scorecard(
                config.get("services", []),
                config.get("criteria", []),
                [v for v in reports if not v.hidden],
                config.get("scale", 4),
            ),
            small_number=SMALL_NUMBER,
            actions=db.session.scalars(select(Action).order_by(Action.id)).all(),
            followed_labels=dict(_followed_choices()),
        )
        return context

    def raw_answers(self, session, *, leave_out=()):
        """What was said at each service, then the debrief's findings and context, as
        written; never an evaluator's code, date or private notes."""
        services = by_id(session.config, "services")
        language = str(get_locale() or "en")
        said: dict[str, list[str]] = {}
        for visit in _reports(session):
            if visit.body.strip():
                said.setdefault(visit.data.get("service") or "", []).append(visit.body)
        # By service, in the audit's order of services; a report's code and date stay off.
        groups = [
            (
                _(
                    "Said at %(service)s",
                    service=text_in(services[sid].get("name"), language, session.languages),
                ),
                said[sid],
            )
            for sid in services
            if sid in said
        ]
        others = [text for sid, texts in said.items() if sid not in services for text in texts]
        if others:
            groups.append((_("Said at other services"), others))
        for kind in ("finding", "context"):
            texts = [c.body for c in visible(session, kind=kind) if c.body.strip()]
            if texts and kind not in leave_out:
                groups.append((str(self.contribution_kinds[kind].title), texts))
        return groups

    def report_context(self, session):
        context = self.view_context(session, "report")
        visits = [v for v in context["reports"] if not v.hidden][::-1]
        context.update(
            agreed=[f for f in context["findings"] if f.data.get("agreed")],
            needs=session_needs(session),
            backlog_actions=session_actions(session),
            visit_total=len(visits),
            evaluator_total=len({v.data.get("code") for v in visits}),
            concern_total=sum(1 for v in visits if v.data.get("ethics")),
        )
        return context

    def backlog_candidates(self, session):
        services = by_id(session.config, "services")
        criteria = by_id(session.config, "criteria")
        languages = session.languages
        language = str(get_locale() or "en")
        candidates = []
        for finding in visible(session, kind="finding"):
            if not finding.data.get("agreed"):
                continue
            about = [
                text_in(
                    services.get(finding.data.get("service"), {}).get("name"), language, languages
                ),
                text_in(
                    criteria.get(finding.data.get("criterion"), {}).get("title"),
                    language,
                    languages,
                ),
            ]
            description = _(
                "Finding of the mystery-shopping audit “%(audit)s”.", audit=session.title
            )
            if any(about):
                description += " " + _("About: %(about)s.", about=" · ".join(a for a in about if a))
            action = db.session.get(Action, finding.data.get("action") or 0)
            if action is not None:
                # The backlog keeps no evaluation entries on actions yet: the
                # evidence is named here, for the facilitator to record.
                description += " " + _(
                    "Evaluation evidence for the action “%(action)s” (no. %(id)d).",
                    action=action.title,
                    id=action.id,
                )
            candidates.append(
                BacklogCandidate(
                    title=finding.body[:200],
                    description=description,
                    theme=Theme.SERVICES,
                    contribution_ids=[finding.id],
                    kind=NEED,
                )
            )
        return candidates


# --- a visit report, checked --------------------------------------------------------


def read_visit(session: Session, participant, fields: dict) -> dict:
    """The ``data`` of a visit report from what the evaluator's phone sent, checked.

    Raises :class:`Refused`, in the evaluator's language, for a visit not
    assigned to this evaluator, one already reported, a date that is not a
    day of the fieldwork, a score off the scale, a note too long, or time
    and expenses that are not plausible amounts.
    """
    config = session.config
    assignment = next(
        (
            a
            for a in config.get("assignments", [])
            if a["id"] == fields.get("assignment") and a["link"] == participant.role_link_id
        ),
        None,
    )
    if assignment is None:
        raise Refused(_("This visit is not assigned to you. Choose one of your visits."))
    if assignment["service"] not in _services(session) or assignment["scenario"] not in by_id(
        config, "scenarios"
    ):
        raise Refused(_("This visit is not assigned to you. Choose one of your visits."))
    if assignment["id"] in _reported_through(session, participant.role_link_id):
        raise Refused(_("The report of this visit was already sent. Thank you!"))
    try:
        visited = date.fromisoformat(str(fields.get("date", "")))
    except ValueError:
        raise Refused(_("Give the date of the visit.")) from None
    today = date.today()
    if not today - OLDEST_VISIT <= visited <= today + timedelta(days=1):
        raise Refused(_("Give the date of the visit: it cannot be in the future."))
    top = config.get("scale", 4)
    scores, notes = {}, {}
    for criterion in config.get("criteria", []):
        title = text_in(criterion["title"], participant.language, session.languages)
        raw = str(fields.get(f"score-{criterion['id']}", "")).strip()
        if raw:
            value = _int(raw)
            if not 1 <= value <= top:
                raise Refused(
                    _("Give “%(criterion)s” a score from 1 to %(top)d.", criterion=title, top=top)
                )
            scores[criterion["id"]] = value
        note = str(fields.get(f"note-{criterion['id']}", "")).strip()
        if len(note) > MAX_NOTE:
            raise Refused(
                ngettext(
                    "The note on “%(criterion)s” is too long: %(num)d character at most.",
                    "The note on “%(criterion)s” is too long: %(num)d characters at most.",
                    MAX_NOTE,
                    criterion=title,
                )
            )
        if note:
            notes[criterion["id"]] = note
    followed = fields.get("followed", "")
    if followed not in FOLLOWED:
        raise Refused(_("Say whether you could follow the scenario."))
    minutes = _int(str(fields.get("minutes", "0")).strip() or "0")
    if not 0 <= minutes <= MAX_MINUTES:
        raise Refused(_("Give the time the visit took, in minutes (at most a day)."))
    return {
        "assignment": assignment["id"],
        "service": assignment["service"],
        "scenario": assignment["scenario"],
        "code": participant.role_link.code if participant.role_link else "",
        "date": visited.isoformat(),
        "scores": scores,
        "notes": notes,
        "followed": followed,
        "ethics": str(fields.get("ethics", "")) in ("1", "on", "yes", "true"),
        "minutes": minutes,
        "expenses": f"{_amount(fields.get('expenses', '')):.2f}",
    }


def _amount(value) -> Decimal:
    text = str(value or "0").strip().replace(",", ".") or "0"
    if not _AMOUNT.match(text):
        raise Refused(_("Give the expenses as an amount, such as 4.50."))
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise Refused(_("Give the expenses as an amount, such as 4.50.")) from None
    if amount > MAX_EXPENSES:
        raise Refused(_("Expenses of more than %(max)s need the facilitator.", max=MAX_EXPENSES))
    return amount


def _followed_choices() -> list[tuple[str, str]]:
    return [("yes", _("Yes")), ("partly", _("Partly")), ("no", _("No"))]


def _int(value) -> int:
    from palabre import parse_int

    return parse_int(value, default=-1)


# --- queries ------------------------------------------------------------------------


def _services(session) -> dict[str, dict]:
    return by_id(session.config, "services")


def _reports(session, participant=None, include_hidden=False) -> list[Contribution]:
    query = select(Contribution).where(
        Contribution.session_id == session.id, Contribution.kind == "visit"
    )
    if participant is not None:
        query = query.where(Contribution.participant_id == participant.id)
    if not include_hidden:
        query = query.where(Contribution.hidden.is_(False))
    return db.session.scalars(query.order_by(Contribution.id)).all()


def _reported_through(session, link_id: int) -> set[str]:
    """The visits reported through one evaluator link, whichever phone opened it.

    Read with the write lock held, for every report: only that link's reports, not the audit's.
    """
    through_link = select(Participant.id).where(
        Participant.session_id == session.id, Participant.role_link_id == link_id
    )
    rows = db.session.scalars(
        select(Contribution.data).where(
            Contribution.session_id == session.id,
            Contribution.kind == "visit",
            Contribution.hidden.is_(False),
            Contribution.participant_id.in_(through_link),
        )
    )
    return {data.get("assignment") for data in rows}


def _mine(session, participant) -> list[dict]:
    """The evaluator's assignments, each with its service and scenario."""
    if participant.role != EVALUATOR:
        return []
    services, scenarios = _services(session), by_id(session.config, "scenarios")
    return [
        {**a, "service_item": services[a["service"]], "scenario_item": scenarios[a["scenario"]]}
        for a in session.config.get("assignments", [])
        if a["link"] == participant.role_link_id
        and a["service"] in services
        and a["scenario"] in scenarios
    ]


def _assigned(session, data) -> dict:
    """``session.config`` with one more visit: an evaluator's link, a service, a scenario."""
    config = session.config
    link = db.session.get(RoleLink, _int(data.get("link")))
    if link is None or link.session_id != session.id or link.role != EVALUATOR or not link.active:
        raise Refused(_("Choose an evaluator whose link is active."))
    service, scenario = str(data.get("service", "")), str(data.get("scenario", ""))
    if service not in _services(session) or scenario not in by_id(config, "scenarios"):
        raise Refused(_("Choose a service and a scenario of this audit."))
    assignments = list(config.get("assignments", []))
    if any(
        (a["link"], a["service"], a["scenario"]) == (link.id, service, scenario)
        for a in assignments
    ):
        raise Refused(_("This evaluator already has this visit."))
    if len(assignments) >= 300:
        raise Refused(_("At most %(n)d of these.", n=300))
    number = config.get("next_id", 1)
    assignments.append(
        {
            "id": f"a{number}",
            "link": link.id,
            "code": link.code,
            "service": service,
            "scenario": scenario,
        }
    )
    return {**config, "assignments": assignments, "next_id": number + 1}


def _finding_data(session, data) -> dict:
    service = str(data.get("service", ""))
    criterion = str(data.get("criterion", ""))
    action = db.session.get(Action, _int(data.get("action"))) if data.get("action") else None
    return {
        "service": service if service in _services(session) else "",
        "criterion": criterion if criterion in by_id(session.config, "criteria") else "",
        "action": action.id if action else None,
        "action_title": action.title if action else "",
        "agreed": False,
    }


# --- the payment sheet and the evaluators' scripts ------------------------------------------

bp = Blueprint(
    "mystery_shopping",
    __name__,
    url_prefix="/mystery-shopping",
    static_folder="static",
    template_folder="templates",
)


@bp.get("/sessions/<int:session_id>/payments.csv")
@session_required
def payments(session_id: int):
    """The payment sheet: time and expenses per evaluator code, for the finance office."""
    session = db.session.get(Session, session_id)
    if session is None or session.method != SLUG:
        abort(404)
    rate = Decimal(session.config.get("hourly_rate", "0"))
    currency = session.config.get("currency", "")
    rows = payment_rows(_reports(session), rate)
    header = [
        _("Evaluator code"),
        _("Visits"),
        _("Minutes"),
        _("Expenses"),
        _("Pay for time"),
        _("Total"),
        _("Currency"),
    ]
    filename = f"payments-{session.code}.csv"
    return Response(
        payment_csv(rows, header, currency),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@hookimpl
def register_methods():
    return [MysteryShopping]


@hookimpl
def register_blueprints(app):
    return [bp]
