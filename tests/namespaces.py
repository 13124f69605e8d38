"""A namespace per test, on whichever cluster a suite runs against."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator, Protocol


class Kubectl(Protocol):
    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str: ...


@contextmanager
def scratch_namespace(cluster: Kubectl, prefix: str, suffix_chars: int) -> Iterator[str]:
    """A fresh namespace with its default ServiceAccount, deleted (without waiting) afterwards.

    Pods need the default ServiceAccount; without kube-controller-manager nothing else creates it.
    """
    name = f"{prefix}-{uuid.uuid4().hex[:suffix_chars]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("create", "serviceaccount", "default", "-n", name, check=False)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
