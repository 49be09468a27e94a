"""What an audit is made of: services, a rubric, scenarios, assignments; texts per language.

An audit's preparation lives in ``Session.config``, as JSON-able dicts:

``services``
    ``{"id": "s1", "name": {lang: text}, "kind": {...}, "area": {...}}``
``criteria``
    ``{"id": "c1", "title": {lang: text}, "guidance": {...}}``: the rubric,
    scored from 1 to ``config["scale"]``
``scenarios``
    ``{"id": "p1", "persona": {...}, "problem": {...}, "ask": {...}, "good_answer": {...}}``
``assignments``
    ``{"id": "a1", "link": <RoleLink id>, "code": "E-01", "service": "s1", "scenario": "p1"}``

Every text a facilitator writes is a dict by language code, filled from one
input per language of the session; a reader sees their language, else the
audit's first, else whichever was written.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext

from palabre import Refused, Texts

MAX_NAME = 120
MAX_TEXT = 600
MAX_SERVICES = 40
MAX_CRITERIA = 15
MAX_SCENARIOS = 30
MAX_ASSIGNMENTS = 300

#: Each kind of item of an audit: its config key, id prefix, texts (required first) and limits.
ITEMS = {
    "service": ("services", "s", ("name", "kind", "area"), MAX_SERVICES),
    "criterion": ("criteria", "c", ("title", "guidance"), MAX_CRITERIA),
    "scenario": ("scenarios", "p", ("persona", "problem", "ask", "good_answer"), MAX_SCENARIOS),
}
#: The texts an item must have in at least one language.
REQUIRED = {"service": ("name",), "criterion": ("title",), "scenario": ("persona", "problem")}
#: The longest each text may be.
LIMITS = {"name": MAX_NAME, "kind": MAX_NAME, "area": MAX_NAME, "title": MAX_NAME}


def text_in(texts: dict | None, language: str, languages: list[str]) -> str:
    """``texts`` in ``language``, else the audit's first language, else any written one."""
    return Texts.of(texts).shown(language, languages).text


def _default_criteria() -> list[tuple[str, str]]:
    """The rubric of the guide's Toynbee Hall audit: what its community researchers looked at."""
    return [
        (
            _("Advice understandable"),
            _("Was the advice given in words you could follow? 1: not at all, top: fully."),
        ),
        (
            _("Advice accurate"),
            _("Did the advice match the good answer of your scenario? 1: wrong, top: right."),
        ),
        (
            _("Free options mentioned"),
            _("Were free advice or legal aid mentioned? 1: never, top: clearly and unasked."),
        ),
        (
            _("Respect and professional ethics"),
            _(
                "Were you treated with respect, and honestly? Pushing a hopeless case or "
                "asking for money unduly is a breach: 1."
            ),
        ),
        (
            _("Language support or interpreter"),
            _("Was an interpreter or your language offered when needed? 1: no, top: at once."),
        ),
        (
            _("Waiting time"),
            _("How long before you were seen, compared to what was announced? 1: far too long."),
        ),
        (
            _("Physical accessibility"),
            _("Could anyone reach and use the place (steps, signs, seats)? 1: no, top: easily."),
        ),
    ]


def _default_scenario() -> dict[str, str]:
    return {
        "persona": _(
            "A woman who arrived a year ago, with a residence permit, speaking little English."
        ),
        "problem": _("Her husband and children are still abroad; she wants them to join her."),
        "ask": _("Can my family join me, what does it cost, and where can I get free advice?"),
        "good_answer": _(
            "Explains family reunion plainly, says it can be free through legal aid or a "
            "charity, and gives an address; does not push a paid case."
        ),
    }


def default_audit(scale: int) -> dict:
    """An audit's preparation before any editing: the guide's rubric and one scenario.

    The defaults are written in every language whose catalog has them, so
    evaluators read them in theirs whatever the facilitator's language.
    """
    count = len(_default_criteria())
    criteria = [
        {
            "id": f"c{number}",
            "title": Texts.from_catalog(lambda n=number: _default_criteria()[n - 1][0]).to_json(),
            "guidance": Texts.from_catalog(
                lambda n=number: _default_criteria()[n - 1][1]
            ).to_json(),
        }
        for number in range(1, count + 1)
    ]
    scenario = {
        name: Texts.from_catalog(lambda name=name: _default_scenario()[name]).to_json()
        for name in _default_scenario()
    }
    return {
        "scale": scale,
        "services": [],
        "criteria": criteria,
        "scenarios": [{"id": "p1", **scenario}],
        "assignments": [],
        "next_id": count + 2,
    }


def texts_from(data: dict, name: str, languages: list[str]) -> dict[str, str]:
    """The text ``name`` from a form's per-language inputs ``<name>-<lang>``, by language."""
    return Texts.from_form(data, name, languages).to_json()


def save_item(config: dict, languages: list[str], item_type: str, data: dict) -> dict:
    """``config`` with the item of ``item_type`` added (no ``id`` in ``data``) or replaced.

    Raises :class:`Refused` for a text missing in every language, a text too
    long, an unknown id, or too many items.
    """
    key, prefix, names, most = ITEMS[item_type]
    items = list(config.get(key, []))
    item = {name: texts_from(data, name, languages) for name in names}
    for name in REQUIRED[item_type]:
        if not item[name]:
            raise Refused(_("Fill in the required fields, in at least one language."))
    limit = LIMITS.get
    for name, texts in item.items():
        if any(len(text) > (limit(name) or MAX_TEXT) for text in texts.values()):
            raise Refused(
                ngettext(
                    "This is too long: %(num)d character at most.",
                    "This is too long: %(num)d characters at most.",
                    limit(name) or MAX_TEXT,
                )
            )
    wanted = data.get("id") or ""
    if wanted:
        index = next((i for i, old in enumerate(items) if old["id"] == wanted), None)
        if index is None:
            raise Refused(_("This item is not part of the audit any more. Reload the page."))
        items[index] = {"id": wanted, **item}
        return {**config, key: items}
    if len(items) >= most:
        raise Refused(_("At most %(n)d of these.", n=most))
    number = config.get("next_id", 1)
    items.append({"id": f"{prefix}{number}", **item})
    return {**config, key: items, "next_id": number + 1}


def by_id(config: dict, key: str) -> dict[str, dict]:
    return {item["id"]: item for item in config.get(key, [])}
