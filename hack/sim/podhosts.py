"""A pod's /etc/hosts: the cluster DNS names its processes look up, as a file.

On a cluster, kubelet writes a pod's own name into its /etc/hosts and cluster DNS answers
for Services (``<svc>.<ns>.svc``) and for the pods behind a headless Service
(``<hostname>.<subdomain>.<ns>.svc.cluster.local``, which Flux brokers connect to). Pods
here have neither, so the real member runtime bind-mounts this file at /etc/hosts in the
pod's mount namespace; glibc, ZeroMQ and gRPC all read it. A Service answers with the IP
of one pod serving it (the runner's choice), as its ClusterIP would route there.
"""
from __future__ import annotations

from typing import Callable, Iterable

from sim.pods import pod_ip

CLUSTER_DOMAIN = "cluster.local"
LOCALHOST = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]


def pod_dns_name(pod: dict) -> str | None:
    """``<hostname>.<subdomain>.<ns>.svc.cluster.local``, the name a headless Service gives a pod."""
    spec = pod.get("spec") or {}
    if not spec.get("hostname") or not spec.get("subdomain"):
        return None
    return f"{spec['hostname']}.{spec['subdomain']}.{pod['metadata']['namespace']}.svc.{CLUSTER_DOMAIN}"


def service_names(name: str, namespace: str) -> list[str]:
    """Every spelling a pod in ``namespace`` may use (its resolv.conf search list would expand them)."""
    return [f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}", f"{name}.{namespace}.svc", f"{name}.{namespace}", name]


def selects(service: dict, pod: dict) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def hosts_file(pod: dict, pods: Iterable[dict], services: Iterable[dict],
               serving: Callable[[dict], bool]) -> str:
    """The /etc/hosts of ``pod``, given the running pods and the Services of its namespace.

    ``serving(pod)`` says whether a pod's process runs: a Service name is written only once a
    pod behind it serves, and a headless Service's pod names for every running pod it selects.
    """
    lines = list(LOCALHOST)
    own = pod_dns_name(pod)
    hostname = (pod.get("spec") or {}).get("hostname") or pod["metadata"]["name"]
    lines.append("\t".join([pod_ip(pod), " ".join(n for n in (own, hostname) if n)]))
    running = [p for p in pods if pod_ip(p) and p["metadata"]["name"] != pod["metadata"]["name"]]
    for service in sorted(services, key=lambda s: s["metadata"]["name"]):
        name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
        headless = (service.get("spec") or {}).get("clusterIP") == "None"
        behind = sorted((p for p in running if selects(service, p)), key=lambda p: p["metadata"]["name"])
        if headless:
            for member in behind:
                dns = pod_dns_name(member)
                if dns and (member.get("spec") or {}).get("subdomain") == name:
                    lines.append(f"{pod_ip(member)}\t{dns}")
            continue
        target = next((p for p in behind if serving(p)), None)
        if target is not None:
            lines.append(f"{pod_ip(target)}\t{' '.join(service_names(name, namespace))}")
    return "\n".join(lines) + "\n"
