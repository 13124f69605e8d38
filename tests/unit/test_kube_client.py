from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
import yaml

from tests.fakes import FakeClock
from controller.kube.client import UNDECODABLE_ITEMS, KubeClient, encode_body
from controller.kube.config import Endpoint, ReloadingToken, StaticToken, TokenFile
from controller.kube.errors import ApiError, KubeError
from controller.kube.ratelimit import RequestRateLimiter
from controller.kube.resources import CONFIGMAPS, NAMESPACES
from tests.helpers import wait_for_waiters
from tests.unit.scripted_apiserver import Json, ScriptedApiServer, Stream, obj, status_body

PATH = "/api/v1/namespaces/ns/configmaps"


@pytest.fixture
def client(server: ScriptedApiServer) -> KubeClient:
    return KubeClient(Endpoint(server.url), StaticToken("secret"))


def test_list_sends_selectors_and_paging_and_returns_the_raw_list(server, client) -> None:
    server.on_list(PATH, Json(200, {"kind": "ConfigMapList", "items": [obj("a", "1")]}))
    result = client.list(CONFIGMAPS, "ns", label_selector="app=x", limit=500, continue_="tok")
    assert result["items"][0]["metadata"]["name"] == "a"
    sent = server.requests[0]
    assert sent.query == {"labelSelector": "app=x", "limit": "500", "continue": "tok"}
    assert sent.headers["Authorization"] == "Bearer secret"
    assert (client.request_count, client.write_count) == (1, 0)


def test_apply_is_a_server_side_apply_patch(server, client) -> None:
    server.on("PATCH", f"{PATH}/a", Json(200, obj("a", "2")))
    result = client.apply(CONFIGMAPS, obj("a", "1"), field_manager="ensemble-operator")
    assert result["metadata"]["resourceVersion"] == "2"
    sent = server.requests[0]
    assert sent.headers["Content-Type"] == "application/apply-patch+yaml"
    assert sent.query == {"fieldManager": "ensemble-operator", "force": "true"}
    assert sent.json["metadata"]["name"] == "a"
    assert client.write_count == 1


def echo_of(answer: dict) -> bytes:
    """The watch line the API server writes for ``answer``'s object, as it encoded the answer."""
    return b'{"type":"ADDED","object":' + json.dumps(answer).encode() + b"}\n"


@pytest.mark.parametrize("shared", [True, False])
def test_an_apply_answer_is_what_the_clients_watch_yields_for_its_echo_only_when_shared(
        server, client, shared: bool) -> None:
    answer_body, patched = obj("a", "2"), obj("b", "3")
    server.on("PATCH", f"{PATH}/a", Json(200, answer_body))
    server.on("PATCH", f"{PATH}/b", Json(200, patched))
    server.on_watch(PATH, Stream([echo_of(answer_body), echo_of(patched)], end="close"))
    if shared:
        client.share_apply_answers()
    answer = client.apply(CONFIGMAPS, obj("a", "1"), field_manager="m")
    merged = client.patch(CONFIGMAPS, "b", {"data": {}}, namespace="ns")  # not an apply: never kept
    with client.watch(CONFIGMAPS, "ns", resource_version="1") as stream:
        objects = [event["object"] for event in stream]
    assert objects == [answer_body, patched]
    assert (objects[0] is answer) is shared and objects[1] is not merged


def test_create_patch_replace_delete_use_the_right_verbs(server, client) -> None:
    server.on("POST", PATH, Json(201, obj("a", "1")))
    server.on("PATCH", f"{PATH}/a/status", Json(200, obj("a", "2")))
    server.on("PUT", f"{PATH}/a", Json(200, obj("a", "3")))
    server.on("DELETE", f"{PATH}/a", Json(200, {"kind": "Status"}))
    client.create(CONFIGMAPS, obj("a", ""))
    client.patch(CONFIGMAPS, "a", {"data": {}}, namespace="ns", subresource="status")
    client.replace(CONFIGMAPS, obj("a", "2"))
    client.delete(CONFIGMAPS, "a", "ns", preconditions={"uid": "u1"})
    assert [r.method for r in server.requests] == ["POST", "PATCH", "PUT", "DELETE"]
    assert server.requests[1].headers["Content-Type"] == "application/merge-patch+json"
    assert server.requests[3].json == {"kind": "DeleteOptions", "apiVersion": "v1",
                                       "propagationPolicy": "Background",
                                       "preconditions": {"uid": "u1"}}
    assert client.write_count == 4


