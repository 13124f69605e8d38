"""End to end, what only real members can show: each scenario reads the member's own Flux
instance (``flux`` through its lead broker's socket) and holds what the operator says or
does against it. They run where members are real (see conftest.py: marker ``real_flux``).

Timings are real seconds: only real Flux runs these.
"""
from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.providers import wait_for
from tests.e2e.scenarios import (apply, ensemble, failed_jobs, flux_jobs, flux_ranks, flux_ready, get, idset, member,
                                 member_statuses, minicluster_size, running_pods, user_attributes)

TIMEOUT = 240
# Several waits of TIMEOUT each on a loaded 2-core machine: more than setup.cfg's 300 s a test.
pytestmark = [pytest.mark.real_flux, pytest.mark.timeout(900)]
QUEUE_STATES = ("new", "depend", "priority", "sched", "run", "cleanup", "inactive")
SUBMITTED_BY = "ensemble-operator member-status"  # what the status sidecar marks its submits with

# Two jobs end at once, five hold: on a 2-core rank two run and three wait. Nothing changes
# after that, so a poll and `flux jobs` read the same queue.
HOLDING = """
logging: {heartbeat: 2}
jobs:
  - {name: quick, command: "true", count: 2, nodes: 1}
  - {name: hold, command: sleep 900, count: 5, nodes: 1}
rules:
  - trigger: start
    action: {name: submit, label: quick}
  - trigger: metric
    name: count.quick.success
    when: 2
    action: {name: submit, label: hold}
"""


def queue_of(jobs: list[dict]) -> dict[str, int]:
    """``flux jobs`` counted by state, as the status sidecar names them."""
    counted = Counter(job["state"].lower() for job in jobs)
    return {state: counted.get(state, 0) for state in QUEUE_STATES}


def member_actions(cluster, name: str, namespace: str) -> list[dict]:
    return ((get(cluster, "ensemble", name, namespace) or {}).get("status") or {}).get("memberActions") or []


def test_last_poll_queue_counts_match_flux_jobs_in_the_member(real_cluster, ns):
    cluster = real_cluster
    apply(cluster, ensemble("counted", [member(HOLDING, size=1, max_size=1)], heartbeat=2), ns)
    mc = "counted-0"

    def settled_poll() -> dict | None:
        poll = (member_statuses(cluster, "counted", ns) or [{}])[0].get("lastPoll") or {}
        queue = poll.get("queue") or {}
        return poll if queue.get("inactive") == 2 and queue.get("run", 0) + queue.get("sched", 0) == 5 else None

    poll = wait_for(settled_poll, TIMEOUT, "lastPoll to count 2 done and 5 held jobs", cluster)
    jobs = flux_jobs(cluster, ns, mc)
    assert poll["queue"] == queue_of(jobs)
    assert poll["queue"]["run"] >= 1
    pending = [job for job in jobs if job["state"] in ("DEPEND", "PRIORITY", "SCHED")]
    assert poll.get("waiting", {}) == ({"1": len(pending)} if pending else {})
    assert sorted(poll.get("nextJobs", [])) == sorted(job["id"] for job in pending)
    up = cluster.flux(ns, mc, "resource", "list", "-s", "up", "-no", "{nnodes} {ncores}").split()
    assert (poll["nodes"]["node_up_count"], poll["nodes"]["node_cores_up"]) == (int(up[0]), int(up[1]))


# A short job, then nothing: an empty queue the operator's refill algorithm fills.
IDLE_AFTER_WARMUP = """
logging: {heartbeat: 2}
jobs:
  - {name: warmup, command: "true", count: 1, nodes: 1}
  - {name: fill, command: sleep 900, count: 1, nodes: 1}
rules:
  - trigger: start
    action: {name: submit, label: warmup}
"""


def test_refill_submit_lands_real_jobs_in_the_flux_queue(real_cluster, ns):
    cluster = real_cluster
    algorithm = {"name": "refill", "options": {"group": "fill", "count": 2, "emptyPolls": 2, "maxRefills": 1}}
    apply(cluster, ensemble("refilled", [member(IDLE_AFTER_WARMUP, size=1, max_size=1)], heartbeat=2,
                            algorithm=algorithm), ns)
    mc = "refilled-0"

    def submitted() -> list[dict] | None:
        actions = member_actions(cluster, "refilled", ns)
        # A decision is first recorded as pending, then counted once the action runner is done.
        return actions if actions and actions[0].get("lastAction", {}).get("kind") == "submit" else None

    (action,) = wait_for(submitted, TIMEOUT, "the refill algorithm's submit", cluster)
    assert action["name"] == mc and action["lastAction"]["amount"] == 2
    jobs = wait_for(lambda: (jobs := flux_jobs(cluster, ns, mc)) and any(j["name"] == "sleep" for j in jobs)
                    and any(j["name"] == "true" for j in jobs) and jobs, TIMEOUT,
                    "the refilled jobs and the warmup in flux jobs", cluster)
    fills = [j for j in jobs if j["name"] == "sleep"]
    assert len(fills) == 2
    assert all(j["state"] in ("SCHED", "RUN") for j in fills), fills
    for job in fills:
        assert user_attributes(cluster, ns, mc, job["id"]) == {"group": "fill", "submittedBy": SUBMITTED_BY}
    # ensemble-python's own submit names the group only.
    (warmup,) = [j for j in jobs if j["name"] == "true"]
    assert user_attributes(cluster, ns, mc, warmup["id"]) == {"group": "warmup"}


