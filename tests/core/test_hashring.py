"""Partitioning (``hashring``): one answer per membership, little movement, fair shares.

Movement bounds are checked on 10,000 items (so the item sampling noise, about 3 % at
these sizes, stays well under the 20 % margin) and against the ideal: ``1/(n+1)`` of
the items when one unit joins n, the even share ``1/n`` when one of n leaves.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charm_coordinator import hashring
from charm_coordinator.hashring import assign, owned

ITEMS = [f"item-{i}" for i in range(10_000)]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def units(n: int, app: str = "app") -> list[str]:
    return [f"{app}/{i}" for i in range(n)]


def moved(before: dict[str, tuple[str, ...]], after: dict[str, tuple[str, ...]]) -> list[str]:
    return [item for item, owners in before.items() if after[item] != owners]


def loads(assigned: dict[str, tuple[str, ...]]) -> collections.Counter[str]:
    return collections.Counter(owners[0] for owners in assigned.values())


unit_names = st.builds(
    lambda app, n: f"{app}/{n}",
    st.sampled_from(["app", "db", "postgresql-k8s", "x"]),
    st.integers(0, 300),
)
memberships = st.lists(unit_names, min_size=1, max_size=10, unique=True)
item_lists = st.lists(st.text(max_size=12), max_size=60)
weight_values = st.sampled_from([0, 0.5, 1, 1, 1, 2, 3.5])


# -- the same answer everywhere ----------------------------------------------------------


def test_pinned_answer_so_units_on_different_revisions_agree() -> None:
    """Any change to the hashing reshuffles every item: units of one application on two
    charm revisions (mid-upgrade) would disagree. This pins the rule."""
    assert assign(list("abcdef"), units(3)) == {
        "a": ("app/1",),
        "b": ("app/2",),
        "c": ("app/1",),
        "d": ("app/2",),
        "e": ("app/0",),
        "f": ("app/2",),
    }
    assert assign(list("abcdef"), units(3), replicas=2) == {
        "a": ("app/1", "app/2"),
        "b": ("app/2", "app/0"),
        "c": ("app/1", "app/0"),
        "d": ("app/2", "app/0"),
        "e": ("app/0", "app/2"),
        "f": ("app/2", "app/0"),
    }


def test_same_answer_in_other_processes_whatever_their_hash_seed() -> None:
    code = (
        "import json, sys; from charm_coordinator.hashring import assign; "
        "print(json.dumps(assign([f'item-{i}' for i in range(300)], "
        "[f'app/{i}' for i in range(7)], replicas=2)))"
    )
    here = assign([f"item-{i}" for i in range(300)], units(7), replicas=2)
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.path.join(ROOT, "lib")}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert {k: tuple(v) for k, v in json.loads(out.stdout).items()} == here


@given(items=item_lists, members=memberships, data=st.data())
@settings(max_examples=60, deadline=None)
def test_order_and_repeats_of_members_do_not_matter(
    items: list[str], members: list[str], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(members + members[:2]))
    weights = {m: data.draw(weight_values) for m in members}
    reordered = dict(reversed(list(weights.items())))
    first = assign(items, members, replicas=2, weights=weights)
    assert assign(items, shuffled, replicas=2, weights=reordered) == first
    assert list(first) == list(dict.fromkeys(items))  # in the order the items came


# -- owners ----------------------------------------------------------------------------


@given(
    items=item_lists,
    members=st.lists(unit_names, max_size=8, unique=True),
    replicas=st.integers(1, 10),
    data=st.data(),
)
@settings(max_examples=150, deadline=None)
def test_each_item_has_min_replicas_eligible_distinct_owners(
    items: list[str], members: list[str], replicas: int, data: st.DataObject
) -> None:
    weights = {m: data.draw(weight_values) for m in members}
    eligible = {m for m in members if weights[m] > 0}
    assigned = assign(items, members, replicas=replicas, weights=weights)
    assert set(assigned) == set(items)
    for owners in assigned.values():
        assert len(owners) == len(set(owners)) == min(replicas, len(eligible))
        assert set(owners) <= eligible


@given(items=item_lists, members=memberships, replicas=st.integers(1, 4), data=st.data())
@settings(max_examples=80, deadline=None)
def test_owned_is_assign_seen_from_each_unit_and_covers_every_item_replicas_times(
    items: list[str], members: list[str], replicas: int, data: st.DataObject
) -> None:
    weights = {m: data.draw(weight_values) for m in members}
    eligible = [m for m in members if weights[m] > 0]
    assigned = assign(items, members, replicas=replicas, weights=weights)
    counts: collections.Counter[str] = collections.Counter()
    for me in members:
        mine = owned(items, members, me, replicas=replicas, weights=weights)
        assert mine == [item for item, owners in assigned.items() if me in owners]
        counts.update(mine)
    for item in assigned:
        assert counts[item] == min(replicas, len(eligible))


def test_more_replicas_than_units_means_every_unit_once() -> None:
    assigned = assign(ITEMS[:200], units(3), replicas=5)
    assert all(sorted(owners) == units(3) for owners in assigned.values())
    # Primaries still spread over all three.
    assert set(loads(assigned)) == set(units(3))


def test_no_units_no_owners_and_a_unit_not_listed_owns_nothing() -> None:
    assert assign(["a", "b"], []) == {"a": (), "b": ()}
    assert assign(["a"], units(2), weights={"app/0": 0, "app/1": 0}) == {"a": ()}
    assert owned(ITEMS[:100], units(3), "app/7") == []
    assert assign([], units(3)) == {}


# -- movement ---------------------------------------------------------------------------


@given(
    items=st.lists(st.text(max_size=8), min_size=1, max_size=300, unique=True),
    members=memberships,
    newcomer=unit_names,
    replicas=st.integers(1, 4),
)
@settings(max_examples=120, deadline=None)
def test_a_join_moves_items_only_to_the_newcomer_and_a_leave_only_the_leavers(
    items: list[str], members: list[str], newcomer: str, replicas: int
) -> None:
    small = [m for m in members if m != newcomer]
    big = [*small, newcomer]
    before = assign(items, small, replicas=replicas)
    after = assign(items, big, replicas=replicas)
    for item in items:
        old, new = before[item], after[item]
        if newcomer in new:
            # The newcomer slots in; the others keep their order, the last may drop out.
            rest = [m for m in new if m != newcomer]
            assert rest == list(old[: len(rest)])
        else:
            # Read backwards, the newcomer leaving: the items it did not own stay put.
            assert new == old


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (5, 1672),  # 16.7 % moved; ideal 16.7 %, tooz's ring 14.2 % (so, unbalanced)
        (10, 871),  # 8.7 % moved; ideal 9.1 %
        (100, 95),  # ideal 1.0 %; with 99 expected movers, sampling alone varies +-10 %
    ],
)
def test_join_of_one_unit_moves_about_the_ideal_share(n: int, expected: int) -> None:
    before = assign(ITEMS, units(n))
    after = assign(ITEMS, units(n + 1))
    gone = moved(before, after)
    assert all(after[item] == (f"app/{n}",) for item in gone)
    assert len(gone) == expected  # the measured figure, so a regression shows
    assert len(gone) <= 1.2 * len(ITEMS) / (n + 1)


def test_six_to_five_moves_only_the_leavers_items_and_about_its_even_share() -> None:
    six = assign(ITEMS, units(6))
    for leaver in units(6):
        five = assign(ITEMS, [u for u in units(6) if u != leaver])
        gone = moved(six, five)
        assert sorted(gone) == sorted(i for i in ITEMS if six[i] == (leaver,))
        assert len(gone) <= 1.2 * len(ITEMS) / 6, leaver


@given(
    app=st.sampled_from(["app", "db", "web-k8s", "ceph-osd"]),
    n=st.integers(2, 16),
    data=st.data(),
)
@settings(max_examples=15, deadline=None, derandomize=True)
def test_joins_and_leaves_move_at_most_1_2_times_the_ideal(
    app: str, n: int, data: st.DataObject
) -> None:
    """Derandomized: the bound holds with a margin of about 3 spreads, not always
    (``hashring``'s docstring), so a fixed set of memberships keeps this test stable."""
    numbers = data.draw(st.lists(st.integers(0, 999), min_size=n + 1, max_size=n + 1, unique=True))
    names = [f"{app}/{k}" for k in numbers]
    before = assign(ITEMS, names[:-1])
    after = assign(ITEMS, names)
    assert len(moved(before, after)) <= 1.2 * len(ITEMS) / (n + 1)
    leaver = names[data.draw(st.integers(0, n - 1))]
    left = assign(ITEMS, [m for m in names[:-1] if m != leaver])
    gone = moved(before, left)
    assert len(gone) == sum(owners == (leaver,) for owners in before.values())
    assert len(gone) <= 1.2 * len(ITEMS) / n


def test_a_weight_change_moves_items_only_to_or_from_that_unit() -> None:
    members = units(5)
    before = assign(ITEMS, members)
    heavier = assign(ITEMS, members, weights={"app/2": 2})
    gained = moved(before, heavier)
    assert all(heavier[i] == ("app/2",) for i in gained)
    # Ideal: its share goes from 1/5 to 2/6 of the items.
    assert 0.8 <= len(gained) / (len(ITEMS) * (2 / 6 - 1 / 5)) <= 1.2
    lighter = assign(ITEMS, members, weights={"app/2": 0.5})
    lost = moved(before, lighter)
    assert all(before[i] == ("app/2",) for i in lost)
    assert 0.8 <= len(lost) / (len(ITEMS) * (1 / 5 - 0.5 / 4.5)) <= 1.2


# -- balance and weights -----------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 10, 30, 100])
def test_balance_at_100_items_per_unit(n: int) -> None:
    """Sampling alone spreads 100 items per unit by +-10 % (one sigma); the ring adds 5 %.
    Measured max/mean: 1.11, 1.17, 1.20, 1.31; min/mean 0.94, 0.80, 0.80, 0.77."""
    counts = loads(assign(ITEMS[: 100 * n], units(n)))
    assert len(counts) == n
    assert max(counts.values()) <= 150
    assert min(counts.values()) >= 50


def test_shares_follow_weights_within_15_percent() -> None:
    weights = {"app/0": 1, "app/1": 2, "app/2": 0.5, "app/3": 3, "app/4": 0, "app/9": 5}
    members = units(5)  # app/9 is not a member: its weight is ignored
    items = [f"item-{i}" for i in range(20_000)]
    counts = loads(assign(items, members, weights=weights))
    total = sum(w for m, w in weights.items() if m in members)
    assert counts["app/4"] == 0 and counts["app/9"] == 0
    for member in ("app/0", "app/1", "app/2", "app/3"):
        ideal = len(items) * weights[member] / total
        assert abs(counts[member] / ideal - 1) <= 0.15, member


def test_a_tiny_weight_still_gets_a_point() -> None:
    counts = loads(assign(ITEMS, units(2), weights={"app/0": 1e-9}))
    assert 0 < counts["app/0"] < 100


# -- keep --------------------------------------------------------------------------------


def test_kept_items_stay_with_their_unit_even_when_hashing_says_otherwise() -> None:
    members = units(4)
    hashed = assign(ITEMS[:400], members, replicas=2)
    elsewhere = [i for i, owners in hashed.items() if owners[0] != "app/3"][:50]
    keep = dict.fromkeys(elsewhere, "app/3")
    kept = assign(ITEMS[:400], members, replicas=2, keep=keep)
    for item, owners in kept.items():
        if item in keep:
            expected_second = next(m for m in hashed[item] if m != "app/3")
            assert owners == ("app/3", expected_second)
        else:
            assert owners == hashed[item]
    mine = owned(ITEMS[:400], members, "app/3", keep=keep)
    assert set(elsewhere) <= set(mine)


def test_a_keep_naming_a_departed_or_weightless_unit_falls_back_to_hashing() -> None:
    members = units(4)
    items = ITEMS[:300]
    weights = {"app/1": 0}
    hashed = assign(items, members, weights=weights)
    keep = dict.fromkeys(items[:100], "app/9") | dict.fromkeys(items[100:200], "app/1")
    keep["not-an-item"] = "app/0"
    assert assign(items, members, weights=weights, keep=keep) == hashed
    # The same keep, once app/1 has weight again, holds its hundred items.
    kept = assign(items, members, keep=keep)
    assert all(kept[i] == ("app/1",) for i in items[100:200])
    assert "not-an-item" not in kept


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicas": 0}, "replicas must be a whole number >= 1, not 0"),
        ({"replicas": 1.5}, "replicas must be a whole number >= 1, not 1.5"),
        ({"replicas": True}, "replicas must be a whole number >= 1, not True"),
        ({"weights": {"app/1": -1}}, "weight of 'app/1' must be from 0 to 100, not -1"),
        ({"weights": {"app/1": math.nan}}, "weight of 'app/1' must be from 0 to 100, not nan"),
        ({"weights": {"app/1": math.inf}}, "weight of 'app/1' must be from 0 to 100, not inf"),
        ({"weights": {"app/1": 101}}, "weight of 'app/1' must be from 0 to 100, not 101"),
        ({"weights": {"app/1": "2"}}, "weight of 'app/1' must be a number, not '2'"),
        ({"weights": {"app/1": True}}, "weight of 'app/1' must be a number, not True"),
        ({"keep": {"item-1": 3}}, "keep['item-1'] must be a unit name, not 3"),
    ],
)
def test_bad_arguments_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        assign(ITEMS[:10], units(3), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        owned(ITEMS[:10], units(3), "app/0", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("items", "members", "message"),
    [
        (["a", 7, "b"], units(2), "items[1] is not a string: 7"),
        (["a", "\ud800"], units(2), "items must be strings that encode as UTF-8"),
        (["a"], ["app/0", 1], "members must be non-empty strings, not 1"),
        (["a"], ["app/0", ""], "members must be non-empty strings, not ''"),
        (["a"], "app/0", "members must be a collection of unit names, not 'app/0'"),
    ],
)
def test_bad_items_and_members_say_what_is_wrong(
    items: list[object], members: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        assign(items, members)  # type: ignore[arg-type]


def test_too_many_members() -> None:
    too_many = [f"app/{i}" for i in range(hashring.MAX_MEMBERS + 1)]
    with pytest.raises(ValueError, match=r"^at most 65536 members, not 65537$"):
        assign(["a"], too_many)
