"""`ensemble-operator status` / `kubectl ensemble`: what the table and the JSON show of an
Ensemble's status, and how the command picks its namespace (no cluster needed)."""
from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from controller import cli
from controller.statusview import command
from controller.statusview.table import COLUMNS, render, view_of

RUNNING = {
    "metadata": {"name": "grow", "namespace": "demo"},
    "status": {
        "phase": "Running",
        "members": [
            {"name": "grow-0", "phase": "Running", "desiredSize": 3, "currentSize": 2,
             "leadBroker": {"pod": "grow-0-0-abc", "ip": "127.64.0.5"},
             "lastPoll": {"queue": {"new": 1, "sched": 2, "run": 3, "inactive": 14},
                          "nodes": {"node_up_count": 2, "node_free_count": 0}}},
            {"name": "grow-1", "phase": "Pending", "desiredSize": 1},
        ],
        "memberActions": [
            {"name": "grow-0", "actionCounts": {"grow": 1},
             "lastAction": {"time": "2026-12-07T02:15:04Z", "kind": "grow", "amount": 1, "reason": "queue"}},
            {"name": "grow-1", "actionCounts": {},
             "pendingActions": [{"time": "2026-12-07T02:16:00Z", "kind": "submit", "amount": 4, "reason": ""}]},
        ],
    },
}


