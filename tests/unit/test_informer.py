"""SharedInformer and factory behaviour, fed directly through the reflector's store API."""
from __future__ import annotations

import threading

import pytest

from tests.fakes import FakeClock
from controller.informers import (
    DeletedFinalStateUnknown, ReflectorOptions, ResourceEventHandlerFuncs, SharedInformer,
    SharedInformerFactory,
)
from controller.kube.client import KubeClient
from controller.kube.config import Endpoint
from controller.kube.resources import CONFIGMAPS, PODS
from tests.helpers import wait_for, wait_for_waiters
from tests.unit.scripted_apiserver import RecordingHandler, list_of, obj

PATH = "/api/v1/namespaces/ns/configmaps"


class OfflineInformer(SharedInformer):
    """Never lists or watches (never started): tests call its store API as the reflector would.
    Its handlers are fed as a started informer's are, each on its own thread."""

    def add_event_handler(self, handler, resync_period=None, **options):  # type: ignore[no-untyped-def]
        listener = super().add_event_handler(handler, resync_period, **options)
        listener.start()
        return listener


def offline_informer(**kwargs) -> SharedInformer:
    return OfflineInformer(KubeClient(Endpoint("http://127.0.0.1:1")), CONFIGMAPS, namespace="ns", **kwargs)


def summary(events: list) -> list[tuple]:
    out = []
    for kind, first, second in events:
        if kind == "update":
            out.append((kind, first["metadata"]["resourceVersion"], second["metadata"]["resourceVersion"]))
        elif kind == "delete":
            out.append((kind, first.key if isinstance(first, DeletedFinalStateUnknown)
                        else first["metadata"]["name"]))
        else:
            out.append((kind, first["metadata"]["name"], second))
    return out


def test_every_handler_sees_events_in_order() -> None:
    informer = offline_informer()
    handlers = [RecordingHandler() for _ in range(3)]
    for handler in handlers:
        informer.add_event_handler(handler)
    informer.replace([obj("a", "1")], "1")
    for rv in range(2, 52):
        informer.upsert(obj("a", str(rv)))
    informer.delete(obj("a", "52"))
    expected = [("add", "a", True)] + [("update", str(rv - 1), str(rv)) for rv in range(2, 52)] \
        + [("delete", "a")]
    try:
        for handler in handlers:
            assert summary(handler.wait_for(52)) == expected
    finally:
        informer.stop()


def test_a_slow_handler_does_not_block_the_others() -> None:
    informer = offline_informer()
    release = threading.Event()
    slow_calls: list[str] = []

    def slow_add(o: dict, initial: bool) -> None:
        release.wait(5)
        slow_calls.append(o["metadata"]["name"])

    informer.add_event_handler(ResourceEventHandlerFuncs(add=slow_add))
    fast = RecordingHandler()
    informer.add_event_handler(fast)
    informer.replace([], "1")
    for i in range(20):
        informer.upsert(obj(f"o{i}", str(i + 2)))
    try:
        assert len(fast.wait_for(20)) == 20 and slow_calls == []  # the slow one's 20 wait in its buffer
        release.set()
        wait_for(lambda: len(slow_calls) >= 20, 5, "the slow handler's 20 adds")
        assert slow_calls == [f"o{i}" for i in range(20)]
    finally:
        release.set()
        informer.stop()


class InlineHandler(RecordingHandler):
    inline = True

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def _record(self, *event) -> None:  # type: ignore[no-untyped-def]
        self.threads.add(threading.current_thread().name)
        super()._record(*event)


def test_an_inline_handler_is_called_on_the_informers_thread_in_order_and_not_after_stop() -> None:
    informer = offline_informer()
    inline = InlineHandler()
    registration = informer.add_event_handler(inline)
    informer.replace([obj("a", "1")], "1")
    informer.upsert(obj("a", "2"))
    informer.delete(obj("a", "3"))
    # No wait: each call returned after its handler ran, on this (the informer's) thread.
    assert summary(inline.events) == [("add", "a", True), ("update", "1", "2"), ("delete", "a")]
    assert inline.threads == {threading.current_thread().name} and registration.has_synced()
    late = InlineHandler()
    informer.add_event_handler(late)
    assert summary(late.events) == []  # the cache is empty: nothing to replay
    informer.stop()
    informer.upsert(obj("b", "4"))
    assert len(inline.events) == 3 and late.events == []


def test_the_reflector_waits_into_a_burst_what_the_least_patient_handler_allows() -> None:
    informer = offline_informer(reflector_options=ReflectorOptions(min_read_interval=0.05))
    assert informer.reflector.min_read_interval == 0.05  # no handler yet: as made
    informer.add_event_handler(RecordingHandler(), read_interval=0.25)
    assert informer.reflector.min_read_interval == 0.25
    informer.add_event_handler(RecordingHandler(), read_interval=1.0)
    assert informer.reflector.min_read_interval == 0.25
    informer.add_event_handler(RecordingHandler())  # as patient as the informer was made
    assert informer.reflector.min_read_interval == 0.05
    with pytest.raises(ValueError, match="min_read_interval"):
        informer.add_event_handler(RecordingHandler(), read_interval=-1.0)
    informer.add_event_handler(RecordingHandler(), read_interval=0.5)  # the refused one left no trace
    assert informer.reflector.min_read_interval == 0.05
    informer.stop()


