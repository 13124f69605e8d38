"""The EnsembleOperator gRPC servicer: wire requests in, scaler decisions out.

Every decision is counted and logged (see ``decision_log``), so an operator can see why a
member did not grow. Before any of that, ``admission`` decides whether the caller may ask at all
(its identity, then the Ensemble's rate limit); a refusal is a DENIED reply naming the reason.
"""
from __future__ import annotations

import json
import logging

import grpc
from prometheus_client import CollectorRegistry, Counter

from controller.clock import Clock, RealClock
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.scaling.requests import ScaleRequest, ScaleRequestError, parse_scale_request
from controller.scaling.decision_log import DecisionLog
from controller.scaling.scaler import Decision, EnsembleScaler, Outcome
from controller.service.admission import RequestAdmission
from controller.service.callers import Denial

log = logging.getLogger(__name__)

_RESULT = {
    Outcome.SUCCESS: pb2.Response.ResultType.SUCCESS,
    Outcome.ERROR: pb2.Response.ResultType.ERROR,
    Outcome.DENIED: pb2.Response.ResultType.DENIED,
}


def actions_counter(registry: CollectorRegistry) -> Counter:
    return Counter("ensemble_service_actions_total", "Action requests handled, by action and result",
                   ["action", "result"], registry=registry)


def unrecorded_actions_counter(registry: CollectorRegistry) -> Counter:
    return Counter("ensemble_service_action_records_failed_total",
                   "Writes of the served resizes to the Ensemble's status.serviceActions that failed "
                   "(each is retried with backoff)",
                   registry=registry)


class EnsembleServicer(pb2_grpc.EnsembleOperatorServicer):
    """``admission`` None serves every caller: only for tests of the scaling itself; the
    ``service`` command always admits (``controller.service.main``)."""

    def __init__(self, scaler: EnsembleScaler, actions_total: Counter, *, clock: Clock | None = None,
                 admission: RequestAdmission | None = None) -> None:
        self._scaler = scaler
        self._admission = admission
        self._actions_total = actions_total
        # labels() validates and locks on every call; the few (action, result) children are reused
        self._counted: dict[tuple[str, Outcome], Counter] = {}
        self._decisions = DecisionLog(clock or RealClock(), logger=log)

    def RequestAction(self, request: pb2.ActionRequest, context: grpc.ServicerContext) -> pb2.Response:
        action = request.action if request.action in ("grow", "shrink") else "unknown"
        denial = self._admission.admit_action(context.peer(), request.name) if self._admission else None
        if denial is not None:  # admission logged it, at most once per interval: no line per request
            self._count(action, Outcome.DENIED)
            return _response(_denied(denial))
        try:
            scale = parse_scale_request(request.member, request.name, request.action, request.payload)
        except ScaleRequestError as err:
            decision = Decision(Outcome.ERROR, {"error": str(err)})
        else:
            decision = self._scale(scale)
        self._count(action, decision.outcome)
        response = _response(decision)
        self._decisions.record(request.action or "<empty>", f"{self._scaler.namespace}/{request.name}",
                               request.member, decision.outcome, response.payload)
        return response

    def _scale(self, request: ScaleRequest) -> Decision:
        """Any failure is an ERROR reply naming its cause, as upstream's service answers: on a gRPC
        error (an exception here is UNKNOWN) ensemble-python's client raises, ending the member's run."""
        try:
            return self._scaler.scale(request)
        except Exception as err:
            log.exception("action %s on %s/%s failed", request.action, self._scaler.namespace, request.name)
            return Decision(Outcome.ERROR, {"error": f"{request.action} MiniCluster {self._scaler.namespace}/"
                                                     f"{request.name} failed: {type(err).__name__}: {err}"})

    def _count(self, action: str, outcome: Outcome) -> None:
        child = self._counted.get((action, outcome))
        if child is None:
            child = self._counted.setdefault((action, outcome),
                                             self._actions_total.labels(action=action, result=outcome.value))
        child.inc()

    def RequestStatus(self, request: pb2.StatusRequest, context: grpc.ServicerContext) -> pb2.Response:
        """Like an action, any failure is an ERROR reply naming its cause, not a gRPC UNKNOWN."""
        denial = self._admission.admit_status(context.peer()) if self._admission else None
        if denial is not None:
            return _response(_denied(denial))
        try:
            return _response(self._scaler.view(request.name))
        except Exception as err:
            log.exception("status of Ensemble %s/%s failed", self._scaler.namespace, self._scaler.ensemble)
            return _response(Decision(Outcome.ERROR, {"error": f"status of Ensemble {self._scaler.namespace}/"
                                                               f"{self._scaler.ensemble} failed: "
                                                               f"{type(err).__name__}: {err}"}))

    def RequestUpdate(self, request: pb2.UpdateRequest, context: grpc.ServicerContext) -> pb2.Response:
        return _response(Decision(Outcome.ERROR, {
            "error": "RequestUpdate: algorithm updates are not supported by this service"}))


def _denied(denial: Denial) -> Decision:
    return Decision(Outcome.DENIED, {"error": denial.message, "reason": denial.reason.value})


def _response(decision: Decision) -> pb2.Response:
    return pb2.Response(payload=json.dumps(decision.payload, sort_keys=True), status=_RESULT[decision.outcome])
