"""Grid <-> RGB frame codec: the official ARC palette on a black canvas with 2-px grey grid lines, three layouts.

`centered` (the paper's): each grid centred on the canvas; decoding needs the output shape.
`anchored` (size-free): every grid starts at the same top-left origin with the same cell size, and a reserved
white marker fills the cells one column right of and one row below the grid, so the decoder reads the size
from the frame alone.
`token-aligned` (beyond the paper): centred on the backbone's token grid (`Backbone.token_size`: VAE spatial
factor x transformer patch, given here as a number of pixels), every cell pitch (cell + line) a whole number of
tokens, so each token holds one cell: its colour framed by 1 px of line on each side (two neighbours' halves make
the 2-px line between cells). Decoding needs the output shape, as in `centered`.

The cell size comes only from what a solver may see (`Task.visible_grids()`): the largest that fits every
visible grid, capped at 50 px. A grid that does not fit at that size (a test output larger than anything
visible) is drawn with the largest cell size that fits it from the same origin; that size is a function of
the plan and the grid's own shape, so decoding recovers it without looking at the answer (the anchored corner
keeps room for a 30x30 output on any canvas that can draw one: 192x192 and up, `smallest_canvas`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator, Literal, NamedTuple, Sequence

import numpy as np

from arcvdm.errors import ArcvdmError
from arcvdm.tasks import MAX_SIDE, Grid, Task

Layout = Literal["centered", "anchored", "token-aligned"]
LAYOUTS: tuple[str, ...] = ("centered", "anchored", "token-aligned")
SHAPE_GIVEN: tuple[str, ...] = ("centered", "token-aligned")  # layouts whose decoding is given the output shape

PALETTE = np.array(
    [
        [0, 0, 0],  # 0 black
        [0, 116, 217],  # 1 blue
        [255, 65, 54],  # 2 red
        [46, 204, 64],  # 3 green
        [255, 220, 0],  # 4 yellow
        [170, 170, 170],  # 5 grey
        [240, 18, 190],  # 6 magenta
        [255, 133, 27],  # 7 orange
        [127, 219, 255],  # 8 light blue
        [135, 12, 37],  # 9 maroon
    ],
    dtype=np.uint8,
)
PALETTE.flags.writeable = False
LINE = np.array([85, 85, 85], dtype=np.uint8)
# White is outside the palette and at least 133 RGB units from every palette colour and the line grey
# (the closest are 8 light blue and 5 grey), so it survives noise, shifts and JPEG as a distinct class.
MARKER = np.array([255, 255, 255], dtype=np.uint8)
MARKER_LABEL = 10
LINE_PX = 2
MAX_CELL = 50
SAMPLES = 8  # interior pixels per cell side used by the decoder
MIN_CELL = 4  # below this a cell has no interior left once the pixels next to the lines are skipped
CANVAS_MULTIPLE = 16  # the smallest Backbone.side_multiple of the families (LTX-Video and Wan2.2 check their 32)

# Colours indexed by the label used while rendering: 0-9 palette, 10 marker, 11 line.
_TABLE = np.concatenate([PALETTE, MARKER[None], LINE[None]])
_LINE_LABEL = 11


@dataclass(frozen=True)
class CanvasPlan:
    """Where grids go on the canvas: one cell size for a task; `origin` is the anchored top-left corner."""

    layout: Layout
    height: int
    width: int
    cell: int
    rows: int  # the largest visible grid's rows and columns the cell size was chosen for
    cols: int
    origin: tuple[int, int] | None = None
    token: int | None = None  # token-aligned: the backbone's token side in pixels
    limit: CanvasLimit | None = None  # the backbone's largest canvas: size advice stays within it

    def cell_for(self, shape: tuple[int, int]) -> int:
        """The cell size a grid of `shape` is drawn with: the plan's, or smaller if the grid would not fit."""
        r, c = shape
        if self.layout == "centered":
            fit = _fit(r, c, self.height, self.width)
        elif self.layout == "token-aligned":
            fit = _token_fit(r, c, self.height, self.width, self.token)  # type: ignore[arg-type]
        else:
            top, left = self.origin  # type: ignore[misc]
            fit = _fit(r + 1, c + 1, self.height - top, self.width - left)
        return min(self.cell, fit)

    def geometry(self, shape: tuple[int, int]) -> tuple[int, int, int]:
        """(top, left, cell) of the block holding a grid of `shape`; raises if it cannot fit."""
        cell = self.cell_for(shape)
        if cell < MIN_CELL:
            raise ArcvdmError(
                f"a {shape[0]}x{shape[1]} grid does not fit a {self.height}x{self.width} {self.layout} canvas "
                f"({_need(self.layout, self.token, cell)}): "
                f"{fit_advice(shape, self.layout, self.height, self.width, self.token, self.limit)}"
            )
        if self.layout == "anchored":
            return (*self.origin, cell)  # type: ignore[return-value]
        rows, cols = shape
        if self.layout == "token-aligned":
            # Whole tokens either side of the grid; the block's outer lines start 1 px before its first token
            # (that pixel is not drawn), so every line between cells straddles a token boundary.
            t, pitch = self.token, cell + LINE_PX
            top = (self.height // t - rows * pitch // t) // 2 * t  # type: ignore[operator]
            left = (self.width // t - cols * pitch // t) // 2 * t  # type: ignore[operator]
            return top - LINE_PX // 2, left - LINE_PX // 2, cell
        return (self.height - extent(rows, cell)) // 2, (self.width - extent(cols, cell)) // 2, cell


@dataclass(frozen=True)
class Decoded:
    """A decoded frame: `grid`, or `reason` saying why no grid could be read. `shift` is the colour offset removed."""

    grid: Grid | None
    reason: str | None = None
    shift: tuple[float, float, float] | None = None


def extent(cells: int, cell: int) -> int:
    """Pixels spanned by `cells` cells of `cell` px with their grid lines."""
    return cells * (cell + LINE_PX) + LINE_PX


def _fit(rows: int, cols: int, height: int, width: int) -> int:
    return min((height - LINE_PX * (rows + 1)) // rows, (width - LINE_PX * (cols + 1)) // cols, MAX_CELL)


def _token_fit(rows: int, cols: int, height: int, width: int, token: int) -> int:
    """The largest cell whose pitch (cell + line) is a whole number of tokens and fits the canvas, cap MAX_CELL;
    below MIN_CELL when even the smallest such pitch does not fit."""
    tokens = min(height // token // rows, width // token // cols, max(1, (MAX_CELL + LINE_PX) // token))
    smallest = -(-(MIN_CELL + LINE_PX) // token)  # tokens per cell a side that leave a MIN_CELL interior
    return tokens * token - LINE_PX if tokens >= smallest else 0


def _need(layout: str, token: int | None, cell: int | None = None) -> str:
    """What a grid's cells need, for the error that says they do not get it."""
    if layout == "token-aligned":
        return f"a whole number of {token}-px tokens per cell, with a {MIN_CELL}-px interior"
    return f"cells of at least {MIN_CELL} px" if cell is None else f"cells would be {cell} px, at least {MIN_CELL} needed"


def _check_token(token: int | None, layout: str) -> None:
    if layout == "token-aligned" and (not isinstance(token, (int, np.integer)) or isinstance(token, bool) or token < 1):
        raise ArcvdmError(f"the token-aligned layout needs the backbone's token size in pixels (VAE spatial factor x "
                          f"patch, Backbone.token_size), got {token!r}")


def _check_canvas(height: int, width: int) -> None:
    if height <= 0 or width <= 0 or height % CANVAS_MULTIPLE or width % CANVAS_MULTIPLE:
        raise ArcvdmError(f"canvas {height}x{width}: height and width must be positive multiples of {CANVAS_MULTIPLE}")


def plan_for_grids(grids: Sequence[Grid | np.ndarray], layout: Layout = "centered", height: int = 480, width: int = 480,
                   token: int | None = None, limit: CanvasLimit | None = None) -> CanvasPlan:
    """One cell size for all `grids`: the largest that fits each of them (anchored: with its marker;
    token-aligned: a pitch of whole `token`-px tokens), cap 50 px. `limit`: the backbone's largest canvas, which
    the advice for grids that do not fit stays within."""
    if layout not in LAYOUTS:
        raise ArcvdmError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    _check_canvas(height, width)
    _check_token(token, layout)
    shapes = [np.shape(g.array if isinstance(g, Grid) else g) for g in grids]
    if not shapes:
        raise ArcvdmError("cannot plan a canvas for no grids: a task needs at least one visible grid")
    rows, cols = max(s[0] for s in shapes), max(s[1] for s in shapes)
    extra = 1 if layout == "anchored" else 0  # room for the marker row and column
    if layout == "token-aligned":
        cell = _token_fit(rows, cols, height, width, token)  # type: ignore[arg-type]
    else:
        cell = _fit(rows + extra, cols + extra, height, width)
    if cell < MIN_CELL:
        raise ArcvdmError(
            f"{rows}x{cols} grids need {_need(layout, token)}, which a {height}x{width} canvas cannot give: "
            f"{fit_advice((rows, cols), layout, height, width, token, limit)}"
        )
    origin = None
    if layout == "anchored":
        # Centre the largest visible grid with its marker; smaller grids and outputs share its top-left corner.
        # The corner is kept close enough to the top-left that a 30x30 output (with its marker) still fits with
        # MIN_CELL cells, whatever was visible; on a 480x480 canvas centring alone always leaves that room.
        room = extent(MAX_SIDE + 1, MIN_CELL)
        origin = (
            max(0, min((height - extent(rows + 1, cell)) // 2, height - room)),
            max(0, min((width - extent(cols + 1, cell)) // 2, width - room)),
        )
    return CanvasPlan(layout, height, width, cell, rows, cols, origin, token if layout == "token-aligned" else None,
                      limit)


def smallest_canvas(shape: tuple[int, int], layout: Layout = "centered", token: int | None = None) -> tuple[int, int]:
    """The smallest (height, width), multiples of CANVAS_MULTIPLE, that draw a grid of `shape` (anchored: with its
    marker) with cells of at least MIN_CELL px. (192, 192) draws every grid up to 30x30 in centered and anchored;
    token-aligned needs whole tokens per cell (30x30 at 16-px tokens: 480x480; at 32 px: 960x960)."""
    if layout == "token-aligned":
        _check_token(token, layout)
        pitch = -(-(MIN_CELL + LINE_PX) // token) * token  # type: ignore[operator]
        step = math.lcm(CANVAS_MULTIPLE, token)  # type: ignore[arg-type]
        return tuple(-(-n * pitch // step) * step for n in shape)  # type: ignore[return-value]
    extra = 1 if layout == "anchored" else 0
    return tuple(-(-extent(n + extra, MIN_CELL) // CANVAS_MULTIPLE) * CANVAS_MULTIPLE for n in shape)  # type: ignore[return-value]


class CanvasLimit(NamedTuple):
    """The largest canvas a backbone draws (`arcvdm.backbones.largest_canvas`), named in the advice."""

    height: int
    width: int
    backbone: str


def fit_advice(shape: tuple[int, int], layout: Layout, height: int, width: int, token: int | None = None,
               limit: CanvasLimit | None = None) -> str:
    """The fix for grids of `shape` that do not fit: a canvas large enough, within `limit` when one is given; past
    it, another layout that fits the largest canvas, or else that the task cannot run on this backbone."""
    need = smallest_canvas(shape, layout, token)
    size = f"--height {max(need[0], height)} --width {max(need[1], width)}"
    if limit is None:
        return f"use {size} or larger"
    accepts = f"backbone {limit.backbone!r} accepts canvases up to {limit.height}x{limit.width}"
    grids = f"{shape[0]}x{shape[1]} grids"
    if need[0] <= limit.height and need[1] <= limit.width:
        return f"use {size} ({accepts})"
    for other in LAYOUTS:
        if other == layout or (other == "token-aligned" and token is None):
            continue
        need = smallest_canvas(shape, other, token)  # type: ignore[arg-type]
        if need[0] <= limit.height and need[1] <= limit.width:
            larger = f" --height {max(need[0], height)} --width {max(need[1], width)}" \
                if need[0] > height or need[1] > width else ""
            return f"use --layout {other}{larger} ({accepts}, too small for {grids} in the {layout} layout)"
    return f"{accepts}, too small for {grids} in any layout: this task does not fit this backbone"


def plan_for_task(task: Task, layout: Layout = "centered", height: int = 480, width: int = 480,
                  token: int | None = None) -> CanvasPlan:
    """The plan over what a solver may see (train pairs and test inputs): never the test outputs."""
    return plan_for_grids(task.visible_grids(), layout, height, width, token)


def render(grid: Grid | np.ndarray, plan: CanvasPlan) -> np.ndarray:
    """Draw `grid` as a uint8 [H, W, 3] frame following `plan`."""
    cells = np.asarray(grid.array if isinstance(grid, Grid) else grid, dtype=np.uint8)
    rows, cols = cells.shape
    top, left, cell = plan.geometry((rows, cols))
    if plan.layout == "anchored":
        labelled = np.full((rows + 1, cols + 1), MARKER_LABEL, dtype=np.uint8)
        labelled[:rows, :cols] = cells
        cells = labelled
    # Interleave line and cell labels ([line, cell, line, cell, ..., line] on both axes), colour the small
    # array, then stretch it with np.repeat: lines 2 px, cells `cell` px.
    n_rows, n_cols = cells.shape
    woven = np.full((2 * n_rows + 1, 2 * n_cols + 1), _LINE_LABEL, dtype=np.uint8)
    woven[1::2, 1::2] = cells
    block = _TABLE[woven]
    block = np.repeat(block, _widths(n_rows, cell), axis=0)
    block = np.repeat(block, _widths(n_cols, cell), axis=1)
    if plan.layout == "token-aligned":  # the outer lines' halves outside the grid's tokens are not drawn
        half = LINE_PX // 2
        block, top, left = block[half:-half, half:-half], top + half, left + half
    frame = np.zeros((plan.height, plan.width, 3), dtype=np.uint8)  # black canvas
    frame[top : top + block.shape[0], left : left + block.shape[1]] = block
    return frame


def _widths(n: int, cell: int) -> np.ndarray:
    widths = np.full(2 * n + 1, LINE_PX)
    widths[1::2] = cell
    return widths


def _median(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """np.median without its NaN checks (integer pixels have none): the middle one or two values after a
    partial sort."""
    n = values.shape[axis]
    middle = np.partition(values, (n - 1) // 2 if n % 2 else (n // 2 - 1, n // 2), axis=axis)
    return np.take(middle, range((n - 1) // 2, n // 2 + 1), axis=axis).mean(axis=axis)


def cell_colours(frame: np.ndarray, top: int, left: int, cell: int, rows: int, cols: int) -> np.ndarray:
    """Median colour of each cell's interior, skipping the pixels next to the lines: float [rows, cols, 3].

    At most 8x8 evenly spaced interior pixels per cell are used: plenty for a median under noise, and large
    cells cost no more than small ones.
    """
    period = cell + LINE_PX
    margin = max(1, cell // 4)
    inner = cell - 2 * margin
    step = max(1, -(-inner // SAMPLES))
    y0, x0 = top + LINE_PX, left + LINE_PX
    short = max(y0 + rows * period - frame.shape[0], x0 + cols * period - frame.shape[1], 0)
    if short:  # a token-aligned grid at the canvas edge lacks its last line's outer half: pad, never sampled
        frame = np.pad(frame, ((0, short), (0, short), (0, 0)))
    block = frame[y0 : y0 + rows * period, x0 : x0 + cols * period].reshape(rows, period, cols, period, 3)
    sample = block[:, margin : cell - margin : step, :, margin : cell - margin : step]
    sample = sample.transpose(0, 2, 1, 3, 4).reshape(rows, cols, -1, 3)
    return _median(sample, axis=2)


def classify(colours: np.ndarray, references: np.ndarray, color_correction: bool = True,
             start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest reference colour per cell; with correction, remove the mean offset to the nearest colours and redo.

    Returns (labels, offset). Generated frames drift in colour as a whole, so one global offset is estimated.
    Without `start` (the centered layout) every reading counts, as that layout's results were measured. With
    `start`, a second first guess of the offset (the anchored decoder's line colour), the offset is measured
    only on readings that cannot have clipped, and when the two guesses label the cells differently both are
    refined and the one whose cells lie closer to their colours wins: a few coloured cells can lock the search
    from no offset onto a neighbouring colour (red read as orange under a shift towards orange).
    """
    refs = references.astype(np.float64)
    labels = _nearest(colours, refs)
    if not color_correction:
        return labels, np.zeros(3)
    if start is None:
        return _refine(colours, refs, np.ones(colours.shape, bool), labels)
    # A channel read at (or next to) 0 or 255 may have clipped (black shifted down stays 0, white shifted up
    # stays 255) and would pull the estimate towards no shift: offsets are measured on the other readings.
    usable = (colours >= _UNCLIPPED[0]) & (colours <= _UNCLIPPED[1])
    searches = [_refine(colours, refs, usable, labels)]
    labels_from_start = _nearest(colours - start, refs)
    if not np.array_equal(labels_from_start, labels):
        searches.append(_refine(colours, refs, usable, labels_from_start))
    if len(searches) == 1:
        return searches[0]
    residuals = [_usable_mean(np.abs(colours - offset - refs[found]), usable).sum() for found, offset in searches]
    return searches[int(np.argmin(residuals))]


_UNCLIPPED = (8, 247)


def _refine(colours: np.ndarray, refs: np.ndarray, usable: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alternate the mean offset to the labelled colours (over the `usable` readings) and the labels after
    removing it (at most 3 rounds)."""
    offset = np.zeros(3)
    for _ in range(3):
        offset = _usable_mean(colours - refs[labels], usable)
        new_labels = _nearest(colours - offset, refs)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return labels, offset


def _usable_mean(values: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Mean of `values` per channel over the entries marked `usable`; 0 for a channel with none."""
    total = (values * usable).reshape(-1, 3).sum(0)
    count = usable.reshape(-1, 3).sum(0)
    return np.divide(total, count, out=np.zeros(3), where=count > 0)


def _nearest(colours: np.ndarray, refs: np.ndarray) -> np.ndarray:
    # argmin |x - r|^2 = argmin (|r|^2 - 2 x.r): one matrix product instead of a [..., refs, 3] difference.
    refs = refs.astype(np.float64)
    return ((refs**2).sum(1) - 2 * (colours @ refs.T)).argmin(-1)


def decode(frame: np.ndarray, plan: CanvasPlan, shape: tuple[int, int] | None = None, color_correction: bool = True) -> Decoded:
    """Read a grid back from `frame`. `centered` and `token-aligned` need `shape`; `anchored` reads it from the
    marker when None.

    Never raises on a bad frame: the reason is returned instead.
    """
    frame = np.asarray(frame)
    if frame.shape != (plan.height, plan.width, 3):
        return Decoded(None, f"frame is {'x'.join(map(str, frame.shape))}, the plan expects {plan.height}x{plan.width}x3")
    if not np.issubdtype(frame.dtype, np.number) or (frame.dtype.kind == "f" and not np.isfinite(frame).all()):
        return Decoded(None, f"frame has non-finite or non-numeric values ({frame.dtype})")
    if shape is not None:
        if len(shape) != 2 or not all(1 <= int(s) <= MAX_SIDE for s in shape):
            return Decoded(None, f"output shape {tuple(shape)} is not a valid grid shape (1-{MAX_SIDE} per side)")
        return _decode_known(frame, plan, (int(shape[0]), int(shape[1])), color_correction)
    if plan.layout in SHAPE_GIVEN:
        return Decoded(None, f"the {plan.layout} layout needs the output shape (pass shape, or use the anchored layout)")
    return _decode_anchored(frame, plan, color_correction)


def _decode_known(frame: np.ndarray, plan: CanvasPlan, shape: tuple[int, int], color_correction: bool) -> Decoded:
    try:
        top, left, cell = plan.geometry(shape)
    except ArcvdmError as e:
        return Decoded(None, str(e))
    rows, cols = shape
    refs = PALETTE
    if plan.layout == "anchored":  # read the marker cells too: they anchor the colour correction
        rows, cols, refs = rows + 1, cols + 1, np.concatenate([PALETTE, MARKER[None]])
    colours = cell_colours(frame, top, left, cell, rows, cols)
    labels, offset = classify(colours, refs, color_correction)
    grid = _palette_labels(colours - offset, labels)[: shape[0], : shape[1]]
    return Decoded(_grid(grid), None, _as_shift(offset))


def _palette_labels(colours: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels with any marker-coloured cell replaced by its nearest palette colour."""
    stray = labels == MARKER_LABEL
    if stray.any():
        labels = labels.copy()
        labels[stray] = _nearest(colours[stray], PALETTE.astype(np.float64))
    return labels


def _decode_anchored(frame: np.ndarray, plan: CanvasPlan, color_correction: bool) -> Decoded:
    """Find the cell size and shape from the marker cells in the first column and row, read the block they bound.

    A reading is accepted only with an intact marker L and a shape that the plan draws with that very cell size.
    """
    # The common case first: a grid drawn with the plan's cells, its marker found by probing the centres of
    # the first column's and first row's cells; any other reading comes from the strips (marker_candidates).
    shape = _probe_plan_lattice(frame, plan)
    if shape is not None and plan.cell_for(shape) == plan.cell:
        decoded = _read_block(frame, plan, plan.cell, shape, color_correction)
        if decoded is not None:
            return decoded
    for cell, (h, w) in marker_candidates(frame, plan):
        decoded = _read_block(frame, plan, cell, (h, w), color_correction)
        if decoded is not None:
            return decoded
    # A generated frame may blur a few marker cells or lines: accept a mostly intact L at the plan's size.
    top, left = plan.origin  # type: ignore[misc]
    rows = min(MAX_SIDE + 1, (plan.height - top - LINE_PX) // (plan.cell + LINE_PX))
    cols = min(MAX_SIDE + 1, (plan.width - left - LINE_PX) // (plan.cell + LINE_PX))
    score = 0.0
    if rows >= 2 and cols >= 2:
        colours = cell_colours(frame, top, left, plan.cell, rows, cols)
        labels, offset = classify(colours, _REFS_WITH_MARKER, color_correction)
        (h, w), score = _find_marker(labels == MARKER_LABEL)
        if score >= 0.75 and plan.cell_for((h, w)) == plan.cell:
            return Decoded(_grid(_palette_labels(colours[:h, :w] - offset, labels[:h, :w])), None, _as_shift(offset))
    return Decoded(None, f"no extent marker found (at best {score:.0%} of a marker's cells at the plan's cell size)")


_REFS_WITH_MARKER = np.concatenate([PALETTE, MARKER[None]])


def _read_block(frame: np.ndarray, plan: CanvasPlan, cell: int, shape: tuple[int, int], color_correction: bool) -> Decoded | None:
    """The `shape` grid drawn with `cell` px cells from the plan's corner, or None unless its marker L is intact."""
    h, w = shape
    top, left = plan.origin  # type: ignore[misc]
    colours = cell_colours(frame, top, left, cell, h + 1, w + 1)
    # The line colour as shown (median of the lines after the first cell row and column, cells on both sides):
    # a colour that never clips, so it tells how far the frame's colours have shifted.
    y, x, period = top + cell + LINE_PX, left + cell + LINE_PX, cell + LINE_PX
    lines = np.concatenate([frame[y : y + LINE_PX, left + LINE_PX : left + (w + 1) * period : 3].reshape(-1, 3),
                            frame[top + LINE_PX : top + (h + 1) * period : 3, x : x + LINE_PX].reshape(-1, 3)])
    labels, offset = classify(colours, _REFS_WITH_MARKER, color_correction, _median(lines) - LINE)
    marker = labels == MARKER_LABEL
    if not (marker[h].all() and marker[:, w].all()):
        return None
    return Decoded(_grid(_palette_labels(colours[:h, :w] - offset, labels[:h, :w])), None, _as_shift(offset))


def _probe_plan_lattice(frame: np.ndarray, plan: CanvasPlan) -> tuple[int, int] | None:
    """(rows, cols) from the first marker cell down column 0 and along row 0 of the plan's lattice, each cell
    judged by the mean of its 2x2 centre pixels; None when either has no marker cell past the first."""
    top, left = plan.origin  # type: ignore[misc]
    period, centre = plan.cell + LINE_PX, LINE_PX + plan.cell // 2 - 1
    rows = min(MAX_SIDE + 1, (plan.height - top - LINE_PX) // period)
    cols = min(MAX_SIDE + 1, (plan.width - left - LINE_PX) // period)
    if rows < 2 or cols < 2:
        return None
    y, x = top + centre, left + centre
    down = [frame[y + d : y + d + period * rows : period, x : x + 2] for d in (0, 1)]  # [rows, 2, 3] each
    along = [frame[y : y + 2, x + d : x + d + period * cols : period] for d in (0, 1)]  # [2, cols, 3] each
    probes = np.concatenate([down[0].astype(np.float32).sum(1) + down[1].sum(1),
                             along[0].astype(np.float32).sum(0) + along[1].sum(0)]) / 4
    white = _is_white(probes)
    h, w = int(white[1:rows].argmax()) + 1, int(white[rows + 1 :].argmax()) + 1
    if not (white[h] and white[rows + w]):
        return None
    # A grid drawn with slightly smaller cells can put marker cells under these centres too: the marker cells
    # must also start and end where the plan's lattice puts them (white inside both edges, not outside).
    inner = LINE_PX + 1  # 2 pixels from here are inside the first column (and row) for every cell size
    edges = np.array([-1, 0, plan.cell - 1, plan.cell])
    ys, xs = top + LINE_PX + h * period + edges, left + LINE_PX + w * period + edges
    if ys[-1] >= plan.height or xs[-1] >= plan.width:
        return None
    across = np.concatenate([frame[ys, left + inner : left + inner + 2], frame[top + inner : top + inner + 2, xs].transpose(1, 0, 2)])
    return (h, w) if (_is_white(across.mean(1, dtype=np.float32)) == _EDGES).all() else None


_EDGES = np.array([False, True, True, False] * 2)  # outside, first, last, outside pixel of a marker cell, twice


def _is_white(colours: np.ndarray) -> np.ndarray:
    """Whether each colour is nearer the marker white than every palette colour and the line grey."""
    return (colours @ _TOWARDS_WHITE > _WHITE_BOUNDS).all(-1)


def marker_candidates(frame: np.ndarray, plan: CanvasPlan) -> Iterator[tuple[int, tuple[int, int]]]:
    """(cell size, (rows, cols)) readings of an anchored frame, most plausible first.

    A thin strip down the first grid column (inside it for every cell size) crosses exactly one marker cell:
    a white run of `cell` pixels starting `2 + rows * (cell + 2)` pixels below the corner; the strip along the
    first row likewise gives `cols`. Every (cell, rows, cols) the plan can draw is scored by the strip pixels
    it gets wrong (white outside its marker cells, not white inside them); a multiple of the true period or a
    shifted lattice gets a whole cell's worth wrong, so the true reading comes first.
    """
    top, left = plan.origin  # type: ignore[misc]
    inner = slice(LINE_PX + 1, LINE_PX + MIN_CELL - 1)  # pixels inside the first cell for every cell size
    block = frame[top:, left:]
    n = max(block.shape[:2])
    strips = np.zeros((2, n, 3), np.float32)  # down the first column, along the first row; black past the canvas
    strips[0, : block.shape[0]] = block[:, inner].sum(1, dtype=np.float32) / (MIN_CELL - 2)
    strips[1, : block.shape[1]] = block[inner].sum(0, dtype=np.float32) / (MIN_CELL - 2)
    white = _is_white(strips)
    count = np.concatenate([np.zeros((2, 1), np.int64), np.cumsum(white, axis=1)], axis=1)  # [strip, pixel + 1]
    cells = _drawn_cells(plan)[:, None]
    starts = LINE_PX + np.arange(1, MAX_SIDE + 1) * (cells + LINE_PX)  # [cell size, rows (or cols) before the marker]
    ends = starts + cells
    inside = count[:, np.minimum(ends, n)] - count[:, np.minimum(starts, n)]  # [strip, cell size, place]
    wrong = np.where(ends <= n, cells + count[:, -1:, None] - 2 * inside, _NEVER)
    places, total = wrong.argmin(2) + 1, wrong.min(2).sum(0)
    for i in np.argsort(total, kind="stable"):  # ties: the larger cell first (cells are largest first)
        cell, shape = int(cells[i, 0]), (int(places[0, i]), int(places[1, i]))
        if total[i] < 2 * cell and plan.cell_for(shape) == cell:
            yield cell, shape


# x is nearer the marker white W than colour r when x.(W - r) > (|W|^2 - |r|^2) / 2: one product per colour.
_OTHERS = np.delete(_TABLE, MARKER_LABEL, axis=0).astype(np.float32)
_TOWARDS_WHITE = (MARKER.astype(np.float32) - _OTHERS).T
_WHITE_BOUNDS = ((MARKER.astype(np.float32) ** 2).sum() - (_OTHERS**2).sum(1)) / 2
_NEVER = 1 << 40  # the error count of a reading that does not fit the canvas


@functools.lru_cache(maxsize=256)
def _drawn_cells(plan: CanvasPlan) -> np.ndarray:
    """Every cell size (>= MIN_CELL) a 1x1..30x30 grid is drawn with under an anchored `plan`, largest first."""
    top, left = plan.origin  # type: ignore[misc]
    n = np.arange(2, MAX_SIDE + 2)  # cells each way with the marker
    fit_rows = (plan.height - top - LINE_PX * (n + 1)) // n
    fit_cols = (plan.width - left - LINE_PX * (n + 1)) // n
    sizes = np.minimum(np.minimum.outer(fit_rows, fit_cols), min(plan.cell, MAX_CELL))
    return np.unique(sizes[sizes >= MIN_CELL])[::-1].copy()


def _find_marker(marker: np.ndarray) -> tuple[tuple[int, int], float]:
    """The (rows, cols) whose L of marker cells (row `rows`, cols 0..cols; col `cols`, rows 0..rows-1) matches best.

    Scored as the fraction of the L's cells that are marker; vectorised with cumulative sums over the lattice.
    """
    m = marker.astype(np.int32)
    along_row = np.cumsum(m, axis=1)  # along_row[h, w] = marker cells in row h, cols 0..w
    down_col = np.cumsum(m, axis=0)  # down_col[h, w] = marker cells in col w, rows 0..h
    n_rows, n_cols = m.shape
    h = np.arange(1, n_rows)[:, None]
    w = np.arange(1, n_cols)[None, :]
    hits = along_row[h, w] + down_col[h - 1, w]
    score = hits / (w + 1 + h)
    i, j = np.unravel_index(np.argmax(score), score.shape)
    return (int(i) + 1, int(j) + 1), float(score[i, j])


def _grid(labels: np.ndarray) -> Grid:
    # Labels are palette indices by construction: skip re-validating every cell.
    return Grid.model_construct(labels.astype(np.uint8).tolist())


def _as_shift(offset: np.ndarray) -> tuple[float, float, float]:
    return tuple(round(float(v), 2) for v in offset)  # type: ignore[return-value]
