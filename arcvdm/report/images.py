"""Small pictures of grids for the HTML report: palette cells with 1-px grey lines, and a cell-difference view."""

from __future__ import annotations

import numpy as np

from arcvdm.codec import LINE, PALETTE
from arcvdm.tasks import Grid

SAME = np.array([40, 40, 40], np.uint8)
DIFF = np.array([255, 65, 54], np.uint8)


def cell_size(shape: tuple[int, int], max_side: int = 240) -> int:
    """Pixels per cell so the picture stays at most `max_side` wide or high (and at least 4 px per cell)."""
    return max(4, min(16, max_side // max(shape)))


def _blocks(colours: np.ndarray, cell: int) -> np.ndarray:
    image = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
    image = np.pad(image, ((0, 1), (0, 1), (0, 0)))
    image[::cell, :] = LINE  # the codec's grid-line grey, 1 px here
    image[:, ::cell] = LINE
    return image


def grid_image(grid: Grid) -> np.ndarray:
    return _blocks(PALETTE[grid.array], cell_size(grid.shape))


def diff_image(prediction: Grid, truth: Grid) -> np.ndarray | None:
    """Cells that differ in red, equal cells dark; None when the shapes differ (there is no cell-to-cell view)."""
    if prediction.shape != truth.shape:
        return None
    colours = np.where((prediction.array != truth.array)[..., None], DIFF, SAME)
    return _blocks(colours.astype(np.uint8), cell_size(truth.shape))
