"""Plurals go through ngettext: no "1 ratings", "1 notes" or "1 participants" anywhere.

A count followed by a plural noun in one translatable string, or a number
shown right before a translated plural word, reads wrong for one item in
English and for most counts in Arabic (six plural forms): such text must be
an ``ngettext`` call, or a label before the number ("Dots: 3").
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The core's and the built-in plugins' templates and code.
SOURCES = [
    *ROOT.glob("templates/**/*.html"),
    *ROOT.glob("plugins/*/templates/**/*.html"),
    *ROOT.glob("core/*.py"),
    *ROOT.glob("plugins/**/*.py"),
]
#: gettext calls (``_``, ``gettext``, ``lazy_gettext``, ``_l``), not ngettext.
SINGULAR_CALL = re.compile(r"""(?<![\w.])(?:_|_l|gettext|lazy_gettext)\(\s*(['"])(.+?)(?<!\\)\1""")
#: A number placeholder followed by a plural noun: "%(n)d dots", "%(count)s ratings".
COUNT_THEN_PLURAL = re.compile(
    r"(?:%\(\w+\)d|%\((?:n|num|count|total|dots)\)s)(?: [a-z“”]+)?? [a-zA-Z“”]+s\b"
)
#: A number printed, then (only tags between) a translated word ending in s: "3 {{ _('dots') }}".
NUMBER_THEN_WORD = re.compile(
    r"\}\}\s*(?:</?\w+[^>]*>\s*)*\{\{\s*_\(\s*(['\"])([a-z“][^'\"]*s[”]?)\1\s*\)"
)


def hand_made_plurals(path: Path) -> list[str]:
    text = path.read_text()
    found = [
        m.group(2) for m in SINGULAR_CALL.finditer(text) if COUNT_THEN_PLURAL.search(m.group(2))
    ]
    if path.suffix == ".html":
        found += [m.group(2) for m in NUMBER_THEN_WORD.finditer(text)]
    return found


def test_the_scan_finds_hand_made_plurals(tmp_path):
    sample = tmp_path / "sample.html"
    sample.write_text(
        "<span>{{ r.count }}</span> {{ _('ratings') }}\n"
        "{{ _('You have %(dots)s dots left.', dots=n) }}\n"
        "{{ ngettext('%(num)d note', '%(num)d notes', n) }} {{ _('Dots:') }} {{ n }}\n"
    )
    assert hand_made_plurals(sample) == ["You have %(dots)s dots left.", "ratings"]


def test_no_template_or_module_makes_its_own_plurals():
    found = {
        str(path.relative_to(ROOT)): plurals
        for path in SOURCES
        if (plurals := hand_made_plurals(path))
    }
    assert found == {}, f"use ngettext for these counts: {found}"
