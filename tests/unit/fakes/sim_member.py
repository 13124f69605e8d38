"""What the tests of the simulated member runtime (hack/sim/member) share: an ensemble service
that records the RequestActions it gets, and a run of an ensemble.yaml on a simulated queue."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import yaml

from controller.clock import Clock
from controller.member.jobgroups import load_job_groups
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from sim.member.action_client import ActionClient
from sim.member.runner import EnsembleRun
from sim.member.simulator import SimulatedFlux
from tests.compat import UPSTREAM_EXAMPLES


@dataclass
class Received:
    at: float
    member: str
    name: str
    action: str
    payload: dict


@dataclass
class FakeEnsembleService(pb2_grpc.EnsembleOperatorServicer):
    """Records each RequestAction; ``on_action`` lets a test make a grow take effect."""
    clock: Clock
    on_action: Callable[[str, dict], None] = lambda action, payload: None
    received: list[Received] = field(default_factory=list)

    def RequestAction(self, request: pb2.ActionRequest, context: grpc.ServicerContext) -> pb2.Response:
        payload = json.loads(request.payload)
        self.received.append(Received(self.clock.now(), request.member, request.name, request.action,
                                      payload))
        self.on_action(request.action, payload)
        return pb2.Response(payload=json.dumps({"size": 2}), status=pb2.Response.SUCCESS)


def upstream_member_yaml(example: str) -> str:
    document = yaml.safe_load((UPSTREAM_EXAMPLES / example).read_text())
    return document["spec"]["members"][0]["ensemble"]


def ensemble_run(text: str, clock: Clock, actions: ActionClient | None = None,
                 nodes: int = 1) -> tuple[EnsembleRun, SimulatedFlux]:
    flux = SimulatedFlux(load_job_groups(text), nodes, clock)
    return EnsembleRun(yaml.safe_load(text), flux, actions, clock), flux
