"""Algorithms by name, so ``spec.algorithm.name`` selects one and plug-ins can add more."""
from __future__ import annotations

from collections.abc import Mapping

from controller.algorithms.base import Algorithm
from controller.algorithms.refill import RefillAlgorithm
from controller.algorithms.scale import ScaleAlgorithm
from controller.algorithms.terminate import TerminateAlgorithm


class UnknownAlgorithmError(ValueError):
    """``spec.algorithm.name`` names no registered algorithm."""


_ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name: algorithm for algorithm in (ScaleAlgorithm(), TerminateAlgorithm(), RefillAlgorithm())
}


def algorithm_names() -> list[str]:
    return sorted(_ALGORITHMS)


def register_algorithm(algorithm: Algorithm) -> None:
    """Add an algorithm; a name already taken is an error, not a silent override."""
    if algorithm.name in _ALGORITHMS:
        raise ValueError(f"algorithm {algorithm.name!r} is already registered")
    _ALGORITHMS[algorithm.name] = algorithm


def get_algorithm(name: str) -> Algorithm:
    try:
        return _ALGORITHMS[name]
    except KeyError:
        raise UnknownAlgorithmError(
            f"spec.algorithm.name: unknown algorithm {name!r} (known: {', '.join(algorithm_names())})"
        ) from None


def parse_options(name: str, options: Mapping[str, object]) -> object:
    """Typed options for algorithm ``name``; raises naming the algorithm or the option at fault."""
    return get_algorithm(name).parse_options(options)
