"""yaml_parse.safe_load: libyaml only inside the subset, and there the same as yaml.safe_load."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from api.v1alpha1 import yaml_parse
from api.v1alpha1.yaml_parse import in_fast_subset, safe_load

CORPUS = Path(__file__).resolve().parents[1] / "compat" / "ensemble_yaml"
CORPUS_TEXTS = [path.read_text() for path in sorted(CORPUS.glob("*/*.yaml"))]
# What mutations insert: the subset's structure and the characters libyaml reads differently.
PIECES = ["{", "}", "[", "]", ", ", "{a: b}", "- ", ": ", ":", "#", " #", "|", ">", "|2", ">-", "'", '"',
          "\\", "\n", "\n  ", "\n- ", " ", "  ", "a", "0", "1e3", "yes", "~", "...", "---", "-", "\t", "&a", "*a",
          "!!str ", "%", "?", "@", "\u00e9"]


def _outcome(load) -> tuple:
    try:
        return ("value", repr(load()))
    except yaml.YAMLError as err:
        return ("error", str(err))
    except RecursionError:
        return ("recursion",)


def _mutated(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text) + 1)
        choice = rng.random()
        if choice < 0.5:
            text = text[:at] + rng.choice(PIECES) + text[at:]
        elif choice < 0.8:
            text = text[:at] + text[at + rng.randint(1, 3):]
        else:
            lines = text.split("\n")
            line = rng.randrange(len(lines))
            lines[line] = " " * rng.randint(1, 3) + lines[line]
            text = "\n".join(lines)
    return text


def test_most_upstream_files_take_the_fast_path() -> None:
    upstream = [path.read_text() for path in sorted((CORPUS / "upstream").glob("*.yaml"))]
    assert sum(map(in_fast_subset, upstream)) >= len(upstream) - 2


@pytest.mark.parametrize("text", [
    "jobs:\n  - {name: a, command:\tsleep 1}\n",          # a tab
    "jobs:\n  - {name: a}\nrules:\n  - {action:{name: submit}}\n",  # a flow key glued to its value
    "custom: |2#x\n  a\n",                                # a comment glued to a block scalar header
    "a: &x 1\nb: *x\n",                                   # anchors and aliases
    "a: !!str 1\n",                                       # a tag
    "%YAML 1.1\n---\na: 1\n",                             # a directive
    "? a\n: b\n",                                         # a complex key
    "a: caf\u00e9\n",                                     # not ASCII
    "a:\n" + "".join(" " * (2 * depth) + "b:\n" for depth in range(1, 18)),  # indented past 32 columns
    "- - - - a\n",                                        # sequences opened inline
    "a: " + "[" * 9 + "]" * 9 + "\n",                     # flow nested past 8
])
def test_texts_outside_the_subset_take_pure_python(text: str) -> None:
    assert not in_fast_subset(text)


def test_within_the_subset_libyaml_parses() -> None:
    text = "jobs:\n  - {name: a, command: echo hi, count: 2}\nrules:\n  - trigger: start\n    action: {name: submit, label: a}\n"
    assert in_fast_subset(text)
    assert safe_load(text) == yaml.safe_load(text)


def test_an_error_is_pure_pythons_own_with_its_line_and_column() -> None:
    text = "jobs:\n  - name: a\n   bad: indentation\n"
    assert in_fast_subset(text)
    with pytest.raises(yaml.YAMLError) as ours:
        safe_load(text)
    with pytest.raises(yaml.YAMLError) as theirs:
        yaml.safe_load(text)
    assert str(ours.value) == str(theirs.value)


def test_without_libyaml_everything_takes_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_parse, "_C_LOADER", None)
    text = "jobs: []\nrules: []\n"
    assert safe_load(text) == {"jobs": [], "rules": []}


def test_mutated_corpus_files_load_as_yaml_safe_load_loads_them() -> None:
    """A seeded share of the check made before libyaml was used (the module's docstring):
    value, or error text, the same as yaml.safe_load's on 1,000 mutations of the corpus."""
    rng = random.Random(20261207)
    inside = mismatches = 0
    for _ in range(1000):
        text = _mutated(rng, rng.choice(CORPUS_TEXTS))
        if not in_fast_subset(text):
            continue  # yaml.safe_load itself (aliases could make the comparison's repr explode)
        inside += 1
        if _outcome(lambda: safe_load(text)) != _outcome(lambda: yaml.safe_load(text)):
            mismatches += 1
    assert inside > 400  # most mutations stay inside: the check is of the fast path
    assert mismatches == 0
