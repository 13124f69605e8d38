"""FluxBackend against a fake of flux-core's Python bindings (flux-core itself is not installable here).

The fake follows flux-core as of v0.82: ``job_list`` lists the calling user's jobs unless
``userid=FLUX_USERID_UNKNOWN``, at most ``max_entries`` of them (0: no limit), pending before
running before inactive, ``name`` matching the job name (arg 0's basename unless the jobspec
names the job); its RPC streams one job per response, so ``get()`` is the first response only
and ``get_jobs()`` reads them all; a handle must stay on one thread. ``JobspecV1.from_command``
copies the caller's ``os.environ`` (flux-core >= 0.77) and sets no cwd. ``job_kvs_lookup``
answers only the instance owner or the job's own user (EPERM otherwise, as job-info does), and
its ``jobspec`` lacks the environment (job-ingest drops it) unless ``original=True`` reads J.
"""
from __future__ import annotations

import copy
import errno
import logging
import os
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.member.flux_backend import FluxBackend
from controller.member.jobgroups import JobGroup, load_job_groups

FLUX_USERID_UNKNOWN = 0xFFFFFFFF
STATES = {1: "NEW", 2: "DEPEND", 4: "PRIORITY", 8: "SCHED", 16: "RUN", 32: "CLEANUP", 64: "INACTIVE"}
STATE_IDS = {name: state for state, name in STATES.items()}
OTHER_USER = os.getuid() + 1000  # ensemble-python's jobs: not the status sidecar's user (65532 in the image)
SIDECAR_USER = os.getuid()
SIDECAR_MARK = {"submittedBy": "ensemble-operator member-status"}  # user attribute of the sidecar's own jobs
APP_ENVIRONMENT = {"PATH": "/opt/app/bin:/usr/bin", "APP_HOME": "/opt/app"}  # the app container's, not ours


