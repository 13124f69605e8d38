"""Member pods: knowledge the operator and the ensemble service share about a member's pods.

Owns the labels the operator puts on what it owns and the selectors built from them
(``labels``), and which pod is a member's lead broker: index 0 and controlled by the member's
Job (``leadbroker``). Pure functions over pod dicts, so the ensemble service can use them
without loading the reconcilers.

May import: the standard library only.
"""
