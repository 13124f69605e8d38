"""Garbage-collector settings for the long-running operator process.

Two costs of CPython's defaults, measured in a burst of 400 new Ensembles
(bench/bench_scale.py's wiring, time spent inside collections, one run each):

- the objects alive once the process is wired (modules, compiled regexes and schemas,
  protobuf descriptors: ~57,000 tracked objects) never become garbage, yet every full
  collection walks them again: one full collection took 83 ms of the burst;
- a young collection every 700 net allocations (the default threshold) runs every few
  reconciles and promotes API objects that die a moment later to older generations, which
  are scanned again.

Defaults: 0.38 ms per Ensemble in collections (104 young, 9 middle, 1 full); start-up objects
frozen: 0.13; young threshold 10,000: 0.09; both: 0.08 (7 young, no other). Objects stay freed
by reference counting as before (API objects are acyclic JSON); only cycles wait longer, at
most 10,000 allocations, for a young collection.
"""
from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 10_000


def tune_garbage_collector(young_threshold: int = YOUNG_GENERATION_THRESHOLD) -> None:
    """Freeze what is alive now (call once the process is wired, before it starts work) and
    raise the young generation's threshold; the older generations keep theirs."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
