"""Fixtures many unit test modules share: a scripted API server, a fake clock, a metrics registry,
the reconciler on in-memory fakes."""
from __future__ import annotations

import logging
from typing import Iterator

import pytest
from prometheus_client import CollectorRegistry

from tests.fakes import FakeClock
from tests.unit.fakes.reconciler import reconciler_env
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


@pytest.fixture
def env():
    """An EnsembleReconciler on in-memory fakes: (api, recorder, poller, clock, reconciler)."""
    return reconciler_env()


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    """For tests of code that configures root logging (cli.main): undo it afterwards, so
    later tests log as before."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in saved_handlers]:
        root.removeHandler(handler)
    root.setLevel(saved_level)
