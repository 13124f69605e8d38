"""ChunkedReader: the payload of a chunked body however its bytes are split into reads."""
from __future__ import annotations

import random

import pytest

from controller.kube.chunked import MAX_SIZE_LINE, ChunkedReader, MalformedChunk


def encode(pieces: list[bytes], extension: bytes = b"") -> bytes:
    return b"".join(b"%x%s\r\n%s\r\n" % (len(piece), extension, piece) for piece in pieces) + b"0\r\n\r\n"


def reads_of(data: bytes, sizes: list[int]) -> ChunkedReader:
    """A reader whose successive reads return ``data`` cut at ``sizes`` (then the rest)."""
    parts, start = [], 0
    for size in sizes:
        parts.append(data[start:start + size])
        start += size
    parts.append(data[start:])
    queue = [part for part in parts if part]
    return ChunkedReader(lambda n: queue.pop(0) if queue else b"", 65536)


EVENTS = [b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n', b'{"type":"MODIFIED"}\n', b"\n" * 3, b"x" * 5000]


def test_the_payload_is_every_chunk_in_order_whatever_the_reads() -> None:
    data = encode(EVENTS)
    rng = random.Random(7)
    for _ in range(200):
        sizes = [rng.randint(1, 40) for _ in range(rng.randint(0, 300))]
        assert b"".join(reads_of(data, sizes).payloads()) == b"".join(EVENTS)


def test_chunks_that_arrive_together_come_out_of_one_read_together() -> None:
    assert list(reads_of(encode(EVENTS[:2]), []).payloads()) == [EVENTS[0] + EVENTS[1]]


def test_chunk_extensions_are_ignored() -> None:
    assert b"".join(reads_of(encode(EVENTS, b";name=value"), [3, 9]).payloads()) == b"".join(EVENTS)


def test_the_body_ends_at_the_last_chunk_without_reading_on() -> None:
    reads = iter([encode([b"a\n"]) + b"trailer: x\r\n\r\n", b"never read"])
    reader = ChunkedReader(lambda size: next(reads), 64)
    assert list(reader.payloads()) == [b"a\n"]


@pytest.mark.parametrize("data, message", [
    (b"5\r\nab", "closed inside a chunked body"),            # cut off in a chunk's data
    (b"zz\r\nab\r\n", "not a chunk size"),
    (b"-2\r\nab\r\n", "not a chunk size"),
    (b"2\r\nabXX", "no CRLF after a chunk's data"),
    (b"1" * (MAX_SIZE_LINE + 10), "a chunk size line without an end"),
])
def test_what_is_not_a_chunked_body_raises(data: bytes, message: str) -> None:
    with pytest.raises(MalformedChunk, match=message):
        list(reads_of(data, [1, 2, 3]).payloads())
