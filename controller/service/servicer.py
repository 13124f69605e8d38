"""The EnsembleOperator gRPC servicer: wire requests in, scaler decisions out.

Every decision is logged and counted, so an operator can see why a member did not grow.
"""
from __future__ import annotations

import json
import logging

import grpc
from prometheus_client import CollectorRegistry, Counter

from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from controller.service.actions import ActionError, parse_scale_request
from controller.service.scaler import Decision, EnsembleScaler, Outcome

log = logging.getLogger(__name__)

_RESULT = {
    Outcome.SUCCESS: pb2.Response.ResultType.SUCCESS,
    Outcome.ERROR: pb2.Response.ResultType.ERROR,
    Outcome.DENIED: pb2.Response.ResultType.DENIED,
}


def actions_counter(registry: CollectorRegistry) -> Counter:
    return Counter("ensemble_service_actions_total", "Action requests handled, by action and result",
                   ["action", "result"], registry=registry)


class EnsembleServicer(pb2_grpc.EnsembleOperatorServicer):
    def __init__(self, scaler: EnsembleScaler, actions_total: Counter) -> None:
        self._scaler = scaler
        self._actions_total = actions_total

    def RequestAction(self, request: pb2.ActionRequest, context: grpc.ServicerContext) -> pb2.Response:
        try:
            scale = parse_scale_request(request.member, request.name, request.action, request.payload)
        except ActionError as err:
            decision = Decision(Outcome.ERROR, {"error": str(err)})
        else:
            decision = self._scaler.scale(scale)
        action = request.action if request.action in ("grow", "shrink") else "unknown"
        self._actions_total.labels(action=action, result=decision.outcome.value).inc()
        response = _response(decision)
        log.log(logging.INFO if decision.outcome is Outcome.SUCCESS else logging.WARNING,
                "action %s on %s/%s from member %r: %s %s", request.action or "<empty>",
                self._scaler.namespace, request.name, request.member, decision.outcome.value,
                response.payload)
        return response

    def RequestStatus(self, request: pb2.StatusRequest, context: grpc.ServicerContext) -> pb2.Response:
        return _response(self._scaler.view(request.name))

    def RequestUpdate(self, request: pb2.UpdateRequest, context: grpc.ServicerContext) -> pb2.Response:
        return _response(Decision(Outcome.ERROR, {
            "error": "RequestUpdate: algorithm updates are not supported by this service"}))


def _response(decision: Decision) -> pb2.Response:
    return pb2.Response(payload=json.dumps(decision.payload, sort_keys=True), status=_RESULT[decision.outcome])
