"""Where hack/build-helm.sh and hack/build-actionlint.sh put their binaries, for the tests.

The versions are the scripts' defaults (tests/unit/test_hack_gotools.py keeps them equal);
``HELM_VERSION`` / ``ACTIONLINT_VERSION`` choose others, as they do for the scripts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from localcluster import CACHE_ROOT

HACK = Path(__file__).resolve().parent


@dataclass(frozen=True)
class GoCommand:
    name: str
    default_version: str
    script: str

    @property
    def version(self) -> str:
        return os.environ.get(f"{self.name.upper()}_VERSION", self.default_version)

    @property
    def binary(self) -> Path:
        return CACHE_ROOT / self.name / self.version / "bin" / self.name

    def not_built_message(self) -> str:
        return f"{self.name} {self.version} is not built ({self.binary} is missing): run `bash hack/{self.script}` (needs Go)"


HELM = GoCommand("helm", "v4.3.2", "build-helm.sh")
ACTIONLINT = GoCommand("actionlint", "v1.7.12", "build-actionlint.sh")
