"""An in-memory API, its caches, an event recorder and a poll registry, for the reconciler's
tests: what the Ensemble reconciler writes, counted, with caches always in sync."""
from __future__ import annotations

import copy
import itertools

from controller.informers import CONTROLLER_UID_INDEX
from controller.kube.errors import ApiError
from controller.kube.resources import (CONFIGMAPS, DEPLOYMENTS, ENSEMBLES, MINICLUSTERS, NETWORKPOLICIES, PODS,
                                       ROLEBINDINGS, ROLES, SERVICEACCOUNTS, SERVICES, Resource)
from controller.proto.errors import ActionCallError
from controller.reconcilers.action_runner import ActionRunner
from controller.reconcilers.desired import DesiredSettings
from controller.reconcilers.ensemble import EnsembleCaches, EnsembleReconciler
from controller.memberpods.leadbroker import MINICLUSTER_INDEX
from controller.reconcilers.owned_objects import SIZE_FIELD_MANAGER
from controller.reconcilers.poller import PollResult
from controller.runtime.reconcile import Request
from controller.scaling.requests import ScaleRequest
from controller.scaling.scaler import Decision, Outcome
from tests.fakes import FakeClock, FakeRecorder
from tests.helpers import job_owner, member_job


OWNED = (SERVICEACCOUNTS, ROLES, ROLEBINDINGS, SERVICES, DEPLOYMENTS, CONFIGMAPS, MINICLUSTERS, NETWORKPOLICIES)
ENSEMBLE_YAML = "jobs:\n  - name: a\n    command: echo hi\nrules:\n  - trigger: start\n    action:\n      name: submit\n      label: a\n"


def merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


