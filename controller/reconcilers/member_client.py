"""Asks a member's lead broker endpoint to act: ``submit`` jobs, or ``resize`` after a scale.

It reuses the poller's channels: the operator already holds one to every lead broker.
"""
from __future__ import annotations

import json
from typing import Protocol

import grpc

from controller.proto import ensemble_service_pb2 as pb
from controller.proto.errors import ActionCallError
from controller.proto.results import result_name
from controller.proto.wire import MINICLUSTER_MEMBER
from controller.reconcilers.poller import ChannelCache


class MemberClient(Protocol):
    def request(self, address: str, member: str, action: str, payload: dict) -> dict: ...


class GrpcMemberClient:
    def __init__(self, channels: ChannelCache, timeout: float = 5.0) -> None:
        self._channels = channels
        self._timeout = timeout

    def request(self, address: str, member: str, action: str, payload: dict) -> dict:
        """The member's JSON reply to ``action``; raises ActionCallError on any failure."""
        request = pb.ActionRequest(member=MINICLUSTER_MEMBER, name=member, action=action,
                                   payload=json.dumps(payload))
        where = f"member {member} at {address}: {action}"
        try:
            with self._channels.lease(address) as stub:
                response = stub.RequestAction(request, timeout=self._timeout)
        except grpc.RpcError as error:
            raise ActionCallError.from_rpc(where, error) from None
        if response.status != pb.Response.SUCCESS:
            raise ActionCallError(f"{where}: answered {result_name(response.status)}: "
                                    f"{response.payload}")
        try:
            reply = json.loads(response.payload or "{}")
        except json.JSONDecodeError:
            raise ActionCallError(f"{where}: reply is not JSON: {response.payload!r}") from None
        if not isinstance(reply, dict):  # callers read it as a map: a list would crash the reconcile
            raise ActionCallError(f"{where}: reply is not a JSON object: {response.payload!r}")
        return reply
