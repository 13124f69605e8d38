"""The e2e session: one cluster (see providers.py), one namespace per scenario."""
from __future__ import annotations

import uuid
from typing import Iterator

import pytest

from tests.e2e.providers import E2ECluster, make_provider


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def cluster() -> Iterator[E2ECluster]:
    provider = make_provider()
    print(f"\n[e2e] cluster provider: {provider.name}")
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture
def ns(cluster: E2ECluster) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("create", "serviceaccount", "default", "-n", name, check=False)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