def test_delete_of_a_missing_object_returns_none(server, client) -> None:
    server.on("DELETE", f"{PATH}/gone", Json(404, status_body(404, "NotFound", "not found")))
    assert client.delete(CONFIGMAPS, "gone", "ns") is None


def test_get_or_none_is_none_only_for_a_missing_object(server, client) -> None:
    server.on("GET", f"{PATH}/gone", Json(404, status_body(404, "NotFound", "not found")))
    server.on("GET", f"{PATH}/secret", Json(403, status_body(403, "Forbidden", "configmaps is forbidden")))
    server.on("GET", f"{PATH}/here", Json(200, obj("here", rv="7")))
    assert client.get_or_none(CONFIGMAPS, "gone", "ns") is None
    assert client.get_or_none(CONFIGMAPS, "here", "ns")["metadata"]["name"] == "here"
    with pytest.raises(ApiError) as info:
        client.get_or_none(CONFIGMAPS, "secret", "ns")
    assert info.value.status == 403


def test_forbidden_raises_api_error_naming_the_resource(server, client) -> None:
    server.on_list(PATH, Json(403, status_body(403, "Forbidden", "configmaps is forbidden")))
    with pytest.raises(ApiError) as info:
        client.list(CONFIGMAPS, "ns")
    assert info.value.status == 403 and PATH in str(info.value) and "forbidden" in str(info.value)


def test_a_401_rereads_the_token_and_retries_once(server) -> None:
    tokens = iter(["fresh", "fresher"])
    client = KubeClient(Endpoint(server.url), ReloadingToken("stale", lambda: next(tokens)))
    server.on("GET", f"{PATH}/a", Json(401, status_body(401, "Unauthorized", "")), Json(200, obj("a", "1")))
    assert client.get(CONFIGMAPS, "a", "ns")["metadata"]["name"] == "a"
    assert [r.headers["Authorization"] for r in server.requests] == ["Bearer stale", "Bearer fresh"]
    server.on("GET", f"{PATH}/a", *[Json(401, status_body(401, "Unauthorized", "expired"))] * 2)
    with pytest.raises(ApiError, match="401"):
        client.get(CONFIGMAPS, "a", "ns")


def test_unreachable_server_raises_kube_error_naming_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = KubeClient(Endpoint(f"http://127.0.0.1:{port}"))
    with pytest.raises(KubeError, match=f"GET http://127.0.0.1:{port}/api/v1/namespaces: cannot reach"):
        client.list(NAMESPACES)


def test_bad_input_names_the_field() -> None:
    client = KubeClient(Endpoint("http://127.0.0.1:1"))
    with pytest.raises(ValueError, match="metadata.name is required"):
        client.apply(CONFIGMAPS, {"metadata": {"namespace": "ns"}}, field_manager="m")
    with pytest.raises(ValueError, match="metadata.namespace"):
        client.get(CONFIGMAPS, "a")
    with pytest.raises(ValueError, match="unknown patch_type 'yaml'"):
        client.patch(CONFIGMAPS, "a", {}, namespace="ns", patch_type="yaml")


def write_kubeconfig(path: Path, server: str, token: str) -> None:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}],
    }))