def test_a_failing_handler_keeps_receiving_events() -> None:
    informer = offline_informer()
    seen: list[str] = []

    def flaky(o: dict, initial: bool) -> None:
        seen.append(o["metadata"]["name"])
        raise RuntimeError("handler bug")

    informer.add_event_handler(ResourceEventHandlerFuncs(add=flaky))
    done = RecordingHandler()
    informer.add_event_handler(done)
    informer.replace([obj("a", "1"), obj("b", "2")], "2")
    try:
        done.wait_for(2)
        wait_for(lambda: len(seen) >= 2, 5, "the failing handler's second add")
        assert seen == ["a", "b"]
    finally:
        informer.stop()


def test_late_handlers_get_synthetic_adds_then_live_events() -> None:
    informer = offline_informer()
    informer.replace([obj("a", "1"), obj("b", "2")], "2")
    assert informer.has_synced()
    late = RecordingHandler()
    registration = informer.add_event_handler(late)
    informer.upsert(obj("a", "3"))
    try:
        assert summary(late.wait_for(3)) == [("add", "a", True), ("add", "b", True), ("update", "1", "3")]
        assert registration.has_synced()
    finally:
        informer.stop()


def test_transform_runs_before_caching_and_handlers() -> None:
    informer = offline_informer()
    handler = RecordingHandler()
    informer.add_event_handler(handler)
    heavy = obj("a", "1")
    heavy["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:data": {}}}]
    informer.replace([heavy], "1")
    try:
        added = handler.wait_for(1)[0][1]
        assert "managedFields" not in added["metadata"]
        assert "managedFields" not in informer.get_indexer().get_by_key("ns/a")["metadata"]
    finally:
        informer.stop()


def test_resync_replays_the_cache_per_handler_period(server) -> None:
    clock = FakeClock()
    server.on_list(PATH, list_of([obj("a", "1"), obj("b", "2")], "2"))
    informer = SharedInformer(KubeClient(Endpoint(server.url)), CONFIGMAPS, namespace="ns",
                              clock=clock, rand=lambda: 0.0, reflector_options=ReflectorOptions())
    every_10 = RecordingHandler()
    never = RecordingHandler()
    informer.add_event_handler(every_10, resync_period=10)
    informer.add_event_handler(never, resync_period=0)
    informer.start()
    try:
        every_10.wait_for(2)
        clock.step(10)
        resynced = every_10.wait_for(4)[2:]
        assert sorted(summary(resynced)) == [("update", "1", "1"), ("update", "2", "2")]
        assert all(old is new for _, old, new in resynced)
        clock.step(10)
        assert len(every_10.wait_for(6)) == 6
        never.wait_for(2)
        assert [kind for kind, _, _ in never.events] == ["add", "add"]
    finally:
        informer.stop()


def test_factory_shares_one_informer_per_view_and_starts_late_ones(server) -> None:
    def by_selector(request):
        return list_of([] if "labelSelector" in request.query else [obj("a", "1")], "1")

    server.on_list(PATH, by_selector, by_selector)
    server.on_list("/api/v1/pods", list_of([], "5"))
    factory = SharedInformerFactory(KubeClient(Endpoint(server.url)))
    configmaps = factory.informer_for(CONFIGMAPS, namespace="ns")
    assert factory.informer_for(CONFIGMAPS, namespace="ns") is configmaps
    assert factory.informer_for(CONFIGMAPS, namespace="ns", label_selector="app=x") is not configmaps
    factory.start()
    try:
        late = factory.informer_for(PODS)
        assert factory.wait_for_cache_sync(5)
        assert late.has_synced() and configmaps.get_indexer().list_keys() == ["ns/a"]
    finally:
        factory.shutdown()
    assert not any(t.is_alive() for t in threading.enumerate()
                   if t.name.startswith(("reflector-", "resync-", "handler-")))


def test_wait_for_cache_sync_times_out_when_a_list_never_succeeds(server) -> None:
    clock = FakeClock()
    factory = SharedInformerFactory(KubeClient(Endpoint(server.url)), clock=clock)
    factory.informer_for(CONFIGMAPS, namespace="missing")  # the scripted server answers 404
    factory.start()
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(factory.wait_for_cache_sync(30)))
    try:
        server.wait_for_requests(1, "/api/v1/namespaces/missing/configmaps")
        waiter.start()
        wait_for_waiters(clock, 3)   # the resync loop, the reflector backing off after the 404, the sync wait
        clock.step(30)
        waiter.join(5)
        assert results == [False]
    finally:
        factory.shutdown()
        waiter.join(5)
