"""Print the ``commands.pre`` the operator gives a member's MiniCluster (hack/verify-bootstrap.sh).

It goes through ``minicluster()``, the builder the reconciler applies, for the first member of
upstream's hello-world example, so what is run on a real rootfs is the text a member gets, not
a copy of it that could drift.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.reconcilers.desired.member import minicluster  # noqa: E402
from controller.reconcilers.desired.settings import DesiredSettings  # noqa: E402

EXAMPLE = ROOT / "tests" / "compat" / "upstream-examples" / "hello-world.yaml"


def member_pre(ensemble_python: str | None = None, branch: str | None = None,
               example: Path = EXAMPLE) -> str:
    """The first member's ``commands.pre`` with ``ensemblePython`` and ``branch`` set as given."""
    ensemble = yaml.safe_load(example.read_text())
    # What the API server adds before the operator sees the Ensemble.
    ensemble["metadata"].setdefault("namespace", "default")
    ensemble["metadata"].setdefault("uid", "verify-bootstrap")
    member = ensemble["spec"]["members"][0]
    if ensemble_python:
        member["ensemblePython"] = ensemble_python
    if branch:
        member["branch"] = branch
    container = minicluster(ensemble, 0, DesiredSettings())["spec"]["containers"][0]
    return str(container["commands"]["pre"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble-python", help="spec.members[].ensemblePython (a release or latest)")
    parser.add_argument("--branch", help="spec.members[].branch")
    args = parser.parse_args(argv)
    print(member_pre(args.ensemble_python, args.branch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
