"""The ensemble-operator command line: parsing, delegation, and clear failures."""
from __future__ import annotations

import argparse
import json
import sys
import types

import pytest

from controller import cli
from controller.kube.errors import ApiError
from controller.kube.resources import CONFIGMAPS, ENSEMBLES, MINICLUSTERS, PODS


# cli.main configures root logging: undone after each test (tests/unit/conftest.py)
pytestmark = pytest.mark.usefixtures("restore_root_logger")


def test_run_defaults_match_the_documented_flags():
    args = cli.build_parser("run").parse_args(["run"])
    assert (args.workers, args.namespaces, args.leader_elect) == (4, "", None)
    assert (args.metrics_bind_address, args.health_probe_bind_address, args.metrics_secure) == (":8443", ":8081", True)
    assert (args.log_format, args.log_level) == ("json", "info")
    args = cli.build_parser("run").parse_args(
        ["run", "--namespaces", "a,b", "--workers", "8", "--no-leader-elect", "--log-format", "text"])
    assert (cli.parse_namespaces(args.namespaces), args.workers, args.leader_elect,
            args.log_format) == (["a", "b"], 8, False, "text")


@pytest.mark.parametrize("value, expected", [
    (":8080", ("0.0.0.0", 8080)), ("127.0.0.1:9090", ("127.0.0.1", 9090)),
    ("[::1]:8081", ("::1", 8081)), ("0", None)])
def test_bind_addresses(value, expected):
    assert cli.parse_bind_address("--metrics-bind-address", value) == expected


@pytest.mark.parametrize("value", ["8080", ":http", "host:70000", ""])
def test_bad_bind_addresses_name_the_flag(value):
    with pytest.raises(cli.CliError, match="--health-probe-bind-address: expected"):
        cli.parse_bind_address("--health-probe-bind-address", value)


def test_empty_namespaces_mean_all():
    assert cli.parse_namespaces("") is None
    assert cli.parse_namespaces(" a , ,b") == ["a", "b"]


def fake_module(monkeypatch, name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def test_service_delegates_arguments_and_exit_status(monkeypatch):
    seen: list[argparse.Namespace] = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=50051)

    fake_module(monkeypatch, "controller.service.main", add_arguments=add_arguments,
                run=lambda args: seen.append(args) or 7)
    assert cli.main(["service", "--port", "6000", "--log-level", "warning"]) == 7
    assert seen[0].port == 6000 and seen[0].log_level == "warning"


def test_a_delegate_without_run_is_a_clear_error(monkeypatch, capsys):
    fake_module(monkeypatch, "controller.member.main", add_arguments=lambda parser: None)
    assert cli.main(["member-status"]) == 2
    assert "member-status: controller.member.main has no run()" in capsys.readouterr().err


def test_other_subcommands_do_not_import_a_broken_delegate(monkeypatch):
    monkeypatch.setitem(sys.modules, "controller.service.main", None)   # import raises
    args = cli.build_parser("run").parse_args(["run"])
    assert args.handler is cli.run_manager
    with pytest.raises(cli.CliError, match="service: cannot import controller.service.main"):
        cli.build_parser("service")


def test_run_without_reconcilers_setup_fails_clearly(monkeypatch, capsys):
    fake_module(monkeypatch, "controller.reconcilers")
    assert cli.main(["run", "--log-level", "error"]) == 2
    assert "controller.reconcilers has no setup(manager, args)" in capsys.readouterr().err


def test_run_rejects_bad_flags_before_touching_the_cluster(capsys):
    assert cli.main(["run", "--workers", "0", "--log-level", "error"]) == 2
    assert "--workers: must be >= 1" in capsys.readouterr().err
    assert cli.main(["run", "--metrics-bind-address", "nope", "--log-level", "error"]) == 2
    assert "--metrics-bind-address: expected" in capsys.readouterr().err
    assert cli.main(["run", "--service-rate-limit-qps", "0", "--log-level", "error"]) == 2
    assert "--service-rate-limit-qps: must be > 0, got 0" in capsys.readouterr().err
    assert cli.main(["run", "--service-rate-limit-burst", "0", "--log-level", "error"]) == 2
    assert "--service-rate-limit-burst: must be >= 1, got 0" in capsys.readouterr().err


