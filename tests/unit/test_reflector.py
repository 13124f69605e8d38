"""The reflector against a scripted API server on 127.0.0.1: lists, watches, failures."""
from __future__ import annotations

import json
import logging
import threading
from contextlib import contextmanager
from typing import Iterator

import pytest

from controller.informers import DeletedFinalStateUnknown, Reflector, ReflectorOptions, SharedInformer
from controller.kube.client import KubeClient
from controller.kube.config import Endpoint
from controller.kube.resources import CONFIGMAPS
from controller.kube.watch import WatchStream
from tests.helpers import blocked_in_read, wait_for, wait_for_waiters
from tests.unit.fakes.watch import ScriptedReads
from tests.unit.scripted_apiserver import (
    Json, RecordingHandler, ScriptedApiServer, Stream, bookmark, event, list_of, obj, status_body,
)

PATH = "/api/v1/namespaces/ns/configmaps"
FAST = ReflectorOptions(initial_backoff=0.01, max_backoff=0.05, min_watch_seconds=300)


@pytest.fixture
def informer(server: ScriptedApiServer) -> Iterator[SharedInformer]:
    inf = SharedInformer(KubeClient(Endpoint(server.url)), CONFIGMAPS, namespace="ns",
                         rand=lambda: 0.0, reflector_options=FAST)
    yield inf
    inf.stop()


def names(informer: SharedInformer) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in informer.get_indexer().list()}


def test_paginated_list_then_watch_from_its_resource_version(server, informer) -> None:
    server.on_list(PATH, list_of([obj("a", "1")], "10", continue_="page2"),
                   list_of([obj("b", "2")], "10"))
    server.on_watch(PATH, Stream([event("ADDED", obj("c", "11"))], end="silent"))
    handler = RecordingHandler()
    informer.add_event_handler(handler)
    informer.start()
    events = handler.wait_for(3)
    assert [(kind, o["metadata"]["name"], flag) for kind, o, flag in events] == [
        ("add", "a", True), ("add", "b", True), ("add", "c", False)]
    lists = server.requests_to(PATH, watch=False)
    assert [r.query for r in lists] == [{"limit": "500"}, {"limit": "500", "continue": "page2"}]
    watch = server.requests_to(PATH, watch=True)[0].query
    assert watch["resourceVersion"] == "10" and watch["allowWatchBookmarks"] == "true"
    assert watch["timeoutSeconds"] == "300"
    assert informer.has_synced() and names(informer) == {"a": "1", "b": "2", "c": "11"}
    assert events[0][1]["kind"] == "ConfigMap"  # listed items get their kind back


def test_disconnect_resumes_from_the_last_bookmark_without_relisting(server, informer) -> None:
    server.on_list(PATH, list_of([], "10"))
    server.on_watch(PATH, Stream([event("ADDED", obj("a", "11")), bookmark("15")], end="abort"),
                    Stream([event("MODIFIED", obj("a", "16"))], end="silent"))
    handler = RecordingHandler()
    informer.add_event_handler(handler)
    informer.start()
    events = handler.wait_for(2)
    assert [e[0] for e in events] == ["add", "update"]
    watches = server.wait_for_requests(2, PATH, watch=True)
    assert [w.query["resourceVersion"] for w in watches[:2]] == ["10", "15"]
    assert len(server.requests_to(PATH, watch=False)) == 1
    assert informer.reflector.relist_count == 0 and informer.reflector.last_resource_version == "16"


def test_server_timeout_end_resumes_immediately(server, informer) -> None:
    server.on_list(PATH, list_of([], "10"))
    server.on_watch(PATH, Stream([event("ADDED", obj("a", "11"))], end="close"),
                    Stream([event("ADDED", obj("b", "12"))], end="silent"))
    handler = RecordingHandler()
    informer.add_event_handler(handler)
    informer.start()
    handler.wait_for(2)
    assert [w.query["resourceVersion"] for w in server.requests_to(PATH, watch=True)[:2]] == ["10", "11"]
    assert informer.reflector.error_count == 0


