from __future__ import annotations

import json

import pytest

from controller.algorithms.status import (
    StatusError,
    free_nodes,
    largest_waiting_request,
    parse_status,
    queue_total,
    validate_status,
)
from tests.unit.test_algorithms_support import status


@pytest.mark.parametrize(
    "document",
    [status(sched=2, free=1, waiting={"4": 1}), {}, {"queue": {"run": 1}}, {"queue": {}, "counts": {"x": 1}}],
)
def test_valid_documents_pass_unchanged(document: dict) -> None:
    assert validate_status(document) is document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "status: expected a JSON object, got list"),
        ({"queue": []}, "status.queue: expected an object, got list"),
        ({"queue": {"sched": -1}}, "status.queue.sched: expected a non-negative integer, got -1"),
        ({"queue": {"run": "2"}}, "status.queue.run: expected a non-negative integer, got '2'"),
        ({"nodes": {"node_free_count": True}}, "status.nodes.node_free_count: expected a non-negative integer, got True"),
        ({"nodes": None}, "status.nodes: expected an object, got NoneType"),
        ({"waiting": {"many": 1}}, "status.waiting: key 'many' is not a node count"),
        ({"waiting": {"2": 1.5}}, "status.waiting.2: expected a non-negative integer, got 1.5"),
        ({"nextJobs": "1,2"}, "status.nextJobs: expected a list, got str"),
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
