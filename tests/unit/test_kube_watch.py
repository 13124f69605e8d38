from __future__ import annotations

import json
import threading
import time

import pytest

from controller.kube.chunked import ChunkedReader
from controller.kube.client import KubeClient
from controller.kube.config import Endpoint
from controller.kube.resources import CONFIGMAPS
from controller.kube.watch import (UNDECODABLE, LineParser, WatchBroken, WatchStalled, WatchStream, decode_event,
                                   parse_events)
from tests.helpers import blocked_in_read, wait_for
from tests.unit.fakes.watch import ScriptedReads
from tests.unit.scripted_apiserver import ScriptedApiServer, Stream, event, obj

PATH = "/api/v1/namespaces/ns/configmaps"


@pytest.fixture
def client(server: ScriptedApiServer) -> KubeClient:
    return KubeClient(Endpoint(server.url))


def test_line_parser_keeps_partial_lines_across_chunks() -> None:
    parser = LineParser()
    assert parser.feed(b'{"a"') == []
    assert parser.feed(b': 1}\n{"b": 2') == [b'{"a": 1}']
    assert parser.feed(b"}\n\n") == [b'{"b": 2}', b""]
    assert parser.leftover == b""


def test_parse_events_byte_by_byte_equals_whole() -> None:
    lines = [json.dumps(event("ADDED", obj(f"cm{i}", str(i)))).encode() for i in range(5)]
    data = b"\n".join(lines) + b"\n\n"
    one_byte_chunks = [data[i:i + 1] for i in range(len(data))]
    assert list(parse_events(one_byte_chunks)) == [json.loads(line) for line in lines]


def test_parse_events_accepts_a_final_line_without_newline() -> None:
    assert list(parse_events([b'{"type": "BOOKMARK"}'])) == [{"type": "BOOKMARK"}]


def test_watch_request_and_events_split_mid_line(server: ScriptedApiServer, client: KubeClient) -> None:
    events = [event("ADDED", obj("a", "2")), event("MODIFIED", obj("a", "3"))]
    server.on_watch(PATH, Stream(events, chunk_size=7))
    with client.watch(CONFIGMAPS, "ns", resource_version="1", timeout_seconds=42) as stream:
        assert list(stream) == events
    query = server.requests_to(PATH, watch=True)[0].query
    assert query == {"watch": "1", "resourceVersion": "1", "allowWatchBookmarks": "true",
                     "timeoutSeconds": "42"}
    assert client.request_count == 1 and client.write_count == 0


def test_a_chunked_stream_is_read_from_the_connection_itself(server: ScriptedApiServer, client: KubeClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    payloads = ChunkedReader.payloads

    def counted(self: ChunkedReader):
        reads.append(1)
        return payloads(self)
    monkeypatch.setattr(ChunkedReader, "payloads", counted)
    events = [event("ADDED", obj(f"c{i}", str(i))) for i in range(20)]
    server.on_watch(PATH, Stream(events, chunk_size=11))
    with client.watch(CONFIGMAPS, "ns", resource_version="1") as stream:
        assert list(stream) == events
    assert reads == [1]


def test_abrupt_disconnect_raises_watch_broken(server: ScriptedApiServer, client: KubeClient) -> None:
    server.on_watch(PATH, Stream([event("ADDED", obj("a", "2"))], end="abort"))
    seen = []
    with pytest.raises(WatchBroken, match="connection broken"):
        with client.watch(CONFIGMAPS, "ns", resource_version="1") as stream:
            seen.extend(stream)
    assert [e["object"]["metadata"]["name"] for e in seen] == ["a"]


def test_silent_stream_raises_after_read_timeout(server: ScriptedApiServer, client: KubeClient) -> None:
    server.on_watch(PATH, Stream([event("ADDED", obj("a", "2"))], end="silent"))
    with client.watch(CONFIGMAPS, "ns", resource_version="1", read_timeout=0.3) as stream:
        iterator = iter(stream)
        assert next(iterator)["type"] == "ADDED"
        with pytest.raises(WatchStalled, match="no data within the read timeout"):
            next(iterator)


def test_close_from_another_thread_ends_a_blocked_read(server: ScriptedApiServer,
                                                        client: KubeClient) -> None:
    server.on_watch(PATH, Stream([], end="silent"))
    stream = client.watch(CONFIGMAPS, "ns", resource_version="1", read_timeout=30)
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(list(stream)))
    reader.start()
    wait_for(lambda: blocked_in_read(reader), 5, "the reader to block in a socket read")
    started = time.monotonic()
    stream.close()
    reader.join(5)
    assert not reader.is_alive() and result == [[]]
    assert time.monotonic() - started < 5


