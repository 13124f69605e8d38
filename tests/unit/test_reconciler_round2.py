"""Second review of the reconciler and algorithms: windows, edits while members act, member replies."""
from __future__ import annotations

from controller.kube.resources import CONFIGMAPS, MINICLUSTERS, PODS
from controller.reconcilers.poller import PollResult
from tests.unit.test_reconciler import lead_pod, member, stored_ensemble
from tests.unit.test_reconciler_algorithms import DONE, Env


def test_a_poll_count_longer_than_ten_heartbeats_is_still_reached() -> None:
    # History was trimmed to 10 heartbeats whatever the algorithm counted, so a
    # confirmPolls above 10 never saw enough drained polls and the member never completed.
    env = Env({"name": "terminate", "options": {"confirmPolls": 15}})
    for _ in range(14):
        env.poll(DONE)
    assert env.status["members"][0]["phase"] == "Running"
    env.poll(DONE)
    assert env.status["members"][0]["phase"] == "Completed"


def test_a_member_removed_and_added_again_starts_afresh_not_terminated() -> None:
    # The records of a removed member stayed in memory (the status dropped them), so a
    # member added again at that index was Completed at once and, after deleteMiniCluster,
    # its MiniCluster was never created; after a restart it was created. Both now start afresh.
    env = Env({"name": "terminate", "options": {"confirmPolls": 1, "deleteMiniCluster": "true"}},
              members=[member(2, maxSize=4), member()])
    env.api.put(PODS, lead_pod("e1-1", ip="10.0.0.6"))
    env.reconcile()
    env.clock.step(7)
    env.reconciler.record_poll(("ns", "e1", "e1-1"), PollResult(True, env.clock.wall(), "10.0.0.6:7000", 0.01,
                                                               0, DONE))
    env.reconcile()
    assert (MINICLUSTERS, "ns", "e1-1") not in env.api.objects
    assert [m["phase"] for m in env.status["members"]] == ["Running", "Completed"]
    ensemble = stored_ensemble(env.api)
    removed = ensemble["spec"]["members"].pop()
    del env.api.objects[(PODS, "ns", "e1-1-0-abcde")]
    env.reconcile()
    assert (CONFIGMAPS, "ns", "e1-1") not in env.api.objects
    ensemble["spec"]["members"].append(removed)
    env.reconcile()
    assert (MINICLUSTERS, "ns", "e1-1") in env.api.objects
    assert [m["phase"] for m in env.status["members"]] == ["Running", "Pending"]
    assert [entry["name"] for entry in env.status.get("memberActions", [])] == []


def test_an_ipv6_lead_broker_is_dialled_in_brackets() -> None:
    # "fd00::5:7000" is no host:port to gRPC (an unbracketed IPv6 address takes the
    # last group as part of the address), so on an IPv6 cluster no member was ever polled.
    env = Env(None)
    env.api.put(PODS, lead_pod("e1-0", ip="fd00::5"))
    env.reconcile()
    (target,) = env.poller.targets.values()
    assert target.address == "[fd00::5]:7000"
