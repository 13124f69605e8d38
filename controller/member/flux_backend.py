"""The status endpoint's view of a real Flux instance, through the flux Python bindings.

The bindings exist only where flux-core is installed (inside a MiniCluster), so they are
imported when the backend is created, with an error that says what is missing.
"""
from __future__ import annotations

import importlib
import logging
import os
import shlex
import sys
import threading
from collections import Counter
from types import ModuleType
from typing import Any

from controller.member.backend import NEXT_JOBS_SHOWN, QUEUE_STATES, BackendError, PartialSubmit
from controller.member.jobgroups import JobGroup

log = logging.getLogger(__name__)

PENDING_STATES = ("DEPEND", "PRIORITY", "SCHED")
JOB_ATTRIBUTES = ("state", "nnodes", "t_submit")  # job-list always adds "id"
SUBMITTED_BY = "ensemble-operator member-status"  # user attribute submittedBy: our job, never a source


class FluxBindingsError(BackendError):
    """Flux's Python bindings cannot be loaded in this process (not a passing broker state)."""


def import_flux() -> ModuleType:
    """flux-core's bindings. They come from the Flux view the Flux Operator mounts, built for that
    view's Python: a view whose Python is not this process's (or a broken one) fails here."""
    try:
        flux = importlib.import_module("flux")
        for submodule in ("flux.constants", "flux.job", "flux.resource"):
            importlib.import_module(submodule)
    except Exception as err:  # ImportError, or what a binary built for another Python raises on load
        raise FluxBindingsError(
            f"cannot load Flux's Python bindings with Python {sys.version_info.major}.{sys.version_info.minor} "
            f"(the Flux view's may be built for another): {type(err).__name__}: {str(err)[:300]}") from err
    return flux


class BindingsUnavailable:
    """What the endpoint serves when the bindings cannot be loaded: every request is answered,
    with the reason, instead of the container exiting (and restarting for ever). Its broker watch
    follows the broker's local socket, which the broker removes when it exits."""

    def __init__(self, reason: str, socket: str | None) -> None:
        self.reason = reason
        self._socket = socket

    def _refuse(self) -> BackendError:
        return BackendError(self.reason)

    def status(self) -> dict:
        raise self._refuse()

    def submit(self, group: str, count: int) -> list[int]:
        raise self._refuse()

    def resize(self, nodes: int) -> None:
        raise self._refuse()

    def alive(self) -> bool:
        return self._socket is None or os.path.exists(self._socket)


def local_socket(uri: str | None) -> str | None:
    """The path of a ``local://`` FLUX_URI, else None."""
    return uri.removeprefix("local://") if uri and uri.startswith("local://") else None


