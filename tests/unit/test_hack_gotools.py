"""hack/gotools.py finds the binaries where hack/build-helm.sh and hack/build-actionlint.sh
put them, at the versions the scripts build by default."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import gotools

HACK = Path(__file__).resolve().parents[2] / "hack"


@pytest.mark.parametrize("command", [gotools.HELM, gotools.ACTIONLINT], ids=lambda c: c.name)
def test_the_default_version_is_the_scripts(command: gotools.GoCommand) -> None:
    script = (HACK / command.script).read_text()
    (default,) = re.findall(rf'{command.name.upper()}_VERSION="\$\{{{command.name.upper()}_VERSION:-([^}}]+)\}}"', script)
    assert command.default_version == default
    assert re.search(rf"build_go_command [0-9.]+ {command.name} ", script), "the script builds this command"


def test_the_binary_sits_in_the_cache_under_its_version(monkeypatch) -> None:
    monkeypatch.setenv("HELM_VERSION", "v4.0.0")
    assert gotools.HELM.binary == gotools.CACHE_ROOT / "helm" / "v4.0.0" / "bin" / "helm"
    assert "bash hack/build-helm.sh" in gotools.HELM.not_built_message()