@pytest.mark.parametrize("gone", [
    Json(410, status_body(410, "Expired", "too old resource version: 10 (20)")),
    Stream([event("ERROR", status_body(410, "Expired", "too old resource version"))]),
], ids=["http-status", "error-event"])
def test_gone_relists_and_emits_the_differences(server, informer, gone) -> None:
    server.on_list(PATH, list_of([obj("keep", "1"), obj("change", "2"), obj("vanish", "3")], "10"),
                   list_of([obj("keep", "1"), obj("change", "7"), obj("new", "8")], "20"))
    server.on_watch(PATH, gone, Stream([], end="silent"))
    handler = RecordingHandler()
    informer.add_event_handler(handler)
    informer.start()
    events = handler.wait_for(6)
    after_relist = events[3:]
    assert {(kind, first.key if kind == "delete" else first["metadata"]["name"]) for kind, first, _ in after_relist} \
        == {("update", "change"), ("add", "new"), ("delete", "ns/vanish")}
    tombstone = next(first for kind, first, _ in after_relist if kind == "delete")
    assert isinstance(tombstone, DeletedFinalStateUnknown) and tombstone.obj["metadata"]["resourceVersion"] == "3"
    assert informer.reflector.relist_count == 1
    assert names(informer) == {"keep": "1", "change": "7", "new": "8"}
    assert server.wait_for_requests(2, PATH, watch=True)[1].query["resourceVersion"] == "20"


class NullStore:
    """A reflector store that drops what it is given: the tests read the requests."""

    def replace(self, objects: list[dict], resource_version: str) -> None:
        pass

    def upsert(self, obj: dict) -> None:
        pass

    def delete(self, obj: dict) -> None:
        pass


@contextmanager
def running(reflector: Reflector) -> Iterator[Reflector]:
    """``reflector`` run on a thread of its own, stopped (and its thread joined) at the end."""
    thread = threading.Thread(target=reflector.run, daemon=True)
    thread.start()
    try:
        yield reflector
    finally:
        reflector.stop()
        thread.join(5)
        assert not thread.is_alive()


def running_reflector(server: ScriptedApiServer, clock):
    return running(Reflector(KubeClient(Endpoint(server.url)), CONFIGMAPS, NullStore(), namespace="ns",
                             clock=clock, rand=lambda: 0.0,
                             # Reads unpaced: these tests count the fake clock's waits for backoffs only.
                             options=ReflectorOptions(initial_backoff=1.0, min_read_interval=0)))


def test_gone_right_after_a_list_backs_off_before_relisting(server, clock) -> None:
    """A server whose every watch is 410 must not turn the reflector into a LIST hot loop."""
    gone = Json(410, status_body(410, "Expired", "too old resource version: 10 (20)"))
    server.on_list(PATH, list_of([], "10"), list_of([], "20"))
    server.on_watch(PATH, gone)
    with running_reflector(server, clock) as reflector:
        wait_for_waiters(clock, 1)
        assert len(server.requests_to(PATH, watch=False)) == 1 and reflector.relist_count == 1
        clock.step(1)
        watches = server.wait_for_requests(2, PATH, watch=True)
        assert watches[1].query["resourceVersion"] == "20" and reflector.error_count == 0


def test_gone_on_a_resumed_watch_relists_at_once(server, clock) -> None:
    server.on_list(PATH, list_of([], "10"), list_of([], "20"))
    server.on_watch(PATH, Stream([event("ADDED", obj("a", "11"))], end="close"),
                    Json(410, status_body(410, "Expired", "too old resource version: 11 (20)")))
    with running_reflector(server, clock) as reflector:
        watches = server.wait_for_requests(3, PATH, watch=True)
        assert [w.query["resourceVersion"] for w in watches] == ["10", "11", "20"]
        assert reflector.relist_count == 1 and clock.waiter_count == 0


