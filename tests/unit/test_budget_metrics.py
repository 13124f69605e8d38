"""ensemble_budget_nodes / ensemble_budget_used_nodes: each Ensemble's spec.budget and the nodes
its members are sized to, read from the cache when scraped."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from controller.reconcilers.budget_metrics import BudgetCollector


class Ensembles:
    def __init__(self, *items: dict) -> None:
        self.items = list(items)

    def list(self, namespace: str | None = None) -> list[dict]:
        return self.items


def ensemble(name: str, budget: object, sizes: list[object]) -> dict:
    return {"metadata": {"namespace": "ns", "name": name}, "spec": {"budget": budget, "members": []},
            "status": {"members": [{"name": f"{name}-{i}", "desiredSize": s} for i, s in enumerate(sizes)]}}


def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {(metric.name, sample.labels["ensemble"]): sample.value
            for metric in registry.collect() for sample in metric.samples}


def test_budget_and_use_per_ensemble_with_a_budget() -> None:
    cache = Ensembles(ensemble("a", 10, [2, 3, None]), ensemble("b", None, [4]), ensemble("c", True, [1]))
    registry = CollectorRegistry()
    registry.register(BudgetCollector(cache))
    assert samples(registry) == {("ensemble_budget_nodes", "a"): 10, ("ensemble_budget_used_nodes", "a"): 5}


def test_series_follow_the_cache_at_each_scrape() -> None:
    cache = Ensembles(ensemble("a", 10, [2]))
    registry = CollectorRegistry()
    registry.register(BudgetCollector(cache))
    cache.items = [ensemble("a", 10, [6])]
    assert samples(registry)[("ensemble_budget_used_nodes", "a")] == 6
    cache.items = []
    assert b"ensemble_budget_nodes{" not in generate_latest(registry)
