"""Job groups of a member's ensemble.yaml: what can be submitted, and how big/long it is."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import yaml

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
    """Parse the ``jobs`` of an ensemble.yaml; errors name the file and field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{source}: not valid YAML ({err})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{source}: expected a mapping at the top level")
    jobs = document.get("jobs") or []
    if not isinstance(jobs, list):
        raise ValueError(f"{source}: jobs: expected a list")
    groups: dict[str, JobGroup] = {}
    for index, job in enumerate(jobs):
        group = _job_group(job, f"{source}: jobs[{index}]")
        if group.name in groups:
            raise ValueError(f"{source}: jobs[{index}].name: duplicate group {group.name!r}")
        groups[group.name] = group
    return groups


def _job_group(job: object, where: str) -> JobGroup:
    if not isinstance(job, dict):
        raise ValueError(f"{where}: expected a mapping")
    name, command = job.get("name"), job.get("command")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: required string")
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"{where}.command: required string")
    count = _positive(job.get("count", 1), f"{where}.count")
    nodes = _positive(job.get("nodes", 1), f"{where}.nodes")
    tasks = _positive(job.get("tasks", 1), f"{where}.tasks")
    workdir = job.get("workdir")
    if workdir is not None and not isinstance(workdir, str):
        raise ValueError(f"{where}.workdir: expected a string, got {workdir!r}")
    time_limit = job.get("duration", 0)
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or time_limit < 0:
        raise ValueError(f"{where}.duration: expected seconds >= 0, got {time_limit!r}")
    return JobGroup(name, command, count, nodes, sleep_duration(command), tasks, workdir or None,
                    float(time_limit))


def _positive(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    return value


def sleep_duration(command: str) -> float:
    """Seconds a ``sleep N`` command runs; anything else is assumed to take the default."""
    try:
        words = shlex.split(command)
    except ValueError:
        return DEFAULT_DURATION
    if len(words) == 2 and words[0].rsplit("/", 1)[-1] == "sleep" and _SLEEP.match(words[1]):
        return float(words[1])
    return DEFAULT_DURATION
