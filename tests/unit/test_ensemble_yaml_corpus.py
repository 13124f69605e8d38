"""The ensemble.yaml corpus: our validator's verdict against ensemble-python's own loader.

``tests/compat/ensemble_yaml/`` holds every ensemble.yaml of upstream's examples and docs
(``upstream/``, see its README for the sources) and hand-written edge cases (``edge/``):
on each, ``validate()`` must refuse exactly when ensemble-python 0.0.16, run from PyPI in a
cached virtualenv, refuses to load it. ``limits/`` holds files ensemble-python loads and we
refuse on purpose: our bounds on what a tenant may make the operator parse.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from api.v1alpha1 import validate
from api.v1alpha1.ensemble_yaml import RULES_VERSION
from tests.compat.ensemble_python import Verdict, ensemble_python_verdicts

CORPUS = Path(__file__).resolve().parents[1] / "compat" / "ensemble_yaml"
FIELD = "spec.members[0].ensemble"


def _ensemble(text: str) -> dict:
    return {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": "corpus", "namespace": "default"},
            "spec": {"members": [{"ensemble": text,
                                  "minicluster": {"spec": {"size": 1, "containers": [{"image": "x"}]}}}]}}


def ours(path: Path) -> list[str]:
    """Our errors on the file as a member's ensemble (the whole Ensemble validated)."""
    return [str(error) for error in validate(_ensemble(path.read_text()))]


@pytest.fixture(scope="module")
def theirs() -> dict[str, Verdict]:
    return ensemble_python_verdicts(sorted(CORPUS.glob("*/*.yaml")), RULES_VERSION)


def test_the_corpus_holds_upstreams_files_and_the_edge_cases() -> None:
    assert len(list((CORPUS / "upstream").glob("*.yaml"))) >= 20
    assert len(list((CORPUS / "edge").glob("*.yaml"))) >= 90


@pytest.mark.parametrize("kind", ["upstream", "edge"])
def test_every_file_gets_the_verdict_ensemble_python_gives(kind: str, theirs: dict[str, Verdict]) -> None:
    files = sorted((CORPUS / kind).glob("*.yaml"))
    disagreements = []
    for path in files:
        verdict, errors = theirs[str(path)], ours(path)
        if verdict.accepted != (not errors):
            disagreements.append(f"{path.name}: ensemble-python {'loads' if verdict.accepted else 'refuses'} it "
                                 f"({verdict.error}), we say {errors or 'valid'}")
    accepted = sum(theirs[str(path)].accepted for path in files)
    print(f"\n{kind}: {len(files)} files, {len(files) - len(disagreements)} same verdict "
          f"({accepted} loaded by ensemble-python {RULES_VERSION}, {len(files) - accepted} refused)")
    assert disagreements == []


def test_both_verdicts_occur_in_each_part_of_the_corpus(theirs: dict[str, Verdict]) -> None:
    """A corpus ensemble-python accepts (or refuses) entirely would not show the validator agrees."""
    for kind in ("upstream", "edge"):
        verdicts = {theirs[str(path)].accepted for path in (CORPUS / kind).glob("*.yaml")}
        assert verdicts == {True, False}, kind


def test_our_limits_refuse_files_ensemble_python_would_load(theirs: dict[str, Verdict]) -> None:
    files = sorted((CORPUS / "limits").glob("*.yaml"))
    assert files
    for path in files:
        assert theirs[str(path)].accepted, path.name
        errors = ours(path)
        assert errors and all(error.startswith(FIELD) for error in errors), (path.name, errors)
        assert any("limit" in error or "65536" in error for error in errors), (path.name, errors)
