"""Who may read ``/metrics``: as controller-runtime's secure metrics filter decides it.

The caller's bearer token goes to the API server (TokenReview); the user it names must be
allowed ``get`` on the non-resource URL (SubjectAccessReview), which RBAC grants with a
ClusterRole on ``nonResourceURLs: ["/metrics"]``. Answers are kept ``cache_seconds``, so a
scraper costs two API requests per interval, not per scrape, and a flood of one bad token
costs two in all.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Any, Protocol

from controller.clock import Clock

log = logging.getLogger(__name__)

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
CACHE_SECONDS = 10.0
MAX_CACHED = 256

Refusal = tuple[int, str]


class Reviewer(Protocol):
    def request(self, method: str, path: str, *, body: object = None) -> dict[str, Any]: ...


class MetricsAuthorizer:
    def __init__(self, client: Reviewer, clock: Clock, *, cache_seconds: float = CACHE_SECONDS,
                 max_cached: int = MAX_CACHED) -> None:
        self._client = client
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._max_cached = max_cached
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, Refusal | None]] = OrderedDict()

    def check(self, authorization: str | None, path: str) -> Refusal | None:
        """None when the request may be served, else (HTTP status, reason)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return 401, "Unauthorized: a bearer token is required"
        key = hashlib.sha256(f"{path}\0{token.strip()}".encode()).hexdigest()
        now = self._clock.now()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        try:
            verdict = self._review(token.strip(), path)
        except Exception as error:  # the API server is unreachable: refuse, remember nothing
            log.warning("metrics: cannot review a caller: %s", error)
            return 503, "cannot check the caller's rights now"
        with self._lock:
            self._cache[key] = (now + self._cache_seconds, verdict)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return verdict

    def _review(self, token: str, path: str) -> Refusal | None:
        review = self._client.request("POST", TOKEN_REVIEWS, body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        status = review.get("status") or {}
        if not status.get("authenticated"):
            return 401, "Unauthorized: the token was not accepted"
        user = status.get("user") or {}
        spec: dict[str, Any] = {"user": user.get("username", ""), "groups": user.get("groups") or [],
                                "nonResourceAttributes": {"path": path, "verb": "get"}}
        if user.get("uid"):
            spec["uid"] = user["uid"]
        if user.get("extra"):
            spec["extra"] = user["extra"]
        access = self._client.request("POST", SUBJECT_ACCESS_REVIEWS, body={
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
        if (access.get("status") or {}).get("allowed"):
            return None
        return 403, f"Forbidden: user {spec['user']!r} may not get {path}"
