#!/usr/bin/env python3
"""`make run`: the local demo on the embedded control plane.

Brings up the local control plane (building it the first time), installs the CRDs,
and tells you how to use it. The cluster stays up; `make cluster-down` stops it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

import localcluster  # noqa: E402


def main() -> int:
    if localcluster.main(["up"]) != 0:
        return 1
    kubeconfig = (localcluster.STATE_DIR / "state.json").exists() and \
        __import__("json").loads((localcluster.STATE_DIR / "state.json").read_text())["kubeconfig"]
    kubectl = [str(localcluster.DEFAULT_BIN_DIR / "kubectl"), "--kubeconfig", kubeconfig]
    for crd in (ROOT / "hack" / "crds" / "minicluster.yaml", ROOT / "manifests" / "crd.yaml"):
        if crd.exists():
            subprocess.run([*kubectl, "apply", "--server-side", "-f", str(crd)], check=True)
    print(f"\nLocal control plane is up.\n  export KUBECONFIG={kubeconfig}\n"
          f"  {kubectl[0]} get --raw /readyz\n  stop it with: make cluster-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