class FakeApi:
    """Stores objects; apply merges (enough for these tests) and honours a resourceVersion
    precondition as the API server does (409 on an existing object); every write is logged."""

    def __init__(self) -> None:
        self.objects: dict[tuple[Resource, str, str], dict] = {}
        self.writes: list[tuple] = []
        self.reads: list[tuple[str, str]] = []
        self._uids = itertools.count(1)
        self._versions = itertools.count(1)
        self.status_owners: dict[tuple[Resource, str, str], dict[str, set[str]]] = {}
        self.size_owner_conflict = False

    def apply(self, res: Resource, obj: dict, *, field_manager: str, force: bool = True,
              subresource: str | None = None) -> dict:
        meta = obj["metadata"]
        key = (res, meta["namespace"], meta["name"])
        self.writes.append(("apply", res.kind, meta["name"], field_manager, force, subresource,
                            copy.deepcopy(obj)))
        if field_manager == SIZE_FIELD_MANAGER and self.size_owner_conflict:
            raise ApiError(409, "Conflict", "spec.size is owned by ensemble-service")
        current = self.objects.get(key)
        expected = meta.get("resourceVersion")
        # A resourceVersion is checked against an existing object only: an apply creates a missing
        # one whatever it says (a subresource cannot be created).
        if expected is not None and (current["metadata"].get("resourceVersion") != expected if current is not None
                                     else subresource is not None):
            raise ApiError(409, "Conflict", f"{res.plural} {meta['name']!r}: the object has been modified")
        if current is None:
            stored = merge({"metadata": {"uid": f"uid-{next(self._uids)}"}}, obj)
        elif subresource == "status":  # per-manager ownership of status fields, as server-side apply
            owners = self.status_owners.setdefault(key, {})
            others = set().union(*(fields for manager, fields in owners.items() if manager != field_manager))
            status = dict(current.get("status") or {})
            for dropped in owners.get(field_manager, set()) - set(obj["status"]) - others:
                status.pop(dropped, None)
            status.update(copy.deepcopy(obj["status"]))
            owners[field_manager] = set(obj["status"])
            stored = {**current, "metadata": dict(current["metadata"]), "status": status}
        else:
            stored = merge(current, obj)
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict:
        self.reads.append((res.kind, name))
        if (res, namespace, name) not in self.objects:
            raise ApiError(404, "NotFound", f"{res.plural} {name!r} not found")
        obj = copy.deepcopy(self.objects[(res, namespace, name)])
        owners = self.status_owners.get((res, namespace, name))
        if owners:  # a live read shows who applied which status field
            obj["metadata"]["managedFields"] = [
                {"manager": manager, "operation": "Apply", "subresource": "status",
                 "fieldsV1": {"f:status": {f"f:{field}": {} for field in sorted(fields)}}}
                for manager, fields in owners.items()]
        return obj

    def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> dict | None:
        """As KubeClient.get_or_none: through get, so the read is recorded."""
        try:
            return self.get(res, name, namespace)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def delete(self, res: Resource, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = "Background", preconditions: dict | None = None):
        """As KubeClient.delete: None when the object was already gone (404)."""
        self.writes.append(("delete", res.kind, name))
        if self.objects.pop((res, namespace, name), None) is None:
            return None
        return {"kind": "Status", "status": "Success"}

    def put(self, res: Resource, obj: dict) -> dict:
        self.objects[(res, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
        return obj

    def kinds_written(self) -> list[tuple[str, str]]:
        return [(w[1], w[2]) for w in self.writes]


class FakeCache:
    def __init__(self, api: FakeApi, res: Resource) -> None:
        self._api, self._res = api, res
        self.hidden: set[str] = set()  # names the informer has not delivered yet

    def _all(self) -> list[dict]:
        return [obj for (res, _, _), obj in self._api.objects.items() if res == self._res]

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        obj = self._api.objects.get((self._res, namespace, name))
        return copy.deepcopy(obj) if obj is not None and name not in self.hidden else None

    def by_index(self, index_name: str, value: str) -> list[dict]:
        if index_name == CONTROLLER_UID_INDEX:
            return [o for o in self._all() if any(r.get("controller") and r["uid"] == value
                                                  for r in o["metadata"].get("ownerReferences", []))]
        assert index_name == MINICLUSTER_INDEX
        return [o for o in self._all() if o["metadata"].get("labels", {}).get("job-name") == value]


class FluxJobs:
    """The Jobs the Flux Operator keeps for the fake API's MiniClusters: one per MiniCluster,
    named as it and controlled by it, whose pods ``job_owner`` names (a cache of them)."""

    def __init__(self, api: FakeApi) -> None:
        self._api = api

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        minicluster = self._api.objects.get((MINICLUSTERS, namespace, name))
        return None if minicluster is None else member_job(name, minicluster["metadata"]["uid"], namespace or "")

    def by_index(self, index_name: str, value: str) -> list[dict]:
        raise AssertionError(f"the reconciler reads member Jobs by name only, not by index {index_name}")


def fake_caches(api: FakeApi) -> EnsembleCaches:
    """The reconciler's caches over ``api``, always in sync with it."""
    return EnsembleCaches(ensembles=FakeCache(api, ENSEMBLES), owned={res: FakeCache(api, res) for res in OWNED},
                          pods=FakeCache(api, PODS), jobs=FluxJobs(api))


class FakePoller:
    def __init__(self) -> None:
        self.targets: dict = {}

    def register(self, target) -> None:
        self.targets[target.key] = target

    def unregister(self, key) -> None:
        self.targets.pop(key, None)


def member(size: int = 1, **spec) -> dict:
    return {"ensemble": ENSEMBLE_YAML,
            "minicluster": {"spec": {"size": size, "containers": [{"image": "app:1"}], **spec}}}


def make_ensemble(members: list[dict] | None = None, name: str = "e1", namespace: str = "ns") -> dict:
    return {"apiVersion": "ensemble.flux-framework.org/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
            "spec": {"heartbeat": 7, "members": members if members is not None else [member(2), member()]}}


def stored_ensemble(api: FakeApi, name: str = "e1", namespace: str = "ns") -> dict:
    return api.objects[(ENSEMBLES, namespace, name)]


def spec_edited(api: FakeApi, name: str = "e1", namespace: str = "ns") -> dict:
    """The stored Ensemble with its generation and resourceVersion moved on, as the API server
    moves them for a spec edit: edit its spec in place next."""
    ensemble = stored_ensemble(api, name, namespace)
    meta = ensemble["metadata"]
    meta["generation"] = (meta.get("generation") or 1) + 1
    meta["resourceVersion"] = f"{meta.get('resourceVersion', '')}-spec-{meta['generation']}"
    return ensemble


def conditions(api: FakeApi, name: str = "e1") -> dict[str, dict]:
    return {c["type"]: c for c in stored_ensemble(api, name)["status"]["conditions"]}


def reconciler_env() -> tuple[FakeApi, FakeRecorder, FakePoller, FakeClock, EnsembleReconciler]:
    """An EnsembleReconciler on the fakes below, caches always in sync: (api, recorder, poller, clock, reconciler)."""
    api = FakeApi()
    recorder = FakeRecorder()
    poller = FakePoller()
    clock = FakeClock()
    caches = fake_caches(api)
    reconciler = EnsembleReconciler(client=api, caches=caches, events=recorder, clock=clock,
                                    settings=DesiredSettings(operator_image="op:dev", member_status_port=7000),
                                    poller=poller)
    return api, recorder, poller, clock, reconciler


def lead_pod(mc: str, ip: str = "10.0.0.5", phase: str = "Running") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{mc}-0-abcde", "namespace": "ns", "creationTimestamp": "2024-01-01T00:00:00Z",
                         "labels": {"job-name": mc, "batch.kubernetes.io/job-completion-index": "0"},
                         "ownerReferences": [job_owner(mc)]},
            "status": {"phase": phase, "podIP": ip}}


# ---- an operator with spec.algorithm: reconciler, action runner and the queue between them ----

