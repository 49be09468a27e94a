"""Who was heard: counts of the anonymous profile, never a group under five.

Every figure about people that leaves the server (run screen, CSV export,
printed reports) goes through :func:`protect`: a group of fewer than
:data:`MINIMUM_GROUP` people is never shown on its own. Small groups are
pooled into one "fewer than 5 each" row; when that pool is itself small, the
smallest shown groups join it until it is not, so that no small group can be
recovered by subtracting the others from the total. Filters only take values
from fixed lists (never free text), and a filter whose matching interviews,
or the interviews it leaves out, number fewer than five is refused.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

#: The smallest group of people shown on its own, anywhere.
MINIMUM_GROUP = 5

#: Where an interview took place (the guide: homes, workplaces, outside
#: supermarkets, schools, in the evening and at weekends).
PLACE_TYPES = {
    "home": _l("At home"),
    "workplace": _l("At a workplace"),
    "shop": _l("Outside a shop or supermarket"),
    "school": _l("At a school"),
    "association": _l("At an association or place of worship"),
    "public": _l("In a public space"),
    "phone": _l("By phone"),
    "self": _l("Answered alone through the public QR code"),
    "other": _l("Elsewhere"),
}

#: How an interview came in: by a connector's phone, from a resident's own phone through
#: the public QR code, or typed in by staff from paper.
RECORDED_BY = {
    "connector": _l("Recorded by community connectors"),
    "self": _l("Answered alone through the public QR code"),
    "paper": _l("Typed in from paper"),
}

#: Who an interview was with: the guide heard residents, the municipality's
#: staff and local politicians. A dialogue offers the ones it chose (its
#: ``respondent_types``), all but ``association`` by default.
RESPONDENT_TYPES = {
    "resident": _l("A resident"),
    "staff": _l("Staff of a service"),
    "politician": _l("A local politician"),
    "association": _l("Someone from an association or community group"),
    "other": _l("Someone else"),
}
DEFAULT_RESPONDENT_TYPES = ("resident", "staff", "politician", "other")
#: Who counts in the share of the area's population heard: residents, and
#: those who did not say (a resident answering alone may skip the question).
NOT_RESIDENTS = frozenset({"staff", "politician"})

#: The anonymous profile: each question may be skipped.
PROFILE = {
    "age": (
        _l("Age"),
        {
            "under_18": _l("Under 18"),
            "18_29": _l("18 to 29"),
            "30_44": _l("30 to 44"),
            "45_64": _l("45 to 64"),
            "65_plus": _l("65 or older"),
        },
    ),
    "gender": (
        _l("Gender"),
        {"woman": _l("Woman"), "man": _l("Man"), "other": _l("In another way")},
    ),
    "time_in_city": (
        _l("Time living here"),
        {
            "under_1": _l("Less than a year"),
            "1_5": _l("1 to 5 years"),
            "over_5": _l("More than 5 years"),
            "born_here": _l("Born here"),
        },
    ),
    "home_language": (
        _l("Language spoken at home"),
        {
            "local": _l("The local language"),
            "ar": _l("Arabic"),
            "fa": _l("Dari or Persian"),
            "so": _l("Somali"),
            "ti": _l("Tigrinya"),
            "en": _l("English"),
            "fr": _l("French"),
            "uk": _l("Ukrainian"),
            "other": _l("Another language"),
        },
    ),
}

#: The language an interview was held in, besides the session's own.
INTERVIEW_LANGUAGES = {
    "local": _l("The local language"),
    "ar": _l("Arabic"),
    "fa": _l("Dari or Persian"),
    "so": _l("Somali"),
    "ti": _l("Tigrinya"),
    "en": _l("English"),
    "fr": _l("French"),
    "uk": _l("Ukrainian"),
    "other": _l("Another language, with an interpreter"),
}

#: What a facilitator may filter the reach by: fixed values only.
FILTERS = {
    "respondent": RESPONDENT_TYPES,
    "place": PLACE_TYPES,
    "language": INTERVIEW_LANGUAGES,
}

NOT_STATED = "not_stated"
SMALL_GROUPS = "small_groups"


@dataclass(frozen=True)
class Row:
    """One line of a protected table: ``count`` is ``None`` when it is pooled away."""

    key: str
    label: str
    count: int | None
    population: int | None = None


def protect(counts: dict[str, int], labels: dict, minimum: int = MINIMUM_GROUP) -> list[Row]:
    """Rows of ``counts`` in the order of ``labels``, no group under ``minimum`` on its own.

    Groups under ``minimum`` are pooled into one :data:`SMALL_GROUPS` row. If
    that pool is smaller than ``minimum`` too, the smallest shown groups join
    it until it is not (the row then says so, not "fewer than 5 each"); if
    none are left, the pool is shown without a number.
    Keys missing from ``labels`` (not stated) come last, as :data:`NOT_STATED`.
    """
    order = [key for key in labels if counts.get(key)]
    if counts.get(NOT_STATED):
        order.append(NOT_STATED)
    shown = {key: counts[key] for key in order if counts[key] >= minimum}
    pooled = sum(counts[key] for key in order if key not in shown)
    grown = False
    while 0 < pooled < minimum and shown:
        smallest = min(shown, key=lambda key: (shown[key], key))
        pooled += shown.pop(smallest)
        grown = True
    rows = [Row(key, str(_label(labels, key)), shown[key]) for key in order if key in shown]
    if pooled:
        label = (
            _l("Others, pooled so that no group of fewer than %(n)d people can be seen", n=minimum)
            if grown
            else _l("Others, fewer than %(n)d people each", n=minimum)
        )
        rows.append(Row(SMALL_GROUPS, str(label), pooled if pooled >= minimum else None))
    return rows


def _label(labels: dict, key: str):
    if key == NOT_STATED:
        return _l("Not stated")
    return labels.get(key, key)


def profile_counts(interviews, field: str) -> dict[str, int]:
    """How many interviews gave each answer to a profile question (or place, language)."""
    counts: Counter = Counter()
    for interview in interviews:
        data = interview.data or {}
        value = (data.get("profile") or {}).get(field) if field in PROFILE else data.get(field)
        counts[value or NOT_STATED] += 1
    return dict(counts)


def recorded_by(interviews) -> list[Row]:
    """How the interviews came in (:data:`RECORDED_BY`), protected: the people who answered
    alone, say, are a group like any other."""
    return protect(dict(Counter((i.data or {}).get("by") for i in interviews)), RECORDED_BY)


def per_connector(interviews) -> list[Row]:
    """Interviews per connector code, protected, the codes pooled away named in their row.

    A connector's code names no one heard, but each count is a group of people
    heard: under five it is pooled, its code still shown, so that the facilitator
    knows whom to ask how the listening goes.
    """
    counts = Counter((i.data or {}).get("connector") for i in interviews)
    counts.pop(None, None)
    codes = {code: code for code in sorted(counts)}
    rows = protect(dict(counts), codes)
    shown = {row.key for row in rows}
    pooled = " · ".join(code for code in codes if code not in shown)
    return [Row(r.key, pooled, r.count) if r.key == SMALL_GROUPS else r for r in rows]


def residents(interviews) -> list:
    """The interviews that count in the share of the population heard (see NOT_RESIDENTS)."""
    return [i for i in interviews if (i.data or {}).get("respondent") not in NOT_RESIDENTS]


def filtered(interviews, field: str | None, value: str | None):
    """The interviews matching a filter, or a refusal message; ``(interviews, message)``.

    Only the fields of :data:`FILTERS` with their fixed values are accepted.
    A filter matching fewer than five interviews, or leaving fewer than five
    out, is refused: its figures would show, or let one subtract, a small group.
    """
    if not field:
        return list(interviews), None
    if field not in FILTERS or value not in FILTERS[field]:
        return [], str(_l("This filter does not exist."))
    matching = [i for i in interviews if (i.data or {}).get(field) == value]
    left_out = len(interviews) - len(matching)
    if len(matching) < MINIMUM_GROUP or 0 < left_out < MINIMUM_GROUP:
        return [], str(
            _l(
                "Fewer than %(n)d people are in this group or outside it: "
                "its figures are not shown, to keep everyone anonymous.",
                n=MINIMUM_GROUP,
            )
        )
    return matching, None


def population_key(field: str) -> str:
    """The configuration key of the area's population by a :data:`PROFILE` field.

    ``population_by_age`` was the only one before the others, and keeps its name.
    """
    return f"population_by_{field}"


def populations(config: dict) -> dict[str, dict[str, int]]:
    """The area's population by each :data:`PROFILE` field the facilitator gave it for."""
    return {
        field: config[population_key(field)]
        for field in PROFILE
        if config.get(population_key(field))
    }


