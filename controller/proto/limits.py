"""Message size limits for every gRPC server and channel the operator creates.

Members are tenants: without a limit a peer may send (or make us buffer) up to grpcio's
4 MiB per message, per call, on every thread. Our own messages are far smaller (the largest
ensemble-python 0.0.16 sends is an ``ActionRequest`` of a few hundred bytes; a member's
status JSON a few KiB), so 64 KiB leaves them room while bounding what a peer can cost.
A message over the limit fails that call with ``RESOURCE_EXHAUSTED``; the peer stays served.
"""
from __future__ import annotations

from collections.abc import Sequence

import grpc

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024


def message_size_options(max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """gRPC options capping both directions at ``max_bytes``; ValueError names a bad bound."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1024:
        raise ValueError(f"max message bytes: must be an integer >= 1024, got {max_bytes!r}")
    return [("grpc.max_receive_message_length", max_bytes), ("grpc.max_send_message_length", max_bytes)]


def insecure_channel(target: str, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, *,
                     options: Sequence[tuple[str, int]] = ()) -> grpc.Channel:
    """``grpc.insecure_channel`` with the message size limits, and ``options`` besides."""
    return grpc.insecure_channel(target, options=message_size_options(max_bytes) + list(options))
