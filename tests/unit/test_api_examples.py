"""Our examples: the algorithm options they show are ones the named algorithm accepts."""
from __future__ import annotations

from pathlib import Path

import yaml

from api.v1alpha1 import Ensemble
from controller.algorithms.registry import get_algorithm

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "algorithm-scale" / "ensemble.yaml"


def test_algorithm_example_options_parse() -> None:
    spec = Ensemble.from_dict(yaml.safe_load(EXAMPLE.read_text())).spec
    algorithm = get_algorithm(spec.algorithm.name)
    options = algorithm.parse_options(spec.algorithm.options)
    assert options.wait_seconds == 30
    assert spec.budget == 6 and len(spec.members) == 2
    assert sum(member.max_size for member in spec.members) > spec.budget
