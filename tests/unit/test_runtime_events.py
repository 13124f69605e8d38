"""EventRecorder: events.k8s.io/v1 bodies, aggregation into series, never blocking reconciles."""
from __future__ import annotations

import threading

import pytest

from controller.kube.errors import ApiError
from controller.kube.resources import EVENTS
from controller.runtime.events import MAX_NOTE_LENGTH, EventRecorder, joined_notes
from tests.helpers import wait_for, wait_for_waiters

ENSEMBLE = {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": "e", "namespace": "ns", "uid": "u-1", "resourceVersion": "9"}}


class FakeClient:
    def __init__(self) -> None:
        self.created: list[tuple[dict, str]] = []
        self.patched: list[tuple[str, dict, str]] = []
        self.create_error: Exception | None = None
        self.patch_error: Exception | None = None

    def create(self, res, obj, namespace=None):
        assert res == EVENTS
        if self.create_error:
            raise self.create_error
        self.created.append((obj, namespace))
        return obj

    def patch(self, res, name, patch, *, namespace=None, patch_type="merge", **_):
        assert res == EVENTS and patch_type == "merge"
        if self.patch_error:
            raise self.patch_error
        self.patched.append((name, patch, namespace))
        return patch


def flush(recorder: EventRecorder) -> None:
    """Write everything queued, as the recorder's own thread does when stopped, and return."""
    recorder.start()
    recorder.stop()


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def recorder(client, clock) -> EventRecorder:
    return EventRecorder(client, clock, reporting_instance="pod-1", window=60)


def test_an_event_is_an_events_k8s_io_v1_event_about_the_object(recorder, client, clock):
    recorder.event(ENSEMBLE, "Warning", "InvalidSpec", "spec.members[0].ensemble: required",
                   action="Validate")
    flush(recorder)
    [(body, namespace)] = client.created
    assert namespace == "ns"
    assert body["apiVersion"] == "events.k8s.io/v1" and body["kind"] == "Event"
    assert body["metadata"]["namespace"] == "ns"
    assert body["metadata"]["name"].startswith("e.")
    assert body["reportingController"] == "ensemble-operator"
    assert body["reportingInstance"] == "pod-1"
    assert (body["type"], body["reason"], body["action"]) == ("Warning", "InvalidSpec", "Validate")
    assert body["note"] == "spec.members[0].ensemble: required"
    assert body["regarding"] == {"apiVersion": "ensemble.flux-framework.org/v1alpha1",
                                 "kind": "Ensemble", "name": "e", "namespace": "ns",
                                 "uid": "u-1", "resourceVersion": "9"}
    assert body["eventTime"].endswith("Z") and "series" not in body


def test_repeats_within_the_window_become_one_event_with_a_series_count(recorder, client, clock):
    recorder.event(ENSEMBLE, "Normal", "Scaled", "member 0 grew to 3")
    flush(recorder)
    clock.step(10)
    recorder.event(ENSEMBLE, "Normal", "Scaled", "member 0 grew to 3")
    flush(recorder)
    assert len(client.created) == 1
    name = client.created[0][0]["metadata"]["name"]
    [(patched_name, patch, namespace)] = client.patched
    assert (patched_name, namespace) == (name, "ns")
    assert patch["series"]["count"] == 2
    assert patch["series"]["lastObservedTime"].endswith("Z")


def test_queued_repeats_are_written_as_one_patch_with_the_latest_count(recorder, client):
    for _ in range(5):
        recorder.event(ENSEMBLE, "Normal", "Scaled", "same")
    flush(recorder)
    assert len(client.created) == 1
    assert [p["series"]["count"] for _, p, _ in client.patched] == [5]


def test_a_repeat_after_the_window_starts_a_new_event(recorder, client, clock):
    recorder.event(ENSEMBLE, "Normal", "Scaled", "same")
    clock.step(61)
    recorder.event(ENSEMBLE, "Normal", "Scaled", "same")
    flush(recorder)
    names = [body["metadata"]["name"] for body, _ in client.created]
    assert len(names) == 2 and names[0] != names[1]
    assert client.patched == []


def test_different_messages_or_objects_are_different_events(recorder, client):
    recorder.event(ENSEMBLE, "Normal", "Scaled", "grew to 3")
    recorder.event(ENSEMBLE, "Normal", "Scaled", "grew to 4")
    other = {**ENSEMBLE, "metadata": {**ENSEMBLE["metadata"], "name": "f", "uid": "u-2"}}
    recorder.event(other, "Normal", "Scaled", "grew to 3")
    flush(recorder)
    assert len(client.created) == 3
    assert len({body["metadata"]["name"] for body, _ in client.created}) == 3


def test_a_failed_write_is_logged_and_the_next_repeat_creates_afresh(recorder, client, caplog):
    client.create_error = ApiError(403, "Forbidden", "cannot create events")
    recorder.event(ENSEMBLE, "Warning", "Failed", "x")   # never raises into the reconcile
    flush(recorder)
    assert "could not write event" in caplog.text
    client.create_error = None
    recorder.event(ENSEMBLE, "Warning", "Failed", "x")
    flush(recorder)
    assert len(client.created) == 1 and client.patched == []


def test_a_vanished_event_makes_the_next_repeat_create_a_new_one(recorder, client):
    recorder.event(ENSEMBLE, "Normal", "Scaled", "x")
    flush(recorder)
    client.patch_error = ApiError(404, "NotFound", "events not found")
    recorder.event(ENSEMBLE, "Normal", "Scaled", "x")
    flush(recorder)
    client.patch_error = None
    recorder.event(ENSEMBLE, "Normal", "Scaled", "x")
    flush(recorder)
    assert len(client.created) == 2


def test_event_does_not_wait_for_a_slow_api_server(client, clock):
    entered, release = threading.Event(), threading.Event()
    real_create = client.create

    def slow_create(res, obj, namespace=None):
        entered.set()
        release.wait(5)
        return real_create(res, obj, namespace)

    client.create = slow_create
    recorder = EventRecorder(client, clock, reporting_instance="pod-1")
    recorder.start()
    recorder.event(ENSEMBLE, "Normal", "First", "a")
    assert entered.wait(5)
    recorder.event(ENSEMBLE, "Normal", "Second", "b")   # returns while the writer is blocked
    assert client.created == []
    release.set()
    recorder.stop()
    assert [body["reason"] for body, _ in client.created] == ["First", "Second"]


def test_cluster_scoped_objects_get_events_in_default_and_long_notes_are_cut(recorder, client):
    node = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    recorder.event(node, "Normal", "Seen", "x" * 5000)
    flush(recorder)
    [(body, namespace)] = client.created
    assert namespace == "default" and len(body["note"]) == 1024


def test_bad_event_arguments_are_rejected(recorder):
    with pytest.raises(ValueError, match="event type"):
        recorder.event(ENSEMBLE, "Error", "Failed", "x")
    with pytest.raises(ValueError, match="reason"):
        recorder.event(ENSEMBLE, "Normal", "", "x")


def test_each_repeat_extends_the_window(recorder, client, clock):
    for _ in range(3):
        recorder.event(ENSEMBLE, "Normal", "Scaled", "same")
        clock.step(50)   # 150 s in all, but never 60 s without a repeat
    flush(recorder)
    assert len(client.created) == 1
    assert [p["series"]["count"] for _, p, _ in client.patched] == [3]


def test_the_aggregation_cache_is_bounded(client, clock):
    recorder = EventRecorder(client, clock, reporting_instance="pod-1", max_series=2)
    for message in ("a", "b", "c", "a"):
        recorder.event(ENSEMBLE, "Normal", "Scaled", message)
    flush(recorder)
    assert [body["note"] for body, _ in client.created] == ["a", "b", "c", "a"]


def test_stop_is_bounded_by_its_timeout_when_the_pending_writes_are_full(client, clock):
    # The API server hangs (reads time out only after 60 s) and the pending queue is full:
    # stop() must still return after its timeout, not wait for a slot to free.
    release = threading.Event()
    entered = threading.Event()

    def hung_create(res, obj, namespace=None):
        entered.set()
        release.wait(5)

    client.create = hung_create
    recorder = EventRecorder(client, clock, reporting_instance="pod-1", max_pending=1)
    recorder.start()
    recorder.event(ENSEMBLE, "Normal", "First", "a")
    assert entered.wait(5)
    recorder.event(ENSEMBLE, "Normal", "Second", "b")   # fills the pending queue
    stopper = threading.Thread(target=recorder.stop, kwargs={"timeout": 0.2}, daemon=True)
    try:
        stopper.start()
        stopper.join(2)
        assert not stopper.is_alive(), "stop() waited for the hung write"
    finally:
        release.set()
        stopper.join(5)


def dropped(registry, cause: str) -> float:
    return registry.get_sample_value("ensemble_events_dropped_total", {"cause": cause})


def test_created_events_of_one_reconcile_are_one_event_listing_each_object(recorder, client):
    kinds = ("ServiceAccount", "Role", "RoleBinding", "Service", "Deployment", "ConfigMap", "MiniCluster")
    for kind in kinds:
        recorder.event(ENSEMBLE, "Normal", "Created", f"Created {kind} e")
    flush(recorder)
    [(body, _)] = client.created
    assert body["note"] == "; ".join(f"Created {kind} e" for kind in kinds)
    assert client.patched == []


@pytest.mark.parametrize("notes", [
    [f"Created {kind} e" for kind in ("ServiceAccount", "Role", "Service", "Deployment", "ConfigMap")],
    [f"Created MiniCluster {'m' * 290}-{index}" for index in range(4)],   # past MAX_NOTE_LENGTH: two Events
    ["x" * (MAX_NOTE_LENGTH + 50), "Created Role e"],                     # a note too long alone is cut
])
def test_joined_notes_are_the_notes_the_recorder_writes_for_them_one_by_one(recorder, client, notes):
    for note in notes:
        recorder.event(ENSEMBLE, "Normal", "Created", note)
    flush(recorder)
    assert [body["note"] for body, _ in client.created] == joined_notes(notes)
    assert len(joined_notes(notes)) == (1 if len(notes) == 5 else 2)


def test_a_created_event_lingers_for_its_siblings_then_is_written(client, clock):
    recorder = EventRecorder(client, clock, reporting_instance="pod-1", linger=1.0)
    recorder.start()
    try:
        recorder.event(ENSEMBLE, "Normal", "Created", "Created Role e")
        wait_for_waiters(clock, 1)  # the writer lingers
        recorder.event(ENSEMBLE, "Normal", "Created", "Created Service e")
        assert client.created == []
        clock.step(1.0)
        wait_for(lambda: len(client.created) == 1, 5, "the joined Event")
        recorder.event(ENSEMBLE, "Normal", "Created", "Created Deployment e")  # written: a new Event
        wait_for_waiters(clock, 1)
        clock.step(1.0)
        wait_for(lambda: len(client.created) == 2, 5, "the next Event")
    finally:
        recorder.stop()
    assert [body["note"] for body, _ in client.created] == ["Created Role e; Created Service e",
                                                            "Created Deployment e"]


def test_stop_writes_a_lingering_event_at_once(client, clock):
    recorder = EventRecorder(client, clock, reporting_instance="pod-1", linger=60.0)
    recorder.start()
    recorder.event(ENSEMBLE, "Normal", "Deleted", "Deleted ConfigMap e-1")
    wait_for_waiters(clock, 1)
    recorder.stop(timeout=5)
    assert [body["note"] for body, _ in client.created] == ["Deleted ConfigMap e-1"]


def test_past_ten_distinct_notes_similar_events_count_into_one_combined_event(recorder, client):
    for size in range(13):
        recorder.event(ENSEMBLE, "Normal", "Scaled", f"grew to {size}")
    flush(recorder)
    notes = [body["note"] for body, _ in client.created]
    assert notes[:10] == [f"grew to {size}" for size in range(10)]
    assert notes[10:] == ["(combined from similar events): grew to 10"]
    assert [p["series"]["count"] for _, p, _ in client.patched] == [3]


def test_the_spam_filter_drops_new_events_past_the_burst_and_counts_them(client, clock, registry):
    recorder = EventRecorder(client, clock, reporting_instance="pod-1", registry=registry, spam_burst=3,
                             spam_refill_seconds=10)
    for reason in ("A", "B", "C", "D"):
        recorder.event(ENSEMBLE, "Warning", reason, "x")
    recorder.event(ENSEMBLE, "Warning", "A", "x")  # a repeat costs no token
    other = {**ENSEMBLE, "metadata": {**ENSEMBLE["metadata"], "name": "f", "uid": "u-2"}}
    recorder.event(other, "Warning", "D", "x")  # another object has its own bucket
    flush(recorder)
    assert [(body["regarding"]["name"], body["reason"]) for body, _ in client.created] == [
        ("e", "A"), ("e", "B"), ("e", "C"), ("f", "D")]
    assert dropped(registry, "spam_filter") == 1 and recorder.dropped == 1
    clock.step(10)  # one token back
    recorder.event(ENSEMBLE, "Warning", "D", "x")
    flush(recorder)
    assert client.created[-1][0]["reason"] == "D" and recorder.dropped == 1


def test_a_full_write_queue_drops_and_counts_and_a_later_repeat_creates_the_event(client, clock, registry):
    recorder = EventRecorder(client, clock, reporting_instance="pod-1", registry=registry, max_pending=1)
    recorder.event(ENSEMBLE, "Normal", "A", "x")
    recorder.event(ENSEMBLE, "Normal", "B", "x")  # no room
    assert dropped(registry, "queue_full") == 1 and recorder.dropped == 1
    flush(recorder)
    recorder.event(ENSEMBLE, "Normal", "B", "x")
    flush(recorder)
    assert [body["reason"] for body, _ in client.created] == ["A", "B"]
