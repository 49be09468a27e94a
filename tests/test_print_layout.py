"""Page breaks of the printed reports, with 3, 30 and 300 contributions (tests/print_fixtures.py).

Each report is laid out by WeasyPrint exactly as the print worker does it
(``HTML(...).render()`` then ``write_pdf()``). The layout's boxes say where each
heading, table row and list item fell; the PDF's text, read back with pypdf,
says what a reader sees in the running header and footer. What is checked:

- no heading ends a page (its section starts on the next one);
- no table row nor note is cut across two pages;
- a table that runs over several pages repeats its header row on each;
- every page after the cover has the document's title at the top and
  "Page X of Y" at the bottom;
- no page but the last is left nearly empty.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from palabre.extensions import db
from palabre.models import Session
from palabre.plugin_host import get_method
from palabre.policy_cycle import action_plan_context
from palabre.printing import PACKAGE, document_html

from .print_fixtures import BUILDERS, build, build_backlog

pytestmark = pytest.mark.pdf

HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
#: Boxes that must never be cut across pages: a table row, a note, a chart.
UNBROKEN = {"tr", "li", "figure"}
#: A page is "nearly empty" when its text ends above this share of the writing area.
NEARLY_EMPTY = 0.2


def _walk(box, ancestors=()):
    """Every box under ``box`` with the ``(tag, element)`` of the elements around it."""
    yield box, ancestors
    tag = getattr(box, "element_tag", None)
    inner = (*ancestors, (tag, box.element)) if tag else ancestors
    for child in getattr(box, "children", ()) or ():
        yield from _walk(child, inner)


def _is_line(box) -> bool:
    return type(box).__name__ == "LineBox" and any(
        type(b).__name__ == "TextBox" and b.text.strip() for b in box.descendants()
    )


def _has_head(table) -> bool:
    return any(str(child.tag).endswith("thead") for child in table)


def page_facts(page) -> dict:
    """What fell on one laid-out page: its lines, the boxes kept whole, the tables' headers."""
    root = next(b for b in page._page_box.children if type(b).__name__ != "MarginBox")
    lines, pieces, headed = [], [], set()
    for box, ancestors in _walk(root):
        tag = getattr(box, "element_tag", None)
        tags = {t for t, _element in ancestors}
        if _is_line(box):
            lines.append((box.position_y + box.height, tags & HEADINGS, box))
        if tag in UNBROKEN and box.element is not None:
            table = next((e for t, e in reversed(ancestors) if t == "table"), None)
            if tag == "tr" and "thead" in tags:
                headed.add(id(table))
            else:
                pieces.append((box.element, tag, table))
    top = page._page_box.content_box_y()
    return {
        "lines": sorted(lines, key=lambda line: line[0]),
        "pieces": pieces,
        "headed": headed,
        "top": top,
        "bottom": top + page._page_box.height,
    }


def starts_with_forced_break(page) -> bool:
    """Whether ``page`` opens with a box whose style asks for a new page (``break-before``)."""
    top = page._page_box.content_box_y()
    return any(
        box.style["break_before"] in ("page", "left", "right", "recto", "verso")
        and abs(box.position_y - top) < 2
        for box in page._page_box.descendants()
        if getattr(box, "style", None) is not None and hasattr(box, "position_y")
    )


def check_layout(html: str, title: str) -> tuple[list[str], bytes]:
    """Lay ``html`` out and print it; the problems found, and the PDF."""
    from weasyprint import HTML

    document = HTML(string=html, base_url=str(PACKAGE)).render()
    pdf = document.write_pdf()
    problems = []
    facts = [page_facts(page) for page in document.pages]
    seen: dict[int, int] = {}
    for number, page in enumerate(facts, start=1):
        if page["lines"] and number < len(facts):
            _y, headings, _box = page["lines"][-1]
            if headings:
                text = "".join(b.text for b in _box.descendants() if hasattr(b, "text"))
                problems.append(f"page {number}: ends with the heading {text.strip()!r}")
            used = (page["lines"][-1][0] - page["top"]) / (page["bottom"] - page["top"])
            # A short page before a section made to start on a page of its own (an appendix)
            # is the layout's intent, not a gap.
            forced = starts_with_forced_break(document.pages[number])
            if used < NEARLY_EMPTY and number > 1 and not forced:
                problems.append(f"page {number}: nearly empty ({used:.0%} used)")
        for element, tag, table in page["pieces"]:
            if id(element) in seen and seen[id(element)] != number:
                text = " ".join("".join(element.itertext()).split())[:60]
                problems.append(f"page {number}: a {tag} is cut across pages: {text!r}")
            seen[id(element)] = number
            if table is not None and _has_head(table) and id(table) not in page["headed"]:
                problems.append(f"page {number}: a table goes on without its header row")
    reader = PdfReader(io.BytesIO(pdf))
    total = len(reader.pages)
    for number, page in enumerate(reader.pages[1:], start=2):
        text = " ".join(page.extract_text().split())
        if f"Page {number} of {total}" not in text:
            problems.append(f"page {number}: no “Page {number} of {total}” footer")
        if title not in text:
            problems.append(f"page {number}: no running header with the title")
    return sorted(set(problems)), pdf


