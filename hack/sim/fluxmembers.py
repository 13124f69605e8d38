"""Real Flux members: what the Flux Operator's pods run, made runnable on this machine.

The local system's pods have no containers: the pod process runner starts their processes
on the pod IPs kwok hands out (127.64.0.0/16, all on loopback). In the ``real`` member
runtime each pod of a member MiniCluster runs what the Flux Operator's ``wait-<i>.sh`` runs
there: a Flux broker (flux-core from hack/build-flux.sh) bootstrapped from one config per
MiniCluster, the lead broker's initial program being the MiniCluster's own command. This
module holds the parts that decide what runs (paths, the bootstrap config, the broker
options, the pod's script, the runtime switch) as functions of their inputs, plus the two
``flux`` commands that make a MiniCluster's certificate and resource set. The pod
lifecycle (start, join, leave, exit) is ``sim.realmembers``.

Kept from the Flux Operator (pkg/flux/view.go, config.go, templates/wait.sh at the vendored
commit), because ensemble-python and our status sidecar meet them there: the view mounted
at /mnt/flux with the config under /mnt/flux/config and the broker socket
``local:///mnt/flux/config/run/flux/local``; port 8050; hosts ``<mc>-[0-<maxSize-1>]``;
``default_connect`` through the headless Service's DNS names; the quorum of
``getRequiredRanks``; the broker options of wait.sh; ``flux R encode --hosts=... --local``.
Changed, because every pod here shares the host's network: rank 0 binds its pod IP (a
Flux Operator pod binds its own eth0), the hostname comes from ``-Shostname`` (a pod has its
own UTS namespace), and ``[resource] noverify`` accepts that every rank sees the same cores.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from controller.reconcilers.desired.member import ENSEMBLE_PYTHON_VERSION

RUNTIMES = ("real", "simulated")
RUNTIME_ENV = "ENSEMBLE_MEMBERS"
FLUX_CORE_VERSION = "0.88.0"  # hack/build-flux.sh's default

VIEW_MOUNT = "/mnt/flux"                    # spec.flux.container.mountPath's default
CONFIG_ROOT = f"{VIEW_MOUNT}/config"        # wait.sh's ${configroot}
CONFIG_DIR = f"{CONFIG_ROOT}/etc/flux/config"
LOCAL_URI = f"local://{CONFIG_ROOT}/run/flux/local"
BROKER_PORT = 8050
CLUSTER_DOMAIN = "cluster.local"
STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class FluxBuild:
    """flux-core's install prefix and, inside it, the member virtualenv (ensemble-python)."""
    prefix: Path
    venv: Path

    @property
    def flux(self) -> Path:
        return self.prefix / "bin" / "flux"

    def exists(self) -> bool:
        return os.access(self.flux, os.X_OK) and os.access(self.venv / "bin" / "ensemble", os.X_OK)

    def bindings(self) -> Path:
        """The site-packages holding flux-core's Python bindings (built for Debian's python3)."""
        found = sorted(self.prefix.glob("lib/python3*/site-packages"))
        return found[0] if found else self.prefix / "lib" / "python3" / "site-packages"

    def member_path(self) -> str:
        """A pod's PATH: the member virtualenv first, so the MiniCluster's ``python3 -m pip install
        ensemble-python==<pin>`` finds it installed (no network), then ``flux``."""
        return f"{self.venv / 'bin'}:{self.prefix / 'bin'}:{STANDARD_PATH}"


# The pod "image" here is this host with the member virtualenv: commands.pre's package-manager
# line (python3-cffi, git; see controller/reconcilers/desired/member.py) must not install into
# the host, whose python3-cffi hack/build-flux.sh already requires.
PACKAGE_MANAGERS = ("apt-get", "yum")


