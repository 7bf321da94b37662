"""Seeded ARC-style tasks from families of grid transformations: `make_task(family, rng, task_id)`.

Every family draws its own hidden parameters (which symmetry, which colours, which direction...) once per
task, then applies the same rule to every input of the task, as an ARC problem does. Inputs are random
grids or random objects on a black background, at most `MAX_SIDE` cells a side so that the `mini` canvas
(64x64, 4-px cells) draws them. `INSIDE` families are pretrained on; `OUTSIDE` ones never are: `arcvdm
mini-bench` measures how far the few-shot LoRA gets on each.
"""

from __future__ import annotations

import random
from typing import Callable

import numpy as np

from arcvdm.tasks import Grid, Pair, Task

MAX_SIDE = 10  # 10 cells of 4 px with 2-px lines fill 62 of 64 px
Rule = Callable[[np.ndarray], np.ndarray]
Family = Callable[[random.Random], tuple[Callable[[random.Random], np.ndarray], Rule]]
FAMILIES: dict[str, Family] = {}


def family(name: str):
    def register(fn: Family) -> Family:
        FAMILIES[name] = fn
        return fn

    return register


def _colours(rng: random.Random, n: int) -> list[int]:
    return rng.sample(range(1, 10), n)


def noise_grid(rng: random.Random, max_side: int = MAX_SIDE, min_side: int = 2, density: float | None = None,
               colours: list[int] | None = None) -> np.ndarray:
    """Scattered random cells of a few colours on 0."""
    h, w = rng.randint(min_side, max_side), rng.randint(min_side, max_side)
    colours = colours or _colours(rng, rng.randint(1, 4))
    density = rng.uniform(0.2, 0.7) if density is None else density
    g = np.zeros((h, w), dtype=np.uint8)
    for r in range(h):
        for c in range(w):
            if rng.random() < density:
                g[r, c] = rng.choice(colours)
    return g


def object_grid(rng: random.Random, max_side: int = MAX_SIDE, min_side: int = 4, objects: int | None = None,
                max_object: int = 3, solid: bool = False) -> np.ndarray:
    """A few random connected-looking objects (random sub-masks of small boxes) on 0, not overlapping."""
    h, w = rng.randint(min_side, max_side), rng.randint(min_side, max_side)
    g = np.zeros((h, w), dtype=np.uint8)
    for _ in range(rng.randint(1, 3) if objects is None else objects):
        oh, ow = rng.randint(1, min(max_object, h)), rng.randint(1, min(max_object, w))
        r, c = rng.randint(0, h - oh), rng.randint(0, w - ow)
        if g[max(r - 1, 0) : r + oh + 1, max(c - 1, 0) : c + ow + 1].any():
            continue
        colour = rng.randint(1, 9)
        for dr in range(oh):
            for dc in range(ow):
                if solid or rng.random() < 0.75 or (dr, dc) == (0, 0):
                    g[r + dr, c + dc] = colour
    return g


def _any_input(rng: random.Random, max_side: int = MAX_SIDE) -> np.ndarray:
    return noise_grid(rng, max_side) if rng.random() < 0.5 else object_grid(rng, max_side)


# --- inside: pretrained on -----------------------------------------------------------------------------------

_SYMMETRIES: list[Rule] = [np.fliplr, np.flipud, lambda a: np.rot90(a, 1), lambda a: np.rot90(a, 2),
                           lambda a: np.rot90(a, 3), lambda a: a.T, lambda a: np.rot90(a, 2).T]


@family("symmetry")
def _symmetry(rng):
    return _any_input, rng.choice(_SYMMETRIES)


@family("colour-permutation")
def _colour_permutation(rng):
    table = np.array([0, *rng.sample(range(1, 10), 9)], dtype=np.uint8)
    return _any_input, lambda a: table[a]


