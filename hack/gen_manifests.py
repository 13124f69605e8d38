"""Write the generated API artifacts: manifests/crd.yaml and docs/api-reference.md, and the
install files made from manifests/: dist/ensemble-operator.yaml and the Helm chart's CRD.

The CRD comes from api/v1alpha1/types.py (see hack/install_files.py for the others). ``--check`` writes nothing and exits 1 when a
committed file differs from the generator output (for CI).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.v1alpha1.crd import crd_yaml  # noqa: E402
from api.v1alpha1.reference import reference_markdown  # noqa: E402
from install_files import chart_crd_yaml, dist_yaml  # noqa: E402

OUTPUTS = {"manifests/crd.yaml": crd_yaml, "docs/api-reference.md": reference_markdown,
           "dist/ensemble-operator.yaml": dist_yaml, "chart/templates/crd.yaml": chart_crd_yaml}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale files instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    for relative, render in OUTPUTS.items():
        path = ROOT / relative
        text = render()
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(relative)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {relative}")
    for relative in stale:
        print(f"{relative} is out of date: run make manifests", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
