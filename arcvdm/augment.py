"""Invertible augmentations of whole ARC problems: the 8 symmetries of the square times colour permutations that keep 0 fixed."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, replace
from typing import Any, Callable, TypeVar

import numpy as np

from arcvdm.codec import MIN_CELL, CanvasPlan, extent
from arcvdm.errors import ArcvdmError
from arcvdm.tasks import Grid, Pair, Task

# The dihedral group D8 in a fixed order: the index is what configs and result files store.
# Rotations are counter-clockwise (np.rot90); flip-h mirrors left-right, flip-v top-bottom;
# transpose mirrors across the main diagonal, anti-transpose across the other one.
SYMMETRIES: tuple[str, ...] = ("identity", "rot90", "rot180", "rot270", "flip-h", "flip-v", "transpose", "anti-transpose")
_FORWARD: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    lambda a: a,
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 2),
    lambda a: np.rot90(a, 3),
    np.fliplr,
    np.flipud,
    lambda a: a.T,
    lambda a: np.rot90(a, 2).T,
)
# rot90 and rot270 undo each other; every other element is its own inverse.
INVERSE_SYMMETRY: tuple[int, ...] = (0, 3, 2, 1, 4, 5, 6, 7)
IDENTITY_COLORS: tuple[int, ...] = tuple(range(10))
MAX_COLOR_MAPS = math.factorial(9)  # permutations of colours 1-9

G = TypeVar("G", Grid, np.ndarray)


@dataclass(frozen=True)
class Transform:
    """One view of a problem: symmetry `SYMMETRIES[symmetry]`, then colour c becomes `colors[c]` (0 stays 0).

    `apply` and `invert` take a `Grid` (returning a `Grid`) or a 2-D integer array (returning an array);
    `invert(apply(g)) == g` exactly.
    """

    symmetry: int = 0
    colors: tuple[int, ...] = IDENTITY_COLORS

    def __post_init__(self) -> None:
        if isinstance(self.symmetry, bool) or not isinstance(self.symmetry, int) or not 0 <= self.symmetry < 8:
            raise ArcvdmError(f"transform: symmetry {self.symmetry!r} must be an index 0-7 into {', '.join(SYMMETRIES)}")
        try:
            colors = tuple(int(c) for c in self.colors)
        except (TypeError, ValueError):
            colors = ()
        if sorted(colors) != list(IDENTITY_COLORS) or colors[0] != 0:
            raise ArcvdmError(f"transform: colours {self.colors!r} must be a permutation of 0-9 that keeps 0 at 0")
        object.__setattr__(self, "colors", colors)

    @property
    def is_identity(self) -> bool:
        return self.symmetry == 0 and self.colors == IDENTITY_COLORS

    @property
    def name(self) -> str:
        """`identity`, `rot90`, or `rot90+c213456789` (the images of colours 1-9): unique, and usable in file names."""
        if self.colors == IDENTITY_COLORS:
            return SYMMETRIES[self.symmetry]
        return f"{SYMMETRIES[self.symmetry]}+c{''.join(map(str, self.colors[1:]))}"

    def __repr__(self) -> str:
        return f"<Transform {self.name}>"

    @property
    def inverse(self) -> "Transform":
        inverse_colors = [0] * 10
        for c, mapped in enumerate(self.colors):
            inverse_colors[mapped] = c
        return Transform(INVERSE_SYMMETRY[self.symmetry], tuple(inverse_colors))

    def apply(self, grid: G) -> G:
        return _map(grid, lambda a: np.asarray(self.colors, dtype=np.uint8)[_FORWARD[self.symmetry](a)])

    def invert(self, grid: G) -> G:
        return self.inverse.apply(grid)

    def apply_task(self, task: Task) -> Task:
        """The same problem seen through this transform: every train and test pair alike (test outputs too when present)."""

        def pair(p: Pair) -> Pair:
            return Pair(input=self.apply(p.input), output=None if p.output is None else self.apply(p.output))

        return Task(
            id=task.id,
            train=[pair(p) for p in task.train],
            test=[pair(p) for p in task.test],
            concept=task.concept,
            source=task.source,
        )

    def to_json(self) -> dict[str, Any]:
        return {"symmetry": SYMMETRIES[self.symmetry], "colors": list(self.colors)}

    @classmethod
    def from_json(cls, data: Any) -> "Transform":
        """Inverse of `to_json`; `symmetry` may be a name or an index."""
        if not isinstance(data, dict) or "symmetry" not in data or "colors" not in data:
            raise ArcvdmError(f"transform: expected an object with 'symmetry' and 'colors', got {data!r:.60}")
        symmetry = data["symmetry"]
        if isinstance(symmetry, str):
            if symmetry not in SYMMETRIES:
                raise ArcvdmError(f"transform: unknown symmetry {symmetry!r}; one of {', '.join(SYMMETRIES)}")
            symmetry = SYMMETRIES.index(symmetry)
        return cls(symmetry, tuple(data["colors"]))


IDENTITY = Transform()


def _map(grid: G, fn: Callable[[np.ndarray], np.ndarray]) -> G:
    if isinstance(grid, Grid):
        return Grid.from_array(fn(grid.array))
    array = np.asarray(grid)
    if array.ndim != 2:
        raise ArcvdmError(f"transform: expected a 2-D grid, got an array of shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() > 9):
        raise ArcvdmError(f"transform: grid values must be colours 0-9, got {array.min()}..{array.max()}")
    return fn(array.astype(np.uint8, copy=False)).astype(array.dtype, copy=True)


def sample_transforms(n_symmetries: int, n_color_maps: int, seed: int) -> list[Transform]:
    """`n_symmetries` x `n_color_maps` distinct transforms, deterministic for a seed, with the identity first.

    The identity symmetry is always kept and the other n_symmetries - 1 are drawn from the remaining 7
    (8 = all of them); the identity colours are always kept and n_color_maps - 1 distinct permutations of
    colours 1-9 are drawn. After the identity, the product comes in a seeded shuffled order, so any prefix
    (e.g. the first V inference views) mixes symmetries and colour maps.
    """
    if isinstance(n_symmetries, bool) or not isinstance(n_symmetries, int) or not 1 <= n_symmetries <= 8:
        raise ArcvdmError(f"augment.symmetries = {n_symmetries!r}: must be 1-8 (1 = identity only, 8 = all of D8)")
    if isinstance(n_color_maps, bool) or not isinstance(n_color_maps, int) or not 1 <= n_color_maps <= MAX_COLOR_MAPS:
        raise ArcvdmError(f"augment.color_maps = {n_color_maps!r}: must be 1-{MAX_COLOR_MAPS} (1 = identity colours only)")
    rng = random.Random(seed)
    symmetries = [0] + sorted(rng.sample(range(1, 8), n_symmetries - 1))
    color_maps = [IDENTITY_COLORS]
    seen = {IDENTITY_COLORS}
    while len(color_maps) < n_color_maps:
        perm = list(range(1, 10))
        rng.shuffle(perm)
        colors = (0, *perm)
        if colors not in seen:
            seen.add(colors)
            color_maps.append(colors)
    rest = [Transform(s, c) for s, c in itertools.product(symmetries, color_maps)][1:]
    rng.shuffle(rest)
    return [IDENTITY, *rest]


def augmented_tasks(task: Task, transforms: list[Transform]) -> list[Task]:
    """`task` seen through each transform, in the order given."""
    return [t.apply_task(task) for t in transforms]


def redraw_placement(plan: CanvasPlan, rng: random.Random, min_scale: float = 0.5) -> CanvasPlan:
    """An `anchored` plan with a random cell size (min_scale to 1 times the plan's) and a random origin.

    Translation and scale augmentation for training videos: every grid the plan was made for (with its
    marker) still fits, and the decoder reads any such plan. Inference keeps the canonical plan.
    """
    if plan.layout != "anchored":
        raise ArcvdmError(f"placement re-draw needs the anchored layout, the plan is {plan.layout!r}: use --layout anchored (codec.layout=anchored)")
    if not 0 < min_scale <= 1:
        raise ArcvdmError(f"placement re-draw: min_scale = {min_scale!r}, must be in (0, 1]")
    cell = rng.randint(max(MIN_CELL, math.ceil(plan.cell * min_scale)), plan.cell)
    top = rng.randint(0, plan.height - extent(plan.rows + 1, cell))  # + 1: the marker row and column
    left = rng.randint(0, plan.width - extent(plan.cols + 1, cell))
    return replace(plan, cell=cell, origin=(top, left))
