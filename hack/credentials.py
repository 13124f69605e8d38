"""Credentials of the local control plane: its PKI and the kubeconfig files that use it.

openssl (Debian's) makes a CA, the kube-apiserver's serving certificate, an admin client
certificate (group system:masters) and the ServiceAccount token signing key. Kubeconfigs
are written as JSON (a YAML subset), one self-contained file each.
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path


class CredentialsError(RuntimeError):
    """openssl is missing or failed; the message says which step."""


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise CredentialsError("openssl is not installed: apt-get install openssl")
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CredentialsError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")


def make_pki(pki: Path) -> None:
    """A CA, the apiserver's serving certificate, an admin client cert, the SA signing key."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "30", "-subj", "/CN=ensemble-operator-local-ca", cwd=pki)
    (pki / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n")
    (pki / "client.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
    for name, subject, ext in (("server", "/CN=kube-apiserver", "server.ext"),
                               ("admin", "/O=system:masters/CN=admin", "client.ext")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=pki)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "30", "-extfile", ext, cwd=pki)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _b64file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    """An admin kubeconfig with the certificate data embedded (portable, one file)."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {
            "server": server, "certificate-authority-data": _b64file(pki / "ca.crt")}}],
        "users": [{"name": "admin", "user": {
            "client-certificate-data": _b64file(pki / "admin.crt"),
            "client-key-data": _b64file(pki / "admin.key")}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
    }
    path.write_text(json.dumps(config, indent=2))


def write_token_kubeconfig(path: Path, server: str, ca_file: str, token: str, user: str,
                           namespace: str | None = None) -> Path:
    """A kubeconfig acting as a ServiceAccount (bearer token), so RBAC applies as in-cluster."""
    context: dict = {"cluster": "local", "user": user}
    if namespace:
        context["namespace"] = namespace
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": user,
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": context}]}))
    return path
