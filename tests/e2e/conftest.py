"""The e2e session: one cluster (see providers.py), one namespace per scenario.

Which runtimes ran (the Flux Operator's, the members') is printed in the terminal summary
even when every scenario passes: a print in a fixture would be captured. Scenarios marked
``real_flux`` read a member's Flux instance, which only real members have: they run where
members are real, fail where real members are demanded (``E2E_REAL_MEMBERS=1`` or
``ENSEMBLE_MEMBERS=real``, as CI sets) but absent, and are deselected, saying why, otherwise.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Iterator

import pytest

from tests.e2e.providers import (REAL, ClusterUnavailable, E2ECluster, expected_member_runtime, make_provider,
                                 provider_name)
from tests.namespaces import scratch_namespace

REAL_FLUX = "real_flux"
RAN = pytest.StashKey[dict[str, str]]()
DESELECTED = pytest.StashKey[str]()


def real_members_demanded(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("E2E_REAL_MEMBERS") == "1" or environ.get("ENSEMBLE_MEMBERS", "").strip() == REAL


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{REAL_FLUX}: reads a member's Flux instance; needs real members")


def pytest_report_header(config: pytest.Config) -> str:
    return (f"e2e: cluster {provider_name()}, members expected {expected_member_runtime(provider_name())}"
            f"{' (real demanded)' if real_members_demanded() else ''}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e = [item for item in items if "tests/e2e/" in str(item.fspath)]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    real_only = [item for item in e2e if item.get_closest_marker(REAL_FLUX)]
    if not real_only or real_members_demanded():
        return
    runtime = expected_member_runtime(provider_name())
    if runtime != REAL:
        config.stash[DESELECTED] = (f"{len(real_only)} real_flux scenario(s) deselected: members here are "
                                    f"{runtime} (set E2E_REAL_MEMBERS=1 to make that a failure)")
        config.hook.pytest_deselected(items=real_only)
        items[:] = [item for item in items if item not in real_only]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    ran = config.stash.get(RAN, None)
    if ran:
        terminalreporter.write_line(
            f"e2e runtimes: cluster {ran['cluster']}, Flux Operator {ran['flux_operator']}, "
            f"members {ran['members']} (member seconds per wall second: {ran['speed']})", bold=True)
    if DESELECTED in config.stash:
        terminalreporter.write_line(f"e2e: {config.stash[DESELECTED]}", yellow=True)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[E2ECluster]:
    try:
        provider = make_provider()
    except ClusterUnavailable as err:  # one line for the session, not one error per scenario
        pytest.exit(str(err), returncode=pytest.ExitCode.USAGE_ERROR)
    request.config.stash[RAN] = {"cluster": provider.name, "flux_operator": provider.flux_operator_runtime,
                                 "members": provider.member_runtime, "speed": f"{provider.member_speed:g}"}
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture
def real_cluster(cluster: E2ECluster, request: pytest.FixtureRequest) -> E2ECluster:
    """The cluster, for a scenario only real Flux can show: a failure where members are not real."""
    if cluster.member_runtime != REAL:
        pytest.fail(f"{request.node.name} needs real members (a Flux instance to read), but the "
                    f"{cluster.name} cluster runs {cluster.member_runtime} members: build Flux "
                    "(hack/build-flux.sh) and run as root, or unset E2E_REAL_MEMBERS/ENSEMBLE_MEMBERS=real")
    return cluster


@pytest.fixture
def ns(cluster: E2ECluster) -> Iterator[str]:
    with scratch_namespace(cluster, "e2e", suffix_chars=8) as name:
        yield name
