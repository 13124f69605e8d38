"""Changing a MiniCluster's size: what both the ensemble service and the operator use.

Owns grow/shrink request parsing and size bounds (``requests``), the sizes the Flux
Operator accepts (``minicluster_sizes``), the fair share of ``spec.budget`` and its ledger
(``fair_share``), MiniCluster ownership (``ownership``), the resourceVersion-guarded write
path (``scaler``), the Kubernetes calls it needs (``kubeapi``) and decision logging
(``decision_log``).

May import: ``api``, ``controller.clock``, ``controller.kube``. Never the runtime,
reconcilers, the service process or the wire protocol: callers translate to and from
gRPC.
"""