def test_stop_during_a_list_sends_no_further_page_nor_a_watch(server, clock) -> None:
    reflector = Reflector(KubeClient(Endpoint(server.url)), CONFIGMAPS, NullStore(), namespace="ns",
                          clock=clock)

    def first_page(request) -> Json:
        reflector.stop()
        return list_of([obj("a", "1")], "10", continue_="page2")

    server.on_list(PATH, first_page, list_of([], "10"))
    thread = threading.Thread(target=reflector.run, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and reflector.watch_count == 0
    assert len(server.requests_to(PATH, watch=False)) == 1 and server.requests_to(PATH, watch=True) == []


def test_expired_continue_token_falls_back_to_one_unpaged_list(server, informer) -> None:
    """A paged restart could expire again and again; an unpaged list completes (client-go's pager)."""
    expired = Json(410, status_body(410, "Expired", "continue token expired"))
    server.on_list(PATH, list_of([obj("a", "1")], "10", continue_="old"), expired,
                   list_of([obj("a", "1"), obj("b", "2")], "12"),
                   list_of([obj("a", "1")], "12", continue_="new"), expired)
    informer.start()
    assert informer.wait_for_sync(5)
    assert names(informer) == {"a": "1", "b": "2"}
    assert [r.query for r in server.requests_to(PATH, watch=False)] == [
        {"limit": "500"}, {"limit": "500", "continue": "old"}, {}]
    assert server.wait_for_requests(1, PATH, watch=True)[0].query["resourceVersion"] == "12"


def test_silent_stream_is_restarted_after_the_read_timeout(server) -> None:
    options = ReflectorOptions(initial_backoff=0.01, read_timeout=0.3)
    informer = SharedInformer(KubeClient(Endpoint(server.url)), CONFIGMAPS, namespace="ns",
                              rand=lambda: 0.0, reflector_options=options)
    server.on_list(PATH, list_of([], "10"))
    server.on_watch(PATH, Stream([event("ADDED", obj("a", "11"))], end="silent"),
                    Stream([event("ADDED", obj("b", "12"))], end="silent"))
    handler = RecordingHandler()
    informer.add_event_handler(handler)
    informer.start()
    try:
        handler.wait_for(2)
        assert [w.query["resourceVersion"] for w in server.requests_to(PATH, watch=True)[:2]] == ["10", "11"]
    finally:
        informer.stop()


def test_forbidden_is_logged_naming_the_resource_then_retried(server, informer, caplog) -> None:
    server.on_list(PATH, Json(403, status_body(403, "Forbidden", "configmaps is forbidden: User x")),
                   list_of([obj("a", "1")], "10"))
    with caplog.at_level(logging.WARNING, logger="controller.informers.reflector"):
        informer.start()
        assert informer.wait_for_sync(5)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "configmaps in namespace ns" in lines[0] and "403" in lines[0] and "retrying in" in lines[0]


SETTLING = Json(429, status_body(429, "TooManyRequests", "storage is (re)initializing"))


def retry_after_backoff(server: ScriptedApiServer, clock, lists: int, seconds: float) -> None:
    """Wait until the reflector backs off after its ``lists``-th list, then let ``seconds`` pass."""
    server.wait_for_requests(lists, PATH, watch=False)
    wait_for_waiters(clock, 1)
    clock.step(seconds)


def test_a_settling_api_server_is_retried_at_debug_level_only(server, clock, caplog) -> None:
    """`make run` printed the informers' 429s while the control plane settled: nothing to act on."""
    server.on_list(PATH, SETTLING, SETTLING, list_of([], "10"))
    server.on_watch(PATH, Stream([], end="silent"))
    with caplog.at_level(logging.DEBUG, logger="controller.informers.reflector"):
        with running_reflector(server, clock) as reflector:
            retry_after_backoff(server, clock, 1, 2)
            retry_after_backoff(server, clock, 2, 4)
            server.wait_for_requests(1, PATH, watch=True)
            assert reflector.error_count == 2 and reflector.list_count == 1
    settling = [r for r in caplog.records if "storage is (re)initializing" in r.getMessage()]
    assert [r.levelno for r in settling] == [logging.DEBUG, logging.DEBUG]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_settling_failure_that_persists_past_the_grace_is_a_warning(server, clock, caplog) -> None:
    server.on_list(PATH, *[SETTLING] * 4, list_of([], "10"))
    server.on_watch(PATH, Stream([], end="silent"))
    with caplog.at_level(logging.DEBUG, logger="controller.informers.reflector"):
        with running_reflector(server, clock):
            for attempt, wait in enumerate((20, 20, 20), start=1):  # failing since 0 s, 20 s, 40 s
                retry_after_backoff(server, clock, attempt, wait)
            server.wait_for_requests(4, PATH, watch=False)
            wait_for(lambda: len(caplog.records) >= 4, 5, "the fourth failure logged")
    levels = [r.levelno for r in caplog.records if "storage is (re)initializing" in r.getMessage()]
    assert levels[:4] == [logging.DEBUG, logging.DEBUG, logging.WARNING, logging.WARNING]


def test_other_failures_still_warn_at_once(server, clock, caplog) -> None:
    server.on_list(PATH, Json(500, status_body(500, "InternalError", "etcd is down")), list_of([], "10"))
    server.on_watch(PATH, Stream([], end="silent"))
    with caplog.at_level(logging.DEBUG, logger="controller.informers.reflector"):
        with running_reflector(server, clock):
            retry_after_backoff(server, clock, 1, 2)
            server.wait_for_requests(1, PATH, watch=True)
    assert [r.levelno for r in caplog.records if "etcd is down" in r.getMessage()] == [logging.WARNING]


def test_unauthorized_rereads_credentials_before_retrying(server) -> None:
    refreshed = threading.Event()

    class CountingClient(KubeClient):
        def refresh_credentials(self) -> None:
            refreshed.set()

    informer = SharedInformer(CountingClient(Endpoint(server.url)), CONFIGMAPS, namespace="ns",
                              reflector_options=FAST)
    unauthorized = Json(401, status_body(401, "Unauthorized", ""))
    server.on_list(PATH, unauthorized, unauthorized, list_of([], "10"))
    informer.start()
    try:
        assert informer.wait_for_sync(5) and refreshed.is_set()
    finally:
        informer.stop()


def test_unreachable_server_keeps_retrying_until_stopped(caplog) -> None:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    informer = SharedInformer(KubeClient(Endpoint(f"http://127.0.0.1:{port}")), CONFIGMAPS,
                              namespace="ns", reflector_options=FAST)
    with caplog.at_level(logging.WARNING, logger="controller.informers.reflector"):
        informer.start()
        wait_for(lambda: informer.reflector.error_count >= 3, 5, "three failed attempts to reach the server")
        informer.stop()
    assert informer.reflector.error_count >= 3 and not informer.has_synced()
    assert "cannot reach the API server" in caplog.records[0].getMessage()


def test_stop_ends_a_blocked_watch_promptly(server, informer) -> None:
    server.on_list(PATH, list_of([], "10"))
    informer.start()
    server.wait_for_requests(1, PATH, watch=True)
    reflector = next(t for t in threading.enumerate() if t.name == "reflector-configmaps")
    wait_for(lambda: blocked_in_read(reflector), 5, "the reflector to block reading its watch")
    stopper = threading.Thread(target=informer.stop)
    stopper.start()
    stopper.join(2)
    assert not stopper.is_alive()
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("reflector-"))


