"""The rules of a member's ensemble.yaml as the simulated run follows them.

The rules themselves (trigger, name, ``when``, action) come from the one model of the file,
``api.v1alpha1.ensemble_yaml``; what is added here is the state of a run: how often each
action may still fire (``repetitions`` and ``backoff``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from api.v1alpha1 import ensemble_yaml
from api.v1alpha1.ensemble_yaml import EnsembleConfig, When

SCALING_ACTIONS = frozenset(ensemble_yaml.SCALING_ACTIONS)


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


def _whole(value: object, default: int) -> int:
    """A repetitions/backoff count; the model warns about values that are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


@dataclass
class Rule:
    """One rule of the model plus its run state; ``where`` ("rules[2]") names it in logs and errors."""
    spec: ensemble_yaml.Rule
    frequency: Frequency

    @property
    def where(self) -> str:
        return self.spec.where

    @property
    def trigger(self) -> str:
        return self.spec.trigger

    @property
    def name(self) -> str | None:
        return self.spec.name

    @property
    def when(self) -> When | None:
        return self.spec.when

    @property
    def action(self) -> str:
        return self.spec.action.name

    @property
    def label(self) -> object:
        return self.spec.action.label

    @property
    def value(self) -> object:
        return self.spec.action.value

    def describe(self) -> str:
        return self.spec.describe()


def run_rules(config: EnsembleConfig) -> list[Rule]:
    return [Rule(rule, Frequency(repetitions=_whole(rule.action.repetitions, 0),
                                 backoff=max(0, _whole(rule.action.backoff, 0))))
            for rule in config.rules]
