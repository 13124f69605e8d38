"""Imports point down the layers of docs/architecture.md ("Layers"), never up or sideways.

The layer table is read from the document itself, so the document and this check cannot
disagree: moving a package, or adding one, means editing that table. A module may import
its own package and packages of lower layers; packages of one layer are independent of each
other. ``hack/``, ``bench/`` and ``tests/`` may import anything, and nothing in ``controller/``
or ``api/`` imports them.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
CHECKED = ("controller", "api")                       # the packages the image ships
TABLE = re.compile(r"<!-- layers: .*? -->\n(.*?)<!-- /layers -->", re.S)
ROW = re.compile(r"^\|\s*(\d+)\s*\|([^|]*)\|", re.M)
UNIT = re.compile(r"`([\w.]+)`")


def layers_from(document: str) -> dict[str, int]:
    """``{unit: layer}`` from the marked table: a row per layer, its units in backticks."""
    table = TABLE.search(document)
    if table is None:
        raise AssertionError(f"{ARCHITECTURE.name}: no <!-- layers: ... --> table")
    layers: dict[str, int] = {}
    for number, cell in ROW.findall(table.group(1)):
        for unit in UNIT.findall(cell):
            if unit in layers:
                raise AssertionError(f"{ARCHITECTURE.name}: {unit} is in two layers")
            layers[unit] = int(number)
    return layers


def unit_of(module: str, layers: Mapping[str, int]) -> str | None:
    """The most specific unit ``module`` belongs to (``controller.kube.client`` -> ``controller.kube``)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in layers:
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``, inside functions too;
    ``from a import b`` yields ``a.b`` as well, since ``b`` may be a module."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def local_roots() -> set[str]:
    """Top-level names that would import this checkout's non-shipped code (tests, hack's modules)."""
    names = {"tests", "hack", "bench"}
    names |= {p.stem for p in (ROOT / "hack").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    return names


def violations(imports: Mapping[str, list[tuple[int, str]]], layers: Mapping[str, int],
               forbidden_roots: set[str]) -> list[str]:
    found = []
    for module, targets in imports.items():
        source = unit_of(module, layers)
        if source is None:
            found.append(f"{module}: in no layer of {ARCHITECTURE.name}")
            continue
        for line, target in targets:
            if target.split(".")[0] in forbidden_roots:
                found.append(f"{module}:{line} imports {target} (test or development code)")
                continue
            if target.split(".")[0] not in CHECKED:
                continue                                      # the standard library, third parties
            dest = unit_of(target, layers)
            if dest is None or dest == source:
                continue                                      # its own package (or the bare namespace)
            if layers[dest] >= layers[source]:
                way = "sideways" if layers[dest] == layers[source] else "upward"
                found.append(f"{module}:{line} imports {target}: {way}, layer {layers[source]} "
                             f"({source}) -> layer {layers[dest]} ({dest})")
    return sorted(set(found))


def shipped_modules() -> dict[str, list[tuple[int, str]]]:
    modules = {}
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = module_name(path)
            if name not in CHECKED:                            # the bare namespace packages
                modules[name] = list(imported(path))
    return modules


@pytest.fixture(scope="module")
def layers() -> dict[str, int]:
    return layers_from(ARCHITECTURE.read_text())


def test_no_module_imports_upward_or_sideways_across_the_documented_layers(layers) -> None:
    assert violations(shipped_modules(), layers, local_roots()) == []


def test_every_documented_unit_exists(layers) -> None:
    missing = [unit for unit in layers
               if not (ROOT / unit.replace(".", "/")).with_suffix(".py").exists()
               and not (ROOT / unit.replace(".", "/") / "__init__.py").exists()]
    assert missing == []


def test_each_documented_package_says_what_it_owns_and_may_import(layers) -> None:
    silent = []
    for unit in layers:
        init = ROOT / unit.replace(".", "/") / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text())) or ""
            if "May import" not in doc:
                silent.append(unit)
    assert silent == []


def test_the_check_finds_an_upward_a_sideways_and_a_test_import() -> None:
    layers = {"api": 0, "controller.kube": 1, "controller.runtime": 2, "controller.scaling": 2}
    imports = {"controller.kube.client": [(3, "controller.runtime.manager"), (4, "api.v1alpha1")],
               "controller.scaling.scaler": [(5, "controller.runtime"), (6, "controller.kube.errors")],
               "controller.runtime.manager": [(7, "tests.unit.helpers"), (8, "controller.runtime.cache")],
               "controller.elsewhere": []}
    assert violations(imports, layers, {"tests"}) == [
        "controller.elsewhere: in no layer of architecture.md",
        "controller.kube.client:3 imports controller.runtime.manager: upward, layer 1 (controller.kube) "
        "-> layer 2 (controller.runtime)",
        "controller.runtime.manager:7 imports tests.unit.helpers (test or development code)",
        "controller.scaling.scaler:5 imports controller.runtime: sideways, layer 2 (controller.scaling) "
        "-> layer 2 (controller.runtime)",
    ]


def test_the_table_is_read_row_by_row_and_a_unit_twice_is_an_error() -> None:
    doc = ("<!-- layers: x -->\n| Layer | Units |\n| --- | --- |\n| 0 | `api`, `controller.clock` |\n"
           "| 1 | `controller.kube` (the client) |\n<!-- /layers -->\n")
    assert layers_from(doc) == {"api": 0, "controller.clock": 0, "controller.kube": 1}
    with pytest.raises(AssertionError, match="controller.kube is in two layers"):
        layers_from(doc.replace("`controller.clock`", "`controller.kube`"))
