"""The simulated container runtime's pod network: a pod process connects from its own pod IP."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from controller.clock import RealClock
from controller.proto import ensemble_service_pb2 as pb2
from controller.proto import ensemble_service_pb2_grpc as pb2_grpc
from sim.podnetwork import PodNetwork, pod_network
from sim.podprocesses import PodProcesses, RunningProcess

ROOT = Path(__file__).resolve().parents[2]
POD_IP = "127.64.250.9"
KEY = "ns/pod-0"


class NoEvents:
    def exited(self, key: str, running: RunningProcess, returncode: int, restart_in: float | None) -> None:
        pass

    def restarted(self, key: str, running: RunningProcess) -> None:
        pass


@pytest.fixture(scope="module")
def network() -> PodNetwork:
    return pod_network()


class Listener:
    """A TCP server on 127.0.0.1 that records the source address of each connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sources: list[str] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        conn, source = self.sock.accept()
        self.sources.append(source[0])
        conn.close()

    def source(self) -> str:
        self.thread.join(30)
        self.sock.close()
        return self.sources[0]


def run_pod_process(tmp_path: Path, network: PodNetwork | None, code: str) -> None:
    processes = PodProcesses(tmp_path, NoEvents(), clock=RealClock(), network=network)
    try:
        running = processes.start(KEY, "service", POD_IP, [sys.executable, "-c", code])
        assert running is not None and running.proc.wait(30) == 0, (tmp_path / "ns_pod-0.log").read_text()
    finally:
        processes.stop_all()


def test_a_pod_process_connects_to_loopback_from_its_pod_ip(tmp_path: Path, network: PodNetwork) -> None:
    listener = Listener()
    run_pod_process(tmp_path, network, f"import socket; socket.create_connection(('127.0.0.1', {listener.port}))")
    assert listener.source() == POD_IP


def test_without_a_pod_network_the_kernel_picks_the_source(tmp_path: Path) -> None:
    listener = Listener()
    run_pod_process(tmp_path, None, f"import socket; socket.create_connection(('127.0.0.1', {listener.port}))")
    assert listener.source() == "127.0.0.1"


def test_a_socket_the_process_bound_itself_keeps_its_address(tmp_path: Path, network: PodNetwork) -> None:
    listener = Listener()
    run_pod_process(tmp_path, network, "import socket; s = socket.socket(); s.bind(('127.0.0.2', 0)); "
                                       f"s.connect(('127.0.0.1', {listener.port}))")
    assert listener.source() == "127.0.0.2"


class Peers(pb2_grpc.EnsembleOperatorServicer):
    def __init__(self) -> None:
        self.peers: list[str] = []

    def RequestStatus(self, request: pb2.StatusRequest, context: grpc.ServicerContext) -> pb2.Response:
        self.peers.append(context.peer())
        return pb2.Response(payload="{}")


@pytest.mark.parametrize("listen", ["127.0.0.1", "0.0.0.0", "[::]"])
def test_grpcio_dials_from_the_pod_ip_through_an_env_cleared_runtime(listen: str, network: PodNetwork) -> None:
    """grpcio's C core connects through libc (dual-stack sockets included); ``env -i`` with the
    network's assignments, as the real-member runtime starts its brokers, keeps it."""
    peers = Peers()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    pb2_grpc.add_EnsembleOperatorServicer_to_server(peers, server)
    port = server.add_insecure_port(f"{listen}:0")
    server.start()
    try:
        code = ("import grpc; from controller.proto import ensemble_service_pb2 as p, ensemble_service_pb2_grpc as g; "
                f"g.EnsembleOperatorStub(grpc.insecure_channel('127.0.0.1:{port}'))"
                ".RequestStatus(p.StatusRequest(), timeout=20)")
        subprocess.run(["env", "-i", f"PYTHONPATH={ROOT}", *network.assignments(POD_IP), sys.executable,
                        "-c", code], check=True, timeout=60)
    finally:
        server.stop(0)
    assert peers.peers and all(peer.startswith(f"ipv4:{POD_IP}:") for peer in peers.peers), peers.peers
