"""The real member runtime of the pod process runner: a Flux broker in every MiniCluster pod.

Each Running pod of a member MiniCluster (a pod with the ``ensemble-member-status``
container, from the real Flux Operator or hack/sim/fluxoperator.py alike) gets what the
Flux Operator's pod runs, from the MiniCluster object (found by the pod's ``job-name``):
a broker of the MiniCluster's instance on the pod IP; on the lead (index 0) the instance's
initial program is the MiniCluster's own command after its ``commands.pre``; beside it the
status container's command, against the lead broker's socket. Pod commands are never read:
the real Flux Operator replaces them with its ``wait-<i>.sh``.

Each pod's processes live in their own mount namespace (``unshare --mount``), where the
pod's volumes are bind-mounted as a kubelet mounts them: the member's ConfigMap at its path
(/ensemble-entrypoint), the pod's /mnt/flux (the Flux view's config and socket) and an
/etc/hosts that resolves the cluster's Service and pod names (``sim.podhosts``). The mount
points are made once on this machine (empty directories, e.g. /ensemble-entrypoint).

A grow is new pods, whose brokers join rank 0; a shrink deletes the top pods, whose brokers
are stopped as a kubelet stops a deleted pod's containers. When the lead broker exits the
instance is over: the other brokers are stopped and its exit code goes to every pod of the
MiniCluster (as the simulated runtime reports it). The status sidecar is left to exit by
itself once its broker is gone, as it does on a cluster.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Callable

from controller.kube.client import KubeClient
from controller.kube.resources import CONFIGMAPS, MINICLUSTERS
from controller.memberpods.labels import MEMBER_LABEL
from controller.memberpods.leadbroker import pod_index
from controller.runtime import Result
from sim import fluxmembers as fm
from sim.podhosts import hosts_file
from sim.podprocesses import PodProcesses, RunningProcess
from sim.pods import container_named, flag_value, is_running, job_name, pod_ip
from sim.restarts import container_exit_code

log = logging.getLogger(__name__)

STATUS_CONTAINER = "ensemble-member-status"
LEAD, WORKER, STATUS = "lead-broker", "broker", "member-status"
ROLES = (LEAD, WORKER, STATUS)
RETRY_SECONDS = 1.0
SOCKET_POLL_SECONDS = 0.2


def status_key(key: str) -> str:
    """The status container's process key, beside the pod's broker (``<ns>/<pod>``)."""
    return f"{key}:{STATUS_CONTAINER}"


def is_member_pod(pod: dict) -> bool:
    """A pod of an ensemble member's MiniCluster: a Job pod with our status container, or labelled
    as a member's (spec.statusSidecar false leaves the container out)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(job_name(pod)) and (container_named(pod, STATUS_CONTAINER) is not None or MEMBER_LABEL in labels)


