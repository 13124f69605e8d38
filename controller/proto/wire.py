"""Values of the EnsembleOperator protocol that its message types leave as plain strings.

One home for what the ensemble service, the operator (poller, member actions), the member
sidecar and the simulated members must agree on.
"""
from __future__ import annotations

from controller.kube.resources import MINICLUSTERS

# ``member`` of StatusRequest and ActionRequest: the kind of member named by ``name``.
# ensemble-python 0.0.16 sends this value (an empty one is read the same way).
MINICLUSTER_MEMBER = "miniclusters"

# The MiniCluster API a grow/shrink payload may name ({"group": ..., "version": ...}), as
# ensemble-python's EnsembleClient sends it.
MINICLUSTER_API = {"version": MINICLUSTERS.version, "group": MINICLUSTERS.group}