def package_manager_stand_ins(directory: Path) -> Path:
    """A directory of ``apt-get`` and ``yum`` commands that only say what they were asked, to put
    first on a pod's PATH; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in PACKAGE_MANAGERS:
        command = directory / name
        command.write_text(f'#!/bin/sh\necho "local pod runtime: {name} $* skipped (the host provides '
                           f'the member image\'s packages)"\n')
        command.chmod(0o755)
    return directory


def flux_build(environ: Mapping[str, str] = os.environ) -> FluxBuild:
    """Where hack/build-flux.sh installs (ENSEMBLE_CACHE, FLUX_CORE_VERSION as it reads them)."""
    cache = environ.get("ENSEMBLE_CACHE") or str(
        Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ensemble-operator")
    prefix = Path(cache) / "flux" / environ.get("FLUX_CORE_VERSION", FLUX_CORE_VERSION)
    return FluxBuild(prefix, prefix / f"ensemble-python-{ENSEMBLE_PYTHON_VERSION}")


def real_runtime_problem(build: FluxBuild, euid: int | None = None) -> str | None:
    """Why real members cannot run here, or None. Each pod's processes get their own mount
    namespace (the member's ConfigMap at /ensemble-entrypoint, the pod's /etc/hosts and
    /mnt/flux): that takes root. Without it the simulated runtime is the fallback."""
    if not build.exists():
        return (f"no Flux build in {build.prefix} (flux and the member virtualenv {build.venv.name}): "
                "run hack/build-flux.sh")
    if (os.geteuid() if euid is None else euid) != 0:
        return "real members need root: each pod's processes run in their own mount namespace"
    missing = [tool for tool in ("unshare", "nsenter", "mount") if shutil.which(tool) is None]
    if missing:
        return f"real members need util-linux's {', '.join(missing)}"
    return None


def default_member_runtime(environ: Mapping[str, str] = os.environ, build: FluxBuild | None = None,
                           euid: int | None = None) -> str:
    """``$ENSEMBLE_MEMBERS`` when set, else ``real`` where real members can run, else ``simulated``."""
    chosen = environ.get(RUNTIME_ENV, "").strip()
    if chosen:
        if chosen not in RUNTIMES:
            raise ValueError(f"{RUNTIME_ENV}={chosen!r}: expected one of {', '.join(RUNTIMES)}")
        return chosen
    return "real" if real_runtime_problem(build or flux_build(environ), euid) is None else "simulated"


# ---- the MiniCluster's bootstrap -------------------------------------------------------------
def generate_range(size: int, start: int = 0) -> str:
    """The Flux Operator's generateRange: ``0`` for one, ``0-3`` for four."""
    return str(start) if size == 1 else f"{start}-{start + size - 1}"


def hostlist(name: str, size: int) -> str:
    """Every pod's hostname up to ``size``, as the Flux Operator's generateHostlist writes it."""
    return f"{name}-[{generate_range(size)}]"


def spec_size(spec: Mapping) -> int:
    return int(spec.get("size") or 1)


def max_size(spec: Mapping) -> int:
    """``maxSize``, which the Flux Operator defaults to ``size``."""
    return max(int(spec.get("maxSize") or 0), spec_size(spec))


def required_ranks(spec: Mapping) -> int | None:
    """The broker quorum of the Flux Operator's getRequiredRanks: ``minSize`` when set, every rank
    (None: Flux's default) when the MiniCluster cannot grow, else the initial ``size``, so the
    lead starts without the ranks a grow would add."""
    if spec.get("minSize"):
        return int(spec["minSize"])
    if max_size(spec) == spec_size(spec):
        return None
    return spec_size(spec)


def service_fqdn(headless: str, namespace: str) -> str:
    return f"{headless}.{namespace}.svc.{CLUSTER_DOMAIN}"


def broker_toml(name: str, namespace: str, headless: str, size: int, lead_ip: str) -> str:
    """The MiniCluster's broker.toml: the Flux Operator's, with rank 0 bound to its pod IP.

    Only rank 0 binds (the tree is flat, see ``broker_options``), so the other pods' IPs,
    unknown until they run, are never needed: they connect to rank 0 by its DNS name.
    """
    hosts = [f'  {{ host = "{name}-0", bind = "tcp://{lead_ip}:%p" }},']
    if size > 1:
        hosts.append(f'  {{ host = "{name}-[{generate_range(size - 1, 1)}]" }},')
    lines = [
        "[access]",
        "allow-guest-user = true",
        "allow-root-owner = true",
        "",
        "# Point to resource definition generated with flux-R(1).",
        "[resource]",
        f'path = "{CONFIG_ROOT}/etc/flux/system/R"',
        "noverify = true",
        "",
        "[bootstrap]",
        f'curve_cert = "{CONFIG_ROOT}/curve/curve.cert"',
        f"default_port = {BROKER_PORT}",
        'default_bind = "tcp://eth0:%p"',
        f'default_connect = "tcp://%h.{service_fqdn(headless, namespace)}:%p"',
        "hosts = [",
        *hosts,
        "]",
    ]
    return "\n".join(lines) + "\n"


