"""Check a member's ensemble.yaml against the format ensemble-python reads.

The API server cannot look inside the ``ensemble`` string, and a mistake there
only shows up when the lead broker starts; checking it here turns that into an
error on the Ensemble with the exact field path.
"""
from __future__ import annotations

import ast
import re
from typing import Any

import yaml

from api.v1alpha1.bounded_cache import ByteBoundedCache
from api.v1alpha1.codec import type_name
from api.v1alpha1.errors import FieldError

TOP_LEVEL_KEYS = ("logging", "jobs", "rules", "custom")
LOGGING_KEYS = ("debug", "heartbeat")
JOB_KEYS = ("name", "command", "workdir", "count", "nodes", "tasks", "duration")
RULE_KEYS = ("trigger", "name", "when", "action")
ACTION_KEYS = ("name", "label", "value", "repetitions", "backoff")
ACTIONS = ("submit", "custom", "terminate", "grow", "shrink")
SCALING_ACTIONS = ("grow", "shrink")
METRIC_MODELS = ("count", "mean", "variance", "iqr", "max", "min", "mad")

# ensemble-python 0.0.16 loads a trigger only if both its schema (start, metric and eight
# job-<state> names) and the MiniCluster member (start, metric, job-<Flux event>) know it:
# any other job-<event> passes its one check and fails the other, and `ensemble run` exits.
TRIGGERS = ("start", "metric", "job-depend", "job-finish")
# ensemble-python 0.0.16, which members run, understands a YAML number (equality) or a
# string "<op> <number>" with these four operators; anything else fails when it loads. It
# reads the number with \w+, so a negative one ("> -1") fails too.
WHEN_PATTERN = re.compile(r"^\s*(<=|>=|<|>)\s*\d+(\.\d+)?\s*$")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Collects the errors of one ensemble.yaml; paths start at the member's ``ensemble`` field."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[FieldError] = []
        self.custom_unreadable = False  # then its function names are unknown, and labels go unchecked

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def unknown_keys(self, data: dict, allowed: tuple[str, ...], path: str) -> None:
        for key in data:
            if key not in allowed:
                self.fail(f"{path}.{key}", f"unknown field (allowed: {', '.join(allowed)})")

    def document(self, text: str) -> None:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(err, "problem", None) or str(err)
            self.fail(self.path, f"is not valid YAML{where}: {problem}")
            return
        if not isinstance(data, dict):
            self.fail(self.path, f"must be a YAML mapping with jobs and rules, got {type_name(data)}")
            return
        self.unknown_keys(data, TOP_LEVEL_KEYS, self.path)
        if "logging" in data:
            self.logging(data["logging"], f"{self.path}.logging")
        job_names = self.jobs(data.get("jobs"), f"{self.path}.jobs")
        functions = self.custom(data.get("custom"), f"{self.path}.custom")
        self.rules(data.get("rules"), f"{self.path}.rules", job_names, functions)

    def logging(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            self.fail(path, f"must be a mapping, got {type_name(data)}")
            return
        self.unknown_keys(data, LOGGING_KEYS, path)
        if "debug" in data and not isinstance(data["debug"], bool):
            self.fail(f"{path}.debug", f"must be true or false, got {data['debug']!r}")
        heartbeat = data.get("heartbeat")
        if heartbeat is not None and not (_is_number(heartbeat) and heartbeat >= 0):
            self.fail(f"{path}.heartbeat", f"must be a number of seconds >= 0, got {heartbeat!r}")

    def jobs(self, data: Any, path: str) -> set[str]:
        """Checks the jobs; returns the names defined (for submit labels)."""
        if data is None:
            self.fail(path, "required field is missing (a list of jobs, may be empty)")
            return set()
        if not isinstance(data, list):
            self.fail(path, f"must be a list, got {type_name(data)}")
            return set()
        names: set[str] = set()
        for index, job in enumerate(data):
            name = self.job(job, f"{path}[{index}]")
            if name is None:
                continue
            if name in names:
                self.fail(f"{path}[{index}].name", f"duplicate job name {name!r}")
            names.add(name)
        return names

    def job(self, job: Any, path: str) -> str | None:
        if not isinstance(job, dict):
            self.fail(path, f"must be a mapping, got {type_name(job)}")
            return None
        self.unknown_keys(job, JOB_KEYS, path)
        for key in ("name", "command"):
            if job.get(key) is None:
                self.fail(f"{path}.{key}", "required field is missing")
            elif not isinstance(job[key], str) or not job[key].strip():
                self.fail(f"{path}.{key}", f"must be a non-empty string, got {job[key]!r}")
        if "workdir" in job and not isinstance(job["workdir"], str):
            self.fail(f"{path}.workdir", f"must be a string, got {job['workdir']!r}")
        for key in ("count", "nodes", "tasks"):
            if key in job and not (_is_int(job[key]) and job[key] > 0):
                self.fail(f"{path}.{key}", f"must be a positive integer, got {job[key]!r}")
        if "duration" in job and not (_is_number(job["duration"]) and job["duration"] >= 0):
            self.fail(f"{path}.duration", f"must be a number of seconds >= 0, got {job['duration']!r}")
        name = job.get("name")
        return name if isinstance(name, str) and name.strip() else None

    def custom(self, data: Any, path: str) -> set[str] | None:
        """Checks the custom Python source; returns its top-level function names (None: no block)."""
        if data is None:
            return None
        if not isinstance(data, str):
            self.fail(path, f"must be a string of Python source, got {type_name(data)}")
            self.custom_unreadable = True
            return set()
        try:
            module = ast.parse(data)
        except SyntaxError as err:
            self.fail(path, f"is not valid Python (line {err.lineno}): {err.msg}")
            self.custom_unreadable = True
            return set()
        return {node.name for node in module.body if isinstance(node, ast.FunctionDef)}

    def rules(self, data: Any, path: str, job_names: set[str], functions: set[str] | None) -> None:
        if data is None:
            self.fail(path, "required field is missing (a list of rules)")
            return
        if not isinstance(data, list):
            self.fail(path, f"must be a list, got {type_name(data)}")
            return
        for index, rule in enumerate(data):
            self.rule(rule, f"{path}[{index}]", job_names, functions)

    def rule(self, rule: Any, path: str, job_names: set[str], functions: set[str] | None) -> None:
        if not isinstance(rule, dict):
            self.fail(path, f"must be a mapping, got {type_name(rule)}")
            return
        self.unknown_keys(rule, RULE_KEYS, path)
        trigger = rule.get("trigger")
        if trigger is None:
            self.fail(f"{path}.trigger", "required field is missing")
        elif trigger not in TRIGGERS:
            self.fail(f"{path}.trigger", f"must be one of {', '.join(TRIGGERS)} (what ensemble-python "
                                         f"0.0.16 runs), got {trigger!r}")
        elif trigger != "start":
            self.trigger_name(rule.get("name"), trigger, f"{path}.name")
        if "when" in rule:
            self.when(rule["when"], f"{path}.when")
        if rule.get("action") is None:
            self.fail(f"{path}.action", "required field is missing")
        else:
            self.action(rule["action"], f"{path}.action", job_names, functions)

    def trigger_name(self, name: Any, trigger: str, path: str) -> None:
        """A metric rule needs its metric; a job-<event> rule without a name fires for every
        job, as ensemble-python's schema allows (it requires only trigger and action)."""
        if name is None:
            if trigger == "metric":
                self.fail(path, f"required for trigger {trigger}: a metric name, e.g. count.<job>.success")
        elif not isinstance(name, str) or not name:
            self.fail(path, f"must be a non-empty string, got {name!r}")
        elif trigger == "metric" and name.split(".")[0] not in METRIC_MODELS:
            self.fail(path, f"metric {name!r} must start with one of {', '.join(METRIC_MODELS)}, "
                            "e.g. count.<job>.success or mean.<job>-pending")

    def when(self, when: Any, path: str) -> None:
        if _is_number(when):
            return
        if not isinstance(when, str) or not WHEN_PATTERN.match(when):
            self.fail(path, 'must be a number (equality) or a comparison "<op> <number>" with op one of '
                            f"< <= > >= (what ensemble-python understands), got {when!r}")

    def action(self, action: Any, path: str, job_names: set[str], functions: set[str] | None) -> None:
        if not isinstance(action, dict):
            self.fail(path, f"must be a mapping with a name, got {type_name(action)}")
            return
        self.unknown_keys(action, ACTION_KEYS, path)
        name = action.get("name")
        if name is None:
            self.fail(f"{path}.name", "required field is missing")
        elif name not in ACTIONS:
            self.fail(f"{path}.name", f"must be one of {', '.join(ACTIONS)}, got {name!r}")
        label = action.get("label")
        if label is not None and not isinstance(label, str):
            self.fail(f"{path}.label", f"must be a string, got {label!r}")
        elif name == "submit":
            self.submit_label(label, f"{path}.label", job_names)
        elif name == "custom":
            self.custom_label(label, f"{path}.label", functions)
        for key in ("repetitions", "backoff"):
            if key in action and not (_is_int(action[key]) and action[key] >= 0):
                self.fail(f"{path}.{key}", f"must be an integer >= 0, got {action[key]!r}")
        if "value" in action:
            self.value(action["value"], name in SCALING_ACTIONS, f"{path}.value")

    def submit_label(self, label: str | None, path: str, job_names: set[str]) -> None:
        if label is None:
            self.fail(path, "required for submit: the name of the job to submit")
        elif label not in job_names:
            known = ", ".join(sorted(job_names)) or "none"
            self.fail(path, f"names no defined job: {label!r} (jobs: {known})")

    def custom_label(self, label: str | None, path: str, functions: set[str] | None) -> None:
        if label is None:
            self.fail(path, "required for custom: the name of a function in custom")
        elif self.custom_unreadable:
            return
        elif functions is None:
            self.fail(path, f"custom action {label!r} needs a top-level custom: block defining it")
        elif label not in functions:
            self.fail(path, f"names no function defined in custom: {label!r}")

    def value(self, value: Any, scaling: bool, path: str) -> None:
        if scaling and not (_is_int(value) and value > 0):
            self.fail(path, f"must be a positive integer (nodes to grow or shrink by), got {value!r}")
        elif not (_is_number(value) and value > 0):
            self.fail(path, f"must be a positive number, got {value!r}")


# Bytes of ensemble.yaml (and paths) whose results are remembered: every member of every
# Ensemble watched, at the schema's 64 KiB per text, would be far more.
CHECK_CACHE_BYTES = 8 * 1024 * 1024


def check_ensemble_yaml(text: str, path: str) -> list[FieldError]:
    """Every problem in one member's ensemble.yaml; ``path`` is the field holding it."""
    return list(_CHECKED.get((text, path)))


def _check(key: tuple[str, str]) -> tuple[FieldError, ...]:
    """Memoized (``_CHECKED``): the reconciler validates every spec on every reconcile (each poll
    result triggers one), while the text changes only with the spec; parsing the YAML was about
    three quarters of ``validate()``'s time."""
    text, path = key
    checker = _Checker(path)
    checker.document(text)
    return tuple(checker.errors)


_CHECKED: ByteBoundedCache[tuple[str, str], tuple[FieldError, ...]] = ByteBoundedCache(
    _check, lambda key: len(key[0]) + len(key[1]), CHECK_CACHE_BYTES)
