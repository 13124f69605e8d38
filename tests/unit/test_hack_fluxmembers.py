"""What a real member's pod runs: the MiniCluster's bootstrap config, the broker options, the pod's
script as the shell runs it, and the switch between the real and simulated member runtimes."""
from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from sim import fluxmembers as fm


def test_hostlist_and_range_follow_the_flux_operator() -> None:
    assert fm.hostlist("mc", 1) == "mc-[0]"
    assert fm.hostlist("mc", 4) == "mc-[0-3]"
    assert fm.generate_range(2, 1) == "1-2"


@pytest.mark.parametrize(("spec", "quorum"), [
    ({"size": 2, "minSize": 1, "maxSize": 4}, 1),   # minSize wins
    ({"size": 2, "maxSize": 4}, 2),                  # can grow: the initial pods only
    ({"size": 3, "maxSize": 3}, None),               # cannot grow: every rank (Flux's default)
    ({"size": 3}, None),                             # maxSize defaults to size
])
def test_quorum_lets_the_lead_start_without_the_ranks_a_grow_adds(spec: dict, quorum: int | None) -> None:
    assert fm.required_ranks(spec) == quorum


def test_max_size_is_never_below_size() -> None:
    assert fm.max_size({"size": 3}) == 3
    assert fm.max_size({"size": 3, "maxSize": 5}) == 5
    assert fm.max_size({}) == 1


def test_broker_toml_binds_rank_0_on_its_pod_ip_and_lists_every_pod_up_to_max_size() -> None:
    config = tomllib.loads(fm.broker_toml("mc", "ns", "ens", 4, "127.64.0.9"))
    bootstrap = config["bootstrap"]
    assert bootstrap["hosts"] == [{"host": "mc-0", "bind": "tcp://127.64.0.9:%p"}, {"host": "mc-[1-3]"}]
    assert bootstrap["default_port"] == 8050
    assert bootstrap["default_connect"] == "tcp://%h.ens.ns.svc.cluster.local:%p"
    assert bootstrap["curve_cert"] == "/mnt/flux/config/curve/curve.cert"
    assert config["resource"] == {"path": "/mnt/flux/config/etc/flux/system/R", "noverify": True}
    assert config["access"] == {"allow-guest-user": True, "allow-root-owner": True}


def test_broker_toml_of_a_single_pod_has_only_rank_0() -> None:
    hosts = tomllib.loads(fm.broker_toml("mc", "ns", "ens", 1, "127.64.0.9"))["bootstrap"]["hosts"]
    assert hosts == [{"host": "mc-0", "bind": "tcp://127.64.0.9:%p"}]


def test_broker_options_name_the_pod_and_set_the_quorum_only_when_given() -> None:
    options = fm.broker_options("mc-2", 2)
    assert "-Shostname=mc-2" in options and "-Sbroker.quorum=2" in options
    assert f"-Slocal-uri={fm.LOCAL_URI}" in options and "-Stbon.fanout=256" in options
    assert not any(o.startswith("-Sbroker.quorum") for o in fm.broker_options("mc-0", None))


