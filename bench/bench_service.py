#!/usr/bin/env python3
"""Benchmark: grow/shrink actions/s through the ensemble service vs raw PATCH/s.

Three contenders against the same local API server (hack/localcluster.py), with one and
with several concurrent clients, their batches interleaved so the machine's drift (etcd
fsyncs, other load) hits all alike:
- raw: a plain client in this process PATCHes spec.size (the limit);
- relay: a bare grpcio server in its own process turning each RequestAction into that
  PATCH, with no checks: the floor of any grpcio service that writes once per request;
- service: our ensemble service in its own process, as deployed (caller identity from its
  pod informer, parse, owner check, bounds, resourceVersion guard, decision log, metrics;
  the rate limit raised out of the way). Each svc MiniCluster has a lead broker pod at
  127.0.0.1, this process's address, so the clients here are the members' lead brokers.
Every MiniCluster is created by one client (as the operator creates them) and patched
under another field manager (as the service, or a member's own client, would), so the
API server keeps the same managedFields for all three. Target: service/raw >= 0.8.
The whole comparison runs twice: etcd syncing every write (as on any real cluster) and
etcd without fsync (as the test suites run it). The gRPC hop costs the same in both, so
its share, and the ratio, depend on what a write costs.
Usage: bench/bench_service.py [--actions N] [--clients C] [--batch B] [--etcd MODE] [--profile FILE]
(--profile: the service's threads run under cProfile, stats saved to FILE for pstats.)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "hack")]

from localcluster import LocalCluster  # noqa: E402

from controller.kube.client import KubeClient  # noqa: E402
from controller.kube.resources import ENSEMBLES, JOBS, MINICLUSTERS, PODS  # noqa: E402
from controller.proto import ensemble_service_pb2 as pb2  # noqa: E402
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc  # noqa: E402
from controller.proto.wire import MINICLUSTER_MEMBER  # noqa: E402
from controller.reconcilers.desired.meta import ownership_labels  # noqa: E402

NAMESPACE = "bench"
ENSEMBLE = "bench"
TARGET_RATIO = 0.8
WORKERS = 10
SERVICE_PROCESS = """
import argparse, logging, sys
from controller.service import main
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
parser = argparse.ArgumentParser()
main.add_arguments(parser)
sys.exit(main.run(parser.parse_args(sys.argv[1:])))
"""
# The floor of any grpcio service that writes once per request: the same gRPC server (sync,
# same worker count) relaying each RequestAction to one unguarded PATCH, with no parsing,
# no owner check, no bounds, no resourceVersion, no logging or metrics.
RELAY_PROCESS = """
import sys
from concurrent import futures
import grpc
from controller.kube.client import KubeClient
from controller.kube.resources import MINICLUSTERS
from controller.proto import ensemble_service_pb2 as pb2, ensemble_service_pb2_grpc as pb2_grpc
kubeconfig, namespace, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
kube = KubeClient.load(kubeconfig)
class Relay(pb2_grpc.EnsembleOperatorServicer):
    def RequestAction(self, request, context):
        kube.patch(MINICLUSTERS, request.name, {"spec": {"size": 2 if request.action == "grow" else 1}},
                   namespace=namespace, field_manager="bench-relay")
        return pb2.Response(payload="{}", status=pb2.Response.SUCCESS)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
pb2_grpc.add_EnsembleOperatorServicer_to_server(Relay(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"gRPC server listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
server.wait_for_termination()
"""
# The same, with a cProfile per thread (gRPC workers start after the hook is set), merged on exit.
PROFILED_SERVICE_PROCESS = """
import argparse, cProfile, logging, pstats, sys, threading
from controller.service import main
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
profiles = []
def profile_this_thread(*_):
    profiles.append(cProfile.Profile())
    profiles[-1].enable()
threading.setprofile(profile_this_thread)
parser = argparse.ArgumentParser()
main.add_arguments(parser)
parser.add_argument("--profile-out", required=True)
args = parser.parse_args(sys.argv[1:])
code = main.run(args)
threading.setprofile(None)
stats = pstats.Stats()
for profile in profiles:
    profile.create_stats()
    if profile.stats:
        stats.add(profile)
stats.dump_stats(args.profile_out)
sys.exit(code)
"""


def install_crds(cluster: LocalCluster, kube: KubeClient, timeout: float = 60) -> None:
    for path in (ROOT / "hack" / "crds" / "minicluster.yaml", ROOT / "manifests" / "crd.yaml"):
        cluster.kubectl("apply", "--server-side", "-f", str(path))
    deadline = time.monotonic() + timeout
    while True:
        try:
            kube.list(MINICLUSTERS, NAMESPACE)
            kube.list(ENSEMBLES, NAMESPACE)
            return
        except Exception:  # noqa: BLE001 - not served yet; the deadline bounds the wait
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def setup(cluster: LocalCluster, kube: KubeClient, members: int) -> None:
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl("create", "serviceaccount", "default", "-n", NAMESPACE)  # pods need it; no controller makes it here
    install_crds(cluster, kube)
    member = {"minicluster": {"spec": {"size": 1, "containers": [{"image": "busybox"}]}},
              "ensemble": "jobs:\n- name: a\n  command: sleep 1\n"}
    owner = kube.create(ENSEMBLES, {"apiVersion": ENSEMBLES.api_version, "kind": "Ensemble",
                                    "metadata": {"name": ENSEMBLE, "namespace": NAMESPACE},
                                    "spec": {"members": [member]}}, NAMESPACE)
    ref = {"apiVersion": owner["apiVersion"], "kind": "Ensemble", "name": ENSEMBLE,
           "uid": owner["metadata"]["uid"], "controller": True}
    for name in [f"{prefix}-{i}" for prefix in ("svc", "raw", "relay") for i in range(members)]:
        kube.create(MINICLUSTERS, {"apiVersion": MINICLUSTERS.api_version, "kind": "MiniCluster",
                                   "metadata": {"name": name, "namespace": NAMESPACE, "ownerReferences": [ref]},
                                   "spec": {"size": 1, "minSize": 1, "maxSize": 2,
                                            "containers": [{"image": "busybox"}]}}, NAMESPACE)
    for i in range(members):
        lead_broker_pod(kube, owner, f"svc-{i}", "127.0.0.1")


def lead_broker_pod(kube: KubeClient, ensemble: dict, minicluster: str, ip: str) -> None:
    """The Job of ``minicluster`` as the Flux Operator makes it (controlled by the MiniCluster, no
    labels of its own: the API server copies its pods'; managed by no controller: no pods of its
    own) and its index-0 pod, Running at ``ip``: who the service lets resize that MiniCluster."""
    owner = kube.get(MINICLUSTERS, minicluster, NAMESPACE)
    job = kube.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": minicluster, "ownerReferences": [{"apiVersion": MINICLUSTERS.api_version, "kind": "MiniCluster",
                                                  "name": minicluster, "uid": owner["metadata"]["uid"],
                                                  "controller": True}]},
        "spec": {"managedBy": "ensemble.flux-framework.org/bench", "template": {
            "metadata": {"labels": ownership_labels(ensemble, 0)},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "flux", "image": "busybox"}]}}}},
        NAMESPACE)
    name = f"{minicluster}-0-lead"
    kube.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "labels": {"job-name": minicluster, "batch.kubernetes.io/job-completion-index": "0",
                                 **ownership_labels(ensemble, 0)},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": minicluster,
                             "uid": job["metadata"]["uid"], "controller": True}]},
        "spec": {"containers": [{"name": "flux", "image": "busybox"}]}}, NAMESPACE)
    kube.patch(PODS, name, {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}},
               namespace=NAMESPACE, subresource="status")


def start_server(argv: list[str]) -> tuple[subprocess.Popen, str]:
    """Start a gRPC server process; return it and the address it printed once listening."""
    child = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    stderr = child.stderr
    assert stderr is not None, "stderr=PIPE gives the child a stderr stream"
    while True:
        line = stderr.readline()
        if not line:
            raise RuntimeError(f"{argv[:2]} exited ({child.wait()}) before listening")
        if line.startswith("gRPC server listening on "):
            # keep draining: the service logs decisions, and a full pipe would stall it
            threading.Thread(target=stderr.read, daemon=True).start()
            return child, line.rsplit(" ", 1)[-1].strip()


def start_service(cluster: LocalCluster, profile: str | None = None) -> tuple[subprocess.Popen, str]:
    code, extra = (PROFILED_SERVICE_PROCESS, ["--profile-out", profile]) if profile else (SERVICE_PROCESS, [])
    return start_server(["-c", code, "--host", "127.0.0.1", "--port", "0", "--workers", str(WORKERS),
                         "--ensemble", ENSEMBLE, "--namespace", NAMESPACE, "--kubeconfig", cluster.kubeconfig,
                         "--metrics-port", "0", "--rate-limit-qps", "1e9", "--rate-limit-burst", "1000000000",
                         *extra])


def start_relay(cluster: LocalCluster) -> tuple[subprocess.Popen, str]:
    return start_server(["-c", RELAY_PROCESS, cluster.kubeconfig, NAMESPACE, str(WORKERS)])


def timed_batch(pool: ThreadPoolExecutor, clients: int, per_client: int, offset: int, one) -> float:
    """Seconds for ``clients`` concurrent loops of ``per_client`` calls of ``one(client, i)``."""
    started = time.perf_counter()
    list(pool.map(lambda c: [one(c, offset + i) for i in range(per_client)], range(clients)))
    return time.perf_counter() - started


def compare(clients: int, actions: int, batch: int, contenders: dict) -> dict[str, float]:
    """Actions/s of each contender, their batches interleaved so drift hits all alike."""
    per_client = max(2, batch // clients // 2 * 2)          # even: grow and shrink pair up
    seconds = dict.fromkeys(contenders, 0.0)
    done = 0
    with ThreadPoolExecutor(clients) as pool:
        for one in contenders.values():                      # warm connections
            timed_batch(pool, clients, per_client, 0, one)
        while done < actions:
            for name, one in contenders.items():
                seconds[name] += timed_batch(pool, clients, per_client, done, one)
            done += per_client * clients
    return {name: done / spent for name, spent in seconds.items()}


def summarize(rates: dict[str, float]) -> dict:
    raw, relay, service = rates["raw"], rates["relay"], rates["service"]
    return {"raw_patch_per_s": round(raw, 1), "relay_actions_per_s": round(relay, 1),
            "service_actions_per_s": round(service, 1),
            "ratio": round(service / raw, 3),
            "relay_ratio (floor of a gRPC hop)": round(relay / raw, 3),
            "service_vs_relay (our own cost)": round(service / relay, 3)}


def raw_patch(kube: KubeClient):
    def one(client: int, i: int) -> None:
        kube.patch(MINICLUSTERS, f"raw-{client}", {"spec": {"size": 2 - i % 2}}, namespace=NAMESPACE,
                   field_manager="bench-raw")
    return one


def grpc_action(stub: pb2_grpc.EnsembleOperatorStub, prefix: str):
    def one(client: int, i: int) -> None:
        action = "grow" if i % 2 == 0 else "shrink"
        response = stub.RequestAction(pb2.ActionRequest(member=MINICLUSTER_MEMBER, name=f"{prefix}-{client}",
                                                        action=action, payload="{}"), timeout=30)
        if response.status != pb2.Response.SUCCESS:
            raise RuntimeError(f"{action} {prefix}-{client}: {response.payload}")
    return one


ETCD_MODES = {
    "fsync": "etcd syncing each write, as every real cluster's etcd does",
    "no-fsync": "etcd with --unsafe-no-fsync, as the test suites run it (writes at their cheapest)",
}


def measure(etcd_mode: str, args: argparse.Namespace) -> dict[str, dict]:
    """All three contenders on a fresh control plane whose etcd syncs or not."""
    with LocalCluster.start(etcd_fsync=etcd_mode == "fsync") as cluster:
        kube = cluster.admin_client()
        setup(cluster, kube, args.clients)
        children: list[subprocess.Popen] = []
        try:
            service, service_address = start_service(cluster, args.profile and str(Path(args.profile).resolve()))
            children.append(service)
            relay, relay_address = start_relay(cluster)
            children.append(relay)
            with grpc.insecure_channel(service_address) as service_channel, \
                    grpc.insecure_channel(relay_address) as relay_channel:
                contenders = {"raw": raw_patch(kube),
                              "relay": grpc_action(pb2_grpc.EnsembleOperatorStub(relay_channel), "relay"),
                              "service": grpc_action(pb2_grpc.EnsembleOperatorStub(service_channel), "svc")}
                return {f"clients={clients}": {"actions": args.actions,
                                               **summarize(compare(clients, args.actions, args.batch, contenders))}
                        for clients in (1, args.clients)}
        finally:
            for child in children:
                child.terminate()
            for child in children:
                child.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1000, help="actions per measurement (default 1000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--batch", type=int, default=40, help="actions per alternating batch (default 40)")
    parser.add_argument("--etcd", choices=[*ETCD_MODES, "both"], default="both",
                        help="etcd syncing writes (as deployed), not (as tested), or both runs (default)")
    parser.add_argument("--profile", metavar="FILE",
                        help="profile the service (cProfile, every thread) into FILE; slows the service down")
    args = parser.parse_args()
    modes = list(ETCD_MODES) if args.etcd == "both" else [args.etcd]
    results = {f"etcd {mode}": {"control plane": ETCD_MODES[mode], **measure(mode, args)} for mode in modes}
    print(json.dumps({"bench": "service", "target_ratio": TARGET_RATIO, "results": results}, indent=2))
    # A missed target is a finding to report, not a crash: make bench runs on.
    for mode, cases in results.items():
        below = [case for case, result in cases.items()
                 if isinstance(result, dict) and result["ratio"] < TARGET_RATIO]
        print(f"{mode}: target {TARGET_RATIO} " + (f"MISSED for {', '.join(below)}" if below else "met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
