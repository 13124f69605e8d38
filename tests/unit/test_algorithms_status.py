from __future__ import annotations

import json

import pytest

from controller.algorithms.status import (
    StatusError,
    free_nodes,
    history_view,
    largest_waiting_request,
    parse_status,
    queue_total,
    validate_status,
)
from tests.unit.fakes.algorithms import status


@pytest.mark.parametrize(
    "document",
    [status(sched=2, free=1, waiting={"4": 1}), {}, {"queue": {"run": 1}}, {"queue": {}, "waiting": {}}],
)
def test_valid_documents_keep_every_known_field(document: dict) -> None:
    assert validate_status(document) == document


def test_only_known_fields_are_kept() -> None:
    document = {**status(run=1, waiting={"2": 1}), "counts": {"x": 1}, "pad": "x" * 10_000}
    document["queue"]["extra"] = 5
    document["nodes"]["gpus"] = [1] * 100
    kept = validate_status(document)
    assert set(kept) == {"nodes", "queue", "waiting", "nextJobs"}
    assert "extra" not in kept["queue"] and "gpus" not in kept["nodes"]
    assert kept == status(run=1, waiting={"2": 1})


def test_waiting_keeps_the_largest_node_counts_with_canonical_keys_and_next_jobs_is_cut() -> None:
    waiting = {str(nodes): 1 for nodes in range(1, 101)} | {"007": 2}
    kept = validate_status({"waiting": waiting, "nextJobs": list(range(50))})
    assert list(kept["waiting"]) == [str(n) for n in range(69, 101)]   # the 32 largest
    assert validate_status({"waiting": {"007": 2, "7": 1}})["waiting"] == {"7": 3}
    assert kept["nextJobs"] == list(range(10))
    assert largest_waiting_request(kept) == 100


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "status: expected a JSON object, got list"),
        ({"queue": []}, "status.queue: expected an object, got list"),
        ({"queue": {"sched": -1}}, f"status.queue.sched: expected an integer from 0 to {2**63 - 1}, got -1"),
        ({"queue": {"run": "2"}}, f"status.queue.run: expected an integer from 0 to {2**63 - 1}, got '2'"),
        ({"queue": {"run": 2**63}}, f"status.queue.run: expected an integer from 0 to {2**63 - 1}, got {2**63}"),
        ({"nodes": {"node_free_count": True}},
         f"status.nodes.node_free_count: expected an integer from 0 to {2**63 - 1}, got True"),
        ({"nodes": None}, "status.nodes: expected an object, got NoneType"),
        ({"waiting": {"many": 1}}, "status.waiting: key 'many' is not a node count (1 to 6 ASCII digits)"),
        ({"waiting": {"²": 1}}, "status.waiting: key '²' is not a node count (1 to 6 ASCII digits)"),
        ({"waiting": {"١": 1}}, "status.waiting: key '١' is not a node count (1 to 6 ASCII digits)"),
        ({"waiting": {"1" * 5000: 1}},
         f"status.waiting: key '{'1' * 59}... (5002 characters) is not a node count (1 to 6 ASCII digits)"),
        ({"waiting": {"": 1}}, "status.waiting: key '' is not a node count (1 to 6 ASCII digits)"),
        ({"waiting": {"2": 1.5}}, f"status.waiting.2: expected an integer from 0 to {2**63 - 1}, got 1.5"),
        ({"nextJobs": "1,2"}, "status.nextJobs: expected a list, got str"),
        ({"nextJobs": [1, "x"]}, f"status.nextJobs[1]: expected an integer from 0 to {2**64 - 1}, got 'x'"),
    ],
)
def test_invalid_documents_name_the_field(document: object, message: str) -> None:
    with pytest.raises(StatusError) as raised:
        validate_status(document)
    assert str(raised.value) == message


def test_parse_status() -> None:
    document = status(run=3)
    assert parse_status(json.dumps(document)) == document
    with pytest.raises(StatusError, match="status: not valid JSON"):
        parse_status("{")


@pytest.mark.parametrize(("payload", "message"), [
    (json.dumps({"pad": "x" * 16_400}), "status: 16411 bytes, more than the 16384 allowed"),
    ('{"queue": {"run": ' + "9" * 4400 + "}}", "status: not readable JSON (ValueError"),
    ("[" * 8000 + "]" * 8000, "status: not readable JSON (RecursionError"),
])
def test_oversized_or_undecodable_replies_are_refused_with_a_short_reason(payload: str, message: str) -> None:
    with pytest.raises(StatusError) as raised:
        parse_status(payload)
    assert str(raised.value).startswith(message) and len(str(raised.value)) < 200


@pytest.mark.parametrize(
    ("document", "pending", "free", "largest"),
    [
        (status(new=1, priority=2, sched=3, run=9, depend=7, free=2, waiting={"1": 2, "8": 0, "3": 1}), 6, 2, 3),
        ({}, 0, 0, 0),
    ],
)
def test_readings(document: dict, pending: int, free: int, largest: int) -> None:
    assert queue_total(document, ("new", "priority", "sched")) == pending
    assert free_nodes(document) == free
    assert largest_waiting_request(document) == largest


def test_a_history_sample_keeps_what_algorithms_read_and_nothing_else() -> None:
    document = validate_status({**status(sched=3, run=1, free=1, waiting={"1": 2, "8": 1, "9": 0}),
                                "nextJobs": list(range(10))})
    view = history_view(document)
    assert view == {"nodes": document["nodes"], "queue": document["queue"], "waiting": {"8": 1}}
    for reading in (lambda d: queue_total(d, ("sched", "run")), free_nodes, largest_waiting_request):
        assert reading(view) == reading(document)
    assert history_view({"queue": {"run": 1}}) == {"queue": {"run": 1}}
