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


# Bounds on what a member may make the operator keep (members are tenants): a status is
# kept for every member, in its history and in ``status.members[].lastPoll``.
MAX_STATUS_BYTES = 16 * 1024      # a reply longer than this is refused before it is decoded
MAX_NODE_DIGITS = 6               # a ``waiting`` key: a job of up to 999,999 nodes
MAX_WAITING_ENTRIES = 32          # distinct node counts kept, the largest first
MAX_NEXT_JOBS = 10                # job ids kept, as the status endpoint sends them
MAX_COUNT = 2**63 - 1             # what the API server stores as an integer
MAX_JOB_ID = 2**64 - 1            # a Flux job id is an unsigned 64-bit integer


class StatusError(ValueError):
    """A status document that does not have the agreed shape."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:60]}... ({len(text)} characters)"


def _count(value: object, path: str, most: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise StatusError(f"{path}: expected an integer from 0 to {most}, got {_short(value)}")
    return value


def _section(status: Mapping[str, object], name: str) -> Mapping[str, object]:
    section = status.get(name, {})
    if not isinstance(section, Mapping):
        raise StatusError(f"status.{name}: expected an object, got {type(section).__name__}")
    return section


def _waiting(section: Mapping[str, object]) -> dict[str, int]:
    """``{"<nodes>": count}`` with canonical decimal keys ("007" is "7"); the
    ``MAX_WAITING_ENTRIES`` largest node counts are kept, since algorithms read the largest
    waiting job and fair share weighs demand by nodes."""
    waiting: dict[int, int] = {}
    for key, count in section.items():
        if not (isinstance(key, str) and key.isdecimal() and key.isascii() and len(key) <= MAX_NODE_DIGITS):
            raise StatusError(f"status.waiting: key {_short(key)} is not a node count "
                              f"(1 to {MAX_NODE_DIGITS} ASCII digits)")
        nodes = int(key)
        waiting[nodes] = min(MAX_COUNT, waiting.get(nodes, 0) + _count(count, f"status.waiting.{key}"))
    largest = sorted(waiting, reverse=True)[:MAX_WAITING_ENTRIES]
    return {str(nodes): waiting[nodes] for nodes in sorted(largest)}


def validate_status(status: object) -> dict:
    """The known fields of ``status``, checked and bounded; ``StatusError`` names a bad field.

    Sections and fields may be missing (read as zero). Unknown keys are dropped: whatever
    a member adds would otherwise be kept for it (history, ``lastPoll``) at its own size.
    """
    if not isinstance(status, dict):
        raise StatusError(f"status: expected a JSON object, got {type(status).__name__}")
    clean: dict[str, object] = {}
    for section, fields in (("nodes", NODE_FIELDS), ("queue", QUEUE_FIELDS)):
        values = _section(status, section)
        if section in status:
            clean[section] = {field: _count(values[field], f"status.{section}.{field}")
                              for field in fields if field in values}
    if "waiting" in status:
        clean["waiting"] = _waiting(_section(status, "waiting"))
    if "nextJobs" in status:
        next_jobs = status["nextJobs"]
        if not isinstance(next_jobs, list):
            raise StatusError(f"status.nextJobs: expected a list, got {type(next_jobs).__name__}")
        clean["nextJobs"] = [_count(job, f"status.nextJobs[{index}]", MAX_JOB_ID)
                             for index, job in enumerate(next_jobs[:MAX_NEXT_JOBS])]
    return clean


def history_view(status: Mapping[str, object]) -> dict:
    """What algorithms read of a validated status, kept per poll in a member's history:
    ``nodes``, ``queue`` and the largest waiting request. The rest (every ``waiting`` entry,
    ``nextJobs``) is shown in ``lastPoll`` only, so each sample costs a fixed small amount."""
    view = {section: status[section] for section in ("nodes", "queue") if section in status}
    largest = largest_waiting_request(status)
    if largest:
        view["waiting"] = {key: count for key, count in _section(status, "waiting").items()
                           if int(key) == largest and count}
    return view


def parse_status(payload: str) -> dict:
    """Decode and validate the JSON payload of a RequestStatus response (at most
    ``MAX_STATUS_BYTES``: the size is checked before any decoding)."""
    size = len(payload.encode())
    if size > MAX_STATUS_BYTES:
        raise StatusError(f"status: {size} bytes, more than the {MAX_STATUS_BYTES} allowed")
    try:
        document = json.loads(payload)
    except json.JSONDecodeError as error:
        raise StatusError(f"status: not valid JSON ({error})") from error
    except (ValueError, RecursionError) as error:  # an integer of 4,300+ digits; nesting past the stack
        raise StatusError(f"status: not readable JSON ({type(error).__name__}: {str(error)[:80]})") from error
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
