"""hack/localcluster.py and hack/localenv.py without a control plane: process teardown and
the per-run resources (pod CIDR) that concurrent runs must not share."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import localcluster
from localcluster import LocalCluster


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_stop_signals_no_pid_it_already_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = sleeper()
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "data",
                           procs={"etcd": proc}, pids={"etcd": proc.pid})
    signalled: list[int] = []
    monkeypatch.setattr(localcluster, "_kill_pid", lambda pid, timeout=10: signalled.append(pid))
    cluster.stop()
    assert proc.returncode is not None
    # Once waited for, the pid is free for the kernel to reuse: signalling it again could
    # kill an unrelated process.
    assert signalled == []
    assert cluster.pids == {}


def test_stop_still_kills_pids_it_has_no_process_handle_for(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = LocalCluster(bin_dir=tmp_path, data_dir=tmp_path / "data", pids={"etcd": 4242})
    signalled: list[int] = []
    monkeypatch.setattr(localcluster, "_kill_pid", lambda pid, timeout=10: signalled.append(pid))
    cluster.stop()
    assert signalled == [4242]
