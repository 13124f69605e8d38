#!/usr/bin/env python3
"""A real, local Kubernetes control plane for tests, benchmarks and the demo.

etcd + kube-apiserver (and, on request, kube-controller-manager and kube-scheduler)
built from their Go modules by ``hack/build-k8s.sh``, listening on 127.0.0.1 only,
with their own CA, serving certificates, an admin identity, ServiceAccount token
signing and RBAC: what envtest does for Go operators, without Docker.

Used three ways:
- ``with LocalCluster.start() as cluster:`` (pytest session fixture, benchmarks);
- ``python hack/localcluster.py up|down|status`` (``make cluster-up`` / ``cluster-down``),
  which keeps the cluster running detached and records it in a state directory;
- ``python hack/localcluster.py env`` prints the kubeconfig path of a running cluster.

Processes started by a fixture die with the Python process that started them
(PR_SET_PDEATHSIG, through setpriv), so even a crashed test run leaves no server behind.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from credentials import CredentialsError, make_pki, write_kubeconfig

HACK_DIR = Path(__file__).resolve().parent
K8S_VERSION = os.environ.get("K8S_VERSION", "v1.37.2")
CACHE_ROOT = Path(os.environ.get("ENSEMBLE_CACHE")
                  or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ensemble-operator")
DEFAULT_BIN_DIR = CACHE_ROOT / "k8s" / K8S_VERSION / "bin"
STATE_DIR = Path(os.environ.get("ENSEMBLE_CLUSTER_STATE", CACHE_ROOT / "cluster"))
SERVICE_CIDR = "10.96.0.0/16"
# Pod addresses handed out by kwok: loopback, so a simulated pod can listen on its own IP.
# Each running cluster takes one 127.<n>.0.0/16 (n in 64..127, the first free one: 127.64.0.0/16
# when it runs alone), so concurrent runs never hand out the same pod IP: their simulated pods
# all listen on the same ports, and gRPC servers bind with SO_REUSEPORT, so a shared IP would
# silently split one run's connections between both runs' processes.
POD_CIDR_BLOCKS = range(64, 128)
LOCK_DIR = Path(tempfile.gettempdir())
KWOK_STAGES = HACK_DIR / "kwok" / "stages.yaml"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
# Controllers the operator's tests rely on: garbage collection of owned objects,
# Deployments, Jobs, ServiceAccounts and their tokens, namespace deletion.
CONTROLLERS = ",".join([
    "garbage-collector-controller", "deployment-controller", "replicaset-controller",
    "job-controller", "serviceaccount-controller", "serviceaccount-token-controller",
    "namespace-controller", "pod-garbage-collector-controller",
])


class ClusterError(RuntimeError):
    """The local control plane could not be built, started or reached; the message names the fix."""


def reserve_pod_cidr() -> tuple[str, int]:
    """A pod CIDR no other running cluster holds, and the fd of its lock file.

    The lock (flock) lasts as long as any process holds that fd open: the cluster passes
    it to kwok, so a detached cluster keeps its CIDR after the command that started it.
    """
    for n in POD_CIDR_BLOCKS:
        try:
            fd = os.open(LOCK_DIR / f"ensemble-k8s-podcidr-127.{n}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:  # another user's lock file
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return f"127.{n}.0.0/16", fd
    raise ClusterError(f"no free pod CIDR: {len(POD_CIDR_BLOCKS)} local clusters with kwok are running; "
                       "stop some (make cluster-down, or end other test runs)")


def log(msg: str) -> None:
    print(f"[localcluster {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# Where free_port() looks first: below the kernel's ephemeral range, which every outgoing
# connection draws from. A port the kernel hands out from that range (bind to port 0) is free
# only until the next connect() takes it: a server started a moment later then fails with
# "Address already in use" (seen in CI: the operator's health port, taken while 1,500 tests'
# clients and pods connected around it).
PORT_FLOOR = 10000
_port_rng = random.Random()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(rng: random.Random = _port_rng) -> int:
    """A free TCP port on 127.0.0.1, released for a server to bind: one no listener holds, drawn
    at random below the ephemeral range (see PORT_FLOOR), else one the kernel picks."""
    ceiling = _ephemeral_floor()
    for _ in range(50 if ceiling > PORT_FLOOR + 1000 else 0):
        port = rng.randrange(PORT_FLOOR, ceiling)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    except OSError as err:
        raise ClusterError(f"no free TCP port on 127.0.0.1: {err}; stop other servers or free ports") from err


def ensure_binaries(bin_dir: Path = DEFAULT_BIN_DIR, build: bool = True) -> Path:
    """Return the directory with the control-plane binaries, building them when missing."""
    missing = [b for b in BINARIES if not (bin_dir / b).exists()]
    if not missing:
        return bin_dir
    if not build:
        raise ClusterError(
            f"control-plane binaries missing in {bin_dir}: {', '.join(missing)}. "
            "Run `make cluster-build` (or hack/build-k8s.sh) first.")
    log(f"building missing binaries ({', '.join(missing)}); the first build takes 7-10 minutes")
    env = dict(os.environ, K8S_VERSION=K8S_VERSION)
    for script in ("build-k8s.sh", "build-kwok.sh"):
        proc = subprocess.run(["bash", str(HACK_DIR / script)], env=env, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise ClusterError(f"hack/{script} failed (its output above names the cause)")
    return bin_dir


DATA_PREFIX = "ensemble-k8s-"


def sweep_stale_data_dirs() -> None:
    """Remove data directories left by runs that were killed (their owner process is gone)."""
    for path in Path(tempfile.gettempdir()).glob(f"{DATA_PREFIX}*"):
        owner = path / "owner.pid"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)


SETPRIV = shutil.which("setpriv")


def dying_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel kills it when the thread that started it dies
    (PR_SET_PDEATHSIG, set by util-linux's setpriv before it execs ``argv``).

    Not a preexec_fn doing the prctl: Python code between fork and exec runs the
    os.register_at_fork hooks of grpcio (which the test process and the pod runner have
    loaded) in the child, and their restarted poller now and then aborts the child before
    it execs (SIGABRT, "epoll_wait error: Bad file descriptor"). Without setpriv the
    process still stops with the normal teardown, just not when its starter is SIGKILLed.
    A starter killed in the millisecond before setpriv sets the signal leaves it behind too.
    """
    return [SETPRIV, "--pdeathsig", "KILL", "--", *argv] if SETPRIV else list(argv)


