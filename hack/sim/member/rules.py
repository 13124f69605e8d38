"""The rules of a member's ensemble.yaml, as ensemble-python reads them.

A rule waits for a trigger (``start``, ``metric`` or ``job-<event>``), optionally checks
``when`` against a metric value, and then lets its action fire only as often as
``repetitions`` and ``backoff`` allow. The config is assumed already checked by
``api.v1alpha1.ensemble_yaml`` (the runner does that first).
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

SCALING_ACTIONS = frozenset({"grow", "shrink"})
DEFAULT_SCALING_HEARTBEAT = 60.0
# ensemble-python 0.0.16 (Rule.run_when) searches a string for this and reads the number with
# \w+: "> 0.5" compares with 0, "=> 3" with 3, and "== 3", "7" or "> -1" fail when it loads.
_WHEN = re.compile(r"(?P<op>[<>]=?)\s*(?P<number>\w+)")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
}


@dataclass(frozen=True)
class When:
    """A number means equality; ``"> 5"`` style strings compare with the operator, the number
    read as ensemble-python reads it (see ``_WHEN``: a fraction is dropped)."""
    op: str
    number: float

    @classmethod
    def parse(cls, value: object, where: str) -> When:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls("==", float(value))
        match = _WHEN.search(value) if isinstance(value, str) else None
        try:
            number = float(match["number"]) if match else None
        except ValueError:  # "> five": ensemble-python's float() fails when it loads
            number = None
        if match is None or number is None:
            raise ValueError(f'{where}: expected a number or "<op> <number>" with op one of < <= > >=, '
                             f"got {value!r}")
        return cls(match["op"], number)

    def matches(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.number)

    def __str__(self) -> str:
        return f"{self.op} {self.number:g}"


@dataclass
class Frequency:
    """How often an action may still fire: ``repetitions`` firings, ``backoff`` triggers skipped between them.

    Mirrors ensemble-python: the first trigger fires, then the next ``backoff`` triggers are
    skipped, then one fires again, until the repetitions are used up.
    """
    repetitions: int = 1
    backoff: int = 0
    _skip: int = field(default=0, init=False)

    def allow(self) -> bool:
        if self.repetitions <= 0:
            return False
        if self._skip > 0:
            self._skip -= 1
            return False
        self._skip = self.backoff
        self.repetitions -= 1
        return True


@dataclass
class Rule:
    """One entry of ``rules``; ``where`` ("rules[2]") names it in logs and errors."""
    where: str
    trigger: str
    name: str | None
    when: When | None
    action: str
    label: str | None
    value: int
    frequency: Frequency

    def describe(self) -> str:
        parts = [self.where, self.trigger]
        if self.name:
            parts.append(self.name)
        if self.when:
            parts.append(str(self.when))
        return " ".join(parts)


def parse_rules(config: dict) -> list[Rule]:
    return [_rule(rule, f"rules[{index}]") for index, rule in enumerate(config.get("rules") or [])]


def heartbeat_seconds(config: dict, rules: list[Rule]) -> float:
    """``logging.heartbeat``; unset or 0 means none, unless a grow/shrink rule needs one (then 60 s)."""
    heartbeat = float((config.get("logging") or {}).get("heartbeat") or 0)
    if not heartbeat and any(rule.action in SCALING_ACTIONS for rule in rules):
        return DEFAULT_SCALING_HEARTBEAT
    return heartbeat


def _rule(rule: dict, where: str) -> Rule:
    action = rule["action"]
    when = When.parse(rule["when"], f"{where}.when") if "when" in rule else None
    frequency = Frequency(repetitions=action.get("repetitions", 1), backoff=action.get("backoff") or 0)
    return Rule(where=where, trigger=rule["trigger"], name=rule.get("name"), when=when,
                action=action["name"], label=action.get("label"), value=action.get("value", 1),
                frequency=frequency)
