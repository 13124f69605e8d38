"""Operator-side algorithms: read members' status history, decide actions."""
from controller.algorithms.base import Action, ActionKind, Algorithm, MemberSample, MemberView
from controller.algorithms.options import OptionError
from controller.algorithms.registry import (
    UnknownAlgorithmError,
    algorithm_names,
    get_algorithm,
    parse_options,
    register_algorithm,
)

__all__ = [
    "Action",
    "ActionKind",
    "Algorithm",
    "MemberSample",
    "MemberView",
    "OptionError",
    "UnknownAlgorithmError",
    "algorithm_names",
    "get_algorithm",
    "parse_options",
    "register_algorithm",
]
