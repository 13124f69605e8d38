"""The member-status sidecar (``ensemble-operator member-status``) beside a lead broker's Flux.

Owns the process (``main``), the gRPC servicer answering the operator's status polls and
``submit``/``resize`` actions (``servicer``), the backend protocol (``backend``) and its one
production backend, the local Flux broker (``flux_backend``, with ``jobgroups`` and
``brokerwatch``). The simulated member the local environment runs instead is ``hack/sim/member``.

May import: ``api``, ``controller.proto``, ``controller.clock``; the flux bindings when
present. Nothing of the operator's reconcilers or runtime.
"""
