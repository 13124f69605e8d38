"""The committed stubs match the proto, and the proto matches ensemble-python's wire."""
from __future__ import annotations

import filecmp
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from controller.proto import ensemble_service_pb2 as pb2
from controller.proto.limits import message_size_options

ROOT = Path(__file__).resolve().parents[2]
STUBS = ("ensemble_service_pb2.py", "ensemble_service_pb2_grpc.py", "ensemble_service_pb2.pyi")


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run(["bash", str(ROOT / "hack" / "gen_protos.sh"), str(tmp_path)], check=True,
                   env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    stale = [name for name in STUBS if not filecmp.cmp(tmp_path / name, ROOT / "controller" / "proto" / name,
                                                      shallow=False)]
    assert stale == [], f"stale stubs {stale}: run `make protos`"


def test_grpc_stub_imports_messages_package_relative() -> None:
    text = (ROOT / "controller" / "proto" / "ensemble_service_pb2_grpc.py").read_text()
    assert "from . import ensemble_service_pb2 as" in text


def _fields(descriptor) -> dict[str, tuple[int, int]]:
    return {field.name: (field.number, field.type) for field in descriptor.fields}


def test_wire_matches_ensemble_python() -> None:
    # ensemble-python registers the same proto file name in the default descriptor pool, so its
    # module cannot be imported next to ours: read its serialized descriptor in a child process.
    script = ("from ensemble.protos import ensemble_service_pb2 as p; import sys; "
              "sys.stdout.buffer.write(p.DESCRIPTOR.serialized_pb)")
    theirs_bytes = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True).stdout
    from google.protobuf import descriptor_pb2

    theirs = descriptor_pb2.FileDescriptorProto.FromString(theirs_bytes)
    ours = descriptor_pb2.FileDescriptorProto()
    pb2.DESCRIPTOR.CopyToProto(ours)
    assert ours.package == theirs.package == "convergedcomputing.org.grpc.v1"

    def messages(file: descriptor_pb2.FileDescriptorProto) -> dict:
        return {m.name: {f.number: (f.type, f.label) for f in m.field} for m in file.message_type}

    def enums(file: descriptor_pb2.FileDescriptorProto) -> dict:
        return {(m.name, e.name): [(v.name, v.number) for v in e.value]
                for m in file.message_type for e in m.enum_type}

    def methods(file: descriptor_pb2.FileDescriptorProto) -> dict:
        return {m.name: (m.input_type, m.output_type) for s in file.service for m in s.method}

    for name, fields in messages(theirs).items():
        assert messages(ours)[name] == fields, name
    assert enums(ours) == enums(theirs)
    assert methods(theirs).items() <= methods(ours).items()
    assert methods(ours)["RequestUpdate"] == (".convergedcomputing.org.grpc.v1.UpdateRequest",
                                              ".convergedcomputing.org.grpc.v1.Response")
    assert {v.name: v.number for v in pb2.Response.DESCRIPTOR.enum_types_by_name["ResultType"].values} == {
        "UNSPECIFIED": 0, "SUCCESS": 1, "ERROR": 2, "DENIED": 3, "EXISTS": 4}
    assert _fields(pb2.UpdateRequest.DESCRIPTOR) == {
        "member": (1, 9), "algorithm": (2, 9), "options": (3, 9), "payload": (4, 9)}


@pytest.mark.parametrize("bad", [0, 1023, True, 65536.0])
def test_a_message_size_limit_below_1_kib_or_not_an_integer_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=f"max message bytes: must be an integer >= 1024, got {bad!r}"):
        message_size_options(bad)  # type: ignore[arg-type]


def test_the_default_limits_cap_both_directions_at_64_kib() -> None:
    assert dict(message_size_options()) == {"grpc.max_receive_message_length": 65536,
                                            "grpc.max_send_message_length": 65536}


def _requirements(names: list[str]) -> dict[str, Requirement]:
    return {Requirement(line).name: Requirement(line) for line in names}


def _lower_bound(requirement: Requirement) -> str:
    (bound,) = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==")]
    return bound


def test_dependency_bounds_are_the_versions_the_generated_stubs_require() -> None:
    """The stubs refuse to import below the versions that generated them; pyproject.toml must
    not promise older ones (it said grpcio>=1.60, protobuf>=4.25 while the stubs needed 1.85.1, 7.35.1)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    grpc_stub = (ROOT / "controller/proto/ensemble_service_pb2_grpc.py").read_text()
    message_stub = (ROOT / "controller/proto/ensemble_service_pb2.py").read_text()
    grpc_needed = re.search(r"^GRPC_GENERATED_VERSION = '([0-9.]+)'$", grpc_stub, re.M).group(1)
    protobuf_needed = ".".join(re.search(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),",
        message_stub).groups())
    runtime = _requirements(project["dependencies"])
    assert _lower_bound(runtime["grpcio"]) == grpc_needed
    assert _lower_bound(runtime["grpcio-health-checking"]) == grpc_needed
    assert _lower_bound(runtime["protobuf"]) == protobuf_needed
    tools = _requirements(project["optional-dependencies"]["test"])["grpcio-tools"]
    assert str(tools.specifier) == f"=={grpc_needed}"     # the generator of the committed stubs
