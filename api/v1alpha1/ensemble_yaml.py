"""A member's ensemble.yaml: one model for the validator and for every reader of the file.

``load_ensemble_yaml`` returns the file's errors, its warnings and, when it has no error,
the model (``EnsembleConfig``):

- **errors** are exactly what makes the member's ensemble-python refuse the file when
  ``ensemble run`` loads it (0.0.16: its JSON schema, its Rule/Action checks, the MiniCluster
  member's triggers; ``tests/compat`` asks ensemble-python itself on a corpus of files), plus
  this operator's own limits on what a tenant may make it parse (``MAX_DEPTH``,
  ``MAX_NODES``; the CRD bounds the text to 64 KiB);
- **warnings** are what ensemble-python loads but will not do what it seems to say: a rule
  that can never fire, a metric no job group has, a fraction ensemble-python drops from a
  ``when`` threshold, a field it ignores, a value that fails only when its rule fires.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from api.v1alpha1.bounded_cache import ByteBoundedCache
from api.v1alpha1.codec import type_name
from api.v1alpha1.errors import FieldError
from api.v1alpha1.yaml_parse import safe_load

# The version whose loading rules this module implements (what `ensemble run` refuses).
RULES_VERSION = "0.0.16"

TOP_LEVEL_KEYS = ("logging", "jobs", "rules", "custom")
LOGGING_KEYS = ("debug", "heartbeat")
JOB_KEYS = ("name", "command", "workdir", "count", "nodes", "tasks", "duration")
RULE_KEYS = ("trigger", "name", "when", "action")
ACTION_KEYS = ("name", "label", "value", "repetitions", "backoff")
ACTIONS = ("submit", "custom", "terminate", "grow", "shrink")
SCALING_ACTIONS = ("grow", "shrink")
METRIC_MODELS = ("count", "mean", "variance", "iqr", "max", "min", "mad")
COUNT_METRICS = ("success", "failed", "finished")
DATUM_METRICS = ("pending", "duration")
DEFAULT_SCALING_HEARTBEAT = 60.0

# 0.0.16's schema names these triggers; its MiniCluster member runs start, metric and
# job-<Flux event>; `ensemble run` needs both, which leaves four.
SCHEMA_TRIGGERS = ("job-depend", "job-sched", "job-run", "job-cancel", "job-cleanup", "job-finish",
                   "job-success", "job-fail", "start", "metric")
TRIGGERS = ("start", "metric", "job-depend", "job-finish")
# How 0.0.16 reads a `when` string (Rule.run_when): the first "<op> <word>", the word through
# float(); so "=> 3" is "> 3", "> 0.5" is "> 0", and "== 3", "!= 3", "> -1", "7" do not load.
WHEN_STRING = re.compile(r"(?P<op>[<>]=?)\s*(?P<number>\w+)")
WHEN_OPERATORS = ("<", "<=", ">", ">=")

# Our limits on what one tenant's text may make the operator walk (errors, not ensemble-python's).
MAX_DEPTH = 32          # nested mappings/lists
MAX_NODES = 40_000      # values, aliases counted each time used (64 KiB without aliases stays under)


class WhenError(ValueError):
    """A `when` that ensemble-python cannot load."""


@dataclass(frozen=True)
class When:
    """A rule's condition on a metric value, read as ensemble-python reads it."""

    op: str          # "==" for a YAML number, else one of WHEN_OPERATORS
    number: float
    dropped: str = ""  # what ensemble-python ignores after the number it read (".5" of "> 0.5")
    skipped: str = ""  # and before the operator it found ("=" of "=> 3")

    @classmethod
    def parse(cls, value: Any) -> When:
        if _is_number(value):
            return cls("==", float(value))
        if not isinstance(value, str):
            raise WhenError(f"must be a number or a string, got {type_name(value)}")
        match = WHEN_STRING.search(value)
        if match is None:
            raise WhenError(f'must be a number (equality) or a string "<op> <number>" with op one of '
                            f"{' '.join(WHEN_OPERATORS)}, got {value!r}")
        try:
            number = float(match["number"])
        except ValueError:
            raise WhenError(f"{match['number']!r} in {value!r} is not a number") from None
        return cls(match["op"], number, value[match.end():].strip(), value[:match.start()].strip())

    def matches(self, value: float) -> bool:
        return {"==": value == self.number, "<": value < self.number, "<=": value <= self.number,
                ">": value > self.number, ">=": value >= self.number}[self.op]

    @property
    def truncated(self) -> bool:
        """ensemble-python compares with the integer part only ("> 0.5" compares with 0)."""
        return bool(re.match(r"\.\d", self.dropped))

    def __str__(self) -> str:
        return f"{self.op} {self.number:g}"


@dataclass(frozen=True)
class Action:
    """``rules[].action``; values are as written (ensemble-python checks them only when it fires)."""

    name: str
    label: Any = None
    value: Any = 1
    repetitions: Any = 1
    backoff: Any = None

    @property
    def scaling(self) -> bool:
        return self.name in SCALING_ACTIONS


@dataclass(frozen=True)
class Rule:
    index: int
    trigger: str
    name: str | None
    when: When | None
    action: Action

    @property
    def where(self) -> str:
        return f"rules[{self.index}]"

    @property
    def metric(self) -> str:
        """The metric path a metric rule reads: its name, or (as ensemble-python) the trigger."""
        return self.name or self.trigger

    def describe(self) -> str:
        return " ".join(str(part) for part in (self.where, self.trigger, self.name, self.when) if part)


@dataclass(frozen=True)
class Job:
    """One ``jobs`` entry (a job set of group ``name``); numbers are as written."""

    name: str
    command: str
    count: Any = 1
    nodes: Any = 1
    tasks: Any = None
    workdir: str | None = None
    duration: Any = None


@dataclass(frozen=True)
class EnsembleConfig:
    jobs: tuple[Job, ...]
    rules: tuple[Rule, ...]
    debug: bool = False
    heartbeat_setting: float = 0.0
    custom: str | None = None

    def groups(self) -> dict[str, tuple[Job, ...]]:
        """Job sets by group name, in file order (a name may have several sets: all are submitted)."""
        groups: dict[str, tuple[Job, ...]] = {}
        for job in self.jobs:
            groups[job.name] = groups.get(job.name, ()) + (job,)
        return groups

    @property
    def heartbeat(self) -> float:
        """``logging.heartbeat``; unset or 0 means none, unless a grow/shrink rule needs one (60 s)."""
        if not self.heartbeat_setting and any(rule.action.scaling for rule in self.rules):
            return DEFAULT_SCALING_HEARTBEAT
        return self.heartbeat_setting


@dataclass(frozen=True)
class LoadedEnsembleYaml:
    config: EnsembleConfig | None
    errors: tuple[FieldError, ...] = ()
    warnings: tuple[FieldError, ...] = ()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# ---- our limits ------------------------------------------------------------------------------