def report_html(app, session_id: int) -> tuple[str, str]:
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        method = get_method(session.method)
        html = document_html(
            method.template("report"),
            "report",
            session,
            method=method,
            **method.report_context(session),
        )
        return html, session.title


def keep(pdf: bytes, name: str) -> None:
    """Keep the PDF for a look when ``PALABRE_KEEP_PDFS`` names a folder."""
    import os

    folder = os.environ.get("PALABRE_KEEP_PDFS")
    if folder:
        Path(folder, name).write_bytes(pdf)


@pytest.mark.parametrize("size", [3, 30, 300])
@pytest.mark.parametrize("slug", sorted(BUILDERS))
def test_report_page_breaks(app, slug, size):
    html, title = report_html(app, build(app, slug, size))
    problems, pdf = check_layout(html, title)
    keep(pdf, f"{slug}-{size}.pdf")
    assert problems == []


@pytest.mark.parametrize("size", [3, 30, 300])
def test_action_plan_page_breaks(app, size):
    build_backlog(app, size)
    with app.test_request_context():
        html = document_html("print/action_plan.html", "action-plan", **action_plan_context(""))
    problems, pdf = check_layout(html, "")
    keep(pdf, f"action-plan-{size}.pdf")
    assert problems == []


@pytest.mark.parametrize("size", [3, 30, 300])
def test_monitoring_report_page_breaks_and_summary(app, size):
    """The monitoring report of a backlog of ``size`` needs and actions (a year of sessions:
    palabre.testing.large_backlog), since the start of its updates: page breaks as above,
    and a summary page that says where the actions stand and what changed."""
    from datetime import date

    from palabre.policy_cycle import monitoring_context
    from palabre.testing.large_backlog import fill_backlog

    with app.app_context():
        fill_backlog(needs=size, actions=size, sessions=min(size, 24))
    with app.test_request_context():
        # A quarter's report: the backlog's last progress reports and its evaluations.
        context = monitoring_context(date(2025, 10, 15), today=date(2026, 2, 1))
        html = document_html("print/monitoring.html", "monitoring", **context)
    problems, pdf = check_layout(html, "Integration strategy: monitoring report")
    keep(pdf, f"monitoring-{size}.pdf")
    assert problems == []
    reader = PdfReader(io.BytesIO(pdf))
    summary = " ".join(" ".join(p.extract_text() for p in reader.pages[:2]).split())
    counts = dict(context["headline"])
    assert sum(counts.values()) + sum(n for _key, n in context["others"]) == size
    for key, label in (("on_track", "On track"), ("late", "Late"), ("blocked", "Blocked")):
        assert f"{counts[key]} {label}" in summary, key
    assert f"{counts['done']} Done" in summary
    assert "What changed since October 15, 2025" in summary
    if size == 300:
        # A summary, an overview and the details where needed; every action on one line after.
        assert len(reader.pages) <= 18, len(reader.pages)


def test_the_checks_find_what_they_look_for():
    """A page that breaks every rule: each problem is named."""
    footer = '@page { size: A4; margin: 20mm; @bottom-center { content: "Page " counter(page) } }'
    rows = "".join(f"<tr><td>Row {n}</td></tr>" for n in range(3))
    html = f"""<!doctype html><html><head><style>{footer}
      h2 {{ break-after: auto; }} tr, li {{ break-inside: auto; }} .tall {{ height: 235mm; }}
      </style></head><body>
      <div class="tall"></div><h2>Left at the bottom</h2>
      <p style="break-before: page">Text</p>
      <div style="height: 240mm"></div>
      <table><thead><tr><th>Head</th></tr></thead><tbody>{rows}
      <tr><td><p>A row taller than a page</p><div style="height: 300mm"></div></td></tr>
      </tbody></table>
      <table><thead style="display: table-row-group"><tr><th>Not repeated</th></tr></thead>
      <tbody>{"<tr><td>Many</td></tr>" * 90}</tbody></table>
      <p style="break-before: page">Last</p><p style="break-before: page">Very last</p>
      </body></html>"""
    problems, _pdf = check_layout(html, "A title")
    found = "\n".join(problems)
    assert "ends with the heading 'Left at the bottom'" in found
    assert "a tr is cut across pages: 'A row taller than a page'" in found
    assert "no “Page 2 of" in found and "no running header with the title" in found
    assert "nearly empty" in found
    assert "a table goes on without its header row" in found
