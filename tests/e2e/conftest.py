"""The e2e session: one cluster (see providers.py), one namespace per scenario."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.e2e.providers import E2ECluster, make_provider
from tests.namespaces import scratch_namespace


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def cluster() -> Iterator[E2ECluster]:
    provider = make_provider()
    runtimes = getattr(provider, "runtimes", None)  # what the local cluster runs for real
    print(f"\n[e2e] cluster provider: {provider.name}" + (f" ({runtimes})" if runtimes else ""))
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture
def ns(cluster: E2ECluster) -> Iterator[str]:
    with scratch_namespace(cluster, "e2e", suffix_chars=8) as name:
        yield name
