"""hack/member_pre.py: the commands.pre hack/verify-bootstrap.sh runs is the builder's, for the
member as the spec sets it (ensemblePython, branch), not a copy of the text."""
from __future__ import annotations

import copy

import pytest
import yaml

import member_pre
from controller.reconcilers.desired.member import install_command, minicluster
from controller.reconcilers.desired.settings import DesiredSettings


def test_the_text_is_what_minicluster_gives_upstreams_example_member() -> None:
    ensemble = yaml.safe_load(member_pre.EXAMPLE.read_text())
    ensemble["metadata"].update(namespace="default", uid="u")
    built = minicluster(copy.deepcopy(ensemble), 0, DesiredSettings())["spec"]["containers"][0]["commands"]["pre"]
    assert member_pre.member_pre() == built == install_command(None, None)


@pytest.mark.parametrize("version, branch", [("0.0.15", None), ("latest", None), (None, "main")])
def test_the_members_release_and_branch_reach_the_text(version: str | None, branch: str | None) -> None:
    assert member_pre.member_pre(version, branch) == install_command(branch, version)


def test_main_prints_the_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert member_pre.main(["--branch", "dev"]) == 0
    assert capsys.readouterr().out == install_command("dev") + "\n"
