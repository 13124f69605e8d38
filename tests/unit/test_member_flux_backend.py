"""FluxBackend against a fake of flux-core's Python bindings (flux-core itself is not installable here).

The fake follows flux-core as of v0.82: ``job_list`` lists the calling user's jobs unless
``userid=FLUX_USERID_UNKNOWN``, at most ``max_entries`` of them (0: no limit), pending before
running before inactive; its RPC streams one job per response, so ``get()`` is the first
response only and ``get_jobs()`` reads them all; a handle must stay on one thread.
"""
from __future__ import annotations

import os
import threading
import types
from dataclasses import dataclass, field

import pytest

from controller.member.flux_backend import FluxBackend
from controller.member.jobgroups import JobGroup, load_job_groups

FLUX_USERID_UNKNOWN = 0xFFFFFFFF
STATES = {1: "NEW", 2: "DEPEND", 4: "PRIORITY", 8: "SCHED", 16: "RUN", 32: "CLEANUP", 64: "INACTIVE"}
STATE_IDS = {name: state for state, name in STATES.items()}
OTHER_USER = os.getuid() + 1000  # ensemble-python's jobs: not the status sidecar's user (65532 in the image)


@dataclass
class Broker:
    jobs: list[dict] = field(default_factory=list)
    handles: list["Handle"] = field(default_factory=list)
    submitted: list[dict] = field(default_factory=list)
    unterminated_rpcs: int = 0

    def add(self, state: str, count: int = 1, *, nnodes: int = 1, userid: int = OTHER_USER) -> None:
        for _ in range(count):
            self.jobs.append({"id": len(self.jobs) + 1, "state": STATE_IDS[state], "nnodes": nnodes,
                              "t_submit": float(len(self.jobs)), "userid": userid})


class Handle:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.threads: set[int] = set()
        broker.handles.append(self)

    def use(self) -> None:
        self.threads.add(threading.get_ident())


class JobListRPC:
    """Streaming, as flux-core >= 0.82: one job per response, then ENODATA."""

    def __init__(self, handle: Handle, jobs: list[dict]) -> None:
        handle.use()
        self._handle, self._jobs = handle, jobs
        handle.broker.unterminated_rpcs += 1

    def get(self) -> dict:
        return {"jobs": self._jobs[:1], "version": 1}

    def get_jobs(self) -> list[dict]:
        self._handle.broker.unterminated_rpcs -= 1
        return list(self._jobs)


def job_list(handle: Handle, max_entries: int = 1000, attrs: list | None = None, userid: int = os.getuid(),
             states: int = 0, results: int = 0, since: float = 0.0, name: str | None = None,
             queue: str | None = None, constraint: dict | None = None) -> JobListRPC:
    order = {"NEW": 0, "DEPEND": 0, "PRIORITY": 0, "SCHED": 0, "RUN": 1, "CLEANUP": 1, "INACTIVE": 2}
    jobs = sorted((job for job in handle.broker.jobs if userid in (FLUX_USERID_UNKNOWN, job["userid"])),
                  key=lambda job: order[STATES[job["state"]]])
    if attrs and attrs != ["all"]:  # as job-list: the attributes asked for, and the id
        jobs = [{key: value for key, value in job.items() if key == "id" or key in attrs} for job in jobs]
    return JobListRPC(handle, jobs[:max_entries] if max_entries else jobs)


@dataclass
class ResourceSet:
    ncores: int
    nodelist: list[str]