def too_deep(name: str, rv: str, levels: int = 1000) -> bytes:
    """A ConfigMap nested past every JSON decoder's recursion limit, as the API server stores it."""
    nested = '{"a":' * levels + "1" + "}" * levels
    return (f'{{"apiVersion":"v1","data":{nested},"kind":"ConfigMap","metadata":{{"name":"{name}",'
            f'"namespace":"ns","resourceVersion":"{rv}"}}}}').encode()


def test_an_object_too_deep_to_decode_is_skipped_listed_or_watched_and_the_informer_goes_on(
        server: ScriptedApiServer, caplog: pytest.LogCaptureFixture) -> None:
    listed = (b'{"apiVersion":"v1","items":[' + too_deep("deep", "5") + b"," + json.dumps(obj("a", "6")).encode()
              + b'],"kind":"ConfigMapList","metadata":{"resourceVersion":"10"}}')
    server.on_list(PATH, Json(200, listed))
    server.on_watch(PATH, Stream([b'{"type":"ADDED","object":' + too_deep("deeper", "11", 5000) + b"}\n",
                                  event("ADDED", obj("b", "12"))], end="silent"))
    skipped: list[str] = []
    informer = SharedInformer(KubeClient(Endpoint(server.url)), CONFIGMAPS, namespace="ns", rand=lambda: 0.0,
                              reflector_options=FAST, on_undecodable=skipped.append)
    handler = RecordingHandler()
    informer.add_event_handler(handler)
    try:
        informer.start()
        handler.wait_for(2)
        assert names(informer) == {"a": "6", "b": "12"}
        assert skipped == [str(CONFIGMAPS)] * 2
        assert informer.reflector.undecodable_count == 2 and informer.reflector.error_count == 0
        assert informer.reflector.last_resource_version == "12"
    finally:
        informer.stop()
    assert "skipping listed ConfigMap ns/deep (resourceVersion 5) that cannot be decoded: RecursionError" \
        in caplog.text
    assert "skipping watched ConfigMap ns/deeper (resourceVersion 11) that cannot be decoded: RecursionError" \
        in caplog.text


