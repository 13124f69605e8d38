"""What the pod process runner reads from a pod object, shared by its runtimes."""
from __future__ import annotations


def pod_ip(pod: dict) -> str:
    return (pod.get("status") or {}).get("podIP") or ""


def is_running(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")


def container_named(pod: dict, name: str) -> dict | None:
    return next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name), None)


def job_name(pod: dict) -> str:
    """The Job's name, which the Flux Operator gives its MiniCluster's name."""
    return (pod["metadata"].get("labels") or {}).get("job-name", "")


def flag_value(command: list[str] | str, flag: str, default: str = "") -> str:
    words = command.split() if isinstance(command, str) else list(command)
    return words[words.index(flag) + 1] if flag in words[:-1] else default
