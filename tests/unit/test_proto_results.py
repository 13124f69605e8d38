"""Result codes a newer peer may send: named when known, numbered when not, never a crash."""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import grpc
import pytest

from controller.proto import ensemble_service_pb2 as pb
from controller.proto.results import result_name
from controller.proto.errors import ActionCallError
from controller.reconcilers.member_client import GrpcMemberClient


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
    with pytest.raises(ActionCallError, match=r"answered 42: later"):
        client.request("10.0.0.5:7000", "e1-0", "submit", {"group": "a"})


class JsonStub:
    def __init__(self, payload: str) -> None:
        self.payload = payload

    def RequestAction(self, request, timeout=None):  # noqa: N802 - gRPC method name
        return pb.Response(status=pb.Response.SUCCESS, payload=self.payload)


class LeaseChannels:
    def __init__(self, stub: JsonStub) -> None:
        self.stub = stub

    def lease(self, address: str):
        return nullcontext(self.stub)


@pytest.mark.parametrize("payload", ["[1, 2]", "3", '"ok"', "null"])
def test_a_reply_that_is_not_a_json_object_is_a_member_action_error(payload: str) -> None:
    client = GrpcMemberClient(LeaseChannels(JsonStub(payload)))  # type: ignore[arg-type]
    with pytest.raises(ActionCallError, match="reply is not a JSON object"):
        client.request("10.0.0.5:7000", "e1-0", "submit", {"group": "a"})


class BrokenCall(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "call broke"


class FailingStub:
    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code

    def RequestAction(self, request, timeout=None):  # noqa: N802 - gRPC method name
        raise BrokenCall(self.code)


@pytest.mark.parametrize("code, maybe_done", [
    (grpc.StatusCode.DEADLINE_EXCEEDED, True),   # sent; the answer did not come in time
    (grpc.StatusCode.CANCELLED, True),
    (grpc.StatusCode.UNAVAILABLE, False),        # never reached the member
    (grpc.StatusCode.INVALID_ARGUMENT, False),
])
def test_a_failed_call_says_whether_the_member_may_have_acted(code: grpc.StatusCode, maybe_done: bool) -> None:
    client = GrpcMemberClient(LeaseChannels(FailingStub(code)))  # type: ignore[arg-type]
    with pytest.raises(ActionCallError, match=f"submit: {code.name}: call broke") as raised:
        client.request("10.0.0.5:7000", "e1-0", "submit", {"group": "a"})
    assert raised.value.maybe_done is maybe_done
