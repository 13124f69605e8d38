"""The Ensemble API (``api.v1alpha1``): types, defaults, validation, the CRD and the ensemble.yaml model.

Owns what users write and what the operator writes back, as data; no I/O, no Kubernetes client.

May import: nothing of ``controller`` (it is the bottom layer; see docs/architecture.md).
"""
