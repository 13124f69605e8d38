"""The ensemble service process (``ensemble-operator service``): members' grow/shrink over gRPC.

Owns the process: its command line and wiring (``main``), the servicer translating
``RequestAction`` into scaling decisions (``servicer``), and who may call it: caller identity
from its own cache of the Ensemble's member pods (``callers``, ``memberpods``) and the
Ensemble's rate limit (``admission``). What it decides with lives in ``controller.scaling``,
shared with the operator.

May import: ``controller.scaling``, ``controller.proto``, ``controller.kube``,
``controller.informers`` (its pod cache), ``controller.memberpods`` (which pod is a member's
lead broker, and the member pods' labels: one rule for the operator and the service),
``controller.workqueue.rate_limiters``
(the token bucket), ``controller.runtime.httpserver`` (the metrics endpoint), ``controller.clock``.
"""
