"""Asks a member's lead broker endpoint to act: ``submit`` jobs, or ``resize`` after a scale.

It reuses the poller's channels: the operator already holds one to every lead broker.
"""
from __future__ import annotations

import json
from typing import Protocol

import grpc

from controller.proto import ensemble_service_pb2 as pb
from controller.proto.results import result_name
from controller.reconcilers.poller import STATUS_REQUEST_MEMBER, ChannelCache


class MemberActionError(Exception):
    """The member could not be asked, or refused; the message names address, member and action.

    ``maybe_done``: the request may have reached the member and been carried out (the call
    timed out or broke after it was sent), so repeating it could do it twice.
    """

    def __init__(self, message: str, *, maybe_done: bool = False) -> None:
        super().__init__(message)
        self.maybe_done = maybe_done


# gRPC outcomes after which the member may have acted: the request was sent, the answer lost.
# UNAVAILABLE (no connection) and a member's own refusal mean it did nothing.
MAYBE_DONE_CODES = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
                              grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS})


class MemberClient(Protocol):
    def request(self, address: str, member: str, action: str, payload: dict) -> dict: ...


class GrpcMemberClient:
    def __init__(self, channels: ChannelCache, timeout: float = 5.0) -> None:
        self._channels = channels
        self._timeout = timeout

    def request(self, address: str, member: str, action: str, payload: dict) -> dict:
        """The member's JSON reply to ``action``; raises MemberActionError on any failure."""
        request = pb.ActionRequest(member=STATUS_REQUEST_MEMBER, name=member, action=action,
                                   payload=json.dumps(payload))
        where = f"member {member} at {address}: {action}"
        try:
            with self._channels.lease(address) as stub:
                response = stub.RequestAction(request, timeout=self._timeout)
        except grpc.RpcError as error:
            raise MemberActionError(f"{where}: {error.code().name}: {error.details()}",
                                    maybe_done=error.code() in MAYBE_DONE_CODES) from None
        if response.status != pb.Response.SUCCESS:
            raise MemberActionError(f"{where}: answered {result_name(response.status)}: "
                                    f"{response.payload}")
        try:
            reply = json.loads(response.payload or "{}")
        except json.JSONDecodeError:
            raise MemberActionError(f"{where}: reply is not JSON: {response.payload!r}") from None
        if not isinstance(reply, dict):  # callers read it as a map: a list would crash the reconcile
            raise MemberActionError(f"{where}: reply is not a JSON object: {response.payload!r}")
        return reply
