"""Augmentation transforms on real ARC grids: python -m pytest tests/test_augment.py -q"""

import json
import random

import numpy as np
import pytest

from arcvdm.augment import (
    IDENTITY,
    SYMMETRIES,
    Transform,
    augmented_tasks,
    redraw_placement,
    sample_transforms,
)
from arcvdm.codec import decode, plan_for_task, render
from arcvdm.errors import ArcvdmError
from arcvdm.tasks import Grid, Pair, Task, load_tasks

SMALL = np.array([[1, 2, 3], [4, 5, 6]])
EXPECTED = {
    "identity": [[1, 2, 3], [4, 5, 6]],
    "rot90": [[3, 6], [2, 5], [1, 4]],
    "rot180": [[6, 5, 4], [3, 2, 1]],
    "rot270": [[4, 1], [5, 2], [6, 3]],
    "flip-h": [[3, 2, 1], [6, 5, 4]],
    "flip-v": [[4, 5, 6], [1, 2, 3]],
    "transpose": [[1, 4], [2, 5], [3, 6]],
    "anti-transpose": [[6, 3], [5, 2], [4, 1]],
}


@pytest.fixture(scope="module")
def evaluation(datasets_dir):
    tasks = load_tasks(datasets_dir / "arc-agi-1" / "evaluation")
    assert len(tasks) == 400 and not tasks.errors
    return tasks


@pytest.fixture(scope="module")
def all_grids(evaluation):
    """Every grid of ARC-AGI-1 evaluation, test outputs included, as arrays."""
    return [g.array for t in evaluation for p in [*t.train, *t.test] for g in (p.input, p.output) if g is not None]


def test_each_symmetry_matches_its_definition():
    for index, name in enumerate(SYMMETRIES):
        assert Transform(index).apply(SMALL).tolist() == EXPECTED[name], name
        assert Transform(index).name == name


def test_every_symmetry_and_inverse_round_trip_exactly_on_real_grids(all_grids):
    shapes = {a.shape[0] == a.shape[1] for a in all_grids}
    assert shapes == {True, False}  # square and non-square grids both covered
    colors = (0, 3, 1, 2, 9, 8, 7, 6, 5, 4)
    for symmetry in range(8):
        t = Transform(symmetry, colors)
        swaps_sides = SYMMETRIES[symmetry] in ("rot90", "rot270", "transpose", "anti-transpose")
        for a in all_grids:
            b = t.apply(a)
            assert b.shape == (a.shape[::-1] if swaps_sides else a.shape)
            np.testing.assert_array_equal(t.invert(b), a)
            # colour 0 is fixed: black cells stay black and nothing else becomes black
            np.testing.assert_array_equal(b == 0, Transform(symmetry).apply(a) == 0)


def test_grids_in_grids_out_and_arrays_keep_their_dtype(evaluation):
    t = Transform(1, (0, 2, 1, 3, 4, 5, 6, 7, 8, 9))
    for task in list(evaluation)[:40]:
        for p in task.train:
            out = t.apply(p.output)
            assert isinstance(out, Grid) and t.invert(out) == p.output
    a = SMALL.astype(np.int64)
    assert t.apply(a).dtype == np.int64
    assert t.apply(SMALL).tolist() == [[3, 6], [1, 5], [2, 4]]


def test_the_group_is_closed_and_inverses_compose_to_identity():
    probe = np.arange(12).reshape(3, 4) % 10  # no symmetry of its own: each element acts differently
    images = [Transform(s).apply(probe).tolist() for s in range(8)]
    assert len({json.dumps(i) for i in images}) == 8
    for first in range(8):
        for second in range(8):
            composed = Transform(second).apply(Transform(first).apply(probe)).tolist()
            assert composed in images
        assert Transform(first).inverse.apply(Transform(first).apply(probe)).tolist() == probe.tolist()


def test_colour_permutations_must_keep_zero_and_be_permutations():
    with pytest.raises(ArcvdmError, match="keeps 0"):
        Transform(0, (1, 0, 2, 3, 4, 5, 6, 7, 8, 9))
    with pytest.raises(ArcvdmError, match="permutation"):
        Transform(0, (0, 1, 1, 3, 4, 5, 6, 7, 8, 9))
    with pytest.raises(ArcvdmError, match="symmetry 8"):
        Transform(8)
    with pytest.raises(ArcvdmError, match="2-D"):
        IDENTITY.apply(np.zeros((2, 2, 3)))