# A job that needs three nodes on a member of one: only a grow lets it start.
WIDE = """
logging: {heartbeat: 2}
jobs:
  - {name: wide, command: sleep 900, count: 1, nodes: 3}
rules:
  - trigger: start
    action: {name: submit, label: wide}
"""


def test_grow_brings_up_flux_ranks_and_the_waiting_job_starts_on_them(real_cluster, ns):
    cluster = real_cluster
    algorithm = {"name": "scale", "options": {"waitSeconds": 600, "cooldownSeconds": 4, "growStep": 2}}
    apply(cluster, ensemble("widened", [member(WIDE, size=1, max_size=3)], heartbeat=2, algorithm=algorithm), ns)
    mc = "widened-0"
    wait_for(lambda: minicluster_size(cluster, mc, ns) == 3, TIMEOUT, "the scale algorithm to grow to 3", cluster)
    wait_for(lambda: running_pods(cluster, mc, ns) == 3, TIMEOUT, "three pods", cluster)
    wait_for(lambda: flux_ranks(cluster, ns, mc, "up") == {0, 1, 2}, TIMEOUT, "ranks 1 and 2 to join the instance",
             cluster)

    def wide_running() -> dict | None:
        return next((j for j in flux_jobs(cluster, ns, mc) if j["state"] == "RUN"), None)

    job = wait_for(wide_running, TIMEOUT, "the 3-node job to start", cluster)
    assert idset(job["ranks"]) == {0, 1, 2} and job["nnodes"] == 3
    (action,) = member_actions(cluster, "widened", ns)
    assert action["lastAction"]["kind"] == "grow"
    assert "needs 3 nodes" in action["lastAction"]["reason"]


# Four short and two long one-core jobs on a member of one node (2 cores here): the scale
# algorithm grows it to three and the jobs fill every rank (the first two short ones still
# run when the new ranks join, even on a loaded machine); the short ones end and leave the
# long ones alone on a rank that a shrink (the Flux Operator removes the top pods) would take.
SHORT_AND_LONG = """
logging: {heartbeat: 2}
jobs:
  - {name: short, command: sleep 25, count: 4, nodes: 1}
  - {name: long, command: sleep 60, count: 2, nodes: 1}
rules:
  - trigger: start
    action: {name: submit, label: short}
  - trigger: start
    action: {name: submit, label: long}
"""


def test_scale_shrinks_only_ranks_no_running_job_holds(real_cluster, ns):
    """Every observation of the member: no running job on a rank at or above the MiniCluster's
    size; in the end the top ranks are down, the member is back at one, every job COMPLETED."""
    cluster = real_cluster
    algorithm = {"name": "scale", "options": {"waitSeconds": 2, "idlePolls": 2, "stabilizationSeconds": 4,
                                              "cooldownSeconds": 4, "growStep": 2}}
    apply(cluster, ensemble("shrunk", [member(SHORT_AND_LONG, size=1, max_size=3)], heartbeat=2,
                          algorithm=algorithm), ns)
    mc = "shrunk-0"
    wait_for(lambda: flux_ready(cluster, ns, mc), TIMEOUT, "the member's Flux instance", cluster)
    seen: dict[str, set] = {"ranks_used": set(), "sizes": set()}
    violations: list[str] = []

    def observe() -> list[dict]:
        jobs = flux_jobs(cluster, ns, mc)
        size = minicluster_size(cluster, mc, ns) or 0
        seen["sizes"].add(size)
        for job in jobs:
            ranks = idset(job.get("ranks") or "")
            seen["ranks_used"] |= ranks
            if job["state"] in ("RUN", "CLEANUP") and ranks and max(ranks) >= size:
                violations.append(f"job {job['id']} runs on ranks {job['ranks']} of a MiniCluster of {size}")
        return jobs

    def all_done_and_shrunk() -> list[dict] | None:
        jobs = observe()
        done = len(jobs) == 6 and all(j["state"] == "INACTIVE" for j in jobs)
        return jobs if done and minicluster_size(cluster, mc, ns) == 1 else None

    jobs = wait_for(all_done_and_shrunk, TIMEOUT, "every job to end and the member to shrink back to 1", cluster)
    assert violations == []
    assert 3 in seen["sizes"] and 2 in seen["ranks_used"], seen  # it grew and rank 2 ran jobs
    assert failed_jobs(jobs) == []
    wait_for(lambda: running_pods(cluster, mc, ns) == 1, TIMEOUT, "the top pods to go", cluster)
    wait_for(lambda: flux_ranks(cluster, ns, mc, "down") == {1, 2}, TIMEOUT, "ranks 1 and 2 to be down", cluster)
    assert flux_ranks(cluster, ns, mc, "up") == {0}
    kinds = [a["lastAction"]["kind"] for a in member_actions(cluster, "shrunk", ns)]
    assert kinds == ["shrink"]

