"""The EnsembleOperator wire protocol: one home for what every gRPC peer shares.

Owns the stubs generated from protos/ensemble-service.proto (hack/gen_protos.sh writes
``ensemble_service_pb2*``), the values messages carry as plain strings (``wire``), result
code names (``results``), the error of a failed ``RequestAction`` (``errors``), message size
limits (``limits``) and the gRPC server with the standard health service (``server``) that
the ensemble service and the member sidecar both run.

May import: ``controller.kube.resources`` (the MiniCluster group/version), grpcio. Nothing
that knows Ensembles, caches or reconciles.
"""
