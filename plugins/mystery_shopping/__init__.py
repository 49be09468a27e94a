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

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_babel import force_locale, get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms import DecimalField, RadioField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from palabre import (
    ACTION,
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
    Shown,
    Theme,
    add_by_staff,
    contribute,
    db,
    hookimpl,
    options,
    parse_int,
    record_evaluation,
    role_links_of,
    session_actions,
    session_evaluations,
    session_needs,
    session_required,
    update_data,
    visible,
    withdraw_evaluation,
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
#: What an agreed finding is proposed as in the backlog's harvest, besides its evaluation entries.
PROPOSED_AS = (NEED, ACTION, "none")
#: The most actions one finding may be evidence for.
MAX_EVALUATED = 50
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
    audit_phrases = {
        "mystery_shopping.payments": _l("Downloaded the payment sheet"),
        # What each of the facilitator’s actions did.
        "service.save": _l("Added or changed a service to audit"),
        "criterion.save": _l("Added or changed a criterion of the rubric"),
        "scenario.save": _l("Added or changed a scenario"),
        "item.remove": _l("Removed a service, a criterion or a scenario"),
        "assignment.add": _l("Assigned a visit to an evaluator"),
        "assignment.remove": _l("Removed an assigned visit"),
        "finding.add": _l("Added a finding"),
        "finding.agree": _l("Marked a finding as agreed, or undid it"),
        "finding.link": _l("Linked a finding to the plan’s actions"),
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
        "finding.link",
    )
    # Evaluators open their links on their visits, away from the venue.
    roles = {EVALUATOR: Role(EVALUATOR, _l("Evaluator"), code_prefix="E", away=True)}

    def config_from_form(self, form) -> dict:
        rate = form.hourly_rate.data if form.hourly_rate.data is not None else Decimal("0")
        return {
            **default_audit(int(form.scale.data or 4)),
            "hourly_rate": f"{rate:.2f}",
            "currency": form.currency.data.strip(),
        }

    def form_data(self, session) -> dict:
        config = session.config
        return {
            "scale": str(config.get("scale", 4)),
            "hourly_rate": Decimal(config.get("hourly_rate", "0")),
            "currency": config.get("currency", "EUR"),
        }

    def edited_config(self, session, form) -> dict:
        """The pay and currency may change at any time (the payment sheet follows); the scale
        only while no report scored against it, as the rubric."""
        edited = self.config_from_form(form)
        scale = edited["scale"]
        if scale != session.config.get("scale") and (
            session.phase_index > PREPARATION or _reports(session)
        ):
            raise Refused(_("The rubric is fixed once fieldwork has started."))
        return {
            **session.config,
            "scale": scale,
            "hourly_rate": edited["hourly_rate"],
            "currency": edited["currency"],
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
            _check_debrief(stage)
            add_by_staff(
                session,
                "finding",
                str(data.get("body", "")),
                {**_finding_about(session, data), **_finding_links(data), "agreed": False},
            )
        elif name == "finding.agree":
            _check_debrief(stage)
            finding = _finding(session, data)
            agreed = str(data.get("agreed", "1")) == "1"
            update_data(session, finding, agreed=agreed)
            _evaluate(session, finding)
        elif name == "finding.link":
            _check_debrief(stage)
            finding = _finding(session, data)
            before = set(finding.data.get("actions", []))
            update_data(session, finding, **_finding_links(data, finding.data))
            _evaluate(session, finding, withdrawn=before - set(finding.data["actions"]))
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
        # A phone follows the language it shows now (it may switch after joining).
        language = str(get_locale() or "en")
        context = {
            "tr": lambda texts: text_in(texts, language, session.languages),
            # The language of what ``tr`` gives, for ``lang``: a screen reader's voice.
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
            followed_labels=dict(_followed_choices()),
            evaluations=session_evaluations(session),
        )
        if view == "facilitator":
            context.update(
                actions=_actions_to_evaluate(),
                concerning=_concerning,
                proposed_as=_proposed_as_choices(),
            )
        return context

    def raw_answers(self, session, *, leave_out=()):
        """What was said at each service, then the evaluators' context from the debrief, as
        written and in the language each was written in; never an evaluator's code, date or
        private notes.

        The findings are not repeated here: the agreed ones are the report itself, and one
        the group did not agree must not reach the audited services.
        """
        services = by_id(session.config, "services")
        language = str(get_locale() or "en")
        said: dict[str, list[Shown]] = {}
        for visit in _reports(session):
            if visit.body.strip():
                written = Shown(visit.body, visit.language or "")
                said.setdefault(visit.data.get("service") or "", []).append(written)
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
        texts = [
            Shown(c.body, c.language or "")
            for c in visible(session, kind="context")
            if c.body.strip()
        ]
        if texts and "context" not in leave_out:
            groups.append((str(self.contribution_kinds["context"].title), texts))
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
        """Each agreed finding as the need or action the debrief proposed it as.

        Its evaluation entries on existing actions are recorded when it is
        agreed (see :func:`_evaluate`), not here.
        """
        candidates = []
        for finding in visible(session, kind="finding"):
            proposed = finding.data.get("propose", NEED)
            if not finding.data.get("agreed") or proposed not in (NEED, ACTION):
                continue
            description = _(
                "Finding of the mystery-shopping audit “%(audit)s”.", audit=session.title
            )
            about = _about(session, finding)
            if about:
                description += " " + _("About: %(about)s.", about=about)
            candidates.append(
                BacklogCandidate(
                    title=finding.body[:200],
                    description=description,
                    theme=Theme.SERVICES,
                    contribution_ids=[finding.id],
                    kind=proposed,
                )
            )
        return candidates


# --- a visit report, checked --------------------------------------------------------


def read_visit(session: Session, participant, fields: dict) -> dict:
    """The ``data`` of a visit report from what the evaluator's phone sent, checked.

    Raises :class:`Refused`, in the evaluator's language, for a visit not
    assigned to this evaluator or one already reported; and, naming every
    field at fault with what is wrong with it (``Refused.fields``), for a
    date that is not a day of the fieldwork, a score off the scale, a note
    too long, an answer missing on the scenario, and time and expenses that
    are not plausible amounts.
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
    wrong: dict[str, str] = {}
    visited = _visit_date(fields.get("date"), wrong)
    top = config.get("scale", 4)
    scores, notes = {}, {}
    for criterion in config.get("criteria", []):
        title = text_in(criterion["title"], participant.language, session.languages)
        score_field, note_field = f"score-{criterion['id']}", f"note-{criterion['id']}"
        raw = str(fields.get(score_field, "")).strip()
        if raw:
            value = _int(raw)
            if 1 <= value <= top:
                scores[criterion["id"]] = value
            else:
                wrong[score_field] = _(
                    "Give “%(criterion)s” a score from 1 to %(top)d.", criterion=title, top=top
                )
        note = str(fields.get(note_field, "")).strip()
        if len(note) > MAX_NOTE:
            wrong[note_field] = ngettext(
                "The note on “%(criterion)s” is too long: %(num)d character at most.",
                "The note on “%(criterion)s” is too long: %(num)d characters at most.",
                MAX_NOTE,
                criterion=title,
            )
        elif note:
            notes[criterion["id"]] = note
    followed = fields.get("followed", "")
    if followed not in FOLLOWED:
        wrong["followed"] = _("Say whether you could follow the scenario.")
    minutes = _int(str(fields.get("minutes", "0")).strip() or "0")
    if not 0 <= minutes <= MAX_MINUTES:
        wrong["minutes"] = _("Give the time the visit took, in minutes (at most a day).")
    expenses = _amount(fields.get("expenses", ""), wrong)
    if wrong:
        raise Refused(_not_sent(wrong), fields=wrong)
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
        "expenses": f"{expenses:.2f}",
    }


def _not_sent(wrong: dict[str, str]) -> str:
    """What a refused report's sender reads first: the one problem, or how many are marked."""
    if len(wrong) == 1:
        return next(iter(wrong.values()))
    return ngettext(
        "The report was not sent: %(num)d answer needs correcting, marked below.",
        "The report was not sent: %(num)d answers need correcting, marked below.",
        len(wrong),
    )


def _visit_date(value, wrong: dict[str, str]) -> date:
    """The day of the visit, or today with the problem noted in ``wrong["date"]``."""
    today = date.today()
    try:
        visited = date.fromisoformat(str(value or ""))
    except ValueError:
        wrong["date"] = _("Give the date of the visit.")
        return today
    if not today - OLDEST_VISIT <= visited <= today + timedelta(days=1):
        wrong["date"] = _("Give the date of the visit: it cannot be in the future.")
    return visited


def _amount(value, wrong: dict[str, str]) -> Decimal:
    """The expenses sent, or 0 with the problem noted in ``wrong["expenses"]``."""
    text = str(value or "0").strip().replace(",", ".") or "0"
    try:
        amount = Decimal(text) if _AMOUNT.match(text) else None
    except InvalidOperation:
        amount = None
    if amount is None:
        wrong["expenses"] = _("Give the expenses as an amount, such as 4.50.")
        return Decimal("0")
    if amount > MAX_EXPENSES:
        wrong["expenses"] = _(
            "Expenses of more than %(max)s need the facilitator.", max=MAX_EXPENSES
        )
    return amount


def _followed_choices() -> list[tuple[str, str]]:
    return [("yes", _("Yes")), ("partly", _("Partly")), ("no", _("No"))]


def _int(value) -> int:
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


def _check_debrief(stage: int) -> None:
    if stage not in (DEBRIEF, REPORT):
        raise Refused(_("Findings are agreed in the debrief."))


def _finding(session, data) -> Contribution:
    finding = db.session.get(Contribution, _int(data.get("id")))
    if finding is None or finding.session_id != session.id or finding.kind != "finding":
        raise Refused(_("This finding does not exist."))
    return finding


def _finding_about(session, data) -> dict:
    """The service and criterion a new finding is about (``""``: all, or none in particular)."""
    service = str(data.get("service", ""))
    criterion = str(data.get("criterion", ""))
    return {
        "service": service if service in _services(session) else "",
        "criterion": criterion if criterion in by_id(session.config, "criteria") else "",
    }


def _finding_links(data, before: dict | None = None) -> dict:
    """The actions a finding is evidence for, and what it is proposed as, from a form.

    ``actions`` comes as one id or a list (check boxes; none checked: none);
    each must be an action of the backlog, else the whole is refused. What
    it is proposed as stays as ``before`` when not sent.
    """
    sent = data.get("actions", [])
    sent = sent if isinstance(sent, list) else [sent]
    ids = []
    for raw in sent:
        if raw in ("", None):
            continue
        action_id = _int(raw)
        if db.session.get(Action, action_id) is None:
            raise Refused(_("This action is not in the backlog any more. Reload the page."))
        if action_id not in ids:
            ids.append(action_id)
    if len(ids) > MAX_EVALUATED:
        raise Refused(_("At most %(n)d of these.", n=MAX_EVALUATED))
    proposed = str(data.get("propose", (before or {}).get("propose", NEED)))
    return {"actions": ids, "propose": proposed if proposed in PROPOSED_AS else NEED}


def _evaluate(session, finding: Contribution, withdrawn: set[int] = frozenset()) -> None:
    """Keep a finding's evaluation entries in step with it: one per action it is linked to
    while it is agreed, none otherwise (and none on the ``withdrawn`` actions).

    The entry names the audit (its method and session) and says what was
    found and about which service: never an evaluator's code. It is worded
    in the audit's first language, as its services and rubric are, whoever
    records it: the backlog and the council's outputs read one text.
    """
    agreed = bool(finding.data.get("agreed"))
    linked = set(finding.data.get("actions", []))
    language = (session.languages or ["en"])[0]
    with force_locale(language):
        method = _("Mystery-shopping audit “%(audit)s”", audit=session.title)
        body = finding.body
        about = _about(session, finding, language)
        if about:
            body += " — " + _("About: %(about)s.", about=about)
    for action_id in linked | set(withdrawn):
        action = db.session.get(Action, action_id)
        if action is None:
            continue
        if agreed and action_id in linked:
            record_evaluation(action, finding, method=method, body=body)
        else:
            withdraw_evaluation(action, finding)


def _about(session, finding: Contribution, language: str | None = None) -> str:
    """The service and criterion a finding is about, in ``language`` (default: the reader's)."""
    language = language or str(get_locale() or "en")
    service = _services(session).get(finding.data.get("service"), {})
    criterion = by_id(session.config, "criteria").get(finding.data.get("criterion"), {})
    names = [
        text_in(service.get("name"), language, session.languages),
        text_in(criterion.get("title"), language, session.languages),
    ]
    return " · ".join(name for name in names if name)


def _actions_to_evaluate() -> list[Action]:
    """The backlog's actions a finding may be evidence for: all but those dropped."""
    return db.session.scalars(
        select(Action)
        .where(Action.status != "dropped")
        .order_by(Action.id)
        .options(selectinload(Action.owner), selectinload(Action.partners))
    ).all()


def _concerning(action: Action, service: dict | None) -> bool:
    """Whether ``action`` names ``service`` (in any language): its title, objective, owner
    or partners mention it, so the facilitator sees it first among the actions to evaluate."""
    if not service:
        return False
    names = {name.casefold() for name in (service.get("name") or {}).values() if name}
    said = " ".join(
        [
            action.title,
            action.objective or "",
            action.owner.name if action.owner else "",
            *(partner.name for partner in action.partners),
        ]
    ).casefold()
    return any(name in said for name in names)


def _proposed_as_choices() -> list[tuple[str, str]]:
    return [
        (NEED, _("a new need")),
        (ACTION, _("a new action")),
        ("none", _("nothing new: evidence only")),
    ]


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


#: The most visit reports one request of the run screen renders (run.js asks in batches).
MAX_VISITS_ASKED = 100


@bp.get("/sessions/<int:session_id>/visits")
@session_required
def visits(session_id: int):
    """Visit reports as the run screen's items, for ``?ids=3,4,5`` (each as it arrived live).

    The same items the page shows when loaded, so a report arriving live is
    complete at once: its service, scenario, scores, notes, time and expenses,
    and its ethics concern. Ids that are not this audit's visit reports are
    left out.
    """
    session = db.session.get(Session, session_id)
    if session is None or session.method != SLUG:
        abort(404)
    wanted = {
        parse_int(raw, default=-1)
        for raw in request.args.get("ids", "").split(",")[:MAX_VISITS_ASKED]
    }
    reports = db.session.scalars(
        select(Contribution)
        .where(
            Contribution.session_id == session.id,
            Contribution.kind == "visit",
            Contribution.id.in_(wanted),
        )
        .order_by(Contribution.id)
    ).all()
    context = {**MysteryShopping().view_context(session, "visits"), "reports": reports}
    return render_template("mystery_shopping/visits.html", session=session, **context)


@hookimpl
def register_methods():
    return [MysteryShopping]


@hookimpl
def register_blueprints(app):
    return [bp]


@hookimpl
def import_session(session, ids):
    """An imported audit: visits given to the new evaluator links, findings to the new actions.

    A finding linked to actions not in the file keeps only those that are.
    """
    if session.method != MysteryShopping.slug:
        return None
    assignments = [
        {**a, "link": ids.role_link(a.get("link"))} for a in session.config.get("assignments", [])
    ]
    session.config = {**session.config, "assignments": assignments}
    findings = db.session.scalars(
        select(Contribution).where(
            Contribution.session_id == session.id, Contribution.kind == "finding"
        )
    )
    for finding in findings:
        # The actions it is evidence for: those in the file, by their new ids.
        actions = [ids.action(a) for a in finding.data.get("actions") or []]
        finding.data = {**finding.data, "actions": [a for a in actions if a is not None]}
    return None
