"""``spec.algorithm``: checked like the rest of the spec, and the history it needs.

The API schema cannot know which options a registered algorithm accepts, so the
reconciler checks them here and reports a bad one as an InvalidSpec field error.
"""
from __future__ import annotations

import math

from api.v1alpha1 import FieldError
from api.v1alpha1.types import DEFAULT_HEARTBEAT_SECONDS
from controller.algorithms import OptionError, UnknownAlgorithmError, get_algorithm
from controller.reconcilers.pollbook import MAX_SAMPLES

ALGORITHM_PATH = "spec.algorithm"
# History kept beyond the algorithm's own windows, in heartbeats: trailing-run
# algorithms (terminate, refill) count polls rather than seconds.
EXTRA_HEARTBEATS = 10
# The option windows (typed option attributes, in seconds) the built-in algorithms read.
WINDOW_OPTIONS = ("wait_seconds", "stabilization_seconds")
# The options that count consecutive polls (typed option attributes): a run of n polls
# spans n heartbeats, so the history must reach that far back too.
POLL_COUNT_OPTIONS = ("confirm_polls", "empty_polls", "idle_polls")


def algorithm_errors(ensemble: dict) -> list[FieldError]:
    """Field errors of ``spec.algorithm``: an unknown name, or an option at fault."""
    spec = (ensemble.get("spec") or {}).get("algorithm")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        return []  # absent, or malformed in a way the schema validation reports
    try:
        parsed = get_algorithm(spec["name"]).parse_options(spec.get("options") or {})
    except UnknownAlgorithmError as error:
        return [FieldError(f"{ALGORITHM_PATH}.name", str(error).removeprefix(f"{ALGORITHM_PATH}.name: "))]
    except OptionError as error:
        path = f"{ALGORITHM_PATH}.options"
        if error.option != "options":
            path += f".{error.option}"
        return [FieldError(path, str(error))]
    return _history_errors(spec["name"], parsed, (ensemble.get("spec") or {}).get("heartbeat"))


def _history_errors(name: str, parsed_options: object, heartbeat: object) -> list[FieldError]:
    """A window longer than the polls kept per member could never be seen whole: the
    algorithm would act on a shorter one (shrink too early) or wait for a run forever."""
    if heartbeat is None:
        heartbeat = DEFAULT_HEARTBEAT_SECONDS
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, (int, float)) or heartbeat <= 0:
        return []  # the schema validation reports it
    polls = math.ceil(history_seconds(parsed_options, heartbeat) / heartbeat)
    if polls <= MAX_SAMPLES:
        return []
    return [FieldError(f"{ALGORITHM_PATH}.options",
                       f"algorithm {name!r}: its windows and poll counts need {polls} polls of history "
                       f"at spec.heartbeat {heartbeat:g} s, more than the {MAX_SAMPLES} kept per member: "
                       f"shorten them or raise spec.heartbeat")]


def history_seconds(parsed_options: object, heartbeat: float) -> float:
    """How far back a member's history must reach for the algorithm's windows.

    Poll counts are windows too: trimmed to the extra heartbeats alone, a history could
    never hold a run of more polls than that (``confirmPolls: 15`` never terminated).
    """
    windows = [float(getattr(parsed_options, name, 0.0)) for name in WINDOW_OPTIONS]
    polls = max(int(getattr(parsed_options, name, 0)) for name in POLL_COUNT_OPTIONS)
    return max(windows) + (polls + EXTRA_HEARTBEATS) * heartbeat