@dataclass
class Broker:
    jobs: list[dict] = field(default_factory=list)
    jobspecs: dict[int, dict] = field(default_factory=dict)  # as submitted, environment included (J)
    handles: list["Handle"] = field(default_factory=list)
    submitted: list[dict] = field(default_factory=list)
    lookups: list[int] = field(default_factory=list)
    owner: int = OTHER_USER  # the instance owner, whom ensemble-python runs as
    unterminated_rpcs: int = 0

    def add(self, state: str, count: int = 1, *, nnodes: int = 1, userid: int = OTHER_USER,
            jobspec: dict | None = None, job_id: int | None = None) -> int:
        for _ in range(count):
            new_id = job_id or len(self.jobs) + 1
            name = os.path.basename(jobspec["tasks"][0]["command"][0]) if jobspec else None
            self.jobs.append({"id": new_id, "state": STATE_IDS[state], "nnodes": nnodes,
                              "t_submit": float(len(self.jobs)), "userid": userid, "name": name})
            if jobspec:
                self.jobspecs[new_id] = copy.deepcopy(jobspec)
        return self.jobs[-1]["id"]

    def add_ensemble_python_job(self, group: str, command: list[str], environment: dict[str, str] | None,
                                cwd: str | None = None, **user: str) -> int:
        """A job as ensemble-python submits it from the app container: its environment (none before
        flux-core 0.77), the group."""
        system: dict = {"duration": 0, **({"environment": environment} if environment is not None else {}),
                        **({"cwd": cwd} if cwd else {})}
        attributes = {"system": system, "user": {"group": group, **user}}
        return self.add("INACTIVE", jobspec={"tasks": [{"command": command}], "attributes": attributes})


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
    jobs = sorted((job for job in handle.broker.jobs if userid in (FLUX_USERID_UNKNOWN, job["userid"])
                   and name in (None, job["name"])),
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
    def __init__(self, resources: list[dict], tasks: list[dict], attributes: dict) -> None:
        self.jobspec: dict[str, Any] = {"resources": resources, "tasks": tasks, "attributes": attributes,
                                        "version": 1}

    @classmethod
    def from_command(cls, command: list[str], num_tasks: int = 1,
                     num_nodes: int | None = None) -> "JobspecV1":
        return cls([{"type": "node", "count": num_nodes, "tasks": num_tasks}], [{"command": command}],
                   {"system": {"duration": 0, "environment": dict(os.environ)}})

    @property
    def attributes(self) -> dict:
        return self.jobspec["attributes"]

    @property
    def cwd(self) -> str | None:
        return self.attributes["system"].get("cwd")

    @cwd.setter
    def cwd(self, cwd: str) -> None:
        self.attributes["system"]["cwd"] = cwd

    @property
    def duration(self) -> float:
        return self.attributes["system"]["duration"]

    @duration.setter
    def duration(self, duration: float) -> None:
        self.attributes["system"]["duration"] = duration

    @property
    def environment(self) -> dict | None:
        return self.attributes["system"].get("environment")

    @environment.setter
    def environment(self, environment: dict) -> None:
        self.attributes["system"]["environment"] = environment


def submitted_job(jobspec: dict) -> dict:
    """What a test checks of a submitted jobspec."""
    system, (resources,), (task,) = jobspec["attributes"]["system"], jobspec["resources"], jobspec["tasks"]
    return {"command": task["command"], "num_nodes": resources["count"], "num_tasks": resources["tasks"],
            "cwd": system.get("cwd"), "duration": system["duration"],
            "user": jobspec["attributes"].get("user")}


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
        broker.submitted.append(copy.deepcopy(jobspec.jobspec))
        return broker.add("SCHED", userid=SIDECAR_USER, jobspec=jobspec.jobspec,
                          job_id=1000 + len(broker.submitted))

    def job_kvs_lookup(handle: Handle, jobid: int, keys: list[str] = ["jobspec"], decode: bool = True,
                       original: bool = False, base: bool = False) -> dict | None:
        handle.use()
        broker.lookups.append(int(jobid))
        job = next((job for job in broker.jobs if job["id"] == int(jobid)), None)
        if job is None:
            return None
        if SIDECAR_USER not in (broker.owner, job["userid"]):
            raise PermissionError(errno.EPERM, "access is restricted to job/instance owner")
        jobspec = copy.deepcopy(broker.jobspecs[job["id"]])
        if not original:
            jobspec["attributes"]["system"].pop("environment", None)
        return {"id": job["id"], "jobspec": jobspec}

    job.submit = submit  # type: ignore[attr-defined]
    job.job_kvs_lookup = job_kvs_lookup  # type: ignore[attr-defined]
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
rules: []
""")
    ids = FluxBackend(groups).submit("lammps", 2) + FluxBackend(groups).submit("hello", 1)
    assert ids == [1001, 1002, 1003]
    lammps, _, hello = map(submitted_job, broker.submitted)
    assert lammps == {"command": ["lmp", "-in", "in.lj"], "num_nodes": 2, "num_tasks": 8,
                      "cwd": "/opt/lammps", "duration": 300, "user": {"group": "lammps", **SIDECAR_MARK}}
    assert hello == {"command": ["echo", "hello"], "num_nodes": 3, "num_tasks": 3,
                     "cwd": None, "duration": 0, "user": {"group": "hello", **SIDECAR_MARK}}


@pytest.mark.parametrize("job", ["{name: a, command: x, tasks: 0}", "{name: a, command: x, duration: -1}"])
def test_groups_flux_would_refuse_are_not_submittable(job: str) -> None:
    assert load_job_groups(f"jobs: [{job}]\nrules: []") == {}


def test_a_file_ensemble_python_refuses_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"jobs\[0\]\.workdir: must be a string"):
        load_job_groups("jobs: [{name: a, command: x, workdir: 3}]\nrules: []")


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


# Refill jobs take the environment of the jobs ensemble-python submitted from the app container:
# from_command copies the sidecar's own (its PATH, not the app's), where the group's command may be missing.

LAMMPS = JobGroup("lammps", "lmp -in in.lj", 1, 1, 1.0)


def test_a_refill_runs_with_the_environment_and_cwd_of_the_groups_newest_job(
        broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    broker.owner = SIDECAR_USER  # the sidecar may read ensemble-python's jobs
    broker.add_ensemble_python_job("lammps", ["lmp", "-in", "in.lj"], {"PATH": "/old"}, cwd="/old")
    newest = broker.add_ensemble_python_job("lammps", ["lmp", "-in", "in.lj"], APP_ENVIRONMENT,
                                            cwd="/home/app")
    other_group = broker.add_ensemble_python_job("warmup", ["lmp", "-in", "warm.lj"], {"PATH": "/warm"})
    broker.add_ensemble_python_job("hello", ["echo", "hello"], {"PATH": "/echo"})
    with caplog.at_level(logging.INFO, logger="controller.member.flux_backend"):
        FluxBackend({"lammps": LAMMPS}).submit("lammps", 2)
    assert [job["attributes"]["system"]["environment"] for job in broker.submitted] == [APP_ENVIRONMENT] * 2
    assert [submitted_job(job)["cwd"] for job in broker.submitted] == ["/home/app"] * 2
    assert broker.lookups == [other_group, newest]  # jobs named `lmp` only, newest first
    assert (f"environment and cwd of job {newest}, which ensemble-python submitted for group 'lammps'"
            in caplog.text)


def test_the_groups_workdir_wins_over_the_earlier_jobs_cwd(broker: Broker) -> None:
    broker.owner = SIDECAR_USER
    broker.add_ensemble_python_job("lammps", ["lmp", "-in", "in.lj"], APP_ENVIRONMENT, cwd="/home/app")
    group = JobGroup("lammps", "lmp -in in.lj", 1, 1, 1.0, workdir="/opt/lammps")
    FluxBackend({"lammps": group}).submit("lammps", 1)
    (job,) = broker.submitted
    assert submitted_job(job)["cwd"] == "/opt/lammps"
    assert job["attributes"]["system"]["environment"] == APP_ENVIRONMENT


def test_a_group_without_an_earlier_job_runs_with_the_sidecars_environment(
        broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    broker.owner = SIDECAR_USER
    broker.add_ensemble_python_job("warmup", ["lmp", "-in", "warm.lj"], {"PATH": "/warm"})
    with caplog.at_level(logging.INFO, logger="controller.member.flux_backend"):
        FluxBackend({"lammps": LAMMPS}).submit("lammps", 1)
    (job,) = broker.submitted
    assert job["attributes"]["system"]["environment"] == dict(os.environ)
    assert submitted_job(job)["cwd"] is None
    assert "the status sidecar's own environment (no earlier job of group 'lammps')" in caplog.text


def test_the_sidecars_own_earlier_refills_are_not_taken_for_ensemble_pythons_jobs(
        broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    # a refill that fell back carries the sidecar's environment: copying it would hide the fallback
    broker.owner = SIDECAR_USER
    source = broker.add_ensemble_python_job("lammps", ["lmp", "-in", "in.lj"], APP_ENVIRONMENT)
    broker.add_ensemble_python_job("lammps", ["lmp", "-in", "in.lj"], {"PATH": "/sidecar"}, **SIDECAR_MARK)
    backend = FluxBackend({"lammps": LAMMPS})
    with caplog.at_level(logging.INFO, logger="controller.member.flux_backend"):
        backend.submit("lammps", 1)
        backend.submit("lammps", 1)
    assert [job["attributes"]["system"]["environment"] for job in broker.submitted] == [APP_ENVIRONMENT] * 2
    assert caplog.text.count(f"environment and cwd of job {source},") == 2


def test_a_guest_sidecar_refused_ensemble_pythons_jobspecs_says_so_and_falls_back(
        broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    # job-info answers only the instance owner or the job's user; the image's user 65532 is a guest
    for _ in range(3):
        broker.add_ensemble_python_job("lammps", ["lmp", "-in", "in.lj"], APP_ENVIRONMENT)
    with caplog.at_level(logging.INFO, logger="controller.member.flux_backend"):
        FluxBackend({"lammps": LAMMPS}).submit("lammps", 1)
    (job,) = broker.submitted
    assert job["attributes"]["system"]["environment"] == dict(os.environ)
    assert len(broker.lookups) == 1  # one refusal per user is enough
    assert ("the status sidecar's own environment (no earlier job of group 'lammps' readable: job 3 of "
            f"user {OTHER_USER}: [Errno 1] access is restricted to job/instance owner)") in caplog.text


def test_an_earlier_job_without_an_environment_gives_the_refill_none(broker: Broker) -> None:
    # flux-core < 0.77's from_command set none, so ensemble-python's jobs ran with an empty one
    broker.owner = SIDECAR_USER
    broker.add_ensemble_python_job("lammps", ["lmp", "-in", "in.lj"], None)
    FluxBackend({"lammps": LAMMPS}).submit("lammps", 1)
    (job,) = broker.submitted
    assert job["attributes"]["system"]["environment"] == {}


def test_a_job_purged_between_listing_and_lookup_is_passed_over(broker: Broker) -> None:
    broker.owner = SIDECAR_USER
    older = broker.add_ensemble_python_job("lammps", ["lmp", "-in", "in.lj"], APP_ENVIRONMENT)
    purged = broker.add_ensemble_python_job("lammps", ["lmp", "-in", "in.lj"], {"PATH": "/purged"})
    flux_job = __import__("sys").modules["flux.job"]
    lookup = flux_job.job_kvs_lookup
    flux_job.job_kvs_lookup = lambda handle, jobid, **kw: (None if jobid == purged
                                                           else lookup(handle, jobid, **kw))
    FluxBackend({"lammps": LAMMPS}).submit("lammps", 1)
    (job,) = broker.submitted
    assert job["attributes"]["system"]["environment"] == APP_ENVIRONMENT
    assert broker.lookups == [older]


def test_a_refill_whose_earlier_jobs_cannot_be_listed_is_refused_before_submitting(broker: Broker) -> None:
    from controller.member.backend import BackendError

    def failing_job_list(handle: Handle, **_: object) -> JobListRPC:
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    __import__("sys").modules["flux.job"].job_list = failing_job_list
    with pytest.raises(BackendError, match="submit lammps: listing the group's earlier jobs failed: "
                                           r"\[Errno 104\] Connection reset by peer"):
        FluxBackend({"lammps": LAMMPS}).submit("lammps", 1)
    assert broker.submitted == []
