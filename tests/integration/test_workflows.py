"""The GitHub workflows cannot run here, so actionlint (built from its Go module by
hack/build-actionlint.sh) checks them: syntax, expressions, job needs, action inputs and the
shell of their run steps where shellcheck is installed."""
from __future__ import annotations

import subprocess

import pytest

from gotools import ACTIONLINT
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

WORKFLOWS = ROOT / ".github" / "workflows"


def actionlint(*args: str) -> subprocess.CompletedProcess:
    if not ACTIONLINT.binary.is_file():
        pytest.fail(ACTIONLINT.not_built_message(), pytrace=False)
    return subprocess.run([str(ACTIONLINT.binary), "-no-color", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_the_workflows_pass_actionlint() -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.yml"))
    assert files == [".github/workflows/ci.yml", ".github/workflows/release.yml"]
    done = actionlint(*files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "release.yml").read_text().replace("needs: [version, image]",
                                                                      "needs: [version, imagee]"))
    done = actionlint(str(broken))
    assert done.returncode != 0 and "imagee" in done.stdout
