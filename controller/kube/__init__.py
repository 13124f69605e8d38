"""Kubernetes API access: ``KubeClient`` (``client``), config and credentials (``config``), the
resources the operator uses (``resources``), errors (``errors``) and watch-stream parsing.

May import: ``controller.clock``, ``controller.workqueue.rate_limiters`` (the client-side
token bucket); third parties ``kubernetes`` (config/auth only), urllib3, msgspec. Nothing
that caches, reconciles or knows Ensembles.
"""