KEY = ("ns", "e1", "e1-0")
ADDRESS = "10.0.0.5:7000"
PENDING = {"queue": {"sched": 3}, "nodes": {"node_free_count": 0, "node_up_count": 2}}
DONE = {"queue": {"inactive": 4}, "nodes": {"node_free_count": 2, "node_up_count": 2}}
EMPTY = {"queue": {}, "nodes": {"node_free_count": 2, "node_up_count": 2}}


class FakeScaler:
    """Applies grow/shrink to the fake API's MiniCluster within its bounds, like the service."""

    def __init__(self, api: FakeApi, outcome: Outcome = Outcome.SUCCESS) -> None:
        self.api, self.outcome = api, outcome
        self.requests: list[tuple[str, str, ScaleRequest]] = []

    def factory(self, name: str, namespace: str) -> FakeScaler:
        self.ensemble = (namespace, name)
        self.made = getattr(self, "made", 0) + 1
        return self

    def scale(self, request: ScaleRequest) -> Decision:
        self.requests.append((*self.ensemble, request))
        if self.outcome != Outcome.SUCCESS:
            return Decision(self.outcome, {"error": "no nodes granted: budget spent"})
        spec = self.api.objects[(MINICLUSTERS, "ns", request.name)]["spec"]
        before = spec["size"]
        spec["size"] = max(spec.get("minSize", 1), min(spec["maxSize"], before + request.delta))
        return Decision(Outcome.SUCCESS, {"from": before, "to": spec["size"]})


class FakeMembers:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, dict]] = []
        self.fail = False

    def request(self, address: str, member: str, action: str, payload: dict) -> dict:
        self.requests.append((address, member, action, payload))
        if self.fail:
            raise ActionCallError(f"member {member} at {address}: {action}: UNAVAILABLE: down")
        return {"submitted": list(range(payload.get("count", 0)))} if action == "submit" else payload


class Operator:
    """One operator process: the reconciler, its action runner and the workqueue between them,
    driven in the test's thread as the workers would, without threads."""

    def __init__(self, reconciler: EnsembleReconciler, runner: ActionRunner, queue: list[Request]) -> None:
        self.reconciler, self.runner, self.queue = reconciler, runner, queue

    def reconcile(self, request: Request = Request("ns", "e1")) -> None:
        """A reconcile, then the actions it handed over and the reconciles their outcomes enqueue."""
        self.reconciler.reconcile(request)
        self.settle()

    def run_actions(self) -> None:
        while self.runner.process_next(block=False):
            pass

    def settle(self) -> None:
        self.run_actions()
        while self.queue:
            self.reconciler.reconcile(self.queue.pop(0))
            self.run_actions()


class Env:
    def __init__(self, algorithm: dict | None, members: list[dict] | None = None) -> None:
        self.api, self.events, self.poller, self.clock = FakeApi(), FakeRecorder(), FakePoller(), FakeClock()
        self.scaler, self.members = FakeScaler(self.api), FakeMembers()
        ensemble = make_ensemble(members or [member(2, maxSize=4)])
        if algorithm is not None:
            ensemble["spec"]["algorithm"] = algorithm
        self.api.put(ENSEMBLES, ensemble)
        self.operator = self.new_operator()
        self.reconcile()
        self.api.put(PODS, lead_pod("e1-0"))
        self.reconcile()

    def new_operator(self) -> Operator:
        caches = fake_caches(self.api)
        queue: list[Request] = []
        runner = ActionRunner(client=self.api, scalers=self.scaler.factory, members=self.members,
                              events=self.events, on_outcome=queue.append)
        reconciler = EnsembleReconciler(client=self.api, caches=caches, events=self.events, clock=self.clock,
                                        settings=DesiredSettings(member_status_port=7000), poller=self.poller,
                                        runner=runner)
        return Operator(reconciler, runner, queue)

    @property
    def reconciler(self) -> EnsembleReconciler:
        return self.operator.reconciler

    def reconcile(self) -> None:
        self.operator.reconcile()

    def poll(self, report: dict | None, *, failures: int = 0, step: float = 7.0, settle: bool = True) -> None:
        """One heartbeat: time passes, a poll result arrives, the reconcile it enqueues runs
        (``settle``: then the actions it decided and the reconciles their outcomes enqueue)."""
        self.clock.step(step)
        ok = report is not None
        result = PollResult(ok, self.clock.wall(), ADDRESS, 0.01, 0 if ok else failures, report,
                            None if ok else f"{ADDRESS}: UNAVAILABLE: connection refused")
        self.reconciler.record_poll(KEY, result)
        self.reconciler.reconcile(Request("ns", "e1"))
        if settle:
            self.operator.settle()

    @property
    def status(self) -> dict:
        return stored_ensemble(self.api)["status"]

    def size(self) -> int:
        return self.api.objects[(MINICLUSTERS, "ns", "e1-0")]["spec"]["size"]

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events.events]
