"""How the kind and k3s e2e providers install the operator: the image loaded into the nodes
must be in the Deployment when it is created, with a pull policy that never pulls it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e import providers

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
IMAGE = "localhost:5001/ensemble-operator-python:e2e"


def render_kustomization() -> str:
    """`kubectl kustomize manifests/` for a kustomization that only lists resources."""
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "resources"}, "render it with kubectl kustomize here"
    return "---\n".join((MANIFESTS / name).read_text() for name in kustomization["resources"])


class FakeKubectl:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> str:
        self.calls.append((args, input))
        return render_kustomization() if args[:1] == ("kustomize",) else ""


@pytest.fixture
def kubectl(monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    fake = FakeKubectl()
    monkeypatch.setattr(providers.KubectlCluster, "kubectl",
                        lambda self, *args, input=None, check=True: fake(*args, input=input, check=check))
    return fake


def test_the_deployment_is_created_with_the_loaded_image_and_never_pulls_it(kubectl: FakeKubectl) -> None:
    providers.KubectlCluster("/dev/null").install_operator(IMAGE)
    # The API server sets imagePullPolicy once, at creation (Always for :latest); `kubectl set
    # image` afterwards keeps Always and the kubelet pulls an image that is only on the nodes.
    assert not [args for args, _ in kubectl.calls if args[:1] == ("set",)]
    (applied,) = [input for args, input in kubectl.calls if args[:1] == ("apply",)]
    assert applied is not None
    documents = list(yaml.safe_load_all(applied))
    rendered = [d for d in yaml.safe_load_all(render_kustomization()) if d]
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == \
        [(d["kind"], d["metadata"]["name"]) for d in rendered], "every manifest is applied"
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["imagePullPolicy"] in ("IfNotPresent", "Never")
    env = {e["name"]: e for e in container["env"]}
    assert env["ENSEMBLE_OPERATOR_IMAGE"] == {"name": "ENSEMBLE_OPERATOR_IMAGE", "value": IMAGE}
    assert "valueFrom" in env["POD_NAMESPACE"], "the other variables stay"
    assert [args for args, _ in kubectl.calls][-1][:2] == ("rollout", "status")


def test_rendering_leaves_the_manifests_documents_alone() -> None:
    documents = [d for d in yaml.safe_load_all(render_kustomization()) if d]
    providers.with_operator_image(documents, IMAGE)
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith("ghcr.io/converged-computing/")
    with pytest.raises(ValueError, match="no Deployment ensemble-operator"):
        providers.with_operator_image([d for d in documents if d["kind"] != "Deployment"], IMAGE)


@pytest.mark.parametrize("image", ["ghcr.io/x/ensemble-operator-python", "ghcr.io/x/ensemble-operator-python:latest",
                                   "localhost:5001/ensemble-operator-python"])
def test_a_latest_e2e_image_is_refused_before_any_cluster_is_made(image: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The ensemble service Deployments name ENSEMBLE_OPERATOR_IMAGE without a pull policy.
    monkeypatch.setattr(providers, "IMAGE", image)
    monkeypatch.setattr(providers, "_run", lambda argv: pytest.fail(f"ran {argv}"))
    with pytest.raises(SystemExit, match="tag other than latest"):
        providers.KindProvider()


@pytest.mark.parametrize("image", [IMAGE, "ghcr.io/x/y:e2e", "ghcr.io/x/y@sha256:" + "0" * 64])
def test_tagged_images_are_loadable(image: str) -> None:
    assert providers.loadable_image(image) == image


def test_kubectl_comes_from_path_else_from_the_local_build_else_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import localcluster  # hack/, on sys.path through providers
    monkeypatch.setattr(localcluster, "DEFAULT_BIN_DIR", tmp_path)
    monkeypatch.setattr(providers.shutil, "which", lambda name: "/usr/local/bin/kubectl")
    assert providers.kubectl_binary() == "/usr/local/bin/kubectl"
    monkeypatch.setattr(providers.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="kubectl is not on PATH"):
        providers.kubectl_binary()
    (tmp_path / "kubectl").write_text("#!/bin/sh\necho \"$@\"\n")
    (tmp_path / "kubectl").chmod(0o755)
    assert providers.kubectl_binary() == str(tmp_path / "kubectl")
    # The cluster runs it with its kubeconfig; it was never looked for in .venv/bin.
    assert providers.KubectlCluster("/k/config").kubectl("get", "pods") == "--kubeconfig /k/config get pods\n"


def test_a_flux_operator_that_never_gets_ready_fails_the_kind_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(providers, "_run", lambda argv: ran.append(argv))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        ran.append(["kubectl", *args])
        if args[:2] == ("rollout", "status") and "operator-system" in args and check:
            raise RuntimeError("kubectl rollout status deployment/operator-controller-manager failed: timed out")
        return ""

    monkeypatch.setattr(providers.KubectlCluster, "kubectl", kubectl)
    monkeypatch.delenv("E2E_KEEP_CLUSTER", raising=False)
    with pytest.raises(RuntimeError, match="operator-controller-manager"):
        providers.KindProvider()
    assert ["kubectl", "wait", "--for=condition=Established", "crd/miniclusters.flux-framework.org",
            "--timeout=60s"] in ran
    assert not [argv for argv in ran if argv[:2] == ["docker", "build"]], "setup stops there"
    assert ran[-1][:3] == ["kind", "delete", "cluster"]
