"""A city's backlog after a year of sessions, for testing and measuring printouts.

:func:`fill_backlog` writes, in the current app's database, closed sessions
of the four methods with transcribed contributions, needs that came from
them (with their provenance and their support by kind: people, dots,
ratings; some typed in by the team, a few merged away), a register of
stakeholders, and actions addressing them with an owner and partners from
it, budgets (an amount in a currency, help in kind, or both), dates,
indicators, statuses, monitoring updates and evaluations. Texts mix English,
French and Arabic, short and long, as a real backlog does. The same ``seed`` gives the same backlog.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..extensions import db
from ..models import (
    Action,
    ActionSource,
    ActionStatus,
    ActionUpdate,
    Contribution,
    Need,
    NeedSource,
    Session,
    Stakeholder,
    Status,
    Theme,
    UpdateKind,
)

METHODS = ("world_cafe", "forum_theatre", "citizen_dialogue", "mystery_shopping")
SUBJECTS = [
    "Language classes in the evening, with childcare",
    "A first-flat rental guarantee for newcomers",
    "Interpreters at the health centre",
    "Recognition of diplomas within months, not years",
    "Forms at the town hall in more languages",
    "A buses timetable that fits late shifts",
    "Mentors who arrived a few years earlier",
    "A women's group with someone to look after the children",
    "Information at the Saturday market",
    "Landlords who refuse foreign names",
    "Homework help at the library",
    "Sport clubs open to newcomers' children",
    "Cours de français le soir, avec garde d'enfants",
    "Un guichet unique pour les démarches",
    "دروس اللغة في المساء مع رعاية الأطفال",
    "مترجمون في المركز الصحي",
]
DETAILS = [
    "Raised at several tables; people said they learn of classes after they are full.",
    "Families wait months for a first flat and pay twice the rent meanwhile.",
    "Children translate for their parents at the doctor's, which nobody wants.",
    "Nurses and engineers clean offices while their papers are checked.",
    "Les personnes interrogées disent ne pas savoir à qui s'adresser.",
    "قال المشاركون إنهم لا يعرفون أين يجدون المعلومات.",
    "",
]
#: The stakeholder register: (name, kind, interest, influence).
STAKEHOLDERS = [
    ("Housing department", "city", 4, 5),
    ("Social services", "city", 5, 4),
    ("Health centre", "public", 3, 3),
    ("Adult education service", "public", 4, 3),
    ("Library network", "city", 3, 2),
    ("Migrant associations' council", "migrants", 5, 2),
    ("Service de l'emploi", "public", 3, 4),
    ("جمعية النساء العربيات", "migrants", 5, 1),
]
#: Indicators: (what is measured, unit, baseline, target).
INDICATORS = [
    ("Families reached", "families", 0, 50),
    ("People trained", "people", 10, 120),
    ("Waiting time", "weeks", 26, 8),
    ("", "", None, None),
]
#: Budgets: (amount, currency, in kind).
BUDGETS = [
    (120000, "EUR", ""),
    (None, "", "2 staff for a year"),
    (None, "", "Rooms lent by the library"),
    (15000, "EUR", "Volunteers from the associations"),
    (None, "", ""),
]
EVALUATION_METHODS = ["Mystery shopping", "Survey of families", "Focus group"]
PROGRESS = [
    "First meeting held with the partners.",
    "Budget approved by the council.",
    "Twelve families supported so far.",
    "Delayed: the room is not available before March.",
    "تم تدريب عشرة متطوعين.",
]


@dataclass
class BacklogSize:
    """What :func:`fill_backlog` wrote."""

    sessions: int
    needs: int
    actions: int
    updates: int
    stakeholders: int


def fill_backlog(
    needs: int = 1000, actions: int = 300, sessions: int = 24, seed: int = 0
) -> BacklogSize:
    """Write and commit ``needs`` open needs and ``actions`` actions; say what was written.

    Call it inside an app context, on a database with the tables created.
    """
    rng = random.Random(seed)
    started = datetime(2025, 3, 1, 18, 0)
    made_sessions = []
    for number in range(sessions):
        session = Session(
            method=METHODS[number % len(METHODS)],
            title=f"{rng.choice(['Café', 'Forum', 'Dialogue', 'Audit'])} {number + 1}: "
            + rng.choice(["Delicias", "Las Fuentes", "Actur", "Centro", "Torrero", "Oliver"]),
            code=f"B{seed % 1000:03d}{number:03d}",  # unique per seed
            languages=["en", "fr", "ar"],
            status=Status.CLOSED,
            started_at=started + timedelta(days=14 * number),
            closed_at=started + timedelta(days=14 * number, hours=2),
        )
        made_sessions.append(session)
    db.session.add_all(made_sessions)
    db.session.flush()

    contributions = []
    for session in made_sessions:
        for index in range(needs // sessions + 5):
            contributions.append(
                Contribution(
                    session_id=session.id,
                    client_id=uuid.uuid4().hex,
                    kind="note",
                    phase_index=1,
                    body=f"{rng.choice(SUBJECTS)} ({index})",
                    transcribed=True,
                )
            )
    db.session.add_all(contributions)
    db.session.flush()

    themes = list(Theme)
    made_needs = []
    for number in range(needs):
        need = Need(
            title=f"{rng.choice(SUBJECTS)} #{number + 1}",
            description=" ".join(rng.sample(DETAILS, rng.randint(0, 2))).strip(),
            theme=rng.choices(themes, weights=[9, 7, 8, 6, 9, 4, 5, 6, 2])[0],
            created_at=started + timedelta(days=rng.randint(0, 360)),
        )
        if rng.random() < 0.9:  # the others were typed in by the team
            need.sources = [
                NeedSource(
                    session_id=c.session_id,
                    contribution_id=c.id,
                    people=rng.choice([0, 1, 1, 2, 3, 6]),
                    dots=rng.choice([0, 0, 1, 2, 3, 5, 8]),
                    **_rating(rng),
                )
                for c in rng.sample(contributions, rng.randint(1, 3))
            ]
        made_needs.append(need)
    # A few duplicates merged away: printed nowhere, except through their target.
    duplicates = [Need(title=f"Duplicate {n}", theme=Theme.OTHER) for n in range(needs // 50)]
    db.session.add_all(made_needs + duplicates)
    db.session.flush()
    for duplicate in duplicates:
        duplicate.merged_into_id = rng.choice(made_needs).id

    stakeholders = [
        Stakeholder(
            name=name,
            kind=kind,
            interest=interest,
            influence=influence,
            already_involved=rng.random() < 0.5,
        )
        for name, kind, interest, influence in STAKEHOLDERS
    ]
    db.session.add_all(stakeholders)

    statuses = list(ActionStatus)
    updates = 0
    for number in range(actions):
        indicator, unit, baseline, target = rng.choice(INDICATORS)
        amount, currency, in_kind = rng.choice(BUDGETS)
        start = date(2026, rng.randint(1, 12), 1)
        action = Action(
            title=f"{rng.choice(SUBJECTS)}: action {number + 1}",
            objective=rng.choice(DETAILS) or "Reach the families who asked for it.",
            indicator=indicator,
            indicator_unit=unit,
            indicator_baseline=baseline,
            indicator_target=target,
            owner=rng.choice([*stakeholders, None]),
            partners=rng.sample(stakeholders, rng.randint(0, 2)),
            budget_amount=amount,
            budget_currency=currency,
            in_kind=in_kind,
            start_date=start if rng.random() < 0.8 else None,
            end_date=start + timedelta(days=rng.choice([90, 180, 365]))
            if rng.random() < 0.7
            else None,
            status=rng.choices(statuses, weights=[5, 4, 3, 2, 1])[0],
            created_at=started + timedelta(days=rng.randint(100, 360)),
        )
        action.needs = rng.sample(made_needs, rng.randint(1, 3))
        if rng.random() < 0.3:
            source = rng.choice(contributions)
            action.sources = [
                ActionSource(
                    session_id=source.session_id, contribution_id=source.id, **_rating(rng)
                )
            ]
        for month in range(rng.choice([0, 0, 1, 2, 3])):
            action.updates.append(
                ActionUpdate(
                    kind=UpdateKind.MONITORING,
                    on_date=date(2025, 9, 1) + timedelta(days=30 * month),
                    progress=rng.choice([None, 5, 12, 30]),
                    body=rng.choice(PROGRESS),
                    reported_by=rng.choice([*stakeholders, None]),
                )
            )
            updates += 1
        if rng.random() < 0.1:
            action.updates.append(
                ActionUpdate(
                    kind=UpdateKind.EVALUATION,
                    on_date=date(2026, 1, 15),
                    method=rng.choice(EVALUATION_METHODS),
                    body="Families found the service more easily than a year before.",
                    evidence_session=rng.choice(made_sessions),
                )
            )
            updates += 1
        db.session.add(action)
    db.session.commit()
    return BacklogSize(
        sessions=sessions,
        needs=needs,
        actions=actions,
        updates=updates,
        stakeholders=len(stakeholders),
    )


def _rating(rng: random.Random) -> dict:
    """A source's ratings: how many rated it (often nobody) and their sum, 1 to 5 each."""
    count = rng.choice([0, 0, 0, 3, 7, 12])
    return {"rating_count": count, "rating_sum": sum(rng.randint(1, 5) for _ in range(count))}
