"""Member action replies come from code the operator does not control: a wrong shape is a named
MemberActionError (a Warning Event), not a TypeError out of the reconcile."""
from __future__ import annotations

from contextlib import nullcontext

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
