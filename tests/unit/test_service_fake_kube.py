"""The in-memory KubeApi fake (tests/unit/fakes/kube.py) keeps the API server's optimistic
locking: the service's tests rely on the 409 a stale resourceVersion gets."""
from __future__ import annotations

import pytest

from controller.kube.errors import ApiError, is_conflict, is_not_found
from controller.kube.resources import MINICLUSTERS
from tests.unit.fakes.kube import FakeKube, minicluster_obj


def test_patch_with_stale_resource_version_conflicts() -> None:
    kube = FakeKube()
    stale = kube.put(MINICLUSTERS, minicluster_obj("mc", None))
    kube.patch(MINICLUSTERS, "mc", {"spec": {"size": 2}}, namespace="ns")
    with pytest.raises(ApiError) as err:
        kube.patch(MINICLUSTERS, "mc", {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]},
                                        "spec": {"size": 3}}, namespace="ns")
    assert is_conflict(err.value)
    assert kube.get(MINICLUSTERS, "mc", "ns")["spec"]["size"] == 2


def test_get_missing_object_is_not_found() -> None:
    with pytest.raises(ApiError) as err:
        FakeKube().get(MINICLUSTERS, "absent", "ns")
    assert is_not_found(err.value)
