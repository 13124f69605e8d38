"""Second review of the status poller: a shortened heartbeat applies from the last poll."""
from __future__ import annotations

from controller.reconcilers.poller import PollTarget
from tests.unit import test_poller
from tests.unit.test_poller import KEY, Member, Results

make_poller = test_poller.make_poller  # the fixtures, shared
serve = test_poller.serve


def test_a_shorter_heartbeat_moves_the_next_poll_forward(make_poller, serve, clock) -> None:
    # spec.heartbeat lowered from 300 to 10: the next poll stayed 300 s after the last one,
    # so the edit showed no effect for up to the old heartbeat.
    results = Results()
    poller = make_poller(on_result=results)
    address = serve(Member())
    poller.register(PollTarget(KEY, address, heartbeat=300))
    start = clock.now()
    poller.start()
    assert results.next()[1].ok
    assert poller.next_poll_at(KEY) == start + 300
    poller.register(PollTarget(KEY, address, heartbeat=10))
    assert poller.next_poll_at(KEY) == start + 10
    clock.step(10)
    assert results.next()[1].ok
    assert poller.next_poll_at(KEY) == start + 20
    poller.register(PollTarget(KEY, address, heartbeat=60))  # a longer one applies from the next poll on
    assert poller.next_poll_at(KEY) == start + 20