@dataclass
class LocalCluster:
    """A running control plane; start it with :meth:`start` (a context manager)."""

    bin_dir: Path
    data_dir: Path
    detached: bool = False
    etcd_fsync: bool = False
    etcd_port: int = 0
    etcd_peer_port: int = 0
    apiserver_port: int = 0
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    pod_cidr: str = ""
    _pod_cidr_lock: int | None = None

    # ---- addresses and identities -------------------------------------------------
    @property
    def pki(self) -> Path:
        return self.data_dir / "pki"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def etcd_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def kubeconfig(self) -> str:
        return str(self.data_dir / "kubeconfig")

    @property
    def ca_file(self) -> str:
        return str(self.pki / "ca.crt")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        proc = subprocess.run([str(self.bin_dir / "kubectl"), "--kubeconfig", self.kubeconfig, *args],
                              input=input, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def admin_client(self):  # -> controller.kube.client.KubeClient
        from controller.kube.client import KubeClient
        return KubeClient.from_kubeconfig(self.kubeconfig)

    # ---- lifecycle ----------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def start(cls, *, controller_manager: bool = False, scheduler: bool = False, kwok: bool = False,
              bin_dir: Path | None = None, etcd_fsync: bool = False) -> Iterator["LocalCluster"]:
        cluster = cls.launch(controller_manager=controller_manager, scheduler=scheduler, kwok=kwok,
                             bin_dir=bin_dir, etcd_fsync=etcd_fsync)
        try:
            yield cluster
        finally:
            cluster.stop()

    @classmethod
    def launch(cls, *, controller_manager: bool = False, scheduler: bool = False, kwok: bool = False,
               bin_dir: Path | None = None, detached: bool = False,
               data_dir: Path | None = None, etcd_fsync: bool = False) -> "LocalCluster":
        """Start etcd and kube-apiserver (and optionally more). etcd skips fsync unless
        ``etcd_fsync``: tests want speed, while a benchmark of write paths wants each write
        to cost what it costs on a real cluster, whose etcd always syncs its log."""
        bins = ensure_binaries(bin_dir or DEFAULT_BIN_DIR, build=detached)
        sweep_stale_data_dirs()
        data = data_dir or Path(tempfile.mkdtemp(prefix=DATA_PREFIX))
        data.mkdir(parents=True, exist_ok=True)
        (data / "owner.pid").write_text(str(os.getpid()))
        cluster = cls(bin_dir=bins, data_dir=data, detached=detached, etcd_fsync=etcd_fsync)
        try:
            t0 = time.monotonic()
            make_pki(cluster.pki)
            cluster._start_etcd()
            cluster._start_apiserver()
            write_kubeconfig(Path(cluster.kubeconfig), cluster.server, cluster.pki)
            if controller_manager:
                cluster.start_controller_manager()
            if scheduler:
                cluster.start_scheduler()
            if kwok:
                cluster.start_kwok()
            log(f"control plane ready at {cluster.server} in {time.monotonic() - t0:.1f}s "
                f"(kubeconfig {cluster.kubeconfig})")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _spawn(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        logfile = open(self.data_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv if self.detached else dying_with_parent(argv), stdout=logfile,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, process_group=0,
                                close_fds=True, pass_fds=pass_fds)
        logfile.close()
        self.procs[name] = proc
        self.pids[name] = proc.pid

    def _log_tail(self, name: str, lines: int = 15) -> str:
        return log_tail(self.data_dir / f"{name}.log", lines)

    def _wait_until(self, name: str, check, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise ClusterError(f"{name} exited with code {proc.returncode}:\n{self._log_tail(name)}")
            if check():
                return
            time.sleep(0.1)
        raise ClusterError(f"{name} not ready after {timeout:.0f}s:\n{self._log_tail(name)}")

    def _start_etcd(self, attempts: int = 3) -> None:
        """etcd on two ports free_port() picked. Between that pick and etcd's bind another server
        may take one (seen with concurrent control planes): then etcd starts again on new ports."""
        for attempt in range(1, attempts + 1):
            try:
                self._start_etcd_once()
                return
            except ClusterError as err:
                if "address already in use" not in str(err) or attempt == attempts:
                    raise
                log(f"etcd: a port was taken before etcd bound it; starting again ({attempt}/{attempts})")
                self.procs.pop("etcd", None)
                self.pids.pop("etcd", None)
                shutil.rmtree(self.data_dir / "etcd", ignore_errors=True)

    def _start_etcd_once(self) -> None:
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn("etcd", [
            str(self.bin_dir / "etcd"), "--name", "local", "--data-dir", str(self.data_dir / "etcd"),
            "--listen-client-urls", self.etcd_endpoint, "--advertise-client-urls", self.etcd_endpoint,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"local={peer}", "--log-level", "warn",
            "--quota-backend-bytes", str(4 * 1024**3),
            *([] if self.etcd_fsync else ["--unsafe-no-fsync"]),
        ])
        self._wait_until("etcd", lambda: _http_ok(f"{self.etcd_endpoint}/health"), 30)

    def _start_apiserver(self) -> None:
        if not self.apiserver_port:
            self.apiserver_port = free_port()
        pki = self.pki
        self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_endpoint}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--tls-cert-file={pki / 'server.crt'}", f"--tls-private-key-file={pki / 'server.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # The kubernetes Service endpoint cannot be a loopback address; nothing here needs it.
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            f"--cert-dir={self.data_dir / 'apiserver-certs'}",
            "--v=1",
        ])
        self._wait_until("kube-apiserver", self._apiserver_ready, 90)

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def _apiserver_ready(self) -> bool:
        return _http_ok(f"{self.server}/readyz", self._tls_context())

    def readyz(self) -> str:
        with urllib.request.urlopen(f"{self.server}/readyz", context=self._tls_context(), timeout=5) as r:
            return r.read().decode()

    def start_controller_manager(self) -> None:
        """Garbage collection, Deployments, Jobs, ServiceAccount tokens, namespace deletion."""
        if "kube-controller-manager" in self.procs:
            return
        pki = self.pki
        port = free_port()
        self._spawn("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            "--leader-elect=false",
            f"--controllers={CONTROLLERS}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--concurrent-gc-syncs=5",
            f"--cert-dir={self.data_dir / 'kcm-certs'}",
            "--v=1",
        ])
        self._wait_until("kube-controller-manager", lambda: _healthz_ok(port), 60)

    def start_scheduler(self) -> None:
        if "kube-scheduler" in self.procs:
            return
        port = free_port()
        self._spawn("kube-scheduler", [
            str(self.bin_dir / "kube-scheduler"),
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            "--leader-elect=false", f"--cert-dir={self.data_dir / 'scheduler-certs'}", "--v=1",
        ])
        self._wait_until("kube-scheduler", lambda: _healthz_ok(port), 60)

    def start_kwok(self, nodes: int = 4) -> None:
        """Simulated nodes (kwok) so pods get scheduled, run and get a 127.64.x.y address.

        Needs kube-scheduler (pods must be bound to a node first); starts it when missing.
        """
        if "kwok" in self.procs:
            return
        kwok = self.bin_dir / "kwok"
        if not kwok.exists():
            raise ClusterError(f"{kwok} is missing: run hack/build-kwok.sh (make cluster-build)")
        self.start_scheduler()
        if self._pod_cidr_lock is None:
            self.pod_cidr, self._pod_cidr_lock = reserve_pod_cidr()
        self._spawn("kwok", [
            str(kwok), f"--kubeconfig={self.kubeconfig}", f"--config={KWOK_STAGES}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={self.pod_cidr}", "--node-ip=127.0.0.1",
            f"--server-address=127.0.0.1:{free_port()}",
        ], pass_fds=(self._pod_cidr_lock,))
        for i in range(nodes):
            node = {"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": f"kwok-node-{i}", "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"type": "kwok", "kubernetes.io/hostname": f"kwok-node-{i}"}}}
            self.kubectl("apply", "-f", "-", input=json.dumps(node))
        self._wait_until("kwok", lambda: self._ready_nodes() >= nodes, 60)
        # The API server taints new nodes not-ready; the node lifecycle controller would lift
        # it, but it also evicts pods of nodes without kubelet heartbeats, so we lift it here.
        for i in range(nodes):
            self.kubectl("taint", "nodes", f"kwok-node-{i}", "node.kubernetes.io/not-ready:NoSchedule-",
                         check=False)

    def _ready_nodes(self) -> int:
        out = self.kubectl("get", "nodes", "-o", "json", check=False)
        try:
            items = json.loads(out)["items"]
        except (ValueError, KeyError):
            return 0
        return sum(1 for n in items for c in (n.get("status") or {}).get("conditions") or []
                   if c.get("type") == "Ready" and c.get("status") == "True")

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver and start it again on the same port (clients see a disconnect)."""
        stop_process(self.procs.pop("kube-apiserver"))
        self._start_apiserver()

    def etcd_revision(self) -> int:
        body = _post_json(f"{self.etcd_endpoint}/v3/kv/range", {"key": base64.b64encode(b"/").decode()})
        return int(body["header"]["revision"])

    def compact_etcd(self) -> int:
        """Compact etcd up to its current revision; watches from older versions then get 410 Gone."""
        revision = self.etcd_revision()
        _post_json(f"{self.etcd_endpoint}/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def stop(self) -> None:
        """Stop every process (reverse start order) and delete the data directory."""
        for name in reversed(list(self.procs)):
            stop_process(self.procs.pop(name))
            # Reaped by _terminate: its pid may already name an unrelated process.
            self.pids.pop(name, None)
        for name, pid in list(self.pids.items()):
            _kill_pid(pid)
            self.pids.pop(name)
        if self._pod_cidr_lock is not None:
            os.close(self._pod_cidr_lock)
            self._pod_cidr_lock = None
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # ---- detached mode (make cluster-up / cluster-down) -------------------------------
    def save_state(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "state.json").write_text(json.dumps({
            "data_dir": str(self.data_dir), "bin_dir": str(self.bin_dir), "pids": self.pids,
            "server": self.server, "kubeconfig": self.kubeconfig, "etcd_port": self.etcd_port,
            "apiserver_port": self.apiserver_port, "pod_cidr": self.pod_cidr}, indent=2))


def stop_process(proc: subprocess.Popen, timeout: float = 10, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to a running ``proc``; one still running after ``timeout`` is killed, so a
    hung shutdown leaves nothing behind nor holds up the teardown after it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def log_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a process log, "" while it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _kill_pid(pid: int, timeout: float = 10) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _healthz_ok(port: int) -> bool:
    """kube-controller-manager's or kube-scheduler's /healthz: served anonymously (an
    always-allowed path) over TLS with the self-signed certificate of its --cert-dir."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return _http_ok(f"https://127.0.0.1:{port}/healthz", context)


def _post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


# ---- command line ---------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    state = STATE_DIR / "state.json"
    if state.exists():
        info = json.loads(state.read_text())
        if all(_alive(pid) for pid in info["pids"].values()):
            log("a local cluster is already running")
            print(info["kubeconfig"])
            return 0
        cmd_down(args)
    data_dir = STATE_DIR / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    cluster = LocalCluster.launch(controller_manager=not args.no_controller_manager,
                                  scheduler=args.scheduler or args.kwok, kwok=args.kwok,
                                  detached=True, data_dir=data_dir)
    cluster.save_state(STATE_DIR)
    print(cluster.kubeconfig)
    log(f"kubectl: {cluster.bin_dir / 'kubectl'} --kubeconfig {cluster.kubeconfig} get --raw /readyz")
    log("stop it with: make cluster-down")
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    state = STATE_DIR / "state.json"
    if not state.exists():
        log("no local cluster is running")
        return 0
    info = json.loads(state.read_text())
    for name in ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
        if name in info["pids"]:
            _kill_pid(info["pids"][name])
    shutil.rmtree(info["data_dir"], ignore_errors=True)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    log("local cluster stopped")
    return 0


def cmd_env(_: argparse.Namespace) -> int:
    state = STATE_DIR / "state.json"
    if not state.exists():
        print("no local cluster is running: make cluster-up", file=sys.stderr)
        return 1
    print(json.loads(state.read_text())["kubeconfig"])
    return 0


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's, after pid reuse, counts too:
    the sweep then keeps a directory rather than delete one that may be in use)."""
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a detached local control plane and print its kubeconfig")
    up.add_argument("--no-controller-manager", action="store_true")
    up.add_argument("--scheduler", action="store_true")
    up.add_argument("--kwok", action="store_true", help="simulated nodes (implies --scheduler)")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the detached control plane").set_defaults(func=cmd_down)
    sub.add_parser("env", help="print the kubeconfig of the running control plane").set_defaults(func=cmd_env)
    sub.add_parser("build", help="build missing binaries").set_defaults(
        func=lambda a: print(ensure_binaries()) or 0)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ClusterError, CredentialsError) as err:
        print(f"localcluster: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
