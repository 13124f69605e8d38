"""Operator-side algorithms: read members' status history, decide actions.

Owns ``scale``, ``terminate`` and ``refill``, their registry and typed options, and the
check of a member's status JSON. Pure functions of their inputs and ``now``.

May import: nothing of ``controller`` or ``api`` (bottom layer): algorithms know nothing of
Kubernetes, gRPC or the reconciler that runs them.
"""
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
