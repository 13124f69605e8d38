"""Job groups of a member's ensemble.yaml: what can be submitted, and how big/long it is."""
from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass

from api.v1alpha1.ensemble_yaml import Job, load_ensemble_yaml

log = logging.getLogger(__name__)

DEFAULT_DURATION = 1.0
_SLEEP = re.compile(r"^\d+(\.\d+)?$")


@dataclass(frozen=True)
class JobGroup:
    """A ``jobs`` entry. ``duration`` is how long the simulator runs it; ``tasks``, ``workdir``
    and ``time_limit`` (the entry's own ``duration``) are what Flux submissions carry."""

    name: str
    command: str
    count: int
    nodes: int
    duration: float
    tasks: int = 1
    workdir: str | None = None
    time_limit: float = 0.0


def load_job_groups(text: str, source: str = "ensemble.yaml") -> dict[str, JobGroup]:
    """The submittable ``jobs`` of an ensemble.yaml, read through the one model
    (``api.v1alpha1.ensemble_yaml``); errors name the file and field.

    A file ensemble-python would refuse is refused. Of a group with several sets (ensemble-python
    submits them all) the first is the one submitted here; a set whose count, nodes or tasks is not
    a positive integer, or whose duration is negative, is not submittable (Flux would refuse it)
    and is left out, logged with the reason.
    """
    loaded = load_ensemble_yaml(text, source)
    if loaded.config is None:
        raise ValueError("; ".join(str(error) for error in loaded.errors))
    groups: dict[str, JobGroup] = {}
    for name, (job, *_) in loaded.config.groups().items():
        unusable = _unsubmittable(job)
        if unusable:
            log.warning("%s: job group %r cannot be submitted: %s", source, name, unusable)
            continue
        groups[name] = JobGroup(name, job.command, job.count, job.nodes, sleep_duration(job.command),
                                job.tasks or 1, job.workdir or None, float(job.duration or 0))
    return groups


def _unsubmittable(job: Job) -> str | None:
    for key in ("count", "nodes", "tasks"):
        value = getattr(job, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return f"{key} must be a positive integer, got {value!r}"
    if job.duration is not None and job.duration < 0:
        return f"duration must be seconds >= 0, got {job.duration!r}"
    return None


def sleep_duration(command: str) -> float:
    """Seconds a ``sleep N`` command runs; anything else is assumed to take the default."""
    try:
        words = shlex.split(command)
    except ValueError:
        return DEFAULT_DURATION
    if len(words) == 2 and words[0].rsplit("/", 1)[-1] == "sleep" and _SLEEP.match(words[1]):
        return float(words[1])
    return DEFAULT_DURATION
