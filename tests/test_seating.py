"""Seating between café rounds: balance and new encounters."""

import random
from collections import Counter

from palabre.plugins.world_cafe.seating import encounters, repeats, seat


def test_first_round_balances_tables():
    placed = seat(list(range(23)), {}, ["1", "2", "3", "4", "5"], {}, random.Random(1))
    sizes = Counter(placed.values())
    assert sum(sizes.values()) == 23
    assert max(sizes.values()) - min(sizes.values()) <= 1


def test_hosts_stay_and_count_towards_table_size():
    hosts = {100: "1", 101: "2", 102: "3"}
    placed = seat(list(range(9)), hosts, ["1", "2", "3"], {}, random.Random(2))
    assert not set(placed) & set(hosts)
    sizes = Counter(placed.values())
    assert all(sizes[t] == 3 for t in "123")  # 3 movers + 1 host at each table


def test_later_rounds_avoid_people_already_met():
    people = list(range(16))
    tables = ["1", "2", "3", "4"]
    rng = random.Random(3)
    history = [seat(people, {}, tables, {}, rng)]
    second = seat(people, {}, tables, encounters(history), rng)
    # 16 people at 4 tables of 4 can all meet new faces in round 2.
    assert repeats(second, encounters(history)) == 0
    history.append(second)
    third = seat(people, {}, tables, encounters(history), rng)
    random_repeats = repeats(seat(people, {}, tables, {}, random.Random(4)), encounters(history))
    assert repeats(third, encounters(history)) <= random_repeats


def test_encounters_are_symmetric():
    met = encounters([{1: "a", 2: "a", 3: "b"}])
    assert met == {1: {2}, 2: {1}}