def test_kubeconfig_token_is_used_and_reloaded_after_a_401(server, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    write_kubeconfig(kubeconfig, server.url, "one")
    client = KubeClient.from_kubeconfig(str(kubeconfig))
    assert client.server == server.url
    write_kubeconfig(kubeconfig, server.url, "two")
    server.on("GET", f"{PATH}/a", Json(401, status_body(401, "Unauthorized", "")), Json(200, obj("a", "1")))
    client.get(CONFIGMAPS, "a", "ns")
    assert [r.headers["Authorization"] for r in server.requests] == ["Bearer one", "Bearer two"]


def test_unreadable_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(KubeError, match=f"cannot load kubeconfig {missing}"):
        KubeClient.from_kubeconfig(str(missing))
    garbage = tmp_path / "garbage"
    garbage.write_text("{{{ not yaml")
    with pytest.raises(KubeError, match=f"cannot load kubeconfig {garbage}"):
        KubeClient.from_kubeconfig(str(garbage))


def test_projected_token_file_is_reread_when_it_rotates(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    clock = FakeClock()
    tokens = TokenFile(str(token_file), clock, recheck_seconds=60)
    token_file.write_text("second\n")
    os.utime(token_file, (1, 1))  # a visible mtime change, whatever the filesystem's resolution
    assert tokens.token() == "first"       # not re-checked before the period
    clock.step(60)
    assert tokens.token() == "second"
    token_file.write_text("third\n")
    os.utime(token_file, (2, 2))
    tokens.refresh()                        # what a 401 does
    assert tokens.token() == "third"


def test_in_cluster_config_uses_the_service_account(server, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("unused over plain http")
    host, port = server.url.removeprefix("http://").split(":")
    client = KubeClient.in_cluster(token_path=str(tmp_path / "token"), ca_path=str(tmp_path / "ca.crt"),
                                   environ={"KUBERNETES_SERVICE_HOST": host,
                                            "KUBERNETES_SERVICE_PORT": port})
    assert client.server == f"https://{host}:{port}"
    with pytest.raises(KubeError, match="cannot load in-cluster config"):
        KubeClient.in_cluster(token_path=str(tmp_path / "missing"), ca_path=str(tmp_path / "ca.crt"),
                              environ={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port})


def test_a_list_with_an_item_too_deep_to_decode_keeps_the_others_and_names_it(server: ScriptedApiServer) -> None:
    deep = '{"a":' * 2000 + "[1, 2]" + "}" * 2000
    body = ('{"apiVersion":"v1","items":[{"kind":"ConfigMap","metadata":{"name":"a","namespace":"ns",'
            '"resourceVersion":"1"},"data":{"k":"]}[{"}},'
            f'{{"data":{deep},"metadata":{{"name":"deep","namespace":"ns","resourceVersion":"2"}}}},'
            '{"metadata":{"name":"c","namespace":"ns","resourceVersion":"3"}}],'
            '"kind":"ConfigMapList","metadata":{"continue":"next","resourceVersion":"9"}}').encode()
    server.on_list("/api/v1/namespaces/ns/configmaps", Json(200, body))
    page = KubeClient(Endpoint(server.url)).list(CONFIGMAPS, "ns")
    assert [item["metadata"]["name"] for item in page["items"]] == ["a", "c"]
    assert page["items"][0]["data"] == {"k": "]}[{"}
    assert page["metadata"] == {"continue": "next", "resourceVersion": "9"}
    (skipped,) = page[UNDECODABLE_ITEMS]
    assert skipped["metadata"] == {"name": "deep", "namespace": "ns", "resourceVersion": "2"}
    assert skipped["error"].startswith("RecursionError")


def test_a_rate_limited_client_sends_its_burst_at_once_then_waits_its_turn(server, client) -> None:
    clock = FakeClock()
    client.limit_rate(RequestRateLimiter(qps=2, burst=2, clock=clock))
    server.on("GET", f"{PATH}/a", *[Json(200, obj("a", "1"))] * 3)
    for _ in range(2):
        client.get(CONFIGMAPS, "a", "ns")
    third = threading.Thread(target=client.get, args=(CONFIGMAPS, "a", "ns"))
    third.start()
    wait_for_waiters(clock, 1)
    assert len(server.requests) == 2  # the third waits for a token, half a second at 2 qps
    clock.step(0.5)
    third.join(5)
    assert len(server.requests) == 3 and not third.is_alive()


def test_without_a_limit_no_request_waits(server, client) -> None:
    server.on("GET", f"{PATH}/a", *[Json(200, obj("a", "1"))] * 50)
    for _ in range(50):
        client.get(CONFIGMAPS, "a", "ns")
    assert len(server.requests) == 50


def test_request_bodies_encode_as_json_would_and_what_msgspec_cannot_falls_back_to_json() -> None:
    body = {"metadata": {"name": "e", "labels": {"a": "caf\u00e9"}}, "spec": {"size": 2, "ports": (1, 2)},
            1: None}
    assert json.loads(encode_body(body)) == json.loads(json.dumps(body))

    class Mapping(dict):  # a dict subclass msgspec refuses
        pass
    assert json.loads(encode_body({"m": Mapping(a=1)})) == {"m": {"a": 1}}
