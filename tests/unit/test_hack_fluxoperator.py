"""hack/fluxoperator.py: which Flux Operator the local system runs, and why."""
from __future__ import annotations

from pathlib import Path

import pytest

from fluxoperator import REAL, SIMULATED, FluxOperatorNotBuilt, FluxOperatorProcess, choose_runtime
from localcluster import ClusterError, LocalCluster


@pytest.fixture
def built(tmp_path: Path) -> Path:
    binary = tmp_path / "manager"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return binary


def test_unset_runs_the_real_flux_operator_when_its_manager_is_built(built: Path) -> None:
    runtime, why = choose_runtime(None, built)
    assert runtime == REAL and str(built) in why


def test_unset_falls_back_to_the_simulator_and_says_how_to_build(tmp_path: Path) -> None:
    runtime, why = choose_runtime("", tmp_path / "missing")
    assert runtime == SIMULATED
    assert "hack/build-flux-operator.sh" in why and str(tmp_path / "missing") in why


def test_simulated_is_honoured_even_when_built(built: Path) -> None:
    assert choose_runtime("simulated", built)[0] == SIMULATED


def test_asking_for_real_without_the_build_fails_naming_the_build_script(tmp_path: Path) -> None:
    with pytest.raises(FluxOperatorNotBuilt, match="build-flux-operator.sh"):
        choose_runtime("real", tmp_path / "missing")


def test_a_file_that_is_not_executable_does_not_count_as_built(built: Path) -> None:
    built.chmod(0o644)
    assert choose_runtime(None, built)[0] == SIMULATED


def test_an_unknown_value_is_refused_naming_the_choices(built: Path) -> None:
    with pytest.raises(ClusterError, match="ENSEMBLE_FLUX_OPERATOR='fake'.*'real' or 'simulated'"):
        choose_runtime("fake", built)


def test_starting_without_the_build_fails_before_any_process(tmp_path: Path) -> None:
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path)
    with pytest.raises(FluxOperatorNotBuilt, match="build-flux-operator.sh"):
        FluxOperatorProcess.start(cluster, tmp_path / "fo.log", binary=tmp_path / "missing")
    assert not (tmp_path / "fo.log").exists()
