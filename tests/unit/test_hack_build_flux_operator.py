"""hack/build-flux-operator.sh with a `go` that records its calls: what it builds from where,
when it does nothing, and the one-line errors it stops with."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes import archive_of_a_new_commit, fake_go

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "build-flux-operator.sh"
COMMIT = "0d75cef855dee5351d68e32ec139a70e892b5268"
MODULE = "module github.com/flux-framework/flux-operator\n\ngo 1.24\n"


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    fake_go(tmp_path / "bin", tmp_path / "go.log")
    full_env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
                "ENSEMBLE_CACHE": str(tmp_path / "cache"), **env}
    return subprocess.run(["bash", str(SCRIPT)], env=full_env, capture_output=True, text=True, timeout=60)


def source_tree(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "go.mod").write_text(MODULE)
    (path / "main.go").write_text("package main\n\nfunc main() {}\n")
    return path


def manager(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "flux-operator" / COMMIT[:8] / "bin" / "manager"


def test_builds_from_a_source_tree_into_the_cache_and_prints_the_binary(tmp_path: Path) -> None:
    src = source_tree(tmp_path / "src")
    proc = run(tmp_path, FLUX_OPERATOR_SRC=str(src))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{manager(tmp_path)}\n"
    assert manager(tmp_path).read_text() == "built\n"
    build = [line for line in (tmp_path / "go.log").read_text().splitlines() if " go build " in line]
    assert len(build) == 1 and build[0].endswith(f"-o {manager(tmp_path)}.tmp .")
    assert not (manager(tmp_path).parent.parent / "src").exists(), "the unpacked source is removed"


def test_an_existing_binary_is_a_no_op_that_needs_no_go(tmp_path: Path) -> None:
    manager(tmp_path).parent.mkdir(parents=True)
    manager(tmp_path).write_text("old\n")
    manager(tmp_path).chmod(0o755)
    (tmp_path / "bin").mkdir()
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "ENSEMBLE_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{manager(tmp_path)}\n" and manager(tmp_path).read_text() == "old\n"


@pytest.mark.skipif(shutil.which("go", path="/usr/bin:/bin") is not None, reason="a Go in /usr/bin or /bin is found")
def test_without_go_it_says_to_install_it(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "ENSEMBLE_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("build-flux-operator: error: Go is not installed")


def test_a_missing_source_is_named_in_one_line(tmp_path: Path) -> None:
    proc = run(tmp_path, FLUX_OPERATOR_SRC=str(tmp_path / "nowhere"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"build-flux-operator: error: FLUX_OPERATOR_SRC={tmp_path / 'nowhere'} is neither a tarball nor a directory")
    assert not manager(tmp_path).exists()


def test_a_tree_that_is_not_the_flux_operator_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "other"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/other\n")
    (src / "main.go").write_text("package main\n")
    proc = run(tmp_path, FLUX_OPERATOR_SRC=str(src))
    assert proc.returncode == 1
    assert "holds no Flux Operator source" in proc.stderr.strip().splitlines()[-1]
    assert "go build" not in (tmp_path / "go.log").read_text()


@pytest.mark.skipif(shutil.which("git") is None, reason="git archive makes a tarball that records its commit")
def test_a_tarball_of_another_commit_is_refused(tmp_path: Path) -> None:
    repo = source_tree(tmp_path / "repo")
    tarball = tmp_path / "flux-operator.tar.gz"
    other = archive_of_a_new_commit(repo, tarball, "flux-operator")
    proc = run(tmp_path, FLUX_OPERATOR_SRC=str(tarball))
    assert proc.returncode == 1
    assert f"is flux-operator commit {other}, not the pinned {COMMIT}" in proc.stderr.strip().splitlines()[-1]
    # The same tarball is built when it is the commit asked for.
    proc = run(tmp_path, FLUX_OPERATOR_SRC=str(tarball), FLUX_OPERATOR_COMMIT=other)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(f"/flux-operator/{other[:8]}/bin/manager")


def test_go_build_output_goes_to_a_log_not_the_terminal(tmp_path: Path) -> None:
    proc = run(tmp_path, FLUX_OPERATOR_SRC=str(source_tree(tmp_path / "src")))
    assert proc.returncode == 0, proc.stderr
    assert "go: downloading" not in proc.stderr
    build_log = manager(tmp_path).parent.parent / "go-build.log"
    assert "go: downloading example.com/dep v1.0.0" in build_log.read_text()
    assert f"output in {build_log}" in proc.stderr


def test_a_failed_go_build_shows_the_end_of_its_log_and_one_error_line(tmp_path: Path) -> None:
    proc = run(tmp_path, FLUX_OPERATOR_SRC=str(source_tree(tmp_path / "src")),
               FAKE_GO_BUILD_ERROR="./main.go:3:1: syntax error")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert "./main.go:3:1: syntax error" in lines
    assert lines[-1].startswith("build-flux-operator: error: go build of the Flux Operator failed")
    assert not manager(tmp_path).exists()
