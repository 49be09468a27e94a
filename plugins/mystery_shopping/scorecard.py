"""The audit's figures: scorecards per service and criterion, and the evaluators' payment sheet.

No figure may single out one evaluator: a service with fewer than
:data:`SMALL_NUMBER` reports shows its findings, not its scores, and a
criterion scored fewer than :data:`SMALL_NUMBER` times on a service shows
no distribution either.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

#: The fewest reports (or scores) a figure may be drawn from.
SMALL_NUMBER = 3

#: Cell starts a spreadsheet reads as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def scorecard(services: list[dict], criteria: list[dict], visits: list, scale: int) -> list[dict]:
    """For each service: its reports, and for each criterion the distribution of scores.

    ``visits`` are the stored visit reports (contributions whose ``data``
    holds ``service`` and ``scores``). Each service's dict has ``service``,
    ``reports`` (how many), ``shown`` (whether scores may be shown) and
    ``rows``: per criterion, ``criterion``, ``counts`` (one per value of the
    scale, 1 first), ``scored``, ``unscored`` and ``mean`` (``None`` when
    hidden or nothing was scored).
    """
    cards = []
    for service in services:
        reports = [v for v in visits if v.data.get("service") == service["id"]]
        shown = len(reports) >= SMALL_NUMBER
        rows = []
        for criterion in criteria:
            scores = [
                v.data["scores"][criterion["id"]]
                for v in reports
                if isinstance(v.data.get("scores", {}).get(criterion["id"]), int)
            ]
            visible = shown and len(scores) >= SMALL_NUMBER
            rows.append(
                {
                    "criterion": criterion,
                    "counts": [scores.count(value) for value in range(1, scale + 1)]
                    if visible
                    else [],
                    "scored": len(scores),
                    "unscored": len(reports) - len(scores),
                    "shown": visible,
                    "mean": round(sum(scores) / len(scores), 1) if visible else None,
                }
            )
        cards.append({"service": service, "reports": len(reports), "shown": shown, "rows": rows})
    return cards


def spreadsheet_cell(value) -> str:
    """``value`` as a CSV cell no spreadsheet runs as a formula."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def payment_rows(visits: list, hourly_rate: Decimal) -> list[dict]:
    """Per evaluator code: visits, minutes, expenses, pay for time, and the total owed."""
    by_code: dict[str, dict] = {}
    for visit in visits:
        code = visit.data.get("code", "")
        row = by_code.setdefault(
            code, {"code": code, "visits": 0, "minutes": 0, "expenses": Decimal("0")}
        )
        row["visits"] += 1
        row["minutes"] += int(visit.data.get("minutes", 0))
        row["expenses"] += Decimal(visit.data.get("expenses", "0"))
    rows = []
    for code in sorted(by_code):
        row = by_code[code]
        pay = (hourly_rate * row["minutes"] / 60).quantize(Decimal("0.01"))
        rows.append({**row, "pay": pay, "total": pay + row["expenses"]})
    return rows


def payment_csv(rows: list[dict], header: list[str], currency: str) -> bytes:
    """The payment sheet as CSV in UTF-8 with a byte order mark (spreadsheets then read accents)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([spreadsheet_cell(title) for title in header])
    for row in rows:
        writer.writerow(
            [
                spreadsheet_cell(row["code"]),
                row["visits"],
                row["minutes"],
                f"{row['expenses']:.2f}",
                f"{row['pay']:.2f}",
                f"{row['total']:.2f}",
                spreadsheet_cell(currency),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
