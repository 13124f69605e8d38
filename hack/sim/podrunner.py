"""A process runner for kwok pods: what a kubelet would run, for the pods that matter here.

kwok simulates nodes and pod lifecycles but runs nothing. On the local cluster this
controller starts, for each Running pod that kwok gave a 127.64.x.y address, the
process its container would run in a real cluster, listening on that pod IP:

- the ensemble service pod (container ``ensemble-service``): ``ensemble-operator
  service``, authenticated with a token of the pod's ServiceAccount, so the RBAC it
  gets is the one the reconciler created;
- the pods of a MiniCluster with the ``ensemble-member-status`` container (members), in
  one of two runtimes (``setup(members=...)``, default ``$ENSEMBLE_MEMBERS``, else ``real``
  where Flux is built and the runner is root, see ``sim.fluxmembers.default_member_runtime``):
  ``real`` runs a Flux broker in every pod, the MiniCluster's own command on the lead and
  the status container beside it (``sim.realmembers``);
  ``simulated`` runs, for the lead broker (index 0) only,
  ``python hack/sim/member`` (``sim.member``), the
  simulated Flux queue following the member's ensemble.yaml, asking the ensemble
  service (found through the ``<e>-grpc`` Service) to grow or shrink. When it
  exits, its exit code is written to the MiniCluster's pods (kwok then marks them
  Succeeded or Failed, so the Job and the MiniCluster finish).

When a MiniCluster's count of running pods changes, a simulated member is told
(``resize``), as new Flux brokers would join a real one. A process of a pod with
``restartPolicy: Always`` (the service's Deployment pod) that exits is started again, at once
after its first crash and then after a kubelet's crash-loop backoff, and the pod status shows its ``restartCount`` and last
exit; members are Job pods, which end with their process.
"""
from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import grpc

from credentials import write_token_kubeconfig
from controller.clock import Clock, RealClock
from controller.kube import errors
from controller.kube.client import KubeClient
from controller.kube.resources import CONFIGMAPS, MINICLUSTERS, PODS, SERVICES, SERVICEACCOUNTS
from controller.proto import ensemble_service_pb2 as pb
from controller.proto import ensemble_service_pb2_grpc as pb_grpc
from controller.proto.wire import MINICLUSTER_MEMBER
from controller.memberpods.leadbroker import pod_index
from controller.runtime import ControllerBuilder, Manager, Request, Result
from sim import fluxmembers
from sim.podnetwork import PodNetwork, pod_network
from sim.podprocesses import PodProcesses, RunningProcess
from sim.pods import container_named, flag_value, is_running, pod_ip
from sim.realmembers import ROLES as REAL_ROLES
from sim.realmembers import RealMembers, is_member_pod
from sim.restarts import (BackoffPolicy, container_exit_code, exited_to_restart, running_again, terminated,
                          timestamp, waiting_to_restart)

log = logging.getLogger(__name__)

SERVICE_CONTAINER = "ensemble-service"
UPSTREAM_SERVER = "ensemble-server"   # service mode upstream's command
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
MEMBER_STATUS_CONTAINER = "ensemble-member-status"
SIMULATED_MEMBER = Path(__file__).resolve().parent / "member"   # python <dir>: its __main__.py
EXIT_CODE_ANNOTATION = "ensemble.flux-framework.org/sim-exit-code"
RETRY_SECONDS = 1.0


