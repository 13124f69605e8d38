"""The simulated container runtime's pod network: a pod's connections come from its pod IP.

Local pods share this machine's network, their IPs being loopback addresses kwok hands out.
A real node gives each pod a network namespace, so a server sees each pod's own IP as the
source of its connections; here the kernel would pick 127.0.0.1 for every loopback
destination, and the ensemble service could not tell the lead broker of a member from anyone
else. ``hack/sim/podaddress.c`` (an LD_PRELOAD library, built by hack/build-podaddress.sh)
binds each pod process's TCP connections to loopback destinations to ``$POD_IP`` first.

What it does not give: isolation. Any local process may still bind any 127.x address, so
the local system shows the service telling callers apart, not that a pod cannot claim
another's IP (a real CNI prevents that).
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "build-podaddress.sh"


class PodNetworkError(RuntimeError):
    """The pod-address library could not be built; the message names the cause."""


@dataclass(frozen=True)
class PodNetwork:
    library: Path

    def environment(self, ip: str) -> dict[str, str]:
        """What a process of the pod with address ``ip`` runs with."""
        return {"LD_PRELOAD": str(self.library), "POD_IP": ip}

    def assignments(self, ip: str) -> list[str]:
        """``environment`` as ``NAME=value`` words, for ``env -i``."""
        return [f"{name}={value}" for name, value in self.environment(ip).items()]


def pod_network() -> PodNetwork:
    """The library, built (with gcc, under a second) the first time its source is seen."""
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise PodNetworkError(f"hack/build-podaddress.sh failed: {done.stderr.strip()}")
    return PodNetwork(Path(done.stdout.strip().splitlines()[-1]))