def test_the_services_rate_limit_flags_reach_the_desired_objects():
    from controller.reconcilers import settings_from

    args = cli.build_parser("run").parse_args(["run", "--service-rate-limit-qps", "2.5",
                                                "--service-rate-limit-burst", "20"])
    settings = settings_from(args)
    assert (settings.service_rate_limit_qps, settings.service_rate_limit_burst) == (2.5, 20)
    default = settings_from(cli.build_parser("run").parse_args(["run"]))
    assert (default.service_rate_limit_qps, default.service_rate_limit_burst) == (None, None)


def test_leader_election_defaults_on_only_in_a_cluster(monkeypatch, tmp_path):
    from controller.kube.client import KubeClient
    from controller.runtime.manager import Manager

    token = tmp_path / "token"
    monkeypatch.setattr(cli, "SERVICE_ACCOUNT_TOKEN", token)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("POD_NAMESPACE", "ops")
    assert not cli.in_cluster()
    token.write_text("t")
    assert cli.in_cluster()
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert not cli.in_cluster()

    electing: list[bool] = []   # whether each manager `run` built elects a leader
    fake_module(monkeypatch, "controller.reconcilers", setup=lambda manager, args: None)
    monkeypatch.setattr(KubeClient, "load", classmethod(lambda cls, path=None: object()))
    monkeypatch.setattr(Manager, "start", lambda self: electing.append(self.elector is not None))
    monkeypatch.setattr(cli, "stop_on_signals", lambda stop: None)

    def run(*flags: str) -> None:
        assert cli.main(["run", *flags, "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
                         "--log-level", "error"]) == 0

    run()                          # outside a cluster: off
    run("--leader-elect")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    run()                          # in a cluster: on
    run("--no-leader-elect")
    assert electing == [False, True, True, False]