class PodProcessRunner:
    """Reconciles each pod into at most one local process (see the module docstring)."""

    def __init__(self, manager: Manager, *, server: str, ca_file: str, workdir: Path,
                 speed: float = 10.0, python: str = sys.executable, clock: Clock = RealClock(),
                 backoff: BackoffPolicy = BackoffPolicy(), members: str = "simulated",
                 flux: fluxmembers.FluxBuild | None = None, network: PodNetwork | None = None) -> None:
        self.client: KubeClient = manager.client
        self.pods = manager.cache(PODS)
        self.services = manager.cache(SERVICES)
        self.server, self.ca_file = server, ca_file
        self.workdir = workdir
        self.speed = speed
        self.python = python
        self.clock = clock
        # Each pod's connections come from its pod IP, as on a node: the ensemble service tells
        # its callers apart by it (sim.podnetwork).
        self.processes = PodProcesses(workdir, self, clock=clock, backoff=backoff, network=network or pod_network())
        workdir.mkdir(parents=True, exist_ok=True)
        if members not in fluxmembers.RUNTIMES:
            raise ValueError(f"members={members!r}: expected one of {', '.join(fluxmembers.RUNTIMES)}")
        self.members = members
        self.real: RealMembers | None = None
        if members == "real":
            build = flux or fluxmembers.flux_build()
            problem = fluxmembers.real_runtime_problem(build)
            if problem is not None:
                raise RuntimeError(f"member runtime 'real': {problem}")
            self.real = RealMembers(client=self.client, pods=self.pods, services=self.services,
                                    processes=self.processes, workdir=workdir, build=build,
                                    operator_bin=Path(python).parent, service_address=self._service_address,
                                    minicluster_exited=self._mark_minicluster_exited)

    # ---- reconcile ------------------------------------------------------------------
    def reconcile(self, request: Request) -> Result:
        key = f"{request.namespace}/{request.name}"
        pod = self.pods.get(request.name, request.namespace)
        if self.real is not None and (pod is None or is_member_pod(pod)):
            return self.real.reconcile(key, pod)
        running = self.processes.get(key)
        if running is not None and pod is not None and is_running(pod) and pod_ip(pod) \
                and running.pod_ip != pod_ip(pod) and not running.exited.is_set():
            # kwok renders a new pod's IP once per stage it applies, and two events of the
            # pod (the Flux Operator labels each new pod) can both apply pod-running: the pod
            # then shows a second IP. Start over there, as a kubelet's pod has one IP.
            log.info("pod %s moved from %s to %s: restarting its %s there", key, running.pod_ip,
                     pod_ip(pod), running.role)
            self.processes.stop(key)
            running = None
        if pod is None or not is_running(pod) or (running and running.pod_ip != pod_ip(pod)):
            if running is not None and pod is None:
                self.processes.stop(key)
            return Result()
        if not pod_ip(pod):
            return Result()
        if running is not None:
            if running.role == "member" and not running.exited.is_set():
                return self._resize_if_needed(running, request.namespace)
            return Result()
        if container_named(pod, SERVICE_CONTAINER):
            self._start_service(key, pod)
            return Result()
        member = container_named(pod, MEMBER_STATUS_CONTAINER)
        if (member is not None or is_member_pod(pod)) and pod_index(pod) == 0:
            return self._start_member(key, pod, member or {})   # no sidecar: spec.statusSidecar false
        return Result()

    def map_minicluster_pods(self, pod: dict) -> list[Request]:
        """Any pod change of a MiniCluster re-checks its lead broker (for resize); with real
        members every pod of it (a worker follows its lead's address)."""
        job = (pod["metadata"].get("labels") or {}).get("job-name")
        if not job:
            return []
        namespace = pod["metadata"]["namespace"]
        return [Request(namespace, p["metadata"]["name"]) for p in self.pods.list(namespace)
                if (p["metadata"].get("labels") or {}).get("job-name") == job
                and (self.real is not None or pod_index(p) == 0)]

    def stop(self) -> None:
        self.processes.stop_all()

    # ---- process events (ProcessEvents), reported as a kubelet would ---------------------
    def exited(self, key: str, running: RunningProcess, returncode: int, restart_in: float | None) -> None:
        if restart_in is not None:
            now = timestamp(self.clock.wall())
            previous, running.last_exit = running.last_exit, terminated(
                container_exit_code(returncode), self._started_wall(running), now)
            self._patch_container_status(key, running.container, lambda base: waiting_to_restart(
                base, restart_count=running.restarts, last_exit=running.last_exit, delay=restart_in)
                if restart_in > 0 else exited_to_restart(
                base, restart_count=running.restarts, last_exit=running.last_exit, previous_exit=previous))
        elif running.role in REAL_ROLES and self.real is not None:
            self.real.exited(key, running, returncode)
        elif running.role == "member" and returncode >= 0:
            self._mark_minicluster_exited(key.split("/", 1)[0], running.minicluster, returncode)

    def restarted(self, key: str, running: RunningProcess) -> None:
        started = timestamp(self.clock.wall())
        self._patch_container_status(key, running.container, lambda base: running_again(
            base, restart_count=running.restarts, last_exit=running.last_exit, started_at=started))

    def _started_wall(self, running: RunningProcess) -> str:
        return timestamp(self.clock.wall() - (self.clock.now() - running.started_at))

    def _patch_container_status(self, key: str, container: str,
                                update: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Rewrite ``container``'s entry of the pod's containerStatuses and the Ready conditions
        that follow from them (kwok wrote them at start and no stage touches them after)."""
        namespace, name = key.split("/", 1)
        pod = self.pods.get(name, namespace)
        if pod is None:
            return
        statuses = list((pod.get("status") or {}).get("containerStatuses") or [])
        index = next((i for i, s in enumerate(statuses) if s.get("name") == container), None)
        if index is None:
            statuses.append(update({"name": container}))
        else:
            statuses[index] = update(statuses[index])
        ready = str(all(s.get("ready") for s in statuses))
        now = timestamp(self.clock.wall())
        patch = {"status": {"containerStatuses": statuses,
                            "conditions": [{"type": kind, "status": ready, "lastTransitionTime": now}
                                           for kind in ("Ready", "ContainersReady")]}}
        try:
            self.client.patch(PODS, name, patch, namespace=namespace, patch_type="strategic",
                              subresource="status")
        except errors.ApiError as err:
            if not errors.is_not_found(err):
                log.warning("could not report the container status of pod %s: %s", key, err)

    # ---- the ensemble service -----------------------------------------------------------
    def _service_token(self, namespace: str, service_account: str) -> str:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600 * 6}}
        result = self.client.request(
            "POST", SERVICEACCOUNTS.path(namespace, service_account, "token"), body=body)
        return result["status"]["token"]

    def _service_kubeconfig(self, namespace: str, service_account: str) -> Path:
        return write_token_kubeconfig(self.workdir / f"{namespace}_{service_account}.kubeconfig",
                                      self.server, self.ca_file, self._service_token(namespace, service_account),
                                      service_account, namespace)

    def _start_service(self, key: str, pod: dict) -> None:
        container = container_named(pod, SERVICE_CONTAINER) or {}
        command = list(container.get("command") or [])
        if command[:1] == [UPSTREAM_SERVER]:
            self._start_upstream_service(key, pod, command)
            return
        namespace = pod["metadata"]["namespace"]
        kubeconfig = self._service_kubeconfig(namespace, pod["spec"].get("serviceAccountName", "default"))
        argv = [self.python, "-m", "controller", *command[1:]]
        argv[argv.index("--host") + 1] = pod_ip(pod)
        argv += ["--kubeconfig", str(kubeconfig)]
        self.processes.start(key, "service", pod_ip(pod), argv, container=SERVICE_CONTAINER,
                             restart_policy=pod["spec"].get("restartPolicy", "Always"))

    def _start_upstream_service(self, key: str, pod: dict, command: list[str]) -> None:
        """Service mode upstream: ensemble-python's own ``ensemble-server start --kubernetes`` from the
        member virtualenv (hack/build-flux.sh), in a mount namespace of its own where its
        ServiceAccount's token, CA and namespace are where in-cluster clients read them."""
        namespace = pod["metadata"]["namespace"]
        server = fluxmembers.flux_build().venv / "bin" / UPSTREAM_SERVER
        if not server.exists():
            log.error("pod %s: service mode upstream needs %s (make flux-build); not started", key, server)
            return
        account = pod["spec"].get("serviceAccountName", "default")
        secrets = self.workdir / f"{namespace}_{account}.serviceaccount"
        secrets.mkdir(exist_ok=True)
        (secrets / "token").write_text(self._service_token(namespace, account))
        (secrets / "ca.crt").write_bytes(Path(self.ca_file).read_bytes())
        (secrets / "namespace").write_text(namespace)
        Path(SERVICE_ACCOUNT_DIR).mkdir(parents=True, exist_ok=True)   # the mount point, empty
        args = list(command)
        if "--host" in args:
            args[args.index("--host") + 1] = pod_ip(pod)
        url = urlsplit(self.server)
        script = self.workdir / f"{namespace}_{pod['metadata']['name']}.service.sh"
        script.write_text("\n".join([
            "set -e", f"mount --bind {shlex.quote(str(secrets))} {SERVICE_ACCOUNT_DIR}", "set +e",
            f"export KUBERNETES_SERVICE_HOST={url.hostname} KUBERNETES_SERVICE_PORT={url.port}",
            "exec " + " ".join(shlex.quote(word) for word in [str(server), *args[1:]])]) + "\n")
        argv = ["env", "-i", f"HOME={Path.home()}", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1",
                "unshare", "--mount", "--propagation", "private", "/bin/bash", str(script)]
        self.processes.start(key, "service", pod_ip(pod), argv, container=SERVICE_CONTAINER,
                             restart_policy=pod["spec"].get("restartPolicy", "Always"))

    # ---- the simulated member -----------------------------------------------------------
    def _service_address(self, namespace: str, host: str) -> str | None:
        """``<svc>.<ns>.svc`` -> ``podIP`` of a running pod that Service selects."""
        service = self.services.get(host.split(".", 1)[0], namespace)
        if service is None:
            return None
        selector = (service.get("spec") or {}).get("selector") or {}
        for pod in self.pods.list(namespace):
            labels = pod["metadata"].get("labels") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()) and is_running(pod) \
                    and pod_ip(pod) and self.processes.get(f"{namespace}/{pod['metadata']['name']}"):
                return pod_ip(pod)
        return None

    def _running_pods_of(self, namespace: str, minicluster: str) -> int:
        return sum(1 for p in self.pods.list(namespace)
                   if (p["metadata"].get("labels") or {}).get("job-name") == minicluster and is_running(p))

    def _start_member(self, key: str, pod: dict, status_container: dict) -> Result:
        """The commands come from the MiniCluster's spec: the Flux Operator (and its simulator)
        run them from scripts, so the pod's containers only say ``/bin/bash .../wait-0.sh``."""
        namespace = pod["metadata"]["namespace"]
        minicluster = (pod["metadata"].get("labels") or {}).get("job-name", "")
        mc = self.client.get_or_none(MINICLUSTERS, minicluster, namespace)
        if mc is None:
            return Result(requeue_after=RETRY_SECONDS)
        containers = (mc.get("spec") or {}).get("containers") or [{}]
        command = str(containers[0].get("command") or "")
        status_container = next((c for c in containers if c.get("name") == MEMBER_STATUS_CONTAINER),
                                status_container)
        host = flag_value(command, "--host")
        port = flag_value(command, "--port", "50051")
        address = self._service_address(namespace, host)
        if address is None:
            log.info("member %s waits for the ensemble service %s", key, host)
            return Result(requeue_after=RETRY_SECONDS)
        config_map = self.client.get_or_none(CONFIGMAPS, minicluster, namespace)
        if config_map is None:
            return Result(requeue_after=RETRY_SECONDS)
        ensemble_yaml = self.workdir / f"{namespace}_{minicluster}.ensemble.yaml"
        ensemble_yaml.write_text(config_map.get("data", {}).get("ensemble.yaml", ""))
        status_port = flag_value(str(status_container.get("command") or ""), "--port", "50052")
        nodes = max(1, self._running_pods_of(namespace, minicluster))
        argv = [self.python, str(SIMULATED_MEMBER),
                "--host", pod_ip(pod), "--port", status_port, "--ensemble-yaml", str(ensemble_yaml),
                "--nodes", str(nodes), "--service", f"{address}:{port}",
                "--name", minicluster, "--speed", str(self.speed)]
        # Never restarted in place, whatever the pod says (the Flux Operator's say OnFailure): a
        # new run would not know the resizes since. Its exit fails or completes the pods, and
        # the Job replaces a failed one (backoffLimit 100), which starts a new member.
        self.processes.start(key, "member", pod_ip(pod), argv, minicluster=minicluster, nodes=nodes)
        return Result()

    def _resize_if_needed(self, running: RunningProcess, namespace: str) -> Result:
        """Tell the simulated member how many of its pods run, as brokers joining would. A member
        started a moment ago may not listen yet when its other pods come up (a size-4 member,
        every time): that is no error, the count is sent again shortly."""
        nodes = self._running_pods_of(namespace, running.minicluster)
        if nodes == running.nodes or nodes == 0:
            return Result()
        port = flag_value(running.argv, "--port", "50052")  # the status port it was started with
        try:
            # A channel of its own subchannels: the shared pool may still hold the failed
            # attempt's connection in its reconnect backoff, failing this one at once.
            with grpc.insecure_channel(f"{running.pod_ip}:{port}",
                                       options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                stub = pb_grpc.EnsembleOperatorStub(channel)
                reply = stub.RequestAction(pb.ActionRequest(
                    member=MINICLUSTER_MEMBER, name=running.minicluster, action="resize",
                    payload=json.dumps({"nodes": nodes})), timeout=5)
        except grpc.RpcError as err:
            if err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            log.info("simulated member %s does not answer yet (%s): resize to %d nodes in %.0fs",
                     running.minicluster, err.code().name, nodes, RETRY_SECONDS)
            return Result(requeue_after=RETRY_SECONDS)
        log.info("resized simulated member %s to %d nodes: %s", running.minicluster, nodes, reply.payload)
        running.nodes = nodes
        return Result()

    def _mark_minicluster_exited(self, namespace: str, minicluster: str, code: int) -> None:
        for pod in self.pods.list(namespace):
            if (pod["metadata"].get("labels") or {}).get("job-name") != minicluster:
                continue
            try:
                self.client.patch(PODS, pod["metadata"]["name"],
                                  {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: str(code)}}},
                                  namespace=namespace)
            except errors.ApiError as err:
                if not errors.is_not_found(err):
                    log.warning("could not mark pod %s/%s exited: %s", namespace, pod["metadata"]["name"], err)


def setup(manager: Manager, *, server: str, ca_file: str, workdir: Path, speed: float = 10.0,
          backoff: BackoffPolicy = BackoffPolicy(), members: str | None = None) -> PodProcessRunner:
    """The runner as a controller of ``manager``; ``members`` picks the member runtime
    (None: ``fluxmembers.default_member_runtime()``, i.e. ``$ENSEMBLE_MEMBERS`` or what can run here)."""
    runner = PodProcessRunner(manager, server=server, ca_file=ca_file, workdir=workdir, speed=speed,
                              backoff=backoff, members=members or fluxmembers.default_member_runtime())
    (ControllerBuilder(manager).named("pod-process-runner").for_(PODS)
     .watches(PODS, runner.map_minicluster_pods)
     .with_workers(2).complete(runner))
    return runner
