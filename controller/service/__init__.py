"""The ensemble service process (``ensemble-operator service``): members' grow/shrink over gRPC.

Owns only the process: its command line and wiring (``main``) and the servicer translating
``RequestAction`` into scaling decisions (``servicer``). What it decides with lives in
``controller.scaling``, shared with the operator.

May import: ``controller.scaling``, ``controller.proto``, ``controller.kube``,
``controller.runtime.httpserver`` (the metrics endpoint), ``controller.clock``.
"""
