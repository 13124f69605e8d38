"""Who may read /metrics: TokenReview, then SubjectAccessReview, answers kept a short while."""
from __future__ import annotations

from typing import Any

from tests.fakes import FakeClock
from controller.runtime.metricsauth import SUBJECT_ACCESS_REVIEWS, TOKEN_REVIEWS, MetricsAuthorizer

USERS = {"scraper-token": {"username": "system:serviceaccount:mon:prometheus", "uid": "u-1",
                           "groups": ["system:serviceaccounts", "system:authenticated"]},
         "nobody-token": {"username": "system:serviceaccount:ns:nobody", "groups": ["system:authenticated"]}}
ALLOWED = {"system:serviceaccount:mon:prometheus"}


class FakeReviews:
    """The API server's TokenReview and SubjectAccessReview, recording what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.down = False

    def request(self, method: str, path: str, *, body: Any = None) -> dict:
        self.requests.append((path, body))
        if self.down:
            raise OSError("connection refused")
        if path == TOKEN_REVIEWS:
            user = USERS.get(body["spec"]["token"])
            return {"status": {"authenticated": True, "user": user} if user else {"authenticated": False}}
        assert path == SUBJECT_ACCESS_REVIEWS
        return {"status": {"allowed": body["spec"]["user"] in ALLOWED}}


def authorizer() -> tuple[MetricsAuthorizer, FakeReviews, FakeClock]:
    reviews, clock = FakeReviews(), FakeClock()
    return MetricsAuthorizer(reviews, clock, cache_seconds=10, max_cached=2), reviews, clock


def test_a_caller_without_a_bearer_token_is_refused_without_asking_the_api_server() -> None:
    auth, reviews, _ = authorizer()
    for header in (None, "", "Basic dXNlcjpwdw==", "Bearer  "):
        assert auth.check(header, "/metrics")[0] == 401  # type: ignore[index]
    assert reviews.requests == []


def test_a_token_the_api_server_does_not_accept_is_401() -> None:
    auth, reviews, _ = authorizer()
    assert auth.check("Bearer forged", "/metrics") == (401, "Unauthorized: the token was not accepted")
    assert [path for path, _ in reviews.requests] == [TOKEN_REVIEWS]


def test_a_user_without_get_on_metrics_is_403_and_the_review_names_the_user_and_path() -> None:
    auth, reviews, _ = authorizer()
    assert auth.check("Bearer nobody-token", "/metrics") == (
        403, "Forbidden: user 'system:serviceaccount:ns:nobody' may not get /metrics")
    _, access = reviews.requests[1]
    assert access["spec"] == {"user": "system:serviceaccount:ns:nobody", "groups": ["system:authenticated"],
                              "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}


def test_an_allowed_caller_is_reviewed_once_per_cache_interval() -> None:
    auth, reviews, clock = authorizer()
    assert auth.check("Bearer scraper-token", "/metrics") is None
    assert reviews.requests[1][1]["spec"]["uid"] == "u-1"
    for _ in range(5):
        assert auth.check("bearer scraper-token", "/metrics") is None
    assert len(reviews.requests) == 2
    clock.step(10)
    assert auth.check("Bearer scraper-token", "/metrics") is None
    assert len(reviews.requests) == 4


def test_an_unreachable_api_server_refuses_with_503_and_is_not_remembered() -> None:
    auth, reviews, _ = authorizer()
    reviews.down = True
    assert auth.check("Bearer scraper-token", "/metrics")[0] == 503  # type: ignore[index]
    reviews.down = False
    assert auth.check("Bearer scraper-token", "/metrics") is None


def test_the_cache_holds_at_most_max_cached_callers() -> None:
    auth, reviews, _ = authorizer()
    for token in ("scraper-token", "nobody-token", "forged"):
        auth.check(f"Bearer {token}", "/metrics")
    asked = len(reviews.requests)
    auth.check("Bearer scraper-token", "/metrics")  # the oldest answer went to make room
    assert len(reviews.requests) == asked + 2
