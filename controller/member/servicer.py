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


DEFAULT_MAX_SUBMIT = 1000
NAME_REQUIRED = "--name: required: the member (MiniCluster) this endpoint answers for"


class MemberServicer(pb2_grpc.EnsembleOperatorServicer):
    """Answers only for ``member`` (its MiniCluster's name): a request naming another member was
    meant for another endpoint, and acting on it would report or change the wrong queue.
    A ``submit`` asks for at most ``max_submit`` jobs, so one request cannot flood Flux or
    hold a worker for hours."""

    def __init__(self, backend: MemberBackend, member: str, *, max_submit: int = DEFAULT_MAX_SUBMIT) -> None:
        if not member:
            raise ValueError(NAME_REQUIRED)
        if max_submit < 1:
            raise ValueError(f"--max-submit: must be >= 1, got {max_submit}")
        self._backend = backend
        self.member = member
        self._max_submit = max_submit

    def RequestStatus(self, request: pb2.StatusRequest, context: grpc.ServicerContext) -> pb2.Response:
        refused = self._refuse_other(request.name, "status")
        if refused is not None:
            return refused
        try:
            status = self._backend.status()
        except BackendError as err:
            return _reply(pb2.Response.ERROR, {"error": str(err)})
        return _reply(pb2.Response.SUCCESS, status)

    def RequestAction(self, request: pb2.ActionRequest, context: grpc.ServicerContext) -> pb2.Response:
        """``submit`` {"group", "count"} adds jobs; ``resize`` {"nodes"} follows a grow/shrink."""
        refused = self._refuse_other(request.name, f"action {request.action[:64]!r}")
        if refused is not None:
            return refused
        try:
            payload = _payload(request.payload)
            if request.action == "submit":
                result: dict[str, object] = self._submit(payload)
            elif request.action == "resize":
                nodes = _field(payload, "nodes", int)
                self._backend.resize(nodes)
                result = {"nodes": nodes}
            else:
                raise BackendError(f"action: unknown action {_short(request.action)} "
                                   "(expected 'submit' or 'resize')")
        except BackendError as err:
            log.warning("member action %s refused: %s", _short(request.action), err)
            return _reply(pb2.Response.ERROR, {"error": str(err)})
        log.info("member action %s: %s", _short(request.action), result)
        return _reply(pb2.Response.SUCCESS, result)

    def _refuse_other(self, name: str, what: str) -> pb2.Response | None:
        if name == self.member:
            return None
        log.warning("%s for member %r refused: this endpoint answers for %r", what, name[:256], self.member)
        return _reply(pb2.Response.DENIED, {"error": f"name: this endpoint answers for member {self.member!r}, "
                                                    f"not {name[:256]!r}"})

    def _submit(self, payload: dict) -> dict[str, object]:
        """A submit that failed part way is a success for the jobs that went in: the reply
        lists them with the error, so the caller neither loses nor repeats them."""
        group, count = _field(payload, "group", str), _field(payload, "count", int)
        if not 1 <= count <= self._max_submit:
            raise BackendError(f"payload.count: must be 1 to {self._max_submit} jobs per submit "
                               f"(--max-submit), got {count}")
        try:
            return {"submitted": self._backend.submit(group, count)}
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
    except (ValueError, RecursionError) as err:  # an integer of 4,300+ digits; nesting past the stack
        raise BackendError(f"payload: unreadable JSON ({type(err).__name__}: {str(err)[:100]})") from None
    if not isinstance(payload, dict):
        raise BackendError(f"payload: expected a JSON object, got {type(payload).__name__}")
    return payload


def _field(payload: dict, name: str, kind: type[T]) -> T:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BackendError(f"payload.{name}: expected {kind.__name__}, got {_short(value)}")
    return value


def _short(value: object, limit: int = 100) -> str:
    """``repr`` cut to ``limit`` characters: replies and logs echo what a peer sent."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _reply(status: pb2.Response.ResultType, body: dict) -> pb2.Response:
    return pb2.Response(payload=json.dumps(body, sort_keys=True), status=status)