class ResourceListRPC:
    def __init__(self, handle: Handle) -> None:
        handle.use()

    def get(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(up=ResourceSet(8, ["n0", "n1"]), free=ResourceSet(4, ["n1"]))


class JobspecV1:
    def __init__(self, **spec: object) -> None:
        self.spec = spec
        self.attributes: dict = {}
        self.cwd: str | None = None
        self.duration: float = 0

    @classmethod
    def from_command(cls, command: list[str], num_tasks: int = 1, num_nodes: int | None = None,
                     **rest: object) -> "JobspecV1":
        return cls(command=command, num_tasks=num_tasks, num_nodes=num_nodes, **rest)


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    """Installs the fake ``flux`` package; returns the broker it talks to."""
    broker = Broker()
    flux = types.ModuleType("flux")
    job = types.ModuleType("flux.job")
    resource = types.ModuleType("flux.resource")
    constants = types.ModuleType("flux.constants")
    constants.FLUX_USERID_UNKNOWN = FLUX_USERID_UNKNOWN  # type: ignore[attr-defined]
    flux.Flux = lambda: Handle(broker)  # type: ignore[attr-defined]
    flux.job, flux.resource, flux.constants = job, resource, constants  # type: ignore[attr-defined]
    job.job_list = job_list  # type: ignore[attr-defined]
    job.info = types.SimpleNamespace(statetostr=lambda state, fmt="L": STATES[state])  # type: ignore[attr-defined]
    job.JobspecV1 = JobspecV1  # type: ignore[attr-defined]

    def submit(handle: Handle, jobspec: JobspecV1, **_: object) -> int:
        handle.use()
        broker.submitted.append({**jobspec.spec, "cwd": jobspec.cwd, "duration": jobspec.duration,
                                 "attributes": jobspec.attributes})
        return 1000 + len(broker.submitted)

    job.submit = submit  # type: ignore[attr-defined]
    resource.list = types.SimpleNamespace(resource_list=ResourceListRPC)  # type: ignore[attr-defined]
    for name, module in (("flux", flux), ("flux.job", job), ("flux.resource", resource),
                         ("flux.constants", constants)):
        monkeypatch.setitem(__import__("sys").modules, name, module)
    return broker


def test_status_counts_the_jobs_of_every_user(broker: Broker) -> None:
    # ensemble-python submits as the broker's user; the sidecar runs as another (the image's 65532)
    broker.add("SCHED", nnodes=2)
    status = FluxBackend({}).status()
    assert status["queue"]["sched"] == 1
    assert status["waiting"] == {"2": 1} and status["nextJobs"] == [1]
    assert status["nodes"] == {"node_cores_free": 4, "node_cores_up": 8, "node_up_count": 2,
                               "node_free_count": 1}


def test_status_reads_every_streamed_response(broker: Broker) -> None:
    # flux-core >= 0.82 streams job-list one job per response: get() is only the first of them
    broker.add("SCHED", 2, nnodes=2)
    broker.add("RUN", 3)
    broker.add("INACTIVE", 4)
    status = FluxBackend({}).status()
    assert {state: status["queue"][state] for state in ("sched", "run", "inactive")} == {
        "sched": 2, "run": 3, "inactive": 4}
    assert status["waiting"] == {"2": 2} and status["nextJobs"] == [1, 2]
    assert broker.unterminated_rpcs == 0


def test_alive_ends_its_streaming_rpc(broker: Broker) -> None:
    # a streaming RPC dropped before its terminating response leaks its matchtag, every check
    broker.add("RUN", 2)
    backend = FluxBackend({})
    assert backend.alive()
    assert broker.unterminated_rpcs == 0


def test_status_counts_past_job_lists_default_of_1000_entries(broker: Broker) -> None:
    broker.add("SCHED", 600)
    broker.add("INACTIVE", 900)
    queue = FluxBackend({}).status()["queue"]
    assert (queue["sched"], queue["inactive"]) == (600, 900)


def test_each_thread_uses_its_own_handle(broker: Broker) -> None:
    # gRPC workers answer status and submit while the broker watch checks alive(): a flux
    # handle (its reactor, matchtags, message queue) is not thread-safe
    backend = FluxBackend({"a": JobGroup("a", "sleep 1", 1, 1, 1.0)})
    backend.status()
    calls = [backend.status, lambda: backend.submit("a", 1), backend.alive]
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
        thread.join()
    assert len(broker.handles) == 4
    assert all(len(handle.threads) == 1 for handle in broker.handles)


def test_submit_builds_the_jobs_ensemble_python_would(broker: Broker) -> None:
    # ensemble-python 0.0.16 (FluxQueue.extract_jobs/submit): max(tasks, nodes) tasks, the
    # group's workdir as cwd, its duration as the time limit, the group in user attributes
    groups = load_job_groups("""
jobs:
  - {name: lammps, command: "lmp -in in.lj", nodes: 2, tasks: 8, workdir: /opt/lammps, duration: 300}
  - {name: hello, command: echo hello, nodes: 3}
""")
    ids = FluxBackend(groups).submit("lammps", 2) + FluxBackend(groups).submit("hello", 1)
    assert ids == [1001, 1002, 1003]
    lammps, _, hello = broker.submitted
    assert lammps == {"command": ["lmp", "-in", "in.lj"], "num_nodes": 2, "num_tasks": 8,
                      "cwd": "/opt/lammps", "duration": 300, "attributes": {"user": {"group": "lammps"}}}
    assert hello == {"command": ["echo", "hello"], "num_nodes": 3, "num_tasks": 3,
                     "cwd": None, "duration": 0, "attributes": {"user": {"group": "hello"}}}


@pytest.mark.parametrize("job, message", [
    ("{name: a, command: x, tasks: 0}", r"jobs\[0\]\.tasks: expected a positive integer"),
    ("{name: a, command: x, workdir: 3}", r"jobs\[0\]\.workdir: expected a string"),
    ("{name: a, command: x, duration: -1}", r"jobs\[0\]\.duration: expected seconds >= 0"),
])
def test_submission_fields_are_checked(job: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_job_groups(f"jobs: [{job}]")


def refuse_from(broker: Broker, nth: int):
    """The broker's submit fails from its ``nth`` job on, as flux does: an OSError with its errno."""
    submit = __import__("sys").modules["flux.job"].submit

    def refusing(handle: Handle, jobspec: JobspecV1, **kw: object) -> int:
        if len(broker.submitted) + 1 >= nth:
            raise PermissionError(1, "Operation not permitted")
        return submit(handle, jobspec, **kw)

    __import__("sys").modules["flux.job"].submit = refusing


def test_a_submit_failing_part_way_names_the_jobs_that_went_in(broker: Broker) -> None:
    from controller.member.backend import BackendError, PartialSubmit
    backend = FluxBackend({"a": JobGroup("a", "sleep 1", 1, 1, 1.0)})
    refuse_from(broker, 3)
    with pytest.raises(PartialSubmit) as partial:
        backend.submit("a", 4)
    assert partial.value.submitted == [1001, 1002]
    assert "job 3 of 4 refused" in str(partial.value)
    with pytest.raises(BackendError) as none_in:
        backend.submit("a", 1)
    assert not isinstance(none_in.value, PartialSubmit) and "job 1 of 1 refused" in str(none_in.value)


@pytest.mark.parametrize("count", [0, -2])
def test_a_submit_of_no_jobs_is_refused_as_the_simulator_refuses_it(broker: Broker, count: int) -> None:
    # it answered SUCCESS {"submitted": []}: a caller could not tell that nothing was asked of Flux
    from controller.member.backend import BackendError
    with pytest.raises(BackendError, match=f"count: expected a positive integer, got {count}"):
        FluxBackend({"a": JobGroup("a", "sleep 1", 1, 1, 1.0)}).submit("a", count)
    assert broker.submitted == []