def _limit_error(data: Any) -> str | None:
    """Depth and size of the parsed document, walked without recursion (aliases count each use)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return f"has more than {MAX_NODES} values (aliases counted each time used): this operator's limit"
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                return f"is nested deeper than {MAX_DEPTH} levels: this operator's limit"
            children = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return None


# ---- custom: which labels ensemble-python's getattr(module, label) finds ----------------------

_TEMPLATE_NAMES = frozenset({"Action", "Rule"})   # imported by the script ensemble-python prepends
_MODULE_NAMES = frozenset({"__name__", "__file__", "__loader__", "__spec__", "__builtins__", "__dict__",
                           "__class__"})


@dataclass
class _Custom:
    present: bool
    error: str | None = None
    names: set[str] = field(default_factory=set)   # bound to something truthy
    falsy: set[str] = field(default_factory=set)   # bound last (in file order) to a falsy constant
    star_import: bool = False                      # names bound in ways not followed here

    def finds(self, label: Any) -> bool | None:
        """Whether the label resolves to a truthy attribute; None when it cannot be known here."""
        if not self.present:
            return isinstance(label, str) and bool(getattr(None, label, None))
        if self.error is not None:
            return None
        if label in self.names or label in _TEMPLATE_NAMES or label in _MODULE_NAMES:
            return True
        return None if self.star_import else False


def _custom(source: Any) -> _Custom:
    if source is None:
        return _Custom(present=False)
    custom = _Custom(present=True)
    try:
        module = ast.parse(f"from ensemble.config.types import Action, Rule\n{source}", "custom")
        compile(module, "custom", "exec", dont_inherit=True)   # what ast.parse lets through
    except (RecursionError, MemoryError):
        custom.error = "is not valid Python: nested too deeply to compile (ensemble-python cannot load it either)"
        return custom
    except (SyntaxError, ValueError) as err:
        line = getattr(err, "lineno", None)
        custom.error = f"is not valid Python{f' (line {line - 1})' if line else ''}: {getattr(err, 'msg', err)}"
        return custom
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            custom.names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    custom.star_import = True
                else:
                    custom.names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            falsy = isinstance(node, ast.Assign) and isinstance(value, ast.Constant) and not value.value
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        (custom.falsy if falsy else custom.names).add(name.id)
                        (custom.names if falsy else custom.falsy).discard(name.id)
        elif isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
            custom.star_import = True   # conditionally bound names: not decided here
    return custom


# ---- the checks --------------------------------------------------------------------------------

class _Loader:
    """Errors (ensemble-python's refusals) and warnings of one text; paths start at ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[FieldError] = []
        self.warnings: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(FieldError(path, message))

    def ignored_keys(self, data: dict, known: tuple[str, ...], path: str) -> None:
        for key in data:
            if key not in known:
                self.warn(f"{path}.{key}", f"is not a field ensemble-python reads (known: {', '.join(known)}); "
                                           "it is ignored")

    def load(self, text: str) -> EnsembleConfig | None:
        try:
            # yaml.safe_load's value or error, through libyaml where the two cannot differ
            # (yaml_parse.py). Results are memoized (_LOADED).
            data = safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            self.error(self.path, f"is not valid YAML{where}: {getattr(err, 'problem', None) or err}")
            return None
        except RecursionError:
            self.error(self.path, f"is nested deeper than {MAX_DEPTH} levels: this operator's limit")
            return None
        limit = _limit_error(data)
        if limit is not None:
            self.error(self.path, limit)
            return None
        if not isinstance(data, dict):
            self.error(self.path, f"must be a YAML mapping with jobs and rules, got {type_name(data)}")
            return None
        return self.document(data)

    def document(self, data: dict) -> EnsembleConfig | None:
        for key in ("jobs", "rules"):
            if key not in data:
                self.error(f"{self.path}.{key}", "required field is missing (a list, may be empty)")
        if "additionalProperties" in data:
            # 0.0.16's schema lists additionalProperties: False among the properties, so this key
            # (and only this one) is refused; other unknown keys are ignored.
            self.error(f"{self.path}.additionalProperties", "is refused by ensemble-python's schema")
        for key in data:
            if key not in TOP_LEVEL_KEYS and key != "additionalProperties":
                self.warn(f"{self.path}.{key}", "is not a field ensemble-python reads "
                                                f"(known: {', '.join(TOP_LEVEL_KEYS)}); it is ignored")
        debug, heartbeat = self.logging(data.get("logging", {}), f"{self.path}.logging")
        custom = data.get("custom")
        if "custom" in data and not isinstance(custom, str):
            self.error(f"{self.path}.custom", f"must be a string of Python source, got {type_name(custom)}")
            custom = None
        jobs = self.jobs(data.get("jobs"), f"{self.path}.jobs") if "jobs" in data else []
        checked = _custom(custom)
        if checked.error:
            self.error(f"{self.path}.custom", checked.error)
        rules = self.rules(data.get("rules"), f"{self.path}.rules", checked) if "rules" in data else []
        if self.errors:
            return None
        config = EnsembleConfig(tuple(jobs), tuple(rules), debug, heartbeat, custom)
        self.usefulness(config)
        return config

    def logging(self, data: Any, path: str) -> tuple[bool, float]:
        if not isinstance(data, dict):
            self.error(path, f"must be a mapping, got {type_name(data)}")
            return False, 0.0
        for key in data:
            if key not in LOGGING_KEYS:
                self.error(f"{path}.{key}", f"unknown field (allowed: {', '.join(LOGGING_KEYS)})")
        debug = data.get("debug", False)
        if not isinstance(debug, bool):
            self.error(f"{path}.debug", f"must be true or false, got {debug!r}")
        heartbeat = data.get("heartbeat", 0)
        if "heartbeat" in data and not _is_number(heartbeat):
            self.error(f"{path}.heartbeat", f"must be a number of seconds, got {heartbeat!r}")
            heartbeat = 0
        elif heartbeat and not (heartbeat > 0 and math.isfinite(heartbeat)):
            self.warn(f"{path}.heartbeat", f"must be a positive number of seconds to work, got {heartbeat!r}")
        return debug is True, float(heartbeat or 0)

    def jobs(self, data: Any, path: str) -> list[Job]:
        if not isinstance(data, list):
            self.error(path, f"must be a list, got {type_name(data)}")
            return []
        return [job for index, item in enumerate(data)
                for job in [self.job(item, f"{path}[{index}]")] if job is not None]

    def job(self, data: Any, path: str) -> Job | None:
        if not isinstance(data, dict):
            self.error(path, f"must be a mapping, got {type_name(data)}")
            return None
        ok = True
        for key in ("name", "command"):
            if key not in data:
                self.error(f"{path}.{key}", "required field is missing")
                ok = False
        for key in ("name", "command", "workdir"):
            if key in data and not isinstance(data[key], str):
                self.error(f"{path}.{key}", f"must be a string, got {data[key]!r}")
                ok = False
        for key in ("count", "nodes", "tasks", "duration"):
            if key in data and not _is_number(data[key]):
                self.error(f"{path}.{key}", f"must be a number, got {data[key]!r}")
                ok = False
        if not ok:
            return None
        self.ignored_keys(data, JOB_KEYS, path)
        for key in ("count", "nodes", "tasks"):
            if key in data and not _is_count(data[key]):
                self.warn(f"{path}.{key}", f"should be a positive integer: ensemble-python fails or submits "
                                           f"nothing when this group is submitted, got {data[key]!r}")
        if "duration" in data and data["duration"] < 0:
            self.warn(f"{path}.duration", f"should be seconds >= 0 (0: no limit), got {data['duration']!r}")
        return Job(data["name"], data["command"], data.get("count", 1), data.get("nodes", 1),
                   data.get("tasks"), data.get("workdir"), data.get("duration"))

    def rules(self, data: Any, path: str, custom: _Custom) -> list[Rule]:
        if not isinstance(data, list):
            self.error(path, f"must be a list, got {type_name(data)}")
            return []
        return [rule for index, item in enumerate(data)
                for rule in [self.rule(item, index, f"{path}[{index}]", custom)] if rule is not None]

    def rule(self, data: Any, index: int, path: str, custom: _Custom) -> Rule | None:
        if not isinstance(data, dict):
            self.error(path, f"must be a mapping, got {type_name(data)}")
            return None
        errors = len(self.errors)
        trigger, name = data.get("trigger"), data.get("name")
        if "trigger" not in data:
            self.error(f"{path}.trigger", "required field is missing")
        elif trigger not in SCHEMA_TRIGGERS:
            self.error(f"{path}.trigger", f"must be one of {', '.join(TRIGGERS)} (what ensemble-python "
                                          f"{RULES_VERSION} runs on a MiniCluster), got {trigger!r}")
        elif trigger not in TRIGGERS:
            self.error(f"{path}.trigger", f"{trigger} is not supported by ensemble-python {RULES_VERSION}'s "
                                          f"MiniCluster member (it runs {', '.join(TRIGGERS)})")
        if "name" in data and not isinstance(name, str):
            self.error(f"{path}.name", f"must be a string, got {name!r}")
        action = self.action(data.get("action"), "action" in data, f"{path}.action", custom)
        when = None
        if "when" in data:
            when = self.when(data["when"], f"{path}.when")
        if len(self.errors) > errors or action is None:
            return None
        self.ignored_keys(data, RULE_KEYS, path)
        return Rule(index, str(trigger), name, when, action)

    def when(self, value: Any, path: str) -> When | None:
        if not (_is_number(value) or isinstance(value, str)):
            self.error(path, f"must be a number or a string, got {type_name(value)}")
            return None
        try:
            return When.parse(value)
        except WhenError as err:
            self.error(path, str(err))
            return None

    def action(self, data: Any, present: bool, path: str, custom: _Custom) -> Action | None:
        if not present:
            self.error(path, "required field is missing")
            return None
        if not isinstance(data, dict):
            self.error(path, f"must be a mapping with a name, got {type_name(data)}")
            return None
        name, label = data.get("name"), data.get("label")
        if name == "custom":
            found = custom.finds(label) if isinstance(label, str) else False
            if found is False:
                where = "in custom" if custom.present else "(the file has no custom: block)"
                self.error(f"{path}.label", f"names no function defined {where}: {label!r}")
        if name not in ACTIONS:
            self.error(f"{path}.name", f"must be one of {', '.join(ACTIONS)}, got {name!r}")
            return None
        self.ignored_keys(data, ACTION_KEYS, path)
        return Action(name, label, data.get("value", 1), data.get("repetitions", 1), data.get("backoff"))

    # ---- warnings about a loadable file -----------------------------------------------------

    def usefulness(self, config: EnsembleConfig) -> None:
        groups = config.groups()
        for rule in config.rules:
            path = f"{self.path}.{rule.where}"
            if rule.trigger == "metric":
                self.metric(rule, groups, path)
            elif rule.when is not None:
                self.warn(f"{path}.when", f"is ignored: ensemble-python checks when only for metric rules, "
                                          f"not {rule.trigger}")
            if rule.when is not None and rule.when.truncated:
                self.warn(f"{path}.when", f"ensemble-python {RULES_VERSION} reads only the integer part: "
                                          f"{rule.when.op} {rule.when.number:g}{rule.when.dropped} compares with "
                                          f"{rule.when.number:g}")
            elif rule.when is not None and (rule.when.skipped or rule.when.dropped):
                self.warn(f"{path}.when", f"ensemble-python {RULES_VERSION} reads only {str(rule.when)!r} of it")
            self.action_values(rule, groups, f"{path}.action")

    def metric(self, rule: Rule, groups: dict[str, tuple[Job, ...]], path: str) -> None:
        problem = _metric_problem(rule.metric, groups)
        if problem:
            self.warn(f"{path}.name", f"this rule can never fire: {problem}")

    def action_values(self, rule: Rule, groups: dict[str, tuple[Job, ...]], path: str) -> None:
        action = rule.action
        repetitions, backoff = action.repetitions, action.backoff
        if not _is_number(repetitions):
            self.warn(f"{path}.repetitions", f"should be an integer: ensemble-python fails when this rule "
                                             f"fires, got {repetitions!r}")
        elif repetitions <= 0:
            self.warn(f"{path}.repetitions", f"this rule can never fire: repetitions is {repetitions!r}")
        if backoff is not None and not _is_number(backoff):
            self.warn(f"{path}.backoff", f"should be an integer: ensemble-python fails when this rule "
                                         f"fires, got {backoff!r}")
        if action.name == "submit" and action.label not in groups:
            known = ", ".join(groups) or "none"
            self.warn(f"{path}.label", f"names no job group ({known}): ensemble-python fails when this "
                                       f"rule fires, got {action.label!r}")
        if action.scaling and not _is_count(action.value):
            self.warn(f"{path}.value", f"should be a positive integer (nodes to {action.name} by), "
                                       f"got {action.value!r}")


def _metric_problem(metric: str, groups: dict[str, tuple[Job, ...]]) -> str | None:
    """Why the metric path can never exist (ensemble-python walks it split on dots), or None."""
    parts = metric.split(".")
    if parts[0] not in METRIC_MODELS:
        return f"metric {metric!r} must start with one of {', '.join(METRIC_MODELS)}"
    if parts[0] == "count":
        if len(parts) != 3 or parts[2] not in COUNT_METRICS:
            return f"metric {metric!r} must be count.<job group>.<{'|'.join(COUNT_METRICS)}>"
        group = parts[1]
    else:
        group, _, kind = (parts[1] if len(parts) == 2 else "").rpartition("-")
        if len(parts) != 2 or kind not in DATUM_METRICS:
            return f"metric {metric!r} must be {parts[0]}.<job group>-<{'|'.join(DATUM_METRICS)}>"
    if group not in groups:
        return f"no job group {group!r} (jobs: {', '.join(groups) or 'none'})"
    return None


# ---- entry points --------------------------------------------------------------------------------

# Bytes of ensemble.yaml (and paths) whose results are remembered: every member of every
# Ensemble watched, at the schema's 64 KiB per text, would be far more.
CHECK_CACHE_BYTES = 8 * 1024 * 1024


def load_ensemble_yaml(text: str, path: str = "ensemble.yaml") -> LoadedEnsembleYaml:
    """The model, errors and warnings of one ensemble.yaml; ``path`` prefixes every field path."""
    return _LOADED.get((text, path))


def check_ensemble_yaml(text: str, path: str) -> list[FieldError]:
    """What makes ensemble-python refuse the file (and our limits); ``path`` is the field holding it."""
    return list(load_ensemble_yaml(text, path).errors)


def ensemble_yaml_warnings(text: str, path: str) -> list[FieldError]:
    return list(load_ensemble_yaml(text, path).warnings)


def _load(key: tuple[str, str]) -> LoadedEnsembleYaml:
    """Memoized (``_LOADED``): the reconciler validates every spec on every reconcile (each poll
    result triggers one), while the text changes only with the spec."""
    text, path = key
    loader = _Loader(path)
    config = loader.load(text)
    return LoadedEnsembleYaml(config, tuple(loader.errors), tuple(loader.warnings))


_LOADED: ByteBoundedCache[tuple[str, str], LoadedEnsembleYaml] = ByteBoundedCache(
    _load, lambda key: len(key[0]) + len(key[1]), CHECK_CACHE_BYTES)