def nested(levels: int) -> str:
    return '{"a":[' * levels + '"x"' + "]}" * levels


@pytest.mark.parametrize("first, last", [("metadata", "spec"), ("spec", "metadata")])
def test_an_event_too_deep_to_decode_is_named_from_its_metadata_wherever_it_stands(first: str, last: str) -> None:
    # labels and annotations may hold "name" keys and quoted JSON; only metadata's own fields count
    parts = {"metadata": '"metadata":{"labels":{"name":"label"},"annotations":{"x":"{\\"name\\":\\"q\\"}"},'
                         '"name":"deep","namespace":"ns","uid":"u-1","resourceVersion":"42"}',
             "spec": f'"spec":{{"name":"spec-name","options":{nested(3000)}}}'}
    line = f'{{"type":"MODIFIED","object":{{"kind":"Ensemble",{parts[first]},{parts[last]}}}}}'.encode()
    decoded = decode_event(line)
    assert decoded["type"] == UNDECODABLE and decoded["error"].startswith("RecursionError")
    assert decoded["object"] == {"kind": "Ensemble", "metadata": {"name": "deep", "namespace": "ns", "uid": "u-1",
                                                                  "resourceVersion": "42"}}


def test_events_after_an_undecodable_one_still_arrive() -> None:
    lines = [b'{"type":"ADDED","object":' + nested(1000).encode() + b"}\n",
             json.dumps(event("ADDED", obj("b", "2"))).encode() + b"\n"]
    kinds = [e["type"] for e in parse_events(lines)]
    assert kinds == [UNDECODABLE, "ADDED"]


def added(name: str) -> bytes:
    return json.dumps(event("ADDED", obj(name, "1"))).encode() + b"\n"


def names_read(stream: WatchStream) -> list[str]:
    return [item["object"]["metadata"]["name"] for item in stream]


def test_before_wait_runs_when_all_read_was_delivered_and_nothing_more_has_arrived() -> None:
    log: list[str] = []
    stream = WatchStream(ScriptedReads([added("a") + added("b"), added("c")], log=log), "url",  # type: ignore[arg-type]
                         before_wait=lambda: log.append("before"), readable=lambda: False)
    for item in stream:
        log.append(item["object"]["metadata"]["name"])
    assert log == ["read", "a", "b", "before", "read", "c", "before", "read"]


def test_data_that_has_arrived_is_read_without_before_wait() -> None:
    log: list[str] = []
    stream = WatchStream(ScriptedReads([added("a"), added("b")], log=log), "url",  # type: ignore[arg-type]
                         before_wait=lambda: log.append("before"), readable=lambda: True)
    assert names_read(stream) == ["a", "b"] and "before" not in log


def test_a_stream_closed_in_before_wait_ends_without_reading_again() -> None:
    log: list[str] = []
    holder: list[WatchStream] = []
    stream = WatchStream(ScriptedReads([added("a"), added("b")], log=log), "url",  # type: ignore[arg-type]
                         before_wait=lambda: holder[0].close(), readable=lambda: False)
    holder.append(stream)
    assert names_read(stream) == ["a"] and log == ["read"]


def test_socket_readable_tells_whether_a_read_would_return_at_once() -> None:
    import socket
    from controller.kube.watch import socket_readable
    ours, peer = socket.socketpair()
    try:
        readable = socket_readable(ours)
        assert not readable()
        peer.sendall(b"x")
        wait_for(readable, 5, "the byte sent to be readable")
        assert ours.recv(1) == b"x" and not readable()
        peer.close()
        assert readable()  # the peer's close: the read returns at once, with b""
    finally:
        ours.close()
        peer.close()


def test_a_watch_over_a_real_connection_waits_only_once_caught_up(server: ScriptedApiServer,
                                                                   client: KubeClient) -> None:
    events = [event("ADDED", obj("a", "2")), event("MODIFIED", obj("a", "3"))]
    server.on_watch(PATH, Stream(events, end="silent"))
    caught_up = threading.Event()
    stream = client.watch(CONFIGMAPS, "ns", resource_version="1", before_wait=caught_up.set)
    seen: list[dict] = []
    reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
    reader.start()
    try:
        assert caught_up.wait(5)  # the socket told that nothing more had arrived
        assert seen == events
    finally:
        stream.close()
        reader.join(5)