def reach_tables(interviews, population: dict[str, dict[str, int]] | None = None) -> list[dict]:
    """Every protected table of the reach: respondent types, the profile, places, languages.

    Each table is ``{"field", "title", "rows"}``; a profile table's rows carry
    the population of each answer where the facilitator gave it (``population``
    maps a :data:`PROFILE` field to its answers' populations).
    """
    population = population or {}
    tables = [
        {
            "field": "respondent",
            "title": str(_l("Who was heard")),
            "rows": protect(profile_counts(interviews, "respondent"), RESPONDENT_TYPES),
        }
    ]
    for field, (title, labels) in PROFILE.items():
        rows = protect(profile_counts(interviews, field), labels)
        if population.get(field):
            known = population[field]
            rows = [Row(r.key, r.label, r.count, known.get(r.key)) for r in rows]
        tables.append({"field": field, "title": str(title), "rows": rows})
    tables.append(
        {
            "field": "place",
            "title": str(_l("Where people were heard")),
            "rows": protect(profile_counts(interviews, "place"), PLACE_TYPES),
        }
    )
    tables.append(
        {
            "field": "language",
            "title": str(_l("Language of the interview")),
            "rows": protect(profile_counts(interviews, "language"), INTERVIEW_LANGUAGES),
        }
    )
    return tables


def against_population(interviews, field: str, population: dict[str, int]) -> list[dict]:
    """Share of each answer to the :data:`PROFILE` question ``field`` among those heard and
    in the area's ``population`` (answer key to people), where known.

    Only answers given by at least five people heard are compared; the others
    are pooled as in :func:`protect`, without a population to compare with.
    Those who did not answer count in neither share.
    """
    heard = profile_counts(interviews, field)
    known_total = sum(population.values())
    stated = sum(n for key, n in heard.items() if key != NOT_STATED)
    rows = []
    for row in protect(heard, PROFILE[field][1]):
        if row.key == NOT_STATED:
            continue
        people = population.get(row.key)
        rows.append(
            {
                "label": row.label,
                "heard": row.count,
                "heard_share": round(100 * row.count / stated) if row.count and stated else None,
                "population": people,
                "population_share": round(100 * people / known_total)
                if people and known_total
                else None,
            }
        )
    return rows
