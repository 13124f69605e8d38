"""Fixtures many unit test modules share: a scripted API server, a fake clock, a metrics registry."""
from __future__ import annotations

from typing import Iterator

import pytest
from prometheus_client import CollectorRegistry

from controller.clock import FakeClock
from tests.unit.scripted_apiserver import ScriptedApiServer


@pytest.fixture
def server() -> Iterator[ScriptedApiServer]:
    s = ScriptedApiServer()
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    """A private registry so metric values do not leak between tests."""
    return CollectorRegistry()
