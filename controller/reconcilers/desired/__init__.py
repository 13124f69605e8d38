"""Desired objects of an Ensemble: pure functions from the Ensemble dict to manifests.

The reconciler applies what these return; nothing here reads the cluster.
"""
from __future__ import annotations

from controller.reconcilers.desired.member import config_map, members, minicluster
from controller.reconcilers.desired.network import member_policy, network_policy_enabled, service_policy
from controller.reconcilers.desired.service import (
    deployment, grpc_service, role, role_binding, service_account)
from controller.reconcilers.desired.settings import DesiredSettings


def desired_objects(ensemble: dict, settings: DesiredSettings) -> list[dict]:
    """Everything an (already validated) Ensemble owns, in apply order.

    RBAC before the Deployment that uses it, the Service before the members dialling it,
    each NetworkPolicy before the pods it selects.
    """
    policies = network_policy_enabled(ensemble)
    objects = [service_account(ensemble), role(ensemble), role_binding(ensemble), grpc_service(ensemble)]
    objects += [service_policy(ensemble, settings)] if policies else []  # before the pods it isolates
    objects += [deployment(ensemble, settings)]
    for index in range(len(members(ensemble))):
        objects += [member_policy(ensemble, index, settings)] if policies else []
        objects += [config_map(ensemble, index), minicluster(ensemble, index, settings)]
    return objects


__all__ = ["DesiredSettings", "desired_objects"]