@family("recolour")
def _recolour(rng):
    src, dst = rng.sample(range(0, 10) if rng.random() < 0.2 else range(1, 10), 2)
    others = [c for c in range(1, 10) if c not in (src, dst)]

    def make(r: random.Random) -> np.ndarray:
        g = noise_grid(r, colours=[src, *r.sample(others, r.randint(0, 2))])
        g[r.randrange(g.shape[0]), r.randrange(g.shape[1])] = src  # the rule always has something to do
        return g

    def rule(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[a == src] = dst
        return out

    return make, rule


@family("translate")
def _translate(rng):
    dy, dx = rng.choice([(0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (0, 2), (2, 0)])

    def rule(a: np.ndarray) -> np.ndarray:
        out = np.zeros_like(a)
        h, w = a.shape
        out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
        return out

    return (lambda r: object_grid(r)), rule


@family("gravity")
def _gravity(rng):
    k = rng.randrange(4)  # fall towards the bottom after rotating by k quarter turns

    def down(a: np.ndarray) -> np.ndarray:
        out = np.zeros_like(a)
        for c in range(a.shape[1]):
            column = a[:, c][a[:, c] != 0]
            if len(column):
                out[-len(column) :, c] = column
        return out

    return (lambda r: noise_grid(r, density=r.uniform(0.1, 0.4))), lambda a: np.rot90(down(np.rot90(a, k)), -k)


@family("scale-2")
def _scale_2(rng):
    return (lambda r: _any_input(r, MAX_SIDE // 2)), lambda a: np.kron(a, np.ones((2, 2), dtype=np.uint8))


@family("crop")
def _crop(rng):
    def make(r: random.Random) -> np.ndarray:
        return object_grid(r, min_side=5, objects=1, max_object=4)

    def rule(a: np.ndarray) -> np.ndarray:
        rows, cols = np.nonzero(a)
        return a[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]

    return make, rule


@family("border")
def _border(rng):
    colour = rng.randint(1, 9)

    def rule(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[0, :] = out[-1, :] = out[:, 0] = out[:, -1] = colour
        return out

    return (lambda r: noise_grid(r, min_side=3, density=r.uniform(0.0, 0.3))), rule


def _boxes(r: random.Random, outline: int | None = None, filled: bool = False) -> np.ndarray:
    """1-2 rectangles at least 3x3 on 0: outlines (of colour `outline` or random) or solid."""
    h, w = r.randint(5, MAX_SIDE), r.randint(5, MAX_SIDE)
    g = np.zeros((h, w), dtype=np.uint8)
    for _ in range(r.randint(1, 2)):
        bh, bw = r.randint(3, min(6, h)), r.randint(3, min(6, w))
        top, left = r.randint(0, h - bh), r.randint(0, w - bw)
        if g[max(top - 1, 0) : top + bh + 1, max(left - 1, 0) : left + bw + 1].any():
            continue
        colour = outline or r.randint(1, 9)
        g[top : top + bh, left : left + bw] = colour
        if not filled:
            g[top + 1 : top + bh - 1, left + 1 : left + bw - 1] = 0
    if not g.any():
        g[: 3, : 3] = outline or 1
        if not filled:
            g[1, 1] = 0
    return g


@family("fill-enclosed")
def _fill_enclosed(rng):
    colour = rng.randint(1, 9)

    def rule(a: np.ndarray) -> np.ndarray:
        from scipy.ndimage import binary_fill_holes

        out = a.copy()
        out[binary_fill_holes(a != 0) & (a == 0)] = colour
        return out

    return (lambda r: _boxes(r)), rule


@family("tile")
def _tile(rng):
    reps = rng.choice([(1, 2), (2, 1), (2, 2)])
    return (lambda r: _any_input(r, MAX_SIDE // 2)), lambda a: np.tile(a, reps)


@family("move-object")
def _move_object(rng):
    k = rng.randrange(4)  # move every object as a whole to the bottom, after k quarter turns

    def down(a: np.ndarray) -> np.ndarray:
        rows = np.nonzero(a.any(axis=1))[0]
        return np.roll(a, a.shape[0] - 1 - rows.max(), axis=0)

    return (lambda r: object_grid(r, objects=1, max_object=4)), lambda a: np.rot90(down(np.rot90(a, k)), -k)


# --- outside: never pretrained on -----------------------------------------------------------------------------

@family("mirror-extend")
def _mirror_extend(rng):
    axis = rng.randrange(2)  # the grid followed by its mirror image, to the right or below
    return (lambda r: _any_input(r, MAX_SIDE // 2)), lambda a: np.concatenate([a, np.flip(a, axis=1 - axis)], axis=1 - axis)


@family("outline")
def _outline(rng):
    def rule(a: np.ndarray) -> np.ndarray:
        from scipy.ndimage import binary_erosion

        out = a.copy()
        out[binary_erosion(a != 0)] = 0  # solid boxes keep only their border cells
        return out

    return (lambda r: _boxes(r, filled=True)), rule


@family("extend-lines")
def _extend_lines(rng):
    k = rng.randrange(4)  # every coloured cell shoots a ray of its colour to the edge (right, after k quarter turns)

    def right(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        for r in range(a.shape[0]):
            for c in range(a.shape[1]):
                if a[r, c] and not out[r, c + 1 :].any():
                    out[r, c:] = a[r, c]
        return out

    return (lambda r: noise_grid(r, density=r.uniform(0.05, 0.15))), lambda a: np.rot90(right(np.rot90(a, k)), -k)


OUTSIDE: tuple[str, ...] = ("mirror-extend", "outline", "extend-lines")
INSIDE: tuple[str, ...] = tuple(name for name in FAMILIES if name not in OUTSIDE)


def make_pairs(name: str, rng: random.Random, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n` (input, output) arrays of one task of family `name`: one hidden rule, distinct non-trivial inputs."""
    make, rule = FAMILIES[name](rng)
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    seen: set[bytes] = set()
    for _ in range(50 * n):
        a = make(rng)
        if not a.any():
            continue
        b = np.ascontiguousarray(rule(a))
        key = a.tobytes() + bytes(a.shape)
        if key in seen or max(b.shape) > MAX_SIDE or (a.shape == b.shape and (a == b).all()):
            continue
        seen.add(key)
        pairs.append((a, b))
        if len(pairs) == n:
            return pairs
    raise RuntimeError(f"family {name}: could not draw {n} distinct non-trivial pairs")


def make_task(name: str, rng: random.Random, task_id: str, train: int, test: int) -> Task:
    """A `Task` of family `name` with `train` + `test` pairs (test outputs included, for scoring)."""
    pairs = [Pair(input=Grid.from_array(a), output=Grid.from_array(b)) for a, b in make_pairs(name, rng, train + test)]
    return Task(id=task_id, train=pairs[:train], test=pairs[train:], concept=name)
