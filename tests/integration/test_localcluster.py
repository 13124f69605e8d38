"""The local control plane is real: CRDs, RBAC on ServiceAccount tokens, garbage collection.

These tests speak to the API server with the standard library only, so they check the
control plane itself, independently of this project's client.
"""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.integration

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.example.com}
spec:
  group: test.example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string, enum: [red, blue]}
"""


def api(cluster, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=cluster.ca_file)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    else:
        ctx.load_cert_chain(str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key"))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(cluster.server + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_apiserver_is_the_one_we_started(kube_cluster):
    assert kube_cluster.readyz() == "ok"
    status, version = api(kube_cluster, "GET", "/version")
    assert status == 200
    assert version["gitVersion"] == "v1.37.2"
    assert kube_cluster.server.startswith("https://127.0.0.1:")


def test_custom_resource_definition_and_objects(kube_cluster, namespace):
    kube_cluster.kubectl("apply", "-f", "-", input=WIDGET_CRD)
    kube_cluster.kubectl("wait", "--for=condition=Established", "crd/widgets.test.example.com")
    path = f"/apis/test.example.com/v1/namespaces/{namespace}/widgets"
    widget = {"apiVersion": "test.example.com/v1", "kind": "Widget",
              "metadata": {"name": "w1"}, "spec": {"color": "red"}}
    status, created = wait_for(lambda: (r := api(kube_cluster, "POST", path, widget))[0] == 201 and r,
                               20, "the Widget resource to be served")
    assert created["metadata"]["uid"]
    bad = dict(widget, metadata={"name": "w2"}, spec={"color": "green"})
    status, body = api(kube_cluster, "POST", path, bad)
    assert status == 422
    assert "spec.color" in body["message"]
    status, listed = api(kube_cluster, "GET", path)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["w1"]


def test_service_account_token_is_refused_until_a_role_binding_allows_it(kube_cluster, namespace):
    kube_cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = kube_cluster.kubectl("create", "token", "reader", "-n", namespace).strip()
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, body = api(kube_cluster, "GET", path, token=token)
    assert status == 403, body
    assert f"system:serviceaccount:{namespace}:reader" in body["message"]

    kube_cluster.kubectl("create", "role", "cm-reader", "--verb=list", "--resource=configmaps", "-n", namespace)
    kube_cluster.kubectl("create", "rolebinding", "cm-reader", "--role=cm-reader",
                         f"--serviceaccount={namespace}:reader", "-n", namespace)
    status, body = wait_for(lambda: (r := api(kube_cluster, "GET", path, token=token))[0] == 200 and r,
                            10, "the RoleBinding to take effect")
    assert body["kind"] == "ConfigMapList"
    # The binding grants list only: writing is still refused.
    status, _ = api(kube_cluster, "POST", path, {"metadata": {"name": "x"}}, token=token)
    assert status == 403
    # An unsigned or foreign token is not authenticated at all.
    status, _ = api(kube_cluster, "GET", path, token=token[:-4] + "AAAA")
    assert status == 401


def test_garbage_collector_deletes_owned_children(controller_manager, namespace):
    cluster = controller_manager
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    status, owner = api(cluster, "POST", base, {"metadata": {"name": "owner"}})
    assert status == 201
    child = {"metadata": {"name": "child", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}]}}
    status, _ = api(cluster, "POST", base, child)
    assert status == 201
    status, _ = api(cluster, "DELETE", f"{base}/owner")
    assert status == 200
    wait_for(lambda: api(cluster, "GET", f"{base}/child")[0] == 404, 60,
             "the garbage collector to delete the child")
