"""Member action replies come from code the operator does not control: a wrong shape is a named
MemberActionError (a Warning Event), not a TypeError out of the reconcile."""
from __future__ import annotations

from contextlib import nullcontext

import grpc
import pytest

from controller.proto import ensemble_service_pb2 as pb
from controller.reconcilers.member_client import GrpcMemberClient, MemberActionError
from tests.unit.test_reconciler_algorithms import EMPTY, Env


class JsonStub:
    def __init__(self, payload: str) -> None:
        self.payload = payload

    def RequestAction(self, request, timeout=None):  # noqa: N802 - gRPC method name
        return pb.Response(status=pb.Response.SUCCESS, payload=self.payload)


class Channels:
    def __init__(self, stub: JsonStub) -> None:
        self.stub = stub

    def lease(self, address: str):
        return nullcontext(self.stub)


@pytest.mark.parametrize("payload", ["[1, 2]", "3", '"ok"', "null"])
def test_a_reply_that_is_not_a_json_object_is_a_member_action_error(payload: str) -> None:
    client = GrpcMemberClient(Channels(JsonStub(payload)))  # type: ignore[arg-type]
    with pytest.raises(MemberActionError, match="reply is not a JSON object"):
        client.request("10.0.0.5:7000", "e1-0", "submit", {"group": "a"})


@pytest.mark.parametrize("reply", [{"submitted": 2}, {"submitted": "7"}])
def test_a_submit_reply_of_the_wrong_shape_is_a_warning_not_a_crashed_reconcile(reply: dict) -> None:
    env = Env({"name": "refill", "options": {"group": "a", "emptyPolls": 1}})
    env.members.request = lambda address, member, action, payload: reply  # type: ignore[method-assign]
    env.poll(EMPTY)
    (warning,) = [m for t, r, m in env.events.events if r == "AlgorithmActionFailed"]
    assert "submit not done" in warning and "reply" in warning
    assert "memberActions" not in env.status


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
    client = GrpcMemberClient(Channels(FailingStub(code)))  # type: ignore[arg-type]
    with pytest.raises(MemberActionError, match=f"submit: {code.name}: call broke") as raised:
        client.request("10.0.0.5:7000", "e1-0", "submit", {"group": "a"})
    assert raised.value.maybe_done is maybe_done


def test_a_submit_that_timed_out_counts_as_a_refill_and_is_not_sent_again() -> None:
    env = Env({"name": "refill", "options": {"group": "a", "emptyPolls": 1, "maxRefills": 1}})
    calls: list[str] = []

    def timed_out(address: str, member: str, action: str, payload: dict) -> dict:
        calls.append(action)
        raise MemberActionError(f"member {member} at {address}: {action}: DEADLINE_EXCEEDED: late",
                                maybe_done=True)

    env.members.request = timed_out  # type: ignore[method-assign]
    for _ in range(3):
        env.poll(EMPTY)
    assert calls == ["submit"]
    assert env.status["memberActions"][0]["actionCounts"] == {"submit": 1}
    (warning,) = [m for t, r, m in env.events.events if r == "AlgorithmActionUnconfirmed"]
    assert "DEADLINE_EXCEEDED" in warning and warning.endswith("counted as done, not repeated")
    assert "AlgorithmActionFailed" not in env.reasons()
