"""How much of each Ensemble's ``spec.budget`` its members hold, as metrics.

Read from the Ensemble cache at scrape time (nothing is kept between scrapes, and an Ensemble
that is gone has no series): the budget, and the nodes its members' MiniClusters are sized to
(``status.members[].desiredSize``, the sizes the budget's fair share counts).
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

BUDGET = "ensemble_budget_nodes"
USED = "ensemble_budget_used_nodes"


class EnsembleLister(Protocol):
    def list(self, namespace: str | None = None) -> list[dict[str, Any]]: ...


class BudgetCollector(Collector):
    def __init__(self, ensembles: EnsembleLister) -> None:
        self._ensembles = ensembles

    def collect(self) -> Iterator[GaugeMetricFamily]:
        budget = GaugeMetricFamily(BUDGET, "spec.budget of an Ensemble: nodes its members may hold in all.",
                                   labels=["namespace", "ensemble"])
        used = GaugeMetricFamily(USED, "Nodes the members of an Ensemble with spec.budget are sized to "
                                       "(status.members[].desiredSize).", labels=["namespace", "ensemble"])
        for ensemble in self._ensembles.list():
            total = (ensemble.get("spec") or {}).get("budget")
            if not isinstance(total, int) or isinstance(total, bool):
                continue
            metadata = ensemble.get("metadata") or {}
            labels = [metadata.get("namespace", ""), metadata.get("name", "")]
            budget.add_metric(labels, total)
            used.add_metric(labels, sum(size for member in (ensemble.get("status") or {}).get("members") or []
                                        if isinstance(size := member.get("desiredSize"), int)
                                        and not isinstance(size, bool)))
        yield budget
        yield used

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Only the names (so registering reads no cache)."""
        yield GaugeMetricFamily(BUDGET, "", labels=["namespace", "ensemble"])
        yield GaugeMetricFamily(USED, "", labels=["namespace", "ensemble"])