def table_lines(ensemble: dict) -> list[list[str]]:
    """The rows of the rendered table split on the column gaps (two spaces or more)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in render([view_of(ensemble)]).splitlines()[1:]]


def test_the_table_shows_every_column_the_demo_showed_plus_the_last_action() -> None:
    header, first, second = table_lines(RUNNING)
    assert header == list(COLUMNS)
    assert first == ["grow-0", "Running", "3", "2", "1/2/3/14", "2/0", "127.64.0.5", "grow +1 02:15:04"]
    assert second == ["grow-1", "Pending", "1", "-", "-", "-", "-", "submit 4 02:16:00 (pending)"]


def test_last_action_is_the_newer_of_the_algorithms_and_the_services() -> None:
    served = [{"name": "grow-0", "kind": "shrink", "from": 4, "to": 2, "time": "2026-12-07T02:20:00Z",
               "grows": 1, "shrinks": 1},
              {"name": "grow-1", "kind": "grow", "from": 1, "to": 3, "time": "2026-12-07T02:10:00Z",
               "grows": 1, "shrinks": 0}]
    ensemble = {**RUNNING, "status": {**RUNNING["status"], "serviceActions": served}}
    _, first, second = table_lines(ensemble)
    assert first[-1] == "shrink -2 02:20:00"                   # the service's, after the algorithm's 02:15:04
    assert second[-1] == "submit 4 02:16:00 (pending)"         # the algorithm's, after the service's 02:10:00
    only_served = {**RUNNING, "status": {**RUNNING["status"], "memberActions": [], "serviceActions": served}}
    assert [row[-1] for row in table_lines(only_served)[1:]] == ["shrink -2 02:20:00", "grow +2 02:10:00"]


def test_the_heading_names_the_ensemble_and_its_phase_and_the_columns_line_up() -> None:
    text = render([view_of(RUNNING)])
    heading, header, *rows = text.splitlines()
    assert heading == "Ensemble demo/grow: phase Running"
    lead = header.index("LEAD BROKER")
    assert [row[lead:].split()[0] for row in rows] == ["127.64.0.5", "-"]


def test_an_ensemble_without_status_is_pending_with_no_rows() -> None:
    view = view_of({"metadata": {"name": "new", "namespace": "x"}})
    assert view.phase == "Pending" and view.members == ()
    assert render([view]).splitlines() == ["Ensemble x/new: phase Pending", "  ".join(COLUMNS)]


def test_an_invalid_ensemble_says_why() -> None:
    invalid = {"metadata": {"name": "bad", "namespace": "x"}, "status": {"phase": "Invalid", "conditions": [
        {"type": "InvalidSpec", "status": "True", "message": "spec.members[0].minicluster: required"}]}}
    assert render([view_of(invalid)]).splitlines()[-1] == "Invalid: spec.members[0].minicluster: required"


def test_malformed_status_fields_show_as_dashes_not_errors() -> None:
    odd = {"metadata": {"name": "odd", "namespace": "x"}, "status": {"members": [
        {"name": "odd-0", "desiredSize": "three", "currentSize": True, "leadBroker": "10.0.0.1",
         "lastPoll": {"queue": {"new": "x"}, "nodes": []}}],
        "memberActions": [{"name": "odd-0", "lastAction": {"kind": 7}}, "junk"]}}
    (_, row) = table_lines(odd)
    assert row == ["odd-0", "-", "-", "-", "0/0/0/0", "-", "-", "-"]


def test_several_ensembles_render_as_blocks_in_the_order_given() -> None:
    other = {"metadata": {"name": "a", "namespace": "demo"}, "status": {"phase": "Completed"}}
    text = render([view_of(other), view_of(RUNNING)])
    headings = [line for line in text.splitlines() if line.startswith("Ensemble ")]
    assert headings == ["Ensemble demo/a: phase Completed", "Ensemble demo/grow: phase Running"]
    assert "\n\nEnsemble demo/grow" in text


def test_json_output_carries_the_same_values_with_full_times() -> None:
    out = io.StringIO()
    command.Printer("json", out).show([view_of(RUNNING)], "demo", None)
    (ensemble,) = json.loads(out.getvalue())["ensembles"]
    assert (ensemble["namespace"], ensemble["name"], ensemble["phase"]) == ("demo", "grow", "Running")
    first, second = ensemble["members"]
    assert first == {"name": "grow-0", "phase": "Running", "size": 3, "pods": 2,
                     "queue": {"new": 1, "sched": 2, "run": 3, "done": 14}, "nodes": {"up": 2, "free": 0},
                     "leadBroker": "127.64.0.5",
                     "lastAction": {"kind": "grow", "amount": 1, "time": "2026-12-07T02:15:04Z", "pending": False}}
    assert second["lastAction"]["pending"] is True


def test_watching_prints_one_json_document_per_line() -> None:
    out = io.StringIO()
    printer = command.Printer("json", out, watching=True, terminal=True)
    printer.show([view_of(RUNNING)], "demo", None)
    printer.show([], "demo", None)
    lines = out.getvalue().splitlines()
    assert [len(json.loads(line)["ensembles"]) for line in lines] == [1, 0]


def test_watching_on_a_terminal_redraws_the_table_and_elsewhere_appends_it() -> None:
    terminal, piped = io.StringIO(), io.StringIO()
    for stream, is_terminal in ((terminal, True), (piped, False)):
        printer = command.Printer("table", stream, watching=True, terminal=is_terminal)
        printer.show([view_of(RUNNING)], "demo", None)
        printer.show([view_of(RUNNING)], "demo", None)
    assert terminal.getvalue().count(command.CLEAR_SCREEN) == 2
    assert command.CLEAR_SCREEN not in piped.getvalue()
    assert piped.getvalue().count("\n\nEnsemble demo/grow") == 1


def test_nothing_found_says_where_it_looked() -> None:
    out = io.StringIO()
    printer = command.Printer("table", out)
    printer.show([], "demo", None)
    printer.show([], None, None)
    printer.show([], "demo", "gone")
    assert out.getvalue().split("\n\n") == ["No Ensembles found in namespace demo.",
                                            "No Ensembles found in any namespace.", "Ensemble demo/gone: not found\n"]


def kubeconfig(tmp_path: Path, namespace: str | None) -> str:
    context = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
    path = tmp_path / "config"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "main", "context": context},
                     {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "elsewhere"}}]}))
    return str(path)


def test_the_namespace_defaults_to_the_contexts_then_to_default(tmp_path: Path) -> None:
    assert command.default_namespace(kubeconfig(tmp_path, "team-a"), None) == "team-a"
    assert command.default_namespace(kubeconfig(tmp_path, "team-a"), "other") == "elsewhere"
    assert command.default_namespace(kubeconfig(tmp_path, None), None) == "default"


def test_in_a_pod_without_kubeconfig_the_namespace_is_the_pods(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    pod_namespace = tmp_path / "namespace"
    pod_namespace.write_text("tenant\n")
    assert command.default_namespace(None, None, pod_namespace) == "tenant"
    assert command.default_namespace(None, None, tmp_path / "absent") == "default"


def test_an_unknown_context_is_named(tmp_path: Path, capsys) -> None:
    assert cli.main(["status", "--kubeconfig", kubeconfig(tmp_path, None), "--context", "nope"]) == 1
    assert "no context named 'nope'" in capsys.readouterr().err


def test_a_name_with_all_namespaces_is_refused(capsys) -> None:
    assert cli.main(["status", "-A", "grow"]) == 1
    assert "a NAME needs one namespace" in capsys.readouterr().err


def test_an_unreachable_api_server_is_one_line_and_status_1(tmp_path: Path, capsys) -> None:
    assert cli.main(["status", "--kubeconfig", kubeconfig(tmp_path, None)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ensemble-operator status: ") and len(err.strip().splitlines()) == 1


def test_the_kubectl_plugin_takes_the_same_flags_with_or_without_the_word_status(monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(command, "run", lambda args: seen.append((args.name, args.namespace, args.watch)) or 0)
    assert command.kubectl_plugin(["status", "grow", "-n", "demo", "-w"]) == 0
    assert command.kubectl_plugin(["grow", "-n", "demo"]) == 0
    assert seen == [("grow", "demo", True), ("grow", "demo", False)]
    with pytest.raises(SystemExit):
        command.kubectl_plugin(["-o", "yaml"])


def test_a_stopped_watch_wakes_its_waiting_loop() -> None:
    stop = threading.Event()
    changes = command.Changes(stop)
    changes.mark()
    assert changes.next() is True
    stop.set()
    assert changes.next() is False
