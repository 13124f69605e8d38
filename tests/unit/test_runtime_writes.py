"""WrittenObjects: a write is read back until the informer shows it, and its echo wakes nothing;
an event held back while the write was in flight wakes the owner unless it was the echo."""
from __future__ import annotations

import gc
import weakref

from controller.kube.resources import CONFIGMAPS, SERVICES
from controller.runtime.predicates import allows_create, allows_delete, allows_update
from controller.runtime.writes import DEFAULT_TTL_SECONDS, WrittenObjects
from tests.fakes import FakeClock

OWNER_UID = "uid-e1"
OWNER = ("ns", "e1")


class InformerCache:
    """What the informer shows, set by the test."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str | None, str], dict] = {}
        self.indexed: list[dict] = []

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        return self.objects.get((namespace, name))

    def by_index(self, index_name: str, value: str) -> list[dict]:
        return self.indexed

    def show(self, obj: dict) -> None:
        self.objects[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj


def cm(version: str, name: str = "a", owner_uid: str = OWNER_UID, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": version,
                         "ownerReferences": [{"kind": "Ensemble", "name": "e1", "uid": owner_uid, "controller": True}],
                         "managedFields": [{"manager": "ensemble-operator"}]}}


class Env:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.woken: list = []
        self.written = WrittenObjects(self.clock, wake=self.woken.append)
        self.informer = InformerCache()
        self.view = self.written.cache(CONFIGMAPS, self.informer)
        self.echo = self.written.not_echo(CONFIGMAPS)

    def write(self, before: dict | None, answer: dict | None, name: str = "a") -> None:
        self.written.begin(CONFIGMAPS, "ns", name, OWNER_UID)
        self.written.end(CONFIGMAPS, "ns", name, before, answer, OWNER)


def test_a_create_is_read_back_until_its_echo_which_wakes_nothing() -> None:
    env = Env()
    env.write(None, cm("5", k="v"))
    shown = env.view.get("a", "ns")
    assert shown is not None and shown["metadata"]["resourceVersion"] == "5"
    assert "managedFields" not in shown["metadata"]  # as the informer caches it
    assert env.view.get("b", "ns") is None and env.written.get(SERVICES, "a", "ns") is None
    env.informer.show(cm("5", k="v"))
    assert not allows_create([env.echo], cm("5", k="v"))
    assert len(env.written) == 0 and env.view.get("a", "ns") is env.informer.objects[("ns", "a")]
    assert allows_create([env.echo], cm("5", k="v"))  # the entry ended: a second one passes
    assert env.woken == []


def test_an_update_answered_is_read_back_and_its_echo_dropped() -> None:
    env = Env()
    before = cm("3", k="old")
    env.informer.show(before)
    env.write(before, cm("4", k="new"))
    assert env.view.get("a", "ns")["data"] == {"k": "new"}
    assert not allows_update([env.echo], before, cm("4", k="new"))


def test_any_other_event_for_the_object_passes_and_ends_the_entry() -> None:
    env = Env()
    env.write(None, cm("5"))
    assert allows_update([env.echo], cm("5"), cm("6", k="theirs"))  # someone else's change came first
    assert env.view.get("a", "ns") is None  # the informer's copy is read again
    env.write(None, cm("7"))
    assert allows_delete([env.echo], cm("7"))
    assert len(env.written) == 0 and env.woken == []


def test_the_echo_arriving_while_the_write_is_in_flight_is_dropped() -> None:
    env = Env()
    env.written.begin(CONFIGMAPS, "ns", "a", OWNER_UID)
    env.informer.show(cm("5"))
    assert not allows_create([env.echo], cm("5"))  # held back: the answer decides
    env.written.end(CONFIGMAPS, "ns", "a", None, cm("5"), OWNER)
    assert env.woken == [] and len(env.written) == 0  # the informer has it: nothing kept


def test_another_event_held_back_in_flight_wakes_the_owner() -> None:
    env = Env()
    env.written.begin(CONFIGMAPS, "ns", "a", OWNER_UID)
    assert not allows_update([env.echo], cm("5"), cm("6", k="theirs"))
    env.written.end(CONFIGMAPS, "ns", "a", None, cm("7"), OWNER)
    assert env.woken == [OWNER] and len(env.written) == 0


def test_an_event_held_back_for_a_write_that_failed_wakes_the_owner() -> None:
    env = Env()
    env.written.begin(CONFIGMAPS, "ns", "a", OWNER_UID)
    assert not allows_create([env.echo], cm("5"))
    env.written.end(CONFIGMAPS, "ns", "a", None, None, OWNER)
    assert env.woken == [OWNER] and len(env.written) == 0


def test_in_flight_events_another_owner_or_a_delete_would_get_pass_at_once() -> None:
    env = Env()
    env.written.begin(CONFIGMAPS, "ns", "a", OWNER_UID)
    assert allows_create([env.echo], cm("5", owner_uid="uid-other"))
    assert allows_delete([env.echo], cm("5"))
    env.written.end(CONFIGMAPS, "ns", "a", None, None, OWNER)
    assert env.woken == []


def test_a_write_the_informer_has_moved_past_is_not_kept() -> None:
    env = Env()
    env.informer.show(cm("5"))  # the echo (or a newer change) was handled before the write began
    env.write(None, cm("5"))
    assert len(env.written) == 0 and env.view.get("a", "ns") is env.informer.objects[("ns", "a")]
    assert allows_create([env.echo], cm("5"))


def test_an_answer_no_event_matches_expires() -> None:
    env = Env()
    env.write(None, cm("5"))
    env.clock.step(DEFAULT_TTL_SECONDS)
    assert env.view.get("a", "ns") is None
    env.write(None, cm("9", name="b"), name="b")  # a write sweeps what expired
    assert len(env.written) == 1


def test_an_answer_written_again_lives_a_full_ttl_from_its_last_write() -> None:
    """The sweep takes what expired, oldest first: not a newer answer for the same object,
    and not the entries of writes still in flight."""
    env = Env()
    env.write(None, cm("5"))
    env.written.begin(CONFIGMAPS, "ns", "in-flight", OWNER_UID)
    env.clock.step(DEFAULT_TTL_SECONDS / 2)
    env.informer.show(cm("5"))
    env.write(cm("5"), cm("6"))                       # "a" again: its first expiry must not end it
    env.write(None, cm("7", name="b"), name="b")
    env.clock.step(DEFAULT_TTL_SECONDS / 2)
    env.write(None, cm("8", name="c"), name="c")      # sweeps: "a"'s first answer had expired
    assert env.view.get("a", "ns")["metadata"]["resourceVersion"] == "6"
    assert len(env.written) == 4                      # a, b, c and the write in flight
    env.clock.step(DEFAULT_TTL_SECONDS / 2)
    env.write(None, cm("9", name="d"), name="d")      # a and b expire now, c not yet
    shown = [(env.view.get(name, "ns") or {"metadata": {}})["metadata"].get("resourceVersion") for name in "abcd"]
    assert shown == ["5", None, "8", "9"]             # "a": the informer's copy again
    assert len(env.written) == 3


class WeakDict(dict):
    """A dict a weak reference can follow."""


def test_an_answer_its_echo_ended_is_not_kept_alive_until_its_expiry() -> None:
    env = Env()
    answer = WeakDict(cm("5"))
    alive = weakref.ref(answer)
    env.write(None, answer)
    assert not allows_create([env.echo], cm("5"))  # the echo ends the entry
    del answer
    gc.collect()
    assert alive() is None and len(env.written) == 0


def test_index_lookups_are_the_informers() -> None:
    env = Env()
    env.informer.indexed = [cm("1")]
    assert env.view.by_index("controller-uid", "u") == [cm("1")]