class ScriptedWatchClient:
    """Lists nothing at resourceVersion 10; its one watch reads ``response``, where data has
    arrived for the next read or not as ``arrived()`` says (default: never)."""

    def __init__(self, response: ScriptedReads, arrived=lambda: False) -> None:
        self.response = response
        self.arrived = arrived

    def list(self, *args, **kwargs) -> dict:
        return {"items": [], "metadata": {"resourceVersion": "10"}}

    def watch(self, *args, before_wait=None, **kwargs) -> WatchStream:
        return WatchStream(self.response, "scripted", before_wait, self.arrived)  # type: ignore[arg-type]


class RecordingStore(NullStore):
    def __init__(self) -> None:
        self.names: list[str] = []

    def upsert(self, obj: dict) -> None:
        self.names.append(obj["metadata"]["name"])


def line(name: str, version: str) -> bytes:
    return json.dumps(event("ADDED", obj(name, version))).encode() + b"\n"


def paced_reflector(response: ScriptedReads, store: NullStore, clock, interval: float, *,
                    arrived=lambda: False) -> Reflector:
    return Reflector(ScriptedWatchClient(response, arrived), CONFIGMAPS, store, namespace="ns",  # type: ignore[arg-type]
                     clock=clock, options=ReflectorOptions(min_read_interval=interval))


def test_a_caught_up_watch_waits_out_the_interval_and_what_came_meanwhile_is_delivered_together(clock) -> None:
    response = ScriptedReads([line("a", "11"), line("b", "12") + line("c", "13")], gated=True)
    store = RecordingStore()
    with running(paced_reflector(response, store, clock, 0.05)):
        response.release(2)  # both reads may go as soon as the reflector lets them
        wait_for(lambda: store.names == ["a"], 5, "the first read delivered")
        wait_for_waiters(clock, 1)  # the second read waits for the interval to pass
        clock.step(0.049)
        wait_for_waiters(clock, 1)
        assert response.reads == 1 and store.names == ["a"]
        clock.step(0.001)
        wait_for(lambda: store.names == ["a", "b", "c"], 5, "what came meanwhile")  # in one read
        assert response.reads == 2


def test_a_changed_interval_paces_the_reads_after_it(clock) -> None:
    response = ScriptedReads([line("a", "11"), line("b", "12")], gated=True)
    store = RecordingStore()
    reflector = paced_reflector(response, store, clock, 60.0)
    reflector.set_min_read_interval(0.25)
    with pytest.raises(ValueError, match="min_read_interval"):
        reflector.set_min_read_interval(-1)
    with running(reflector):
        response.release(2)
        wait_for(lambda: store.names == ["a"], 5, "the first read delivered")
        wait_for_waiters(clock, 1)
        clock.step(0.249)
        wait_for_waiters(clock, 1)
        assert store.names == ["a"]
        clock.step(0.001)
        wait_for(lambda: store.names == ["a", "b"], 5, "the read 0.25 s after the first")


def test_a_read_after_a_quiet_spell_is_not_delayed(clock) -> None:
    response = ScriptedReads([line("a", "11"), line("b", "12")], gated=True)
    store = RecordingStore()
    with running(paced_reflector(response, store, clock, 0.05)):
        response.release()
        wait_for(lambda: store.names == ["a"], 5, "the first read delivered")
        wait_for_waiters(clock, 1)
        clock.step(1.0)  # quiet: the reflector is now blocked in its read, not pacing
        wait_for(lambda: clock.waiter_count == 0, 5, "the reflector reading")
        response.release()
        wait_for(lambda: store.names == ["a", "b"], 5, "the read after the quiet spell")


def test_data_already_arrived_is_read_at_once_so_a_busy_watch_is_never_slowed(clock) -> None:
    response = ScriptedReads([line(f"o{index}", str(11 + index)) for index in range(5)], gated=True)
    store = RecordingStore()
    with running(paced_reflector(response, store, clock, 60.0, arrived=lambda: True)):
        response.release(5)
        wait_for(lambda: len(store.names) == 5, 5, "every read delivered without the clock moving")
        assert clock.waiter_count == 0 and response.reads == 5


def test_stop_ends_a_paced_wait_at_once(clock) -> None:
    response = ScriptedReads([line("a", "11")], gated=True)
    with running(paced_reflector(response, NullStore(), clock, 60.0)):
        response.release()
        wait_for_waiters(clock, 1)
    assert response.reads == 1
