"""Upstream files our code must accept unchanged (see README.md here)."""
from pathlib import Path

UPSTREAM_EXAMPLES = Path(__file__).resolve().parent / "upstream-examples"
