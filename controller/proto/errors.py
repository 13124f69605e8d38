"""The one error a caller of a peer's ``RequestAction`` sees, whichever side is calling.

The operator asks a member's sidecar to ``submit`` or ``resize``; a simulated member asks the
ensemble service to ``grow`` or ``shrink``. Either call can fail the same ways: the peer
cannot be reached, the call breaks, or (for callers that want a reply) the peer refuses.
"""
from __future__ import annotations

import grpc

# gRPC outcomes after which the peer may have acted: the request was sent, the answer lost.
# UNAVAILABLE (no connection) and a peer's own refusal mean it did nothing.
MAYBE_DONE_CODES = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
                              grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS})


class ActionCallError(Exception):
    """A ``RequestAction`` could not be made, broke, or was refused; the message names the
    peer's address, the MiniCluster and the action.

    ``maybe_done``: the request may have reached the peer and been carried out (the call
    timed out or broke after it was sent), so repeating it could do it twice.
    """

    def __init__(self, message: str, *, maybe_done: bool = False) -> None:
        super().__init__(message)
        self.maybe_done = maybe_done

    @classmethod
    def from_rpc(cls, where: str, error: grpc.RpcError) -> ActionCallError:
        """``<where>: <CODE>: <details>``, maybe done when the code says the request was sent."""
        code = error.code()  # type: ignore[attr-defined]
        return cls(f"{where}: {code.name}: {error.details()}",  # type: ignore[attr-defined]
                   maybe_done=code in MAYBE_DONE_CODES)
