"""Asks the ensemble service to grow or shrink this member's MiniCluster.

Same wire as ensemble-python's EnsembleClient: ``RequestAction(member="miniclusters",
name=<MiniCluster>, action="grow"|"shrink", payload={"version", "group", <action>: N})``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import grpc

from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.proto.errors import ActionCallError
from controller.proto.limits import insecure_channel
from controller.proto.results import result_name
from controller.proto.wire import MINICLUSTER_API, MINICLUSTER_MEMBER


@dataclass(frozen=True)
class ActionReply:
    status: str          # SUCCESS, ERROR, DENIED, ... (the proto's ResultType name)
    payload: str

    @property
    def ok(self) -> bool:
        return self.status == "SUCCESS"


class ActionClient:
    """One channel to the service for the whole run (the service may be asked often)."""

    def __init__(self, target: str, name: str, *, timeout: float = 10.0) -> None:
        host, sep, port = target.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"service address: expected HOST:PORT, got {target!r}")
        if not name:
            raise ValueError("name: the MiniCluster name is required to ask for grow/shrink")
        self.target = target
        self.name = name
        self._timeout = timeout
        self._channel = insecure_channel(target)
        self._stub = pb2_grpc.EnsembleOperatorStub(self._channel)

    def scale(self, action: str, amount: int) -> ActionReply:
        """``action`` is grow or shrink; ``amount`` the nodes to add or remove."""
        request = pb2.ActionRequest(member=MINICLUSTER_MEMBER, name=self.name, action=action,
                                    payload=json.dumps({**MINICLUSTER_API, action: amount}))
        try:
            response = self._stub.RequestAction(request, timeout=self._timeout)
        except grpc.RpcError as err:
            raise ActionCallError.from_rpc(f"ensemble service {self.target}: {action} {self.name} failed", err) from None
        return ActionReply(result_name(response.status), response.payload)

    def close(self) -> None:
        self._channel.close()
