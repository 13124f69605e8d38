"""hack/build-upstream-operator.sh (upstream's Go operator, for bench_scale --upstream) with a `go`
that records its calls: what it builds from where, when it does nothing, what it refuses."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes import archive_of_a_new_commit, fake_go

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "build-upstream-operator.sh"
COMMIT = "31bf039bff6aab8b85c0c59d763943ed5614dc7c"
MODULE = "module github.com/converged-computing/ensemble-operator\n\ngo 1.21\n"


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    fake_go(tmp_path / "bin", tmp_path / "go.log")
    full_env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
                "ENSEMBLE_CACHE": str(tmp_path / "cache"), **env}
    return subprocess.run(["bash", str(SCRIPT)], env=full_env, capture_output=True, text=True, timeout=60)


def source_tree(path: Path) -> Path:
    (path / "cmd" / "manager").mkdir(parents=True)
    (path / "go.mod").write_text(MODULE)
    (path / "cmd" / "manager" / "manager.go").write_text("package main\n\nfunc main() {}\n")
    return path


def manager(tmp_path: Path, commit: str = COMMIT) -> Path:
    return tmp_path / "cache" / "upstream-operator" / commit[:8] / "bin" / "manager"


def test_builds_its_manager_from_a_source_tree_into_the_cache(tmp_path: Path) -> None:
    proc = run(tmp_path, UPSTREAM_OPERATOR_SRC=str(source_tree(tmp_path / "src")))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{manager(tmp_path)}\n" and manager(tmp_path).read_text() == "built\n"
    (build,) = [line for line in (tmp_path / "go.log").read_text().splitlines() if " go build " in line]
    assert build.startswith(f"{manager(tmp_path).parent.parent / 'src'}: ")
    assert build.endswith(f"-o {manager(tmp_path)}.tmp ./cmd/manager")
    assert not (manager(tmp_path).parent.parent / "src").exists(), "the copied source is removed"
    # Built once: the next call prints the same path and runs no go at all.
    (tmp_path / "go.log").unlink()
    again = run(tmp_path, UPSTREAM_OPERATOR_SRC=str(tmp_path / "gone"))
    assert (again.returncode, again.stdout) == (0, proc.stdout) and not (tmp_path / "go.log").exists()


def test_a_tree_that_is_not_upstreams_operator_is_refused(tmp_path: Path) -> None:
    src = source_tree(tmp_path / "other")
    (src / "go.mod").write_text("module example.com/other\n")
    proc = run(tmp_path, UPSTREAM_OPERATOR_SRC=str(src))
    assert proc.returncode == 1
    assert "holds no ensemble-operator source" in proc.stderr.strip().splitlines()[-1]
    assert "go build" not in (tmp_path / "go.log").read_text()


@pytest.mark.skipif(shutil.which("git") is None, reason="git archive makes a tarball that records its commit")
def test_a_tarball_of_another_commit_is_refused(tmp_path: Path) -> None:
    repo = source_tree(tmp_path / "repo")
    tarball = tmp_path / "ensemble-operator.tar.gz"
    other = archive_of_a_new_commit(repo, tarball, "ensemble-operator")
    proc = run(tmp_path, UPSTREAM_OPERATOR_SRC=str(tarball))
    assert proc.returncode == 1
    assert f"is ensemble-operator commit {other}, not the pinned {COMMIT}" in proc.stderr.strip().splitlines()[-1]
    proc = run(tmp_path, UPSTREAM_OPERATOR_SRC=str(tarball), UPSTREAM_OPERATOR_COMMIT=other)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{manager(tmp_path, other)}\n"
