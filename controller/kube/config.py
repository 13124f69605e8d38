"""Where the API server is and how to authenticate, loaded by the ``kubernetes`` package.

The ``kubernetes`` package only parses kubeconfig / in-cluster files here (it knows
every auth flavour: client certs, exec plugins, embedded data); the requests are ours.
Credentials can be re-read, because projected ServiceAccount tokens rotate and exec
plugin tokens expire.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Callable

import yaml

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config.incluster_config import (
    SERVICE_CERT_FILENAME,
    SERVICE_TOKEN_FILENAME,
    InClusterConfigLoader,
)

from controller.clock import Clock, RealClock
from controller.kube.errors import KubeError

log = logging.getLogger(__name__)

# How often a projected token file is checked for rotation (kubelet rotates well before expiry).
TOKEN_RECHECK_SECONDS = 60.0


@dataclass(frozen=True)
class Endpoint:
    """TLS settings for the API server; fixed for the life of a client."""

    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    tls_server_name: str | None = None


class TokenSource:
    """A bearer token (or none), re-readable on demand."""

    def token(self) -> str | None:
        return None

    def refresh(self) -> None:
        """Called after a 401: fetch a fresh token if the source can."""


@dataclass
class StaticToken(TokenSource):
    value: str | None

    def token(self) -> str | None:
        return self.value


class ReloadingToken(TokenSource):
    """A token from a loader that is re-run after a 401 (exec plugins, edited kubeconfig)."""

    def __init__(self, value: str | None, loader: Callable[[], str | None]) -> None:
        self._value = value
        self._loader = loader

    def token(self) -> str | None:
        return self._value

    def refresh(self) -> None:
        self._value = self._loader()


class TokenFile(TokenSource):
    """A projected ServiceAccount token: re-read when the file changes, or after a 401."""

    def __init__(self, path: str, clock: Clock | None = None,
                 recheck_seconds: float = TOKEN_RECHECK_SECONDS) -> None:
        self._path = path
        self._clock = clock or RealClock()
        self._recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._mtime = -1.0
        self._value = ""
        self._checked_at = 0.0
        self._read()

    def _read(self) -> None:
        try:
            mtime = os.stat(self._path).st_mtime
            if mtime != self._mtime:
                with open(self._path, encoding="utf-8") as handle:
                    self._value = handle.read().strip()
                self._mtime = mtime
        except OSError as err:
            raise KubeError(f"cannot read ServiceAccount token {self._path}: {err.strerror}") from err
        self._checked_at = self._clock.now()

    def token(self) -> str | None:
        with self._lock:
            if self._clock.now() - self._checked_at >= self._recheck_seconds:
                self._read()
            return self._value

    def refresh(self) -> None:
        with self._lock:
            self._mtime = -1.0
            self._read()


def _bearer(configuration: k8s_client.Configuration) -> str | None:
    header = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get(
        "BearerToken")
    if not header:
        return None
    return header.split(" ", 1)[1] if header.lower().startswith("bearer ") else header


def _endpoint(configuration: k8s_client.Configuration) -> Endpoint:
    return Endpoint(
        server=configuration.host.rstrip("/"),
        ca_file=configuration.ssl_ca_cert or None,
        cert_file=configuration.cert_file or None,
        key_file=configuration.key_file or None,
        verify=bool(configuration.verify_ssl),
        tls_server_name=getattr(configuration, "tls_server_name", None) or None,
    )


def _load_kubeconfig_configuration(path: str | None, context: str | None) -> k8s_client.Configuration:
    configuration = k8s_client.Configuration()
    shown = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        k8s_config.load_kube_config(config_file=path, context=context,
                                    client_configuration=configuration, persist_config=False)
    except (OSError, yaml.YAMLError, k8s_config.ConfigException, ValueError, TypeError,
            KeyError, AttributeError) as err:
        raise KubeError(f"cannot load kubeconfig {shown}: {err}") from err
    if not configuration.host:
        raise KubeError(f"kubeconfig {shown}: the cluster has no server address")
    return configuration


def from_kubeconfig(path: str | None = None, context: str | None = None) -> tuple[Endpoint, TokenSource]:
    """Endpoint and token of a kubeconfig context; the token is re-loaded after a 401."""
    configuration = _load_kubeconfig_configuration(path, context)

    def reload_token() -> str | None:
        return _bearer(_load_kubeconfig_configuration(path, context))

    return _endpoint(configuration), ReloadingToken(_bearer(configuration), reload_token)


def in_cluster(token_path: str = SERVICE_TOKEN_FILENAME, ca_path: str = SERVICE_CERT_FILENAME,
               environ: dict[str, str] | None = None,
               clock: Clock | None = None) -> tuple[Endpoint, TokenSource]:
    """Endpoint and rotating token of the pod's ServiceAccount."""
    configuration = k8s_client.Configuration()
    try:
        InClusterConfigLoader(token_filename=token_path, cert_filename=ca_path,
                              try_refresh_token=False,
                              environ=os.environ if environ is None else environ
                              ).load_and_set(configuration)
    except (OSError, k8s_config.ConfigException) as err:
        raise KubeError(f"cannot load in-cluster config (token {token_path}, CA {ca_path}): {err}") from err
    return _endpoint(configuration), TokenFile(token_path, clock)


def context_namespace(path: str | None = None, context: str | None = None) -> str | None:
    """The namespace a kubeconfig context names (kubectl's default for ``-n``), if it names one."""
    shown = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        contexts, active = k8s_config.list_kube_config_contexts(config_file=path)
    except (OSError, yaml.YAMLError, k8s_config.ConfigException, ValueError, TypeError, KeyError) as err:
        raise KubeError(f"cannot load kubeconfig {shown}: {err}") from err
    chosen = next((c for c in contexts or [] if c.get("name") == context), None) if context else active
    if context and chosen is None:
        raise KubeError(f"kubeconfig {shown}: no context named {context!r}")
    return ((chosen or {}).get("context") or {}).get("namespace") or None


def default_kubeconfig_exists(explicit: str | None) -> bool:
    """True when a kubeconfig should be used rather than in-cluster config."""
    if explicit or os.environ.get("KUBECONFIG"):
        return True
    return os.path.exists(os.path.expanduser("~/.kube/config"))
