"""manifests/monitoring/grafana-dashboard.json: every PromQL query names only series the operator
or its ensemble services export, read from their real registries (the controller as
`ensemble-operator run` sets it up, the service's actions counter)."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controller.kube.client import KubeClient
from controller.reconcilers import setup
from controller.runtime.manager import Manager
from controller.service.servicer import actions_counter

DASHBOARD = Path(__file__).resolve().parents[2] / "manifests" / "monitoring" / "grafana-dashboard.json"
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def series_names(registry: CollectorRegistry) -> set[str]:
    return {family.name + suffix for family in registry.collect() for suffix in SUFFIXES.get(family.type, ("",))}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    # No request is made: the manager and the controller only register their metrics here.
    manager = Manager(KubeClient.with_token("https://127.0.0.1:1", "unused", None), metrics_port=None,
                      health_port=None)
    setup(manager, argparse.Namespace(operator_image="op:test", workers=1))
    service = CollectorRegistry()
    actions_counter(service)
    return series_names(manager.registry) | series_names(service)


def metric_names(expr: str) -> set[str]:
    """The series a PromQL expression selects: identifiers left once strings, label matchers,
    ranges and grouping clauses are removed, other than functions and keywords."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    return {name for name in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr) if name not in KEYWORDS}


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel.get("targets", [])]


def test_the_query_parser_finds_series_and_skips_functions_labels_and_keywords() -> None:
    expr = ('sum by (le) (rate(a_bucket{x="b{c}"}[5m])) / clamp_min(sum(rate(b_total[$__rate_interval]) '
            'offset 1m), 1e-9) and on (ns) c')
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_every_query_names_only_exported_series(exported: set[str]) -> None:
    unknown = {f"{title}: {name}" for title, expr in queries() for name in metric_names(expr) if name not in exported}
    assert unknown == set()
    assert all(metric_names(expr) for _, expr in queries()), "every query reads a series"


def test_the_dashboard_covers_reconciles_queue_polls_scaling_and_budget() -> None:
    used = {name for _, expr in queries() for name in metric_names(expr)}
    assert {"controller_runtime_reconcile_total", "controller_runtime_reconcile_errors_total",
            "workqueue_depth", "workqueue_queue_duration_seconds_bucket",
            "ensemble_member_poll_latency_seconds_bucket", "ensemble_service_actions_total",
            "ensemble_budget_nodes", "ensemble_budget_used_nodes"} <= used


def test_panels_do_not_overlap_and_queries_use_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