def test_apply_task_transforms_every_pair_alike(evaluation):
    task = evaluation["00576224"]
    t = Transform(2, (0, 9, 8, 7, 6, 5, 4, 3, 2, 1))
    seen = t.apply_task(task)
    assert seen.id == task.id and len(seen.train) == len(task.train) and len(seen.test) == len(task.test)
    for original, mapped in zip([*task.train, *task.test], [*seen.train, *seen.test]):
        assert mapped.input == t.apply(original.input) and mapped.output == t.apply(original.output)
    hidden = Task(id="x", train=task.train, test=[Pair(input=task.test[0].input)])
    assert t.apply_task(hidden).test[0].output is None


def test_sample_transforms_is_deterministic_identity_first_and_distinct():
    transforms = sample_transforms(8, 4, seed=7)
    assert len(transforms) == 32 and transforms[0] == IDENTITY and transforms[0].is_identity
    assert len(set(transforms)) == 32 and not any(t.is_identity for t in transforms[1:])
    assert {t.symmetry for t in transforms} == set(range(8))
    assert len({t.colors for t in transforms}) == 4
    assert transforms == sample_transforms(8, 4, seed=7)
    assert transforms != sample_transforms(8, 4, seed=8)
    assert sample_transforms(1, 1, seed=0) == [IDENTITY]
    assert len({t.symmetry for t in sample_transforms(3, 2, seed=1)}) == 3


@pytest.mark.parametrize(("symmetries", "color_maps"), [(0, 1), (9, 1), (1, 0), (2.0, 1)])
def test_sample_transforms_rejects_out_of_range_counts(symmetries, color_maps):
    with pytest.raises(ArcvdmError, match="must be"):
        sample_transforms(symmetries, color_maps, seed=0)


def test_three_pairs_under_8_symmetries_and_4_colour_maps_give_96_pairs(evaluation):
    task = next(t for t in evaluation if len(t.train) == 3)
    transforms = sample_transforms(8, 4, seed=0)
    tasks = augmented_tasks(task, transforms)
    pairs = [(p.input, p.output, t) for t, view in zip(transforms, tasks) for p in view.train]
    assert len(pairs) == 96
    assert tasks[0].train == task.train  # the identity comes first
    assert len({(i, o) for i, o, _ in pairs}) > 48  # real views, not copies
    for i, o, t in pairs:
        assert any(t.invert(i) == p.input and t.invert(o) == p.output for p in task.train)


def test_json_round_trip_and_unique_names():
    transforms = sample_transforms(8, 4, seed=3)
    for t in transforms:
        assert Transform.from_json(json.loads(json.dumps(t.to_json()))) == t
    assert Transform.from_json({"symmetry": 1, "colors": list(range(10))}).name == "rot90"
    assert len({t.name for t in transforms}) == 32
    assert IDENTITY.name == "identity"
    assert Transform(1, (0, 2, 1, 3, 4, 5, 6, 7, 8, 9)).name == "rot90+c213456789"
    with pytest.raises(ArcvdmError, match="unknown symmetry"):
        Transform.from_json({"symmetry": "spin", "colors": list(range(10))})


def test_a_view_name_reads_back_as_its_transform():
    for t in sample_transforms(8, 4, seed=3):
        assert Transform.from_name(t.name) == t
    for bad in ("spin", "rot90+", "rot90+c21345678", "rot90+x213456789", "rot90+c113456789"):
        with pytest.raises(ArcvdmError, match="transform: "):
            Transform.from_name(bad)


def test_redrawn_anchored_placements_vary_and_decode_every_visible_grid(evaluation):
    for task in [evaluation["00576224"], next(t for t in evaluation if max(g.shape[0] for g in t.visible_grids()) >= 25)]:
        plan = plan_for_task(task, "anchored", 480, 480)
        rng = random.Random(0)
        plans = [redraw_placement(plan, rng) for _ in range(6)]
        assert len({(p.cell, p.origin) for p in plans}) > 1
        for p in plans:
            assert plan.cell // 2 <= p.cell <= plan.cell
            for grid in task.visible_grids():
                assert decode(render(grid, p), p).grid == grid
    with pytest.raises(ArcvdmError, match="anchored layout"):
        redraw_placement(plan_for_task(task, "centered"), rng)
