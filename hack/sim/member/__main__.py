"""Entry point of a simulated member: ``python hack/sim/member [flags]`` (or ``python -m sim.member``
with hack/ on the path)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # hack/, for the ``sim`` package

from sim.member.session import main  # noqa: E402

sys.exit(main())
