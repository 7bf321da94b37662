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

    @classmethod
    def from_name(cls, name: str) -> "Transform":
        """Inverse of `name`: how a problem file's views (`"transform": "rot90+c213456789"`) become transforms again."""
        symmetry, plus, colors = name.partition("+")
        colors_ok = not plus or (colors[:1] == "c" and colors[1:].isdigit() and len(colors) == 10)
        if symmetry not in SYMMETRIES or not colors_ok:
            raise ArcvdmError(f"transform: {name!r} is no view name; expected a symmetry ({', '.join(SYMMETRIES)}), "
                              "optionally followed by +c and the images of colours 1-9, e.g. rot90+c213456789")
        return cls(SYMMETRIES.index(symmetry), (0, *map(int, colors[1:])) if plus else IDENTITY_COLORS)

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


def sample_transforms(n_symmetries: int, n_color_maps: int, seed: int,
                      color_maps: list[tuple[int, ...]] | None = None) -> list[Transform]:
    """`n_symmetries` x `n_color_maps` distinct transforms, deterministic for a seed, with the identity first.

    The identity symmetry is always kept and the other n_symmetries - 1 are drawn from the remaining 7
    (8 = all of them); the identity colours are always kept and n_color_maps - 1 distinct permutations of
    colours 1-9 are drawn, unless `color_maps` (identity first) gives them. After the identity, the product comes in
    a seeded shuffled order, so any prefix (e.g. the first V inference views) mixes symmetries and colour maps.
    """
    if isinstance(n_symmetries, bool) or not isinstance(n_symmetries, int) or not 1 <= n_symmetries <= 8:
        raise ArcvdmError(f"augment.symmetries = {n_symmetries!r}: must be 1-8 (1 = identity only, 8 = all of D8)")
    if isinstance(n_color_maps, bool) or not isinstance(n_color_maps, int) or not 1 <= n_color_maps <= MAX_COLOR_MAPS:
        raise ArcvdmError(f"augment.color_maps = {n_color_maps!r}: must be 1-{MAX_COLOR_MAPS} (1 = identity colours only)")
    rng = random.Random(seed)
    symmetries = [0] + sorted(rng.sample(range(1, 8), n_symmetries - 1))
    if color_maps is not None:
        n_color_maps = len(color_maps)
    color_maps = color_maps or [IDENTITY_COLORS]
    seen = set(color_maps)
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


# --- a prompt for each view (augment.view_prompts) -----------------------------------------------------------------

def view_code(transform: Transform, transforms: list[Transform]) -> str:
    """Two characters naming `transform` among `transforms`: its symmetry index (0-7), then the rank of its colour
    map among the distinct colour maps of `transforms` (sorted: the identity colours, the smallest, rank 0).

    Two characters, appended without a space, because the mini's text encoder reads 16 tokens and the neutral prompt
    takes 14 of them (the tiny tokenizer spells a space and every digit as one token each)."""
    maps = sorted({t.colors for t in transforms})
    return f"{transform.symmetry}{maps.index(transform.colors)}"


def view_prompts(prompt: str, transforms: list[Transform]) -> dict[Transform, str]:
    """Each view's prompt: the identity keeps `prompt` (a one-view run is the paper's run); any other view gets
    `prompt` followed by its `view_code`, so a view's rule, conjugated by the view, has a prompt of its own."""
    return {t: prompt if t.is_identity else f"{prompt}{view_code(t, transforms)}" for t in transforms}


# --- views that commute with the task (augment.commuting_views) ----------------------------------------------------

COMMUTES, CONFLICTS, UNKNOWN = "commutes", "conflicts", "unknown"


@dataclass(frozen=True)
class CellRule:
    """y = colors(symmetry(x)) cell by cell, fitted to every train pair alike (the pairs' own transform).

    `colors[c]` is None for a colour no train input shows; `apply` completes it as the fitted map suggests: when
    two or more seen non-zero colours all go to one colour (erase, paint), the unseen non-zero ones go there too;
    otherwise an unseen colour stays itself (a recolouring changes the colours it was shown to change, no other)."""

    symmetry: int
    colors: tuple[int | None, ...]

    def apply(self, grid: np.ndarray) -> np.ndarray:
        seen = [m for m in self.colors[1:] if m is not None]
        default = seen[0] if len(seen) > 1 and len(set(seen)) == 1 else None
        table = [c if m is None and (c == 0 or default is None) else default if m is None else m
                 for c, m in enumerate(self.colors)]
        return np.asarray(table, dtype=np.uint8)[_FORWARD[self.symmetry](grid)]


def cell_rules(task: Task) -> list[CellRule]:
    """Every (symmetry, cell-wise colour function) that maps each train input exactly onto its output."""
    rules = []
    for s in range(8):
        colors: list[int | None] = [None] * 10
        for p in task.train:
            moved = _FORWARD[s](p.input.array)
            if moved.shape != p.output.array.shape:
                break
            for c, d in {(int(a), int(b)) for a, b in zip(moved.ravel(), p.output.array.ravel())}:
                if colors[c] not in (None, d):
                    break
                colors[c] = d
            else:
                continue
            break
        else:
            rules.append(CellRule(s, tuple(colors)))
    return rules


