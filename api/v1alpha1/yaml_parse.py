"""``yaml.safe_load`` as ensemble-python runs it, through libyaml where the two cannot differ.

ensemble-python loads ensemble.yaml with PyYAML's pure-Python ``safe_load``, so its verdict
is the one to match. Parsing that way costs about 0.5 ms for a ten-line file, a tenth of the
CPU the operator spends on a new Ensemble (bench/bench_scale.py). PyYAML's C parser
(libyaml) is about 5x faster and builds values with the same Python constructor and
resolver, but its scanner differs at the edges: it accepts a comment glued to a block scalar
header (``|2#``) and a flow key without a space after its colon, treats tabs otherwise, and
parses nesting without Python's recursion limit (tests/compat/ensemble_yaml/edge/yaml-*).

So libyaml parses only texts kept to a subset where no difference was found: printable
ASCII without tabs, anchors, aliases, tags, directives or complex keys; every ``#`` after a
space or at a line start; every ``:`` before a space or a line end; indentation under 33
columns, no sequence opened inline in a sequence item, flow collections nested at most 8
deep. Anything else, and any text libyaml refuses, takes ``safe_load`` itself, so errors
(and their line and column) are always PyYAML's. Measured before this was used: 0
differences between the two on 40,000 mutations of the corpus files and 13,000 generated
texts inside the subset; tests/unit/test_yaml_parse.py keeps a seeded share of that check.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

# Characters of the subset (note the absence of tab, "&", "*", "!", "%", "?", "@" and "`").
_SUBSET_TEXT = re.compile(r"[a-zA-Z0-9 \n\-_.:/,=+()$;~^<>#|\"'\\{}\[\]]*")
# Inside the characters, what libyaml and PyYAML were seen to read differently, or what
# nests deeper than this fast path takes: a "#" glued to what precedes it, a ":" glued to
# what follows, a line indented past 32 columns, "- -" (a sequence opened in an item).
_OUTSIDE = re.compile(r"[^ \n]#|:[^ \n]|\n {33,}|-[ ]+-(?:[ \n]|$)")
_FLOW_BRACKETS = re.compile(r"[\[\]{}]")
MAX_FLOW_DEPTH = 8

_C_LOADER: type | None = getattr(yaml, "CSafeLoader", None)


def in_fast_subset(text: str) -> bool:
    """Whether libyaml may parse ``text`` (see the module's docstring)."""
    if not _SUBSET_TEXT.fullmatch(text) or _OUTSIDE.search(text):
        return False
    depth = 0
    for bracket in _FLOW_BRACKETS.finditer(text):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_FLOW_DEPTH:
            return False
    return True


def safe_load(text: str) -> Any:
    """``yaml.safe_load(text)``: the same value, or the same error raised by PyYAML itself."""
    if _C_LOADER is not None and in_fast_subset(text):
        try:
            return yaml.load(text, Loader=_C_LOADER)  # noqa: S506 (CSafeLoader: the safe constructor)
        except yaml.YAMLError:
            pass  # PyYAML says what is wrong, with its own line and column
    return yaml.safe_load(text)