class RealMembers:
    """Starts, stops and reports the Flux processes of member MiniCluster pods."""

    def __init__(self, *, client: KubeClient, pods, services, processes: PodProcesses, workdir: Path,
                 build: fm.FluxBuild, operator_bin: Path,
                 service_address: Callable[[str, str], str | None],
                 minicluster_exited: Callable[[str, str, int], None]) -> None:
        self.client = client
        self.pods, self.services = pods, services
        self.processes = processes
        self.workdir = workdir
        self.build = build
        self.operator_bin = operator_bin
        self.service_address = service_address
        self.minicluster_exited = minicluster_exited
        self._lead_ips: dict[str, str] = {}  # worker key -> the lead pod IP its broker was started with
        self._stand_ins = fm.package_manager_stand_ins(workdir / "pod-bin")

    # ---- reconcile ------------------------------------------------------------------------
    def reconcile(self, key: str, pod: dict | None) -> Result:
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            self.stop_pod(key)  # a kubelet stops a deleted pod's containers
            return Result()
        if not is_running(pod) or not pod_ip(pod):
            return Result()
        running = self.processes.get(key)
        if running is not None and not running.exited.is_set() and self._stale(key, pod, running):
            self.stop_pod(key)
            return Result(requeue_after=SOCKET_POLL_SECONDS)
        if running is None:
            return self._start_broker(key, pod)
        if running.role == LEAD and not running.exited.is_set():
            return self._start_status(key, pod, running)
        return Result()

    def _stale(self, key: str, pod: dict, running: RunningProcess) -> bool:
        """kwok gave the pod, or a worker's lead, another IP after the broker started (a kubelet
        never does; kwok reuses freed addresses): the broker binds or connects to the old one,
        so it starts over. Logged at info: the simulation repairs it, no user can act on it."""
        if running.pod_ip != pod_ip(pod):
            log.info("pod %s moved from %s to %s: restarting its %s", key, running.pod_ip, pod_ip(pod),
                     running.role)
            return True
        lead = self._lead_ips.get(key)
        current = self._lead_pod_ip(pod["metadata"]["namespace"], running.minicluster)
        if running.role == WORKER and current and lead != current:
            log.info("the lead of pod %s moved from %s to %s: restarting its broker", key, lead, current)
            return True
        return False

    def stop_pod(self, key: str) -> None:
        self.processes.stop(status_key(key))
        self.processes.stop(key)
        self._lead_ips.pop(key, None)

    def exited(self, key: str, running: RunningProcess, returncode: int) -> None:
        """The lead broker's exit ends the instance: stop the other brokers, report the code."""
        if running.role != LEAD:
            return
        namespace = key.split("/", 1)[0]
        code = container_exit_code(returncode)
        log.info("lead broker of MiniCluster %s/%s exited with %d", namespace, running.minicluster, code)
        for pod in self._pods_of(namespace, running.minicluster):
            other = f"{namespace}/{pod['metadata']['name']}"
            if other != key:
                self.processes.stop(other)
        self.minicluster_exited(namespace, running.minicluster, code)

    def lead_uri(self, namespace: str, minicluster: str) -> str | None:
        """The running lead broker's URI, reachable from this machine (tests, the demo)."""
        for pod in self._pods_of(namespace, minicluster):
            running = self.processes.get(f"{namespace}/{pod['metadata']['name']}")
            if running is not None and running.role == LEAD and not running.exited.is_set():
                return fm.host_uri(running.proc.pid)
        return None

    # ---- brokers --------------------------------------------------------------------------
    def _start_broker(self, key: str, pod: dict) -> Result:
        namespace, minicluster, index = pod["metadata"]["namespace"], job_name(pod), pod_index(pod)
        mc = self.client.get_or_none(MINICLUSTERS, minicluster, namespace)
        if index is None or mc is None:
            return Result(requeue_after=RETRY_SECONDS)
        spec = mc.get("spec") or {}
        app = (spec.get("containers") or [{}])[0]
        lead = index == 0
        if lead:
            host = flag_value(str(app.get("command") or ""), "--host")
            if host and self.service_address(namespace, host) is None:
                log.info("lead broker %s waits for the ensemble service %s", key, host)
                return Result(requeue_after=RETRY_SECONDS)
            self._write_minicluster_files(mc, pod_ip(pod))
        elif not self._lead_running(namespace, minicluster):
            return Result(requeue_after=RETRY_SECONDS)  # the config names rank 0's address
        else:
            self._lead_ips[key] = self._lead_pod_ip(namespace, minicluster) or ""
        mounts = self._volumes(mc, namespace)
        if mounts is None:
            return Result(requeue_after=RETRY_SECONDS)
        poddir = self.workdir / key.replace("/", "_")
        view = self._pod_view(poddir, self._minicluster_dir(mc))
        hosts = poddir / "hosts"
        hosts.write_text(hosts_file(pod, (p for p in self.pods.list(namespace) if is_running(p)),
                                    self.services.list(namespace), self._serving))
        mounts = [fm.Mount(view, fm.VIEW_MOUNT), fm.Mount(hosts, "/etc/hosts", read_only=True), *mounts]
        for mount in mounts:
            if mount.target != "/etc/hosts":
                Path(mount.target).mkdir(parents=True, exist_ok=True)  # the mount point, empty
        hostname = (pod.get("spec") or {}).get("hostname") or f"{minicluster}-{index}"
        workdir = poddir / "work"
        workdir.mkdir(exist_ok=True)
        script = poddir / "pod.sh"
        script.write_text(fm.pod_script(
            pod=key, mounts=mounts, path=f"{self._stand_ins}:{self.build.member_path()}", workdir=workdir,
            pre=str((app.get("commands") or {}).get("pre") or ""),
            options=fm.broker_options(hostname, fm.required_ranks(spec)),
            command=str(app.get("command") or "") if lead else None))
        argv = ["env", "-i", f"HOME={Path.home()}", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1", *self._network(pod),
                "unshare", "--mount", "--propagation", "private", "/bin/bash", str(script)]
        self.processes.start(key, LEAD if lead else WORKER, pod_ip(pod), argv, minicluster=minicluster)
        return Result(requeue_after=SOCKET_POLL_SECONDS) if lead else Result()

    def _start_status(self, key: str, pod: dict, broker: RunningProcess) -> Result:
        """The status container, once the lead broker's socket exists (the Flux Operator's
        wrapper waits for it too), in the broker's mount namespace, with ``$fluxsocket``.
        bash, as the Flux Operator's wrapper is, runs a one-command ``-c`` by exec: the
        process the runner stops is the sidecar itself, not a shell leaving it behind."""
        if self.processes.get(status_key(key)) is not None:
            return Result()
        socket = self.workdir / key.replace("/", "_") / "flux" / "config" / "run" / "flux" / "local"
        if not socket.exists():
            return Result(requeue_after=SOCKET_POLL_SECONDS)
        mc = self.client.get_or_none(MINICLUSTERS, broker.minicluster, pod["metadata"]["namespace"])
        container = next((c for c in ((mc or {}).get("spec") or {}).get("containers") or []
                          if c.get("name") == STATUS_CONTAINER), None)
        if container is None or not container.get("command"):
            return Result()
        command = fm.member_status_command(str(container["command"]), pod_ip(pod))
        argv = ["env", "-i", f"HOME={Path.home()}", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1", *self._network(pod),
                f"PATH={self.operator_bin}:{self.build.prefix / 'bin'}:{fm.STANDARD_PATH}",
                f"PYTHONPATH={self.build.bindings()}", f"fluxsocket={fm.LOCAL_URI}",
                "nsenter", f"--target={broker.proc.pid}", "--mount", "--", "/bin/bash", "-c", command]
        self.processes.start(status_key(key), STATUS, pod_ip(pod), argv, container=STATUS_CONTAINER,
                             minicluster=broker.minicluster)
        return Result()

    def _network(self, pod: dict) -> list[str]:
        """The pod network's variables, which ``env -i`` would clear: the brokers, ensemble-python
        and the sidecar connect from the pod's IP."""
        return [f"{name}={value}" for name, value in self.processes.environment(pod_ip(pod)).items()]

    # ---- files ----------------------------------------------------------------------------
    def _minicluster_dir(self, mc: dict) -> Path:
        meta = mc["metadata"]
        return self.workdir / f"{meta['namespace']}_{meta['name']}_{meta.get('uid', '')[:8]}.flux"

    def _write_minicluster_files(self, mc: dict, lead_ip: str) -> None:
        """What the Flux Operator puts in the MiniCluster's ConfigMap: certificate, R, broker.toml."""
        spec, name = mc.get("spec") or {}, mc["metadata"]["name"]
        size = fm.max_size(spec)
        shared = self._minicluster_dir(mc)
        shared.mkdir(parents=True, exist_ok=True)
        if not (shared / "curve.cert").exists():
            fm.keygen(self.build, shared / "curve.cert")
        hosts = fm.hostlist(name, size)
        if not (shared / "R").exists() or (shared / "hostlist").read_text() != hosts:
            (shared / "R").write_text(fm.encode_resources(self.build, hosts))
            (shared / "hostlist").write_text(hosts)
        headless = (spec.get("network") or {}).get("headlessName") or "flux-service"
        (shared / "broker.toml").write_text(
            fm.broker_toml(name, mc["metadata"]["namespace"], headless, size, lead_ip))

    @staticmethod
    def _pod_view(poddir: Path, shared: Path) -> Path:
        """The pod's /mnt/flux: the config tree wait.sh prepares, from the MiniCluster's files."""
        view = poddir / "flux"
        config = view / "config"
        for sub in ("etc/flux/config", "etc/flux/system/cron.d", "curve", "run/flux", "var/lib/flux"):
            (config / sub).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / "broker.toml", config / "etc/flux/config/broker.toml")
        shutil.copyfile(shared / "R", config / "etc/flux/system/R")
        shutil.copyfile(shared / "hostlist", config / "etc/flux/system/hostlist")
        cert = config / "curve" / "curve.cert"
        shutil.copyfile(shared / "curve.cert", cert)
        cert.chmod(0o600)
        return view

    def _volumes(self, mc: dict, namespace: str) -> list[fm.Mount] | None:
        """The ConfigMap volumes of the MiniCluster's containers, written out as a kubelet does;
        None while a ConfigMap is missing (a kubelet waits for it too)."""
        mounts: dict[str, fm.Mount] = {}
        for container in (mc.get("spec") or {}).get("containers") or []:
            for volume_name, volume in (container.get("volumes") or {}).items():
                if not volume.get("configMapName") or volume.get("path") in mounts:
                    continue
                config_map = self.client.get_or_none(CONFIGMAPS, volume["configMapName"], namespace)
                if config_map is None:
                    return None
                target = self._minicluster_dir(mc) / "volumes" / volume_name
                target.mkdir(parents=True, exist_ok=True)
                data = config_map.get("data") or {}
                items = volume.get("items") or {key: key for key in data}
                for key, relative in items.items():
                    (target / relative).write_text(data.get(key, ""))
                mounts[volume["path"]] = fm.Mount(target, volume["path"], read_only=True)
        return list(mounts.values())

    # ---- lookups ----------------------------------------------------------------------------
    def _pods_of(self, namespace: str, minicluster: str) -> list[dict]:
        return [p for p in self.pods.list(namespace) if job_name(p) == minicluster]

    def _lead_pod_ip(self, namespace: str, minicluster: str) -> str | None:
        return next((pod_ip(p) for p in self._pods_of(namespace, minicluster)
                     if pod_index(p) == 0 and is_running(p) and pod_ip(p)), None)

    def _lead_running(self, namespace: str, minicluster: str) -> bool:
        return self.lead_uri(namespace, minicluster) is not None

    def _serving(self, pod: dict) -> bool:
        return self.processes.get(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}") is not None
