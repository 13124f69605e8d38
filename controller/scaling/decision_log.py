"""Logging the service's decisions without paying a formatted INFO line per action.

Denials and errors are logged one by one (WARNING): they are what an operator looks for
when a member does not grow. Successes are logged at INFO at most once per ``interval``;
the ones in between go to DEBUG and are counted into the next INFO line. An isolated
grow (the usual case) still shows at INFO in full, while a burst of actions costs a
cheap disabled DEBUG call each. ``ensemble_service_actions_total`` counts every action.
"""
from __future__ import annotations

import logging
import threading

from controller.clock import Clock
from controller.scaling.scaler import Outcome

log = logging.getLogger(__name__)

MESSAGE = "action %s on %s from member %r: %s %s"


class DecisionLog:
    def __init__(self, clock: Clock, *, interval: float = 10.0, logger: logging.Logger = log) -> None:
        if interval < 0:
            raise ValueError(f"interval: must be >= 0 seconds, got {interval}")
        self._clock = clock
        self._interval = interval
        self._logger = logger
        self._lock = threading.Lock()
        self._next_info_at: float | None = None
        self._successes_at_debug = 0

    def record(self, action: str, target: str, member: str, outcome: Outcome, reply: str) -> None:
        """Log one decision on ``target`` ("namespace/name") asked for by ``member``."""
        if outcome is not Outcome.SUCCESS:
            self._logger.warning(MESSAGE, action, target, member, outcome.value, reply)
            return
        quiet = self._successes_since_last_info()
        if quiet is None:
            self._logger.debug(MESSAGE, action, target, member, outcome.value, reply)
        elif quiet:
            self._logger.info(MESSAGE + " (and %d more successful actions since the last one logged at info)",
                              action, target, member, outcome.value, reply, quiet)
        else:
            self._logger.info(MESSAGE, action, target, member, outcome.value, reply)

    def _successes_since_last_info(self) -> int | None:
        """Successes logged at DEBUG since the last INFO line, or None when this one goes to DEBUG too."""
        now = self._clock.now()
        with self._lock:
            if self._next_info_at is not None and now < self._next_info_at:
                self._successes_at_debug += 1
                return None
            quiet, self._successes_at_debug = self._successes_at_debug, 0
            self._next_info_at = now + self._interval
            return quiet
