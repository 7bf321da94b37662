"""Grid codec: exact round trips on every published grid, perturbations, size inference, reasons: `python -m pytest tests/test_codec.py -q`."""

import random

import numpy as np
import pytest

from arcvdm.codec import (LINE, MARKER, MIN_CELL, PALETTE, CanvasPlan, decode, plan_for_grids, plan_for_task, render,
                          smallest_canvas)
from arcvdm.codec_check import Perturbation, check_tasks, jpeg_roundtrip, reference_decode
from arcvdm.datasets import DATASETS, load_dataset
from arcvdm.errors import ArcvdmError
from arcvdm.tasks import Grid, Task

ALL_COLOURS = np.arange(10).reshape(2, 5)


@pytest.fixture(scope="module")
def all_tasks(datasets_dir):
    return {name: list(load_dataset(name)) for name in DATASETS.names()}


@pytest.mark.parametrize("layout", ["centered", "anchored"])
def test_every_published_grid_round_trips_exactly(all_tasks, layout):
    for name, tasks in all_tasks.items():
        result = check_tasks(tasks, layout, workers=2)
        assert result.grids > 1000 and result.exact == result.grids, (name, result.failures[:5])


@pytest.mark.parametrize("layout", ["centered", "anchored", "token-aligned"])
@pytest.mark.parametrize("perturbation", [Perturbation(noise=20), Perturbation(shift=25), Perturbation(jpeg=75)], ids=str)
def test_perturbed_round_trip_on_a_seeded_sample(all_tasks, layout, perturbation):
    # 25 tasks from each dataset (~900 grids); `arcvdm codec check` runs the whole datasets.
    rng = random.Random(0)
    sample = [t for tasks in all_tasks.values() for t in rng.sample(tasks, 25)]
    # token-aligned at 16-px tokens (CogVideoX1.5, Wan2.1): every grid up to 30x30 fits 480x480
    result = check_tasks(sample, layout, perturbation, seed=1, workers=2, token=16)
    assert result.grids > 600 and result.exact == result.grids, result.failures[:5]