def test_unknown_commands_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_manager_that_fails_logs_the_error_as_json_and_exits_1(monkeypatch, capsys):
    # e.g. caches that never sync (a watched CRD not installed): one JSON line, not a bare traceback
    from controller.kube.client import KubeClient
    from controller.runtime.manager import Manager

    def fail(self) -> None:
        raise RuntimeError("informer caches did not sync within 120.0s")

    fake_module(monkeypatch, "controller.reconcilers", setup=lambda manager, args: None)
    monkeypatch.setattr(KubeClient, "load", classmethod(lambda cls, path=None: object()))
    monkeypatch.setattr(Manager, "start", fail)
    monkeypatch.setattr(cli, "stop_on_signals", lambda stop: None)
    assert cli.main(["run", "--no-leader-elect", "--metrics-bind-address", "0",
                     "--health-probe-bind-address", "0"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[-1]["level"] == "error" and lines[-1]["error"] == "informer caches did not sync within 120.0s"
    assert "Traceback" in lines[-1]["stacktrace"]


def test_a_second_signal_exits_at_once_while_the_first_shuts_down_gracefully(monkeypatch) -> None:
    import signal as signals

    handlers: dict[int, object] = {}
    monkeypatch.setattr(cli.signal, "signal", lambda signum, handler: handlers.__setitem__(signum, handler))
    stops: list[bool] = []
    exits: list[int] = []
    cli.stop_on_signals(lambda: stops.append(True), exit_now=exits.append)
    handlers[signals.SIGTERM](signals.SIGTERM, None)
    assert stops == [True] and exits == []
    handlers[signals.SIGINT](signals.SIGINT, None)
    assert stops == [True] and exits == [1]


def test_no_client_side_rate_limit_unless_kube_api_qps_is_set():
    args = cli.build_parser("run").parse_args(["run"])
    assert (args.kube_api_qps, args.kube_api_burst) == (-1.0, 10)
    assert cli.request_rate_limiter(args.kube_api_qps, args.kube_api_burst) is None
    assert cli.request_rate_limiter(0, 10) is None
    assert cli.request_rate_limiter(20, 30) is not None


def test_a_kube_api_burst_below_one_with_a_qps_is_refused_before_touching_the_cluster(capsys):
    assert cli.main(["run", "--kube-api-qps", "5", "--kube-api-burst", "0", "--log-level", "error"]) == 2
    assert "--kube-api-burst: must be >= 1 with --kube-api-qps 5, got 0" in capsys.readouterr().err


def test_plain_http_metrics_are_refused_off_loopback_and_served_on_it():
    assert cli.metrics_tls(False, None, ("127.0.0.1", 8080)) is None
    assert cli.metrics_tls(False, None, ("::1", 8080)) is None
    with pytest.raises(cli.CliError, match="--no-metrics-secure: plain HTTP metrics are served on a loopback"):
        cli.metrics_tls(False, None, ("0.0.0.0", 8080))
    assert cli.metrics_tls(True, None, None) is None  # metrics disabled


def test_secure_metrics_load_the_given_certificate_or_say_why_not(tmp_path):
    from controller.runtime.certs import self_signed

    with pytest.raises(cli.CliError, match=rf"--metrics-cert-dir: cannot load tls.crt and tls.key from {tmp_path}"):
        cli.metrics_tls(True, str(tmp_path), ("0.0.0.0", 8443))
    cert, key = self_signed(["metrics.example"])
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    assert cli.metrics_tls(True, str(tmp_path), ("0.0.0.0", 8443)) is not None


class Discovery:
    """Answers discovery for the group versions it serves, 404 for the others."""

    def __init__(self, served: dict[str, list[str]], failing: dict[str, ApiError] | None = None) -> None:
        self.served, self.failing, self.asked = served, failing or {}, []

    def request(self, method: str, path: str, **_: object) -> dict:
        self.asked.append((method, path))
        if path in self.failing:
            raise self.failing[path]
        if path not in self.served:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIResourceList", "resources": [{"name": name} for name in self.served[path]]}


def test_unserved_resources_asks_discovery_once_per_group_version() -> None:
    client = Discovery({"/api/v1": ["pods", "configmaps"],
                        "/apis/ensemble.flux-framework.org/v1alpha1": ["ensembles", "ensembles/status"]})
    assert cli.unserved_resources(client, [PODS, CONFIGMAPS, ENSEMBLES, MINICLUSTERS, PODS]) == [MINICLUSTERS]
    assert sorted(path for _, path in client.asked) == [
        "/api/v1", "/apis/ensemble.flux-framework.org/v1alpha1", "/apis/flux-framework.org/v1alpha2"]


def test_a_discovery_failure_other_than_404_is_left_to_the_informers() -> None:
    client = Discovery({}, failing={"/apis/flux-framework.org/v1alpha2": ApiError(403, "Forbidden", "no")})
    assert cli.unserved_resources(client, [MINICLUSTERS]) == []


def run_with(monkeypatch, client, watched) -> list[str]:
    from controller.kube.client import KubeClient
    from controller.runtime.manager import Manager

    started: list[bool] = []

    def setup(manager, args) -> None:
        for resource in watched:
            manager.informers.informer_for(resource)

    module = types.ModuleType("controller.reconcilers")
    module.setup = setup
    monkeypatch.setitem(sys.modules, "controller.reconcilers", module)
    monkeypatch.setattr(KubeClient, "load", classmethod(lambda cls, path=None: client))
    monkeypatch.setattr(Manager, "start", lambda self: started.append(True))
    monkeypatch.setattr(cli, "stop_on_signals", lambda stop: None)
    status = cli.main(["run", "--no-leader-elect", "--metrics-bind-address", "0",
                       "--health-probe-bind-address", "0"])
    return [status, started]


def test_run_without_the_minicluster_crd_names_it_and_exits_1(monkeypatch, capsys) -> None:
    client = Discovery({"/apis/ensemble.flux-framework.org/v1alpha1": ["ensembles"]})
    status, started = run_with(monkeypatch, client, [ENSEMBLES, MINICLUSTERS])
    assert (status, started) == (1, [])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    errors = [line["msg"] for line in lines if line["level"] == "error"]
    assert errors == ["MiniCluster (miniclusters.flux-framework.org/v1alpha2) is not served by the API "
                      "server: install the Flux Operator first, whose CRD defines MiniCluster"]


def test_run_with_every_crd_served_starts_the_manager(monkeypatch) -> None:
    client = Discovery({"/apis/ensemble.flux-framework.org/v1alpha1": ["ensembles"],
                        "/apis/flux-framework.org/v1alpha2": ["miniclusters"]})
    assert run_with(monkeypatch, client, [ENSEMBLES, MINICLUSTERS]) == [0, [True]]