def commutation(task: Task, view: Transform) -> str:
    """Whether `view` commutes with the task's rule f (f(v(x)) == v(f(x))), as far as the train pairs tell.

    Two kinds of evidence, tried in order:
    1. The pairs are explained by cell rules (`cell_rules`: one symmetry and one cell-wise colour function for every
       pair, e.g. flip-h, recolour 1 -> 2, erase): the view commutes when, for every explaining rule g and every
       train pair, v(y) == g(v(x)); it conflicts otherwise.
    2. Otherwise f is known on the train inputs only: a pair whose view v(x_i) is the train input x_j tells
       v(y_i) == y_j or not. Any such mismatch: conflicts; every pair matched: commutes.
    Anything else is unknown (gravity, fill-border, majority colour on the samples: f is not known where it would
    have to be evaluated)."""
    pairs = [(p.input.array, p.output.array) for p in task.train]
    rules = cell_rules(task)
    if rules:
        ok = all(np.array_equal(view.apply(y), g.apply(view.apply(x))) for g in rules for x, y in pairs)
        return COMMUTES if ok else CONFLICTS
    matched = 0
    for x, y in pairs:
        vx, vy = view.apply(x), view.apply(y)
        for x2, y2 in pairs:
            if np.array_equal(vx, x2):
                if not np.array_equal(vy, y2):
                    return CONFLICTS
                matched += 1
                break
    return COMMUTES if matched == len(pairs) else UNKNOWN


def changed_colors(task: Task) -> set[int]:
    """The colours the train pairs change, 0 among them: those whose share of the cells differs between a pair's
    input and output (recoloured, erased, filled, drawn), and those a cell rule explaining every pair moves."""
    changed = {0}
    for p in task.train:
        x, y = p.input.array, p.output.array
        changed |= {c for c in range(1, 10) if int((x == c).sum()) * y.size != int((y == c).sum()) * x.size}
    for rule in cell_rules(task):
        changed |= {v for c, m in enumerate(rule.colors) if m not in (None, c) for v in (c, m)}
    return changed


def commuting_color_maps(task: Task, n: int, seed: int) -> list[tuple[int, ...]]:
    """Up to `n` distinct colour maps, the identity first, that permute only the colours the train pairs leave alone
    (`changed_colors`): colours no train input shows among them, so the views teach the rule on the colours a test
    input may bring. A rule that treats the colours it leaves alone alike commutes with each of them: its views are
    the same task (`commutation` says so wherever the pairs are cell rules)."""
    free = [c for c in range(1, 10) if c not in changed_colors(task)]
    maps = [IDENTITY_COLORS]
    rng = random.Random(f"{seed}:{free}")
    while len(maps) < min(n, math.factorial(len(free))):
        shuffled = rng.sample(free, len(free))
        colors = list(IDENTITY_COLORS)
        for c, d in zip(free, shuffled):
            colors[c] = d
        if tuple(colors) not in maps:
            maps.append(tuple(colors))
    return maps


def familiar_color_map(task: Task, j: int) -> Transform:
    """A colour map for test input j that swaps each colour it shows and no train input shows with a familiar one: a
    colour the train inputs show (the most cells first), the train pairs leave alone (`changed_colors`) and test
    input j does not show. The adapter then draws only colours it was trained on; the output maps back by the
    inverse, and the map commutes with a rule that treats the colours it leaves alone alike, as in
    `commuting_color_maps`. Unseen colours the pairs change (a recolour's target) stay, and so do those beyond the
    familiar colours free; the identity when nothing is unseen."""
    shown = np.bincount(np.concatenate([p.input.array.ravel() for p in task.train]), minlength=10)
    x = task.test[j].input.array
    in_test = np.bincount(x.ravel(), minlength=10)
    changed = changed_colors(task)
    unseen = sorted((c for c in range(1, 10) if in_test[c] and not shown[c] and c not in changed),
                    key=lambda c: (-in_test[c], c))
    familiar = sorted((c for c in range(1, 10) if shown[c] and not in_test[c] and c not in changed),
                      key=lambda c: (-shown[c], c))
    colors = list(IDENTITY_COLORS)
    for u, f in zip(unseen, familiar):
        colors[u], colors[f] = f, u
    return Transform(0, tuple(colors))


def after_colors(view: Transform, colors: Transform) -> Transform:
    """`view` applied after the colour map `colors` (a colour map commutes with every symmetry)."""
    return Transform(view.symmetry, tuple(view.colors[c] for c in colors.colors))


def commuting_views(task: Task, transforms: list[Transform]) -> list[Transform]:
    """`transforms` less the views the train pairs do not show to commute with the task (the identity always stays)."""
    return [t for t in transforms if t.is_identity or commutation(task, t) == COMMUTES]


# --- the same views on pictures (the vision suite) ------------------------------------------------------------------

_PICTURE_FORWARD: tuple[Callable[[np.ndarray], np.ndarray], ...] = (  # SYMMETRIES on [H, W, C], as _FORWARD on grids
    lambda a: a,
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 2),
    lambda a: np.rot90(a, 3),
    lambda a: a[:, ::-1],
    lambda a: a[::-1],
    lambda a: np.swapaxes(a, 0, 1),
    lambda a: np.swapaxes(np.rot90(a, 2), 0, 1),
)
SWAPS_SIDES = frozenset({1, 3, 6, 7})  # rot90, rot270, transpose, anti-transpose turn H x W into W x H


def picture_view(picture: np.ndarray, symmetry: int, inverse: bool = False) -> np.ndarray:
    """An [H, W, C] picture under `SYMMETRIES[symmetry]` (or its inverse), contiguous."""
    return np.ascontiguousarray(_PICTURE_FORWARD[INVERSE_SYMMETRY[symmetry] if inverse else symmetry](picture))


def picture_symmetries(n_symmetries: int, seed: int, height: int, width: int) -> list[int]:
    """The symmetries `sample_transforms` draws (identity first), less those that would turn a non-square frame."""
    drawn = [t.symmetry for t in sample_transforms(n_symmetries, 1, seed)]
    return drawn if height == width else [s for s in drawn if s not in SWAPS_SIDES]
