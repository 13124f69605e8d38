"""A simulated member: what runs in a lead broker when Flux cannot run on this machine.

Owns the simulated Flux queue (``simulator``), the ensemble run that follows a member's
ensemble.yaml as ensemble-python 0.0.16 would (``runner``, with its ``rules`` and ``metrics``),
the client asking the ensemble service to grow or shrink (``action_client``), and the process
tying them to the production status endpoint (``session``, entry point ``python hack/sim/member``).
The pod process runner (``hack/sim/podrunner.py``) starts one per lead broker.

May import anything in ``controller`` and ``api`` (it plays the production sidecar's
backend); nothing in ``controller`` imports it.
"""
