"""Second review of the reconciler and algorithms: windows, edits while members act, member replies."""
from __future__ import annotations

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