def broker_options(hostname: str, quorum: int | None) -> list[str]:
    """wait.sh's ``brokerOptions`` (logging not quiet), plus the pod's hostname.

    ``tbon.fanout=256`` (flux-core's alias of ``tbon.topo=kary:256``) makes rank 0 every
    other rank's parent, so only rank 0 binds.
    """
    options = [
        f"-Scron.directory={CONFIG_ROOT}/etc/flux/system/cron.d",
        "-Stbon.fanout=256",
        f"-Srundir={CONFIG_ROOT}/run/flux",
        f"-Sstatedir={CONFIG_ROOT}/var/lib/flux",
        f"-Slocal-uri={LOCAL_URI}",
    ]
    if quorum is not None:
        options.append(f"-Sbroker.quorum={quorum}")
    options += ["-Slog-stderr-level=6", "-Slog-stderr-mode=local", f"-Shostname={hostname}"]
    return options


# ---- a pod's processes -----------------------------------------------------------------------
@dataclass(frozen=True)
class Mount:
    """A bind mount in the pod's mount namespace: ``source`` on this machine at ``target``."""
    source: Path
    target: str
    read_only: bool = False


def mount_lines(mounts: list[Mount]) -> list[str]:
    lines = []
    for mount in mounts:
        source, target = shlex.quote(str(mount.source)), shlex.quote(mount.target)
        lines.append(f"mount --bind {source} {target}")
        if mount.read_only:
            lines.append(f"mount -o remount,bind,ro {target}")
    return lines


def pod_script(*, pod: str, mounts: list[Mount], path: str, workdir: Path, pre: str, options: list[str],
               command: str | None) -> str:
    """The bash script a MiniCluster pod runs in its own mount namespace, in wait.sh's order
    (the Flux Operator runs its wait-<i>.sh with bash too).

    The volumes first (as a kubelet mounts them), then the container's ``commands.pre``,
    then ``flux start`` with wait.sh's options; the lead adds the MiniCluster's command,
    word-split unquoted as wait.sh does with ``${command}``. ``exec`` keeps the broker the
    pod's process, so stopping the pod stops it and its exit code is the pod's.
    """
    lines = [f"# pod {pod}: what the Flux Operator's wait-<i>.sh runs, made runnable here",
             "set -e", *mount_lines(mounts), "set +e",
             f"export PATH={shlex.quote(path)}",
             f"cd {shlex.quote(str(workdir))}",
             f"cfg={CONFIG_DIR}",
             f"brokerOptions={shlex.quote(' '.join(options))}",
             "# commands.pre", pre,
             f'command="{command or ""}"',
             'exec flux start -o --config ${cfg} ${brokerOptions} ${command}']
    return "\n".join(lines) + "\n"


def member_status_command(command: str, pod_ip: str) -> str:
    """The status container's command with its listen address made the pod IP: pods here share
    the host's network, so two sidecars on 0.0.0.0 would take each other's port."""
    replaced, count = re.subn(r"(--host[= ])\S+", lambda m: m.group(1) + pod_ip, command, count=1)
    return replaced if count else f"{command} --host {pod_ip}"


def host_uri(pid: int) -> str:
    """The lead broker's ``LOCAL_URI`` reached from outside its pod (its mount namespace)."""
    return f"local:///proc/{pid}/root{LOCAL_URI.removeprefix('local://')}"


# ---- the MiniCluster's shared files ----------------------------------------------------------
def keygen(build: FluxBuild, path: Path) -> None:
    """The MiniCluster's CURVE certificate, shared by all its brokers (the Flux Operator
    generates one per MiniCluster too)."""
    _flux(build, "keygen", str(path))
    path.chmod(0o600)


def encode_resources(build: FluxBuild, hosts: str) -> str:
    """R for ``hosts``, each with this machine's cores, as wait.sh encodes it."""
    return _flux(build, "R", "encode", f"--hosts={hosts}", "--local")


def _flux(build: FluxBuild, *args: str) -> str:
    done = subprocess.run([str(build.flux), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{build.prefix / 'bin'}:{STANDARD_PATH}", "HOME": str(Path.home())})
    if done.returncode != 0:
        raise RuntimeError(f"flux {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout
