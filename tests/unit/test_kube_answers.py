"""SharedAnswers and the watch events taken from them: apply answers reused by exact bytes."""
from __future__ import annotations

import json

from controller.kube.answers import SharedAnswers
from controller.kube.watch import parse_events, shared_event


def compact(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def config_map(name: str, version: str) -> dict:
    return {"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": version}, "data": {"k": "v"}}


def event_line(kind: str, obj: dict) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + compact(obj) + b"}"


def test_an_answer_is_taken_once_by_its_exact_bytes() -> None:
    answers = SharedAnswers()
    answer = config_map("a", "5")
    answers.keep(compact(answer), answer)
    assert answers.take(compact(config_map("a", "6"))) is None
    assert answers.take(compact(answer)) is answer
    assert answers.take(compact(answer)) is None and len(answers) == 0


def test_the_oldest_answers_go_first_beyond_the_bound() -> None:
    answers = SharedAnswers(max_answers=2)
    kept = [config_map(f"o{index}", str(index)) for index in range(3)]
    for answer in kept:
        answers.keep(compact(answer), answer)
    assert len(answers) == 2
    assert answers.take(compact(kept[0])) is None
    assert answers.take(compact(kept[1])) is kept[1] and answers.take(compact(kept[2])) is kept[2]


def test_kept_bytes_stay_within_their_bound_and_a_larger_answer_is_not_kept() -> None:
    answers = SharedAnswers(max_bytes=250)
    small = [config_map(f"o{index}", str(index)) for index in range(3)]
    sizes = [len(compact(answer)) for answer in small]
    assert 2 * sizes[0] <= 250 < 3 * sizes[0]
    for answer in small:
        answers.keep(compact(answer), answer)
    assert len(answers) == 2 and answers.bytes == sizes[1] + sizes[2]
    assert answers.take(compact(small[1])) is small[1] and answers.bytes == sizes[2]
    large = {**config_map("big", "9"), "data": {"k": "v" * 300}}
    answers.keep(compact(large), large)
    assert answers.take(compact(large)) is None and answers.bytes == 0 and len(answers) == 0


def test_the_same_bytes_kept_twice_count_once() -> None:
    answers = SharedAnswers()
    first, second = config_map("a", "5"), config_map("a", "5")
    answers.keep(compact(first), first)
    answers.keep(compact(second), second)
    assert len(answers) == 1 and answers.bytes == len(compact(first))
    assert answers.take(compact(first)) is second


def test_an_added_or_modified_event_of_a_kept_answer_is_that_answer_and_others_are_decoded() -> None:
    answers = SharedAnswers()
    added, modified, other = config_map("a", "5"), config_map("b", "6"), config_map("c", "7")
    for answer in (added, modified):
        answers.keep(compact(answer), answer)
    lines = [event_line("ADDED", added), event_line("MODIFIED", modified), event_line("ADDED", other),
             event_line("ADDED", added)]  # the same bytes again: decoded, the answer was taken
    events = list(parse_events([b"\n".join(lines) + b"\n"], answers))
    assert [event["type"] for event in events] == ["ADDED", "MODIFIED", "ADDED", "ADDED"]
    assert events[0]["object"] is added and events[1]["object"] is modified
    assert events[2]["object"] == other and events[3]["object"] == added and events[3]["object"] is not added


def test_a_deleted_event_is_never_taken_from_the_answers() -> None:
    answers = SharedAnswers()
    answer = config_map("a", "5")
    answers.keep(compact(answer), answer)
    assert shared_event(event_line("DELETED", answer), answers) is None
    assert len(answers) == 1


def test_an_event_written_otherwise_is_decoded_as_before() -> None:
    answers = SharedAnswers()
    answer = config_map("a", "5")
    answers.keep(compact(answer), answer)
    spaced = json.dumps({"type": "ADDED", "object": answer}).encode()  # not the API server's form
    assert shared_event(spaced, answers) is None
    assert list(parse_events([spaced + b"\n"], answers)) == [{"type": "ADDED", "object": answer}]