def fake_flux(tmp_path: Path) -> Path:
    """A ``flux`` that records its arguments, one per line, after what ran before it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "flux").write_text(f'#!/bin/sh\nfor a in "$@"; do echo "$a"; done >> {tmp_path}/trace\n')
    (bin_dir / "flux").chmod(0o755)
    return bin_dir


def run_script(tmp_path: Path, command: str | None, pre: str = "echo pre-ran >> trace") -> list[str]:
    script = fm.pod_script(pod="ns/mc-0-abc", mounts=[], path=f"{fake_flux(tmp_path)}:/usr/bin:/bin",
                           workdir=tmp_path, pre=pre, options=["-Sa=1", "-Shostname=mc-0"], command=command)
    (tmp_path / "pod.sh").write_text(script)
    subprocess.run(["/bin/bash", str(tmp_path / "pod.sh")], check=True, env={}, timeout=30)
    return (tmp_path / "trace").read_text().splitlines()


def test_the_lead_runs_pre_then_flux_start_with_its_command_split_into_words(tmp_path: Path) -> None:
    trace = run_script(tmp_path, "ensemble run --host e-grpc.ns.svc /ensemble-entrypoint/ensemble.yaml")
    assert trace == ["pre-ran", "start", "-o", "--config", fm.CONFIG_DIR, "-Sa=1", "-Shostname=mc-0",
                     "ensemble", "run", "--host", "e-grpc.ns.svc", "/ensemble-entrypoint/ensemble.yaml"]


def test_a_worker_runs_flux_start_without_a_command(tmp_path: Path) -> None:
    trace = run_script(tmp_path, None)
    assert trace == ["pre-ran", "start", "-o", "--config", fm.CONFIG_DIR, "-Sa=1", "-Shostname=mc-0"]


def test_a_failing_pre_does_not_stop_the_broker_as_in_wait_sh(tmp_path: Path) -> None:
    """wait.sh runs without ``set -e`` (logging.strict unset): a failed pre step is not fatal."""
    assert run_script(tmp_path, None, pre="false")[0] == "start"


def test_mount_lines_bind_and_make_read_only_mounts_read_only() -> None:
    lines = fm.mount_lines([fm.Mount(Path("/w/cm"), "/ensemble-entrypoint", read_only=True),
                            fm.Mount(Path("/w/view dir"), "/mnt/flux")])
    assert lines == ["mount --bind /w/cm /ensemble-entrypoint", "mount -o remount,bind,ro /ensemble-entrypoint",
                     "mount --bind '/w/view dir' /mnt/flux"]


@pytest.mark.parametrize(("command", "expected"), [
    ("X=1 ensemble-operator member-status --host 0.0.0.0 --port 50052",
     "X=1 ensemble-operator member-status --host 127.64.0.3 --port 50052"),
    ("ensemble-operator member-status --host=0.0.0.0", "ensemble-operator member-status --host=127.64.0.3"),
    ("ensemble-operator member-status", "ensemble-operator member-status --host 127.64.0.3"),
])
def test_the_status_command_listens_on_the_pod_ip(command: str, expected: str) -> None:
    assert fm.member_status_command(command, "127.64.0.3") == expected


def test_host_uri_reaches_the_socket_through_the_brokers_mount_namespace() -> None:
    assert fm.host_uri(123) == "local:///proc/123/root/mnt/flux/config/run/flux/local"


def built(tmp_path: Path) -> fm.FluxBuild:
    build = fm.flux_build({"ENSEMBLE_CACHE": str(tmp_path)})
    for exe in (build.flux, build.venv / "bin" / "ensemble"):
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return build


def test_flux_build_lives_where_build_flux_sh_installs_it(tmp_path: Path) -> None:
    build = fm.flux_build({"ENSEMBLE_CACHE": str(tmp_path), "FLUX_CORE_VERSION": "9.9.9"})
    assert build.prefix == tmp_path / "flux" / "9.9.9"
    assert build.venv.parent == build.prefix and build.venv.name.startswith("ensemble-python-")
    assert not build.exists()


def test_the_default_runtime_is_real_where_flux_is_built_and_we_are_root(tmp_path: Path) -> None:
    build = built(tmp_path)
    assert build.exists()
    assert fm.default_member_runtime({}, build, euid=0) == "real"
    assert fm.default_member_runtime({}, build, euid=1000) == "simulated"
    assert fm.default_member_runtime({}, fm.flux_build({"ENSEMBLE_CACHE": str(tmp_path / "none")}), euid=0) \
        == "simulated"


def test_ensemble_members_chooses_the_runtime_and_rejects_others(tmp_path: Path) -> None:
    build = built(tmp_path)
    assert fm.default_member_runtime({"ENSEMBLE_MEMBERS": "simulated"}, build, euid=0) == "simulated"
    assert fm.default_member_runtime({"ENSEMBLE_MEMBERS": "real"}, fm.flux_build({}), euid=1000) == "real"
    with pytest.raises(ValueError, match="ENSEMBLE_MEMBERS='fake'"):
        fm.default_member_runtime({"ENSEMBLE_MEMBERS": "fake"}, build)


def test_real_runtime_problem_names_what_is_missing(tmp_path: Path) -> None:
    missing = fm.flux_build({"ENSEMBLE_CACHE": str(tmp_path)})
    assert "hack/build-flux.sh" in (fm.real_runtime_problem(missing, euid=0) or "")
    assert "root" in (fm.real_runtime_problem(built(tmp_path), euid=1000) or "")


def test_member_path_puts_the_member_virtualenv_before_flux(tmp_path: Path) -> None:
    build = fm.flux_build({"ENSEMBLE_CACHE": str(tmp_path)})
    entries = build.member_path().split(os.pathsep)
    assert entries[:2] == [str(build.venv / "bin"), str(build.prefix / "bin")]


@pytest.mark.parametrize("branch", [None, "main"])
def test_the_bootstrap_runs_with_package_managers_stood_in_for(tmp_path: Path, branch: str | None) -> None:
    """commands.pre installs python3-cffi (and git) with apt-get or yum, as upstream's does; in the
    local pod runtime those must not touch the host, and the pip line must still run."""
    from controller.reconcilers.desired.member import install_command
    bin_dir = fake_flux(tmp_path)
    for name in ("python3", "git"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/trace\n')
        (bin_dir / name).chmod(0o755)
    stand_ins = fm.package_manager_stand_ins(tmp_path / "pod-bin")
    script = fm.pod_script(pod="ns/mc-0-abc", mounts=[], path=f"{stand_ins}:{bin_dir}:/usr/bin:/bin",
                           workdir=tmp_path, pre=install_command(branch), options=[], command=None)
    (tmp_path / "pod.sh").write_text(script)
    done = subprocess.run(["/bin/bash", str(tmp_path / "pod.sh")], check=True, env={}, timeout=30,
                          capture_output=True, text=True)
    packages = "python3-cffi git" if branch else "python3-cffi"
    assert f"local pod runtime: apt-get install -y --no-install-recommends {packages} skipped" in done.stdout
    trace = (tmp_path / "trace").read_text().splitlines()
    pip = "python3 -m pip install /tmp/ensemble-python" if branch else "python3 -m pip install ensemble-python==0.0.16"
    assert trace[trace.index(pip) + 1] == "start"          # then the broker starts
    assert any(line.startswith("git clone -b main") for line in trace) is bool(branch)
