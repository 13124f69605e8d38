"""A real member pod's /etc/hosts: its own names, the Services that have a serving pod, and the pod
names of headless Services, as kubelet and cluster DNS would answer them."""
from __future__ import annotations

from sim.podhosts import hosts_file


def pod(name: str, ip: str, labels: dict | None = None, hostname: str | None = None,
        subdomain: str | None = None) -> dict:
    spec = {k: v for k, v in (("hostname", hostname), ("subdomain", subdomain)) if v}
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels or {}}, "spec": spec,
            "status": {"phase": "Running", "podIP": ip}}


def service(name: str, selector: dict, headless: bool = False) -> dict:
    spec: dict = {"selector": selector}
    if headless:
        spec["clusterIP"] = "None"
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec}


LEAD = pod("mc-0-abc", "127.64.0.5", {"app": "mc"}, hostname="mc-0", subdomain="ens")
WORKER = pod("mc-1-def", "127.64.0.6", {"app": "mc"}, hostname="mc-1", subdomain="ens")
GRPC = pod("ens-7f-xyz", "127.64.0.2", {"app": "ens-grpc"})


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_a_pod_knows_localhost_and_its_own_names() -> None:
    text = lines(hosts_file(WORKER, [LEAD, WORKER], [], serving=lambda p: True))
    assert text[0] == "127.0.0.1\tlocalhost"
    assert "127.64.0.6\tmc-1.ens.ns.svc.cluster.local mc-1" in text


def test_a_service_resolves_to_a_serving_pod_behind_it_in_every_spelling() -> None:
    text = lines(hosts_file(LEAD, [LEAD, GRPC], [service("ens-grpc", {"app": "ens-grpc"})], serving=lambda p: True))
    assert "127.64.0.2\tens-grpc.ns.svc.cluster.local ens-grpc.ns.svc ens-grpc.ns ens-grpc" in text


def test_a_service_without_a_serving_pod_is_not_resolved() -> None:
    text = hosts_file(LEAD, [LEAD, GRPC], [service("ens-grpc", {"app": "ens-grpc"})], serving=lambda p: False)
    assert "ens-grpc" not in text


def test_a_headless_service_names_each_pod_it_selects() -> None:
    """Rank 0's name is what the other brokers connect to (the broker config's default_connect)."""
    other = pod("x-0", "127.64.0.9", {"app": "mc"}, hostname="x-0", subdomain="elsewhere")
    text = lines(hosts_file(WORKER, [LEAD, WORKER, other], [service("ens", {"app": "mc"}, headless=True)],
                            serving=lambda p: False))
    assert "127.64.0.5\tmc-0.ens.ns.svc.cluster.local" in text
    assert not any("127.64.0.9" in line for line in text)


def test_pods_without_an_address_are_left_out() -> None:
    pending = pod("mc-2-ghi", "", {"app": "mc"}, hostname="mc-2", subdomain="ens")
    text = hosts_file(LEAD, [LEAD, pending], [service("ens", {"app": "mc"}, headless=True)], serving=lambda p: True)
    assert "mc-2" not in text
