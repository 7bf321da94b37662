"""Whether a generated task's train pairs fix its test outputs within its family: `arcvdm mini-bench` counts such
tasks per side, so a strict score is read against what a solver that knew the family could reach.

A family draws its hidden parameters from its rng (arcvdm/pretrain/generator.py); its rules are collected by drawing
it under `DRAWS` seeds. Every family but one has a handful of discrete parameters (recolour, the most, 90 pairs of
colours), which these seeds cover (tests/test_mini.py). colour-permutation's 9! tables are not drawn: a permutation
shown by the train pairs fixes exactly the colours they show, so a test input holding another colour is left open.
"""

from __future__ import annotations

import functools
import random

import numpy as np

from arcvdm.pretrain.generator import FAMILIES, Rule
from arcvdm.tasks import Task

DRAWS = 2000


@functools.cache
def drawn_rules(name: str) -> tuple[Rule, ...]:
    return tuple(FAMILIES[name](random.Random(f"arcvdm-mini/determinacy/{name}/{s}"))[1] for s in range(DRAWS))


def _fits(rule: Rule, a: np.ndarray, b: np.ndarray) -> bool:
    out = rule(a)
    return out.shape == b.shape and bool((out == b).all())


def _key(grid: np.ndarray) -> bytes:
    return np.ascontiguousarray(grid).tobytes() + bytes(grid.shape)


def determined(task: Task) -> bool:
    """True when every rule of the task's family (`task.concept`) that maps its train inputs to their outputs gives
    the same test outputs."""
    train = [(p.input.array, p.output.array) for p in task.train]
    tests = [p.input.array for p in task.test]
    if task.concept == "colour-permutation":
        shown = {0, *(int(c) for a, _ in train for c in np.unique(a))}  # 0 is always kept
        return all(set(np.unique(a).tolist()) <= shown for a in tests)
    answers = {tuple(_key(rule(a)) for a in tests)
               for rule in drawn_rules(task.concept) if all(_fits(rule, a, b) for a, b in train)}
    return len(answers) == 1