def test_cell_size_from_visible_grids_only(samples_dir):
    assert plan_for_grids([np.zeros((30, 30))]).cell == 13
    assert plan_for_grids([np.zeros((9, 9))]).cell == 50
    assert plan_for_grids([np.zeros((30, 30))], "anchored").cell == 13
    assert plan_for_grids([np.zeros((9, 9))], "anchored").cell == 45  # room for the marker row and column
    assert plan_for_grids([np.zeros((8, 8))], "anchored").cell == 50
    task = Task.from_dict({"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3, 3]], "output": [[4]]}]}, "t")
    for layout in ("centered", "anchored"):
        plan = plan_for_task(task, layout)
        task.test[0].output = Grid(np.zeros((30, 30), int).tolist())  # the answer changes: the plan must not
        assert plan_for_task(task, layout) == plan


def test_render_draws_palette_lines_and_black_canvas():
    plan = plan_for_grids([ALL_COLOURS])
    frame = render(ALL_COLOURS, plan)
    assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
    assert (frame[0, 0] == 0).all() and (frame[-1, -1] == 0).all()
    top, left, cell = plan.geometry((2, 5))
    assert cell == 50 and (frame[top, left : left + 50] == LINE).all() and (frame[top + 1, left] == LINE).all()
    for r in range(2):
        for c in range(5):
            y, x = top + 2 + r * 52 + 25, left + 2 + c * 52 + 25
            assert (frame[y, x] == PALETTE[ALL_COLOURS[r, c]]).all()


def test_anchored_marks_the_extent_with_the_marker_colour():
    plan = plan_for_grids([np.zeros((3, 4))], "anchored")
    frame = render(ALL_COLOURS, plan)
    top, left, cell = plan.geometry((2, 5))
    centre = lambda r, c: frame[top + 2 + r * (cell + 2) + cell // 2, left + 2 + c * (cell + 2) + cell // 2]  # noqa: E731
    assert all((centre(2, c) == MARKER).all() for c in range(6)) and all((centre(r, 5) == MARKER).all() for r in range(3))
    assert not any((p == MARKER).all() for p in PALETTE)


@pytest.mark.parametrize("layout", ["centered", "anchored"])
def test_all_black_grid_decodes_under_perturbations(layout):
    black = np.zeros((7, 3), np.uint8)
    plan = plan_for_grids([black, np.zeros((10, 10))], layout)
    rng = np.random.default_rng(0)
    for perturbation in [Perturbation(), Perturbation(noise=20), Perturbation(shift=25), Perturbation(jpeg=75)]:
        frame = perturbation.apply(render(black, plan), rng)
        decoded = decode(frame, plan, black.shape if layout == "centered" else None)
        assert decoded.grid is not None and np.array_equal(decoded.grid.array, black), (perturbation, decoded.reason)


def test_anchored_infers_size_of_an_output_larger_than_anything_visible():
    visible = [np.ones((4, 4), np.uint8), np.full((5, 3), 2, np.uint8)]
    plan = plan_for_grids(visible, "anchored")
    big = np.random.default_rng(0).integers(0, 10, (23, 17)).astype(np.uint8)
    assert plan.cell_for(big.shape) < plan.cell  # drawn with smaller cells from the same corner
    for grid in [big, big[:1, :1], big[:5, :5], big[:30 // 5, :2]]:
        frame = Perturbation(jpeg=75).apply(render(grid, plan), np.random.default_rng(1))
        decoded = decode(frame, plan)
        assert decoded.grid is not None and np.array_equal(decoded.grid.array, grid), decoded.reason


def test_colour_correction_recovers_a_large_global_shift():
    plan = plan_for_grids([ALL_COLOURS])
    frame = np.clip(render(ALL_COLOURS, plan).astype(int) + [-50, -50, 50], 0, 255).astype(np.uint8)
    assert not np.array_equal(decode(frame, plan, (2, 5), color_correction=False).grid.array, ALL_COLOURS)
    corrected = decode(frame, plan, (2, 5))
    assert np.array_equal(corrected.grid.array, ALL_COLOURS) and corrected.shift[2] > 20


def test_non_square_canvas_and_canvas_rules():
    plan = plan_for_grids([ALL_COLOURS], "anchored", height=256, width=720)
    assert np.array_equal(decode(render(ALL_COLOURS, plan), plan).grid.array, ALL_COLOURS)
    with pytest.raises(ArcvdmError, match="multiples of 16"):
        plan_for_grids([ALL_COLOURS], height=500)
    with pytest.raises(ArcvdmError, match="at least 4 px"):
        plan_for_grids([np.zeros((30, 30))], height=64, width=64)


def test_undecodable_frames_give_a_reason_not_a_crash():
    centered = plan_for_grids([ALL_COLOURS])
    anchored = plan_for_grids([ALL_COLOURS], "anchored")
    frame = render(ALL_COLOURS, anchored)
    cases = [
        (frame[:100], anchored, None, "the plan expects 480x480x3"),
        (frame[..., 0], anchored, None, "the plan expects"),
        (np.zeros((480, 480, 3), np.uint8), anchored, None, "no extent marker found"),
        (np.random.default_rng(0).integers(0, 256, (480, 480, 3), dtype=np.uint8), anchored, None, "no extent marker"),
        (np.full((480, 480, 3), np.nan), anchored, None, "non-finite"),
        (render(ALL_COLOURS, centered), centered, None, "needs the output shape"),
        (render(ALL_COLOURS, centered), centered, (0, 3), "not a valid grid shape"),
        (render(ALL_COLOURS, centered), centered, (31, 3), "not a valid grid shape"),
    ]
    for bad, plan, shape, reason in cases:
        decoded = decode(bad, plan, shape)
        assert decoded.grid is None and reason in decoded.reason


def test_reference_decoder_agrees():
    plan = plan_for_grids([ALL_COLOURS])
    frame = Perturbation(noise=20).apply(render(ALL_COLOURS, plan), np.random.default_rng(0))
    assert np.array_equal(reference_decode(frame, plan, (2, 5)), ALL_COLOURS)


def test_plan_is_a_frozen_value():
    plan = plan_for_grids([ALL_COLOURS], "anchored")
    assert isinstance(plan, CanvasPlan) and hash(plan) == hash(plan_for_grids([ALL_COLOURS], "anchored"))
    with pytest.raises(Exception):
        plan.cell = 3


def _combined_perturbation(frames, rng, noise=20, shift=25, jpeg=75):
    """Perturbation(noise, shift, jpeg).apply over many frames, fast: the Gaussian noise is cropped at a random
    offset from one field drawn once (i.i.d. within every frame), plus a shift of ±shift with random signs."""
    field = None
    for frame in frames:
        height, width = frame.shape[:2]
        if field is None:
            field = np.rint(rng.standard_normal((2 * height, 2 * width, 3), dtype=np.float32) * noise).astype(np.int16)
        y, x = rng.integers(0, height), rng.integers(0, width)
        shifted = field[y : y + height, x : x + width] + (rng.choice([-1, 1], 3) * shift).astype(np.int16) + frame
        yield jpeg_roundtrip(np.clip(shifted, 0, 255, out=shifted).astype(np.uint8), jpeg)


def test_anchored_round_trips_every_shape_under_combined_perturbation():
    # Every shape 1x1..30x30 with random colours under noise 20 + shift ±25 + JPEG 75 together. Every other
    # shape is planned from a smaller visible grid: an output larger than anything the solver sees.
    rng = np.random.default_rng(13)
    grids, plans = [], []
    for index, (rows, cols) in enumerate((r, c) for r in range(1, 31) for c in range(1, 31)):
        grids.append(rng.integers(0, 10, (rows, cols), dtype=np.uint8))
        seen = (rows, cols)
        while index % 2 and rows * cols > 1 and seen == (rows, cols):
            seen = (int(rng.integers(1, rows + 1)), int(rng.integers(1, cols + 1)))
        plans.append(plan_for_grids([np.zeros(seen)], "anchored"))
    frames = _combined_perturbation((render(grid, plan) for grid, plan in zip(grids, plans)), rng)
    failures = []
    for grid, plan, frame in zip(grids, plans, frames):
        decoded = decode(frame, plan)
        if decoded.grid is None or not np.array_equal(decoded.grid.array, grid):
            failures.append((grid.shape, (plan.rows, plan.cols), decoded.reason or decoded.grid.shape))
    assert len(grids) == 900 and sum(plan.cell_for(g.shape) < plan.cell for g, plan in zip(grids, plans)) > 300
    assert not failures, failures[:10]


def test_anchored_every_output_fits_on_any_plan_and_the_smallest_canvas():
    # Whatever was visible, a 30x30 output still gets cells of at least MIN_CELL px (192x192 is the smallest
    # canvas that holds one); the plan's corner keeps room for it on small or narrow canvases.
    for height, width in [(480, 480), (256, 720), (192, 192)]:
        for seen in [(1, 1), (1, 30), (30, 1), (15, 15), (30, 30)]:
            plan = plan_for_grids([np.zeros(seen)], "anchored", height, width)
            assert plan.cell_for((30, 30)) >= MIN_CELL, (height, width, seen)
    plan = plan_for_grids([np.zeros((1, 1))], "anchored", 192, 192)
    big = np.random.default_rng(0).integers(0, 10, (30, 30)).astype(np.uint8)
    assert np.array_equal(decode(render(big, plan), plan).grid.array, big)


@pytest.mark.parametrize("layout", ["centered", "anchored"])
def test_grids_that_failed_under_the_combined_perturbation(all_tasks, layout):
    # A lone orange cell read as red (the offset estimate pulled by clipped black and white cells), and a grid
    # with two coloured cells whose search from no offset settled on orange for red.
    combined = Perturbation(noise=20, shift=25, jpeg=75)
    cases = [("arc-agi-2/evaluation", "20a9e565"), ("arc-agi-1/training", "d4a91cb9")]
    tasks = [next(t for t in all_tasks[name] if t.id == task_id) for name, task_id in cases]
    result = check_tasks(tasks, layout, combined, workers=1)
    assert result.grids == 18 and result.exact == result.grids, result.failures


def cell_runs(line: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of cell pixels (neither the line grey nor the black canvas) along a row of pixels."""
    cell = ~((line == LINE).all(-1) | (line == 0).all(-1))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], cell.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def checkerboard(rows: int, cols: int) -> np.ndarray:
    """Colours 1-4 such that no two neighbouring cells (diagonals too) share one."""
    r, c = np.indices((rows, cols))
    return (1 + 2 * (r % 2) + c % 2).astype(np.uint8)


def assert_cells_on_tokens(frame: np.ndarray, token: int, shape: tuple[int, int]) -> None:
    """Each cell's interior starts 1 px after a token boundary and ends 1 px before one (its line halves fill
    the rest of its tokens), with one interior per cell, read from the pixels alone."""
    rows, cols = shape
    ys, xs = np.nonzero(~(frame == 0).all(-1))
    assert ys.min() % token == 0 and xs.min() % token == 0, "the grid's origin is off the token grid"
    for pixels, count in ((frame[ys.min() + token // 2], cols), (frame[:, xs.min() + token // 2], rows)):
        runs = cell_runs(pixels)
        assert len(runs) == count
        for start, end in runs:
            assert start % token == 1 and end % token == token - 1, (token, start, end)
        pitches = {b[0] - a[0] for a, b in zip(runs, runs[1:])}
        assert all(p % token == 0 for p in pitches) and len(pitches) <= 1


@pytest.mark.parametrize("token,size", [(8, 80), (8, 64), (16, 480), (32, 480), (4, 64)])
def test_token_aligned_puts_cells_on_whole_tokens_and_round_trips(token, size):
    rng = np.random.default_rng(token)
    largest = 0
    for side in range(1, 31):
        try:
            plan = plan_for_grids([np.zeros((side, side))], "token-aligned", size, size, token)
        except ArcvdmError as e:
            assert f"{token}-px tokens" in str(e) and "--height" in str(e)
            break
        largest = side
        for shape in ((side, side), (side, max(1, side // 2))):
            assert_cells_on_tokens(render(checkerboard(*shape), plan), token, shape)
            grid = rng.integers(0, 10, shape).astype(np.uint8)
            frame = Perturbation(noise=20, shift=25).apply(render(grid, plan), rng)
            assert np.array_equal(decode(frame, plan, shape).grid.array, grid)
    smallest = -(-(MIN_CELL + 2) // token)  # tokens a cell needs
    assert largest == min(30, size // token // smallest)
    assert plan_for_grids([np.zeros((largest, largest))], "token-aligned", size, size, token).cell + 2 == smallest * token


def test_token_aligned_larger_cells_are_whole_tokens_and_outputs_shrink_to_fit():
    plan = plan_for_grids([np.zeros((5, 5))], "token-aligned", 80, 80, 8)
    assert plan.cell + 2 == 16  # two tokens a cell: the largest whole-token pitch that fits 5 cells in 10 tokens
    assert_cells_on_tokens(render(checkerboard(5, 5), plan), 8, (5, 5))
    assert plan.cell_for((10, 10)) + 2 == 8  # a larger test output: one token a cell, still decodable
    big = np.random.default_rng(0).integers(0, 10, (10, 10)).astype(np.uint8)
    assert_cells_on_tokens(render(checkerboard(10, 10), plan), 8, (10, 10))
    assert np.array_equal(decode(render(big, plan), plan, big.shape).grid.array, big)


def test_token_aligned_refusals_name_the_fix():
    with pytest.raises(ArcvdmError, match="token size"):
        plan_for_grids([np.zeros((3, 3))], "token-aligned", 80, 80)
    with pytest.raises(ArcvdmError, match="--height 960 --width 960"):
        plan_for_grids([np.zeros((30, 30))], "token-aligned", 480, 480, 32)
    assert smallest_canvas((30, 30), "token-aligned", 32) == (960, 960)
    assert smallest_canvas((30, 30), "token-aligned", 16) == (480, 480)
    assert smallest_canvas((10, 3), "token-aligned", 8) == (80, 32)
    plan = plan_for_grids([np.zeros((3, 3))], "token-aligned", 80, 80, 8)
    assert "needs the output shape" in decode(render(np.zeros((3, 3), np.uint8), plan), plan).reason


def test_token_aligned_puts_every_cell_on_whole_tokens_for_each_registered_family():
    """Every family of the registry, through the token size of each of its locally buildable backbones (the
    full-size random ones on `meta`, the tiny and shipped ones on the CPU): cells sit on whole tokens, and the
    family's canvases are whole tokens too."""
    from pathlib import Path

    from arcvdm.backbones import BACKBONES, FAMILIES, family_class, load_backbone

    tokens: dict[str, set[int]] = {}
    for name in BACKBONES:
        spec = BACKBONES.get(name)
        if spec.build is None and not Path(spec.source).is_dir():
            continue  # a hub id: its full-size random twin has the same configs
        backbone = load_backbone(name, "meta" if spec.build else "cpu", "float32", force=True)
        tokens.setdefault(spec.family, set()).add(backbone.token_size)
    assert set(tokens) == set(FAMILIES)
    for family, sizes in tokens.items():
        for token in sizes:
            assert family_class(family).side_multiple % token == 0, (family, token)
            size = 480 // token * token
            for side in (1, 3, min(30, size // token)):
                for shape in ((side, side), (side, max(1, side // 3))):
                    plan = plan_for_grids([np.zeros(shape)], "token-aligned", size, size, token)
                    assert_cells_on_tokens(render(checkerboard(*shape), plan), token, shape)
