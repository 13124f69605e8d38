"""The user's view of Ensembles: ``ensemble-operator status`` and ``kubectl ensemble``."""
