"""The user's view of Ensembles: ``ensemble-operator status`` and ``kubectl ensemble``.

Owns the command and the table it prints from an Ensemble's status alone.

May import: ``controller.kube``, ``controller.informers``, ``controller.logs`` and the other
lower layers; never the reconcilers (it shows what they wrote, it does not recompute it).
"""
