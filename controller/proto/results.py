"""Names of ``Response.ResultType`` values, for messages (hand-written, not generated)."""
from __future__ import annotations

from controller.proto import ensemble_service_pb2 as pb2


def result_name(status: int) -> str:
    """``SUCCESS``/``ERROR``/``DENIED``..., or the number itself for a code this build does not
    know (a newer peer): ``ResultType.Name`` raises ValueError there, which must not replace
    the peer's answer with a crash."""
    if status in pb2.Response.ResultType.values():
        return pb2.Response.ResultType.Name(status)
    return str(status)
