"""Seating between café rounds: balanced tables, as many new faces as possible.

Pure functions, no database: the method passes in who sat where before.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping

#: Above this many movers the pairwise swaps take too long to be worth it.
SWAP_LIMIT = 300


def encounters(history: Iterable[Mapping[int, str]]) -> dict[int, set[int]]:
    """Who has already sat with whom, from past rounds' ``{person: table}`` maps."""
    met: dict[int, set[int]] = {}
    for seating in history:
        by_table: dict[str, list[int]] = {}
        for person, table in seating.items():
            by_table.setdefault(table, []).append(person)
        for people in by_table.values():
            for a, b in itertools.permutations(people, 2):
                met.setdefault(a, set()).add(b)
    return met


def repeats(seating: Mapping[int, str], met: Mapping[int, set[int]]) -> int:
    """How many pairs sit together again in ``seating`` (each pair counted once)."""
    by_table: dict[str, list[int]] = {}
    for person, table in seating.items():
        by_table.setdefault(table, []).append(person)
    return sum(
        1
        for people in by_table.values()
        for a, b in itertools.combinations(people, 2)
        if b in met.get(a, ())
    )


def seat(
    movers: list[int],
    fixed: Mapping[int, str],
    tables: list[str],
    met: Mapping[int, set[int]],
    rng: random.Random | None = None,
) -> dict[int, str]:
    """Seat ``movers`` at ``tables`` around the ``fixed`` people (hosts).

    Tables end up as even as possible (sizes differ by at most one where the
    hosts allow it), and people who already met are kept apart where they can
    be: a greedy placement of the most-connected first, improved by swaps.
    Returns ``{mover: table}``.
    """
    rng = rng or random.Random()
    if not tables:
        return {}
    capacity = math.ceil((len(movers) + len(fixed)) / len(tables))
    at_table: dict[str, list[int]] = {table: [] for table in tables}
    for person, table in fixed.items():
        at_table.setdefault(table, []).append(person)

    order = list(movers)
    rng.shuffle(order)
    order.sort(key=lambda person: -len(met.get(person, ())))
    placed: dict[int, str] = {}
    for person in order:
        known = met.get(person, set())
        open_tables = [t for t in tables if len(at_table[t]) < capacity] or tables
        best = min(
            open_tables,
            key=lambda t: (
                sum(1 for other in at_table[t] if other in known),
                len(at_table[t]),
                rng.random(),
            ),
        )
        at_table[best].append(person)
        placed[person] = best

    if not met or len(placed) > SWAP_LIMIT:
        return placed

    # Swap pairs of movers at different tables while that lowers repeats.
    def cost(person: int, table: str, leaving: int | None = None) -> int:
        known = met.get(person, set())
        return sum(1 for o in at_table[table] if o != leaving and o != person and o in known)

    for _ in range(3):
        improved = False
        for a, b in itertools.combinations(list(placed), 2):
            ta, tb = placed[a], placed[b]
            if ta == tb:
                continue
            before = cost(a, ta) + cost(b, tb)
            after = cost(a, tb, leaving=b) + cost(b, ta, leaving=a)
            if after < before:
                at_table[ta].remove(a)
                at_table[tb].remove(b)
                at_table[ta].append(b)
                at_table[tb].append(a)
                placed[a], placed[b] = tb, ta
                improved = True
        if not improved:
            break
    return placed
