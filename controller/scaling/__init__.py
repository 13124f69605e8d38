"""Changing a MiniCluster's size: what both the ensemble service and the operator use.

Owns grow/shrink request parsing and size bounds (``requests``), the sizes the Flux
Operator accepts (``minicluster_sizes``), the fair share of ``spec.budget`` and its ledger
(``fair_share``), MiniCluster ownership (``ownership``), the resourceVersion-guarded write
path (``scaler``), the Kubernetes calls it needs (``kubeapi``) and decision logging
(``decision_log``).

May import: ``api``, ``controller.clock``, ``controller.kube``, ``controller.proto`` (the
wire values a grow/shrink request carries). Never the runtime, the reconcilers or the
service process.
"""