class FluxBackend:
    """Reads queue and resources from the local Flux broker; submits job groups to it."""

    def __init__(self, groups: dict[str, JobGroup], flux: ModuleType | None = None) -> None:
        self._flux = flux or import_flux()
        self._local = threading.local()
        self._local.handle = self._flux.Flux()  # fails here, at start, when no broker answers
        self._groups = groups

    @property
    def _handle(self) -> Any:
        """This thread's broker connection: a flux handle is not thread-safe, and gRPC workers
        and the broker watch call in from several threads at once."""
        handle = getattr(self._local, "handle", None)
        if handle is None:
            handle = self._local.handle = self._flux.Flux()
        return handle

    def status(self) -> dict:
        """Jobs of every user: job_list's default is the caller's own, and this sidecar runs as
        another user (the image's) than the ensemble-python that submits the member's jobs.
        ``get_jobs`` reads every response: since flux-core 0.82 the list streams one job per
        response, and ``get`` returns only the first. ``max_entries=0`` lists them all (the
        default, 1000, cut the counts of a longer queue), with only the attributes read here.
        The broker answers ENOSYS until rc1 has loaded the scheduler (the sidecar starts once the
        socket exists) and while it shuts down: an error reply, not a failed RPC.
        """
        try:
            resources = self._flux.resource.list.resource_list(self._handle).get()
            jobs = self._flux.job.job_list(self._handle, max_entries=0, attrs=list(JOB_ATTRIBUTES),
                                           userid=self._flux.constants.FLUX_USERID_UNKNOWN).get_jobs()
        except OSError as err:  # e.g. ENOSYS while the scheduler is not loaded: at start, at shutdown
            raise BackendError(f"flux: {err}") from err
        states = Counter(self._flux.job.info.statetostr(job["state"]).lower() for job in jobs)
        pending = sorted((job for job in jobs if self._flux.job.info.statetostr(job["state"]) in PENDING_STATES),
                         key=lambda job: job["t_submit"])
        waiting = Counter(str(job["nnodes"]) for job in pending if job.get("nnodes"))
        return {
            "nodes": {"node_cores_free": resources.free.ncores, "node_cores_up": resources.up.ncores,
                      "node_up_count": len(resources.up.nodelist),
                      "node_free_count": len(resources.free.nodelist)},
            "queue": {state: states.get(state, 0) for state in QUEUE_STATES},
            "waiting": dict(waiting),
            "nextJobs": [int(job["id"]) for job in pending[:NEXT_JOBS_SHOWN]],
        }

    def submit(self, group: str, count: int) -> list[int]:
        """The jobs ensemble-python submits for the group: at least one task per node, its
        workdir, its duration as the time limit, the group named in the user attributes.

        ``from_command`` fills the environment from this process (the sidecar: its PATH, not the
        app container's), so the jobs take the environment, and cwd unless the group sets a
        workdir, of the group's newest job submitted by ensemble-python, when one can be read.
        """
        if group not in self._groups:
            raise BackendError(f"group: unknown job group {group!r} (known: {sorted(self._groups)})")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:  # as the simulator refuses it
            raise BackendError(f"count: expected a positive integer, got {count!r}")
        spec = self._groups[group]
        command = shlex.split(spec.command)
        jobspec = self._flux.job.JobspecV1.from_command(command=command, num_nodes=spec.nodes,
                                                         num_tasks=max(spec.tasks, spec.nodes))
        user = jobspec.attributes.setdefault("user", {})  # keep any user attributes
        user["group"] = spec.name
        user["submittedBy"] = SUBMITTED_BY
        source, origin = self._earlier_job_system(group, command)
        if source is not None:
            jobspec.environment = source.get("environment", {})  # the job shell reads none as empty
        cwd = spec.workdir or (source or {}).get("cwd")
        if cwd:
            jobspec.cwd = cwd
        jobspec.duration = spec.time_limit
        log.info("submit %s: %d job(s) with %s", group, count, origin)
        ids: list[int] = []
        for _ in range(count):
            try:
                ids.append(int(self._flux.job.submit(self._handle, jobspec)))
            except OSError as err:  # flux raises OSError subclasses with the broker's errno
                why = f"submit {group}: job {len(ids) + 1} of {count} refused: {err}"
                raise (PartialSubmit(ids, why) if ids else BackendError(why)) from err
        return ids

    def _earlier_job_system(self, group: str, command: list[str]) -> tuple[dict | None, str]:
        """``attributes.system`` of the group's newest job not submitted by this sidecar, and
        for the log where the environment comes from.

        job-list knows no user attributes, so candidates are the jobs named as ours are (arg 0's
        basename), read newest first. Only J, the jobspec as submitted, keeps the environment
        (job-ingest drops it from the KVS copy). job-info answers only the instance owner and
        the job's own user: one refusal stands for all of that user's jobs.
        """
        try:
            jobs = self._flux.job.job_list(self._handle, max_entries=0, attrs=["t_submit", "userid"],
                                           userid=self._flux.constants.FLUX_USERID_UNKNOWN,
                                           name=os.path.basename(command[0])).get_jobs()
        except OSError as err:
            raise BackendError(f"submit {group}: listing the group's earlier jobs failed: {err}") from err
        refusals: dict[int, str] = {}
        for job in sorted(jobs, key=lambda job: job["t_submit"], reverse=True):
            if job["userid"] in refusals:
                continue
            try:
                found = self._flux.job.job_kvs_lookup(self._handle, job["id"], keys=["jobspec"],
                                                      original=True)
            except OSError as err:
                refusals[job["userid"]] = f"job {job['id']} of user {job['userid']}: {err}"
                continue
            attributes = found["jobspec"]["attributes"] if found else {}  # None: purged since listed
            user = attributes.get("user", {})
            if user.get("group") == group and user.get("submittedBy") != SUBMITTED_BY:
                return attributes["system"], (f"the environment and cwd of job {job['id']}, which "
                                              f"ensemble-python submitted for group {group!r}")
        unread = f" readable: {'; '.join(refusals.values())}" if refusals else ""
        return None, f"the status sidecar's own environment (no earlier job of group {group!r}{unread})"

    def alive(self) -> bool:
        """True while the broker answers; its socket goes away when the broker exits.

        Read to the end (``get_jobs``): a streaming RPC dropped before its last response
        leaks its matchtag, one per check for as long as the sidecar runs.
        """
        self._flux.job.job_list(self._handle, max_entries=1).get_jobs()
        return True

    def resize(self, nodes: int) -> None:
        """Nothing to do: Flux learns of brokers joining or leaving by itself."""
