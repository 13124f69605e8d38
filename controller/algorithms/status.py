"""The lead-broker status document: validation and the few readings algorithms need.

Status arrives over the network from code the operator does not control, so it is
checked once on receipt (a malformed document becomes a failed poll with a message
naming the field) and algorithms can then read counts without defensive code.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

QUEUE_FIELDS = ("new", "depend", "priority", "sched", "run", "cleanup", "inactive")
NODE_FIELDS = ("node_cores_free", "node_cores_up", "node_up_count", "node_free_count")
PENDING_FIELDS = ("new", "priority", "sched")
ACTIVE_FIELDS = ("new", "depend", "priority", "sched", "run", "cleanup")


class StatusError(ValueError):
    """A status document that does not have the agreed shape."""


def _count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StatusError(f"{path}: expected a non-negative integer, got {value!r}")
    return value


def _section(status: Mapping[str, object], name: str) -> Mapping[str, object]:
    section = status.get(name, {})
    if not isinstance(section, Mapping):
        raise StatusError(f"status.{name}: expected an object, got {type(section).__name__}")
    return section


def validate_status(status: object) -> dict:
    """Return ``status`` unchanged if its known fields have the agreed types.

    Sections and fields may be missing (read as zero); unknown keys are kept, since
    members may report more than this operator reads.
    """
    if not isinstance(status, dict):
        raise StatusError(f"status: expected a JSON object, got {type(status).__name__}")
    for section, fields in (("nodes", NODE_FIELDS), ("queue", QUEUE_FIELDS)):
        values = _section(status, section)
        for field in fields:
            if field in values:
                _count(values[field], f"status.{section}.{field}")
    for nodes, count in _section(status, "waiting").items():
        if not str(nodes).isdigit():
            raise StatusError(f"status.waiting: key {nodes!r} is not a node count")
        _count(count, f"status.waiting.{nodes}")
    next_jobs = status.get("nextJobs", [])
    if not isinstance(next_jobs, list):
        raise StatusError(f"status.nextJobs: expected a list, got {type(next_jobs).__name__}")
    return status


def parse_status(payload: str) -> dict:
    """Decode and validate the JSON payload of a RequestStatus response."""
    try:
        document = json.loads(payload)
    except json.JSONDecodeError as error:
        raise StatusError(f"status: not valid JSON ({error})") from error
    return validate_status(document)


def queue_total(status: Mapping[str, object], fields: tuple[str, ...]) -> int:
    """Sum of the given queue counters (missing ones count zero)."""
    queue = _section(status, "queue")
    return sum(_count(queue.get(field, 0), f"status.queue.{field}") for field in fields)


def free_nodes(status: Mapping[str, object]) -> int:
    nodes = _section(status, "nodes")
    return _count(nodes.get("node_free_count", 0), "status.nodes.node_free_count")


def largest_waiting_request(status: Mapping[str, object]) -> int:
    """Nodes wanted by the largest job still waiting, 0 when none waits."""
    waiting = _section(status, "waiting")
    return max((int(nodes) for nodes, count in waiting.items() if _count(count, f"status.waiting.{nodes}") > 0),
               default=0)
