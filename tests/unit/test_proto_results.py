"""Result codes a newer peer may send: named when known, numbered when not, never a crash."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from controller.proto import ensemble_service_pb2 as pb
from controller.proto.results import result_name
from controller.reconcilers.member_client import GrpcMemberClient, MemberActionError


def test_known_codes_are_named_unknown_ones_numbered() -> None:
    assert result_name(pb.Response.SUCCESS) == "SUCCESS"
    assert result_name(pb.Response.DENIED) == "DENIED"
    assert result_name(42) == "42"


class AnsweringStub:
    def __init__(self, status: int) -> None:
        self.status = status

    def RequestAction(self, request, timeout=None):  # noqa: N802 - gRPC method name
        return pb.Response(status=self.status, payload="later")


class Channels:
    def __init__(self, stub: AnsweringStub) -> None:
        self.stub = stub

    @contextmanager
    def lease(self, address: str):
        yield self.stub


def test_a_member_answering_an_unknown_code_is_a_member_action_error() -> None:
    client = GrpcMemberClient(Channels(AnsweringStub(42)))  # type: ignore[arg-type]
    with pytest.raises(MemberActionError, match=r"answered 42: later"):
        client.request("10.0.0.5:7000", "e1-0", "submit", {"group": "a"})
