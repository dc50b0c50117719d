"""Parsing is strict and bounded: valid documents round-trip, anything else is a
MalformedDataError naming the owner, never another exception."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charm_coordinator.documents import (
    AppDoc,
    Entry,
    LockRecord,
    Mode,
    UnitDoc,
    Wake,
    dump_app_doc,
    dump_unit_doc,
    parse_app_doc,
    parse_unit_doc,
)
from charm_coordinator.errors import MalformedDataError

lock_names = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)
unit_names = st.builds(lambda n: f"coordinated-app/{n}", st.integers(0, 500))
counts = st.integers(0, 2**40)

records = st.builds(
    LockRecord,
    id=counts,
    released=counts,
    mode=st.sampled_from(Mode),
    at=st.one_of(st.none(), st.just("2026-11-21T23:00:00Z")),
    priority=st.integers(0, 1_000_000),
)
zones = st.one_of(st.none(), st.sampled_from(["az1", "us-east-1a", "zone/2"]))
unit_docs = st.builds(
    UnitDoc, locks=st.dictionaries(lock_names, records, max_size=5), ack=counts, zone=zones
)


@st.composite
def app_docs(draw: st.DrawFn) -> AppDoc:
    queues: dict[str, tuple[Entry, ...]] = {}
    seq = 0
    for lock in draw(st.lists(lock_names, unique=True, max_size=3)):
        entries = []
        for unit in draw(st.lists(unit_names, unique=True, min_size=1, max_size=6)):
            seq += draw(st.integers(1, 3))
            entries.append(
                Entry(seq, unit, draw(counts), draw(st.sampled_from(Mode)), draw(zones))
            )
        queues[lock] = tuple(entries)
    wake = draw(st.one_of(st.none(), st.builds(Wake, unit=unit_names, token=counts)))
    paused = draw(st.frozensets(lock_names, max_size=2))
    return AppDoc(seq=seq + draw(st.integers(0, 5)), queues=queues, wake=wake, paused=paused)


@given(unit_docs)
def test_unit_doc_round_trips(doc: UnitDoc) -> None:
    parsed = parse_unit_doc(dump_unit_doc(doc), "coordinated-app/0")
    expected = {
        k: r._replace(at=r.at if r.pending else None, priority=r.priority if r.pending else 0)
        for k, r in doc.locks.items()
    }
    assert dict(parsed.locks) == expected
    assert parsed.ack == doc.ack
    assert parsed.zone == doc.zone


@given(app_docs())
def test_app_doc_round_trips(doc: AppDoc) -> None:
    assert parse_app_doc(dump_app_doc(doc), "coordinated-app") == doc


@given(unit_docs)
def test_encoding_is_canonical_so_unchanged_docs_cost_no_write(doc: UnitDoc) -> None:
    raw = dump_unit_doc(doc)
    assert dump_unit_doc(parse_unit_doc(raw, "u/0")) == raw


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_garbage_is_a_malformed_data_error_naming_the_owner(raw: str) -> None:
    for parse in (parse_unit_doc, parse_app_doc):
        try:
            parse(raw, "coordinated-app/7")
        except MalformedDataError as e:
            assert e.owner == "coordinated-app/7"
            assert "coordinated-app/7" in str(e)


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {"v": st.just(1), "locks": st.dictionaries(st.text(max_size=5), json_values, max_size=3)},
        optional={"ack": json_values},
    )
)
def test_versioned_garbage_inside_a_valid_envelope_is_rejected_or_valid(data: object) -> None:
    try:
        doc = parse_unit_doc(json.dumps(data), "coordinated-app/1")
    except MalformedDataError:
        return
    for name, rec in doc.locks.items():
        assert isinstance(name, str) and isinstance(rec.id, int) and isinstance(rec.released, int)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "not JSON"),
        ("[]", "not an object"),
        ('{"v": 2, "locks": {}}', "format version 2"),
        ('{"v": 1}', "missing locks"),
        ('{"v": 1, "locks": {"restart": {"id": -1, "released": 0}}}', "id"),
        ('{"v": 1, "locks": {"restart": {"id": true, "released": 0}}}', "id"),
        ('{"v": 1, "locks": {"restart": {"id": 1.5, "released": 0}}}', "id"),
        ('{"v": 1, "locks": {"bad name!": {"id": 1, "released": 0}}}', "lock name"),
        ('{"v": 1, "locks": {}, "extra": 1}', "unexpected extra"),
        ('{"v": 1, "locks": {"r": {"id": 1, "released": 0, "priority": -1}}}', "priority"),
        ('{"v": 1, "locks": {"r": {"id": 1, "released": 0, "priority": 10**7}}}', "not JSON"),
        ('{"v": 1, "locks": {"r": {"id": 1, "released": 0, "priority": 10000000}}}', "priority"),
        ('{"v": 1, "locks": {}, "zone": "a zone with spaces"}', "zone"),
        ('{"v": 1, "locks": {}, "zone": 7}', "zone"),
        ("[" * 100_000 + "]" * 100_000, "bytes"),
        ("[" * 5000 + "]" * 5000, "not JSON"),
    ],
)
def test_named_malformations(raw: str, reason: str) -> None:
    with pytest.raises(MalformedDataError, match=reason):
        parse_unit_doc(raw, "coordinated-app/2")


def test_a_16_mib_value_is_refused_without_being_parsed() -> None:
    raw = '{"v": 1, "locks": {}, "pad": "' + "x" * (16 * 1024 * 1024) + '"}'
    start = time.perf_counter()
    with pytest.raises(MalformedDataError, match="more than"):
        parse_app_doc(raw, "coordinated-app")
    assert time.perf_counter() - start < 1.0  # a correctness bound, not a benchmark


@pytest.mark.parametrize(
    "queues",
    [
        {"restart": [[2, "app/1", 1, "x"], [1, "app/2", 1, "x"]]},  # seq order
        {"restart": [[1, "app/1", 1, "x"], [2, "app/1", 1, "x"]]},  # duplicate request
        {"restart": [[9, "app/1", 1, "x"]]},  # seq above the counter
        {"restart": [[1, "not a unit", 1, "x"]]},
        {"restart": [[1, "app/1", 1, "q"]]},
    ],
)
def test_inconsistent_queues_are_rejected(queues: object) -> None:
    raw = json.dumps({"v": 1, "seq": 5, "queues": queues})
    with pytest.raises(MalformedDataError):
        parse_app_doc(raw, "coordinated-app")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"v": 1, "seq": 1, "queues": {"r": [[1, "a/0", 1, "x", "bad zone"]]}}', "zone"),
        ('{"v": 1, "seq": 1, "queues": {"r": [[1, "a/0", 1, "x", "z", 9]]}}', "zone"),
        ('{"v": 1, "seq": 0, "queues": {}, "paused": "restart"}', "paused"),
        ('{"v": 1, "seq": 0, "queues": {}, "paused": ["bad name!"]}', "lock name"),
    ],
)
def test_named_app_malformations(raw: str, reason: str) -> None:
    with pytest.raises(MalformedDataError, match=reason):
        parse_app_doc(raw, "coordinated-app")


def test_empty_and_missing_mean_no_data() -> None:
    assert parse_unit_doc(None, "u/0") == UnitDoc()
    assert parse_unit_doc("", "u/0") == UnitDoc()
    assert parse_app_doc("", "app") == AppDoc()
    assert dump_unit_doc(UnitDoc()) == ""
    assert dump_app_doc(AppDoc()) == ""
