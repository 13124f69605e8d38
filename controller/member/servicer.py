"""The lead broker's gRPC endpoint: status for the operator's poller, job submission on request."""
from __future__ import annotations

import json
import logging
from typing import TypeVar

import grpc

from controller.member.backend import BackendError, MemberBackend, PartialSubmit
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")


class MemberServicer(pb2_grpc.EnsembleOperatorServicer):
    def __init__(self, backend: MemberBackend) -> None:
        self._backend = backend

    def RequestStatus(self, request: pb2.StatusRequest, context: grpc.ServicerContext) -> pb2.Response:
        try:
            status = self._backend.status()
        except BackendError as err:
            return _reply(pb2.Response.ERROR, {"error": str(err)})
        return _reply(pb2.Response.SUCCESS, status)

    def RequestAction(self, request: pb2.ActionRequest, context: grpc.ServicerContext) -> pb2.Response:
        """``submit`` {"group", "count"} adds jobs; ``resize`` {"nodes"} follows a grow/shrink."""
        try:
            payload = _payload(request.payload)
            if request.action == "submit":
                result: dict[str, object] = self._submit(payload)
            elif request.action == "resize":
                nodes = _field(payload, "nodes", int)
                self._backend.resize(nodes)
                result = {"nodes": nodes}
            else:
                raise BackendError(f"action: unknown action {request.action!r} (expected 'submit' or 'resize')")
        except BackendError as err:
            log.warning("member action %r refused: %s", request.action, err)
            return _reply(pb2.Response.ERROR, {"error": str(err)})
        log.info("member action %r: %s", request.action, result)
        return _reply(pb2.Response.SUCCESS, result)

    def _submit(self, payload: dict) -> dict[str, object]:
        """A submit that failed part way is a success for the jobs that went in: the reply
        lists them with the error, so the caller neither loses nor repeats them."""
        try:
            return {"submitted": self._backend.submit(_field(payload, "group", str), _field(payload, "count", int))}
        except PartialSubmit as err:
            log.warning("member action 'submit' partly done: %s", err)
            return {"submitted": err.submitted, "error": str(err)}

    def RequestUpdate(self, request: pb2.UpdateRequest, context: grpc.ServicerContext) -> pb2.Response:
        return _reply(pb2.Response.ERROR, {"error": "RequestUpdate: not supported by the member endpoint"})


def _payload(text: str) -> dict:
    try:
        payload = json.loads(text or "{}")
    except json.JSONDecodeError as err:
        raise BackendError(f"payload: malformed JSON ({err.msg} at position {err.pos})") from None
    if not isinstance(payload, dict):
        raise BackendError(f"payload: expected a JSON object, got {type(payload).__name__}")
    return payload


def _field(payload: dict, name: str, kind: type[T]) -> T:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BackendError(f"payload.{name}: expected {kind.__name__}, got {value!r}")
    return value


def _reply(status: pb2.Response.ResultType, body: dict) -> pb2.Response:
    return pb2.Response(payload=json.dumps(body, sort_keys=True), status=status)
