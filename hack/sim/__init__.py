"""What cannot run on a development machine, simulated on this project's own runtime.

Owns the Flux Operator simulator (``fluxoperator``), the pod process runner that plays
kubelet and container runtime for kwok's pods (``podrunner`` with ``podprocesses``, ``pods``,
``podnetwork``, ``podhosts``, ``restarts``), the runtime of real Flux members (``realmembers``,
``fluxmembers``) and the simulated member (``member``).

May import anything in ``controller`` and ``api``; nothing shipped imports it
(tests/unit/test_import_layers.py checks that).
"""
