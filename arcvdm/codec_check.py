"""Round-trip checks of the codec over whole datasets, under the perturbations a generated frame may suffer."""

from __future__ import annotations

import io
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from arcvdm.codec import LINE_PX, PALETTE, SHAPE_GIVEN, CanvasPlan, Layout, decode, plan_for_task, render
from arcvdm.errors import ArcvdmError
from arcvdm.tasks import Grid, Task


@dataclass(frozen=True)
class Perturbation:
    """Gaussian pixel noise (sigma, 0-255 scale), a global shift of ±`shift` per channel (random signs), JPEG quality."""

    noise: float = 0.0
    shift: int = 0
    jpeg: int | None = None

    def __post_init__(self) -> None:
        # Out of range, these would silently check something else (a negative sigma is the same noise as its
        # absolute value, a shift past 255 saturates, PIL clamps the quality).
        if not 0 <= self.noise < float("inf"):
            raise ArcvdmError(f"--noise {self.noise:g}: the noise sigma (0-255 pixel scale) must be 0 or more (e.g. 20)")
        if not 0 <= self.shift <= 255:
            raise ArcvdmError(f"--shift {self.shift}: the per-channel colour shift is on the 0-255 pixel scale: give 0 to 255 (e.g. 25)")
        if self.jpeg is not None and not 1 <= self.jpeg <= 100:
            raise ArcvdmError(f"--jpeg {self.jpeg}: JPEG quality runs from 1 to 100 (e.g. 75); leave --jpeg out for no JPEG")

    def __str__(self) -> str:
        parts = [f"noise {self.noise:g}" if self.noise else "", f"shift ±{self.shift}" if self.shift else "", f"jpeg {self.jpeg}" if self.jpeg else ""]
        return ", ".join(p for p in parts if p) or "clean"

    def apply(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = frame
        if self.shift:  # the extreme of the range, with random signs: the hardest case
            shift = (rng.choice([-1, 1], size=3) * self.shift).astype(np.int16)
            out = np.clip(out.astype(np.int16) + shift, 0, 255).astype(np.uint8)
        if self.noise:
            noisy = out + rng.standard_normal(out.shape, dtype=np.float32) * np.float32(self.noise)
            out = np.clip(np.rint(noisy, out=noisy), 0, 255, out=noisy).astype(np.uint8)
        if self.jpeg:
            out = jpeg_roundtrip(out, self.jpeg)
        return out


def jpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode with PIL's JPEG at `quality` (its default 4:2:0 chroma subsampling)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


@dataclass
class CheckResult:
    grids: int = 0
    exact: int = 0
    failures: list[dict] = field(default_factory=list)

    def add(self, other: "CheckResult") -> None:
        self.grids += other.grids
        self.exact += other.exact
        self.failures.extend(other.failures)

    def summary(self) -> str:
        return f"{self.grids} grid{'s' if self.grids != 1 else ''}, {self.exact} exact"


def labelled_grids(task: Task) -> Iterable[tuple[str, Grid]]:
    """Every grid of a task with its place: train[i].input/output, test[j].input/output."""
    for split, pairs in (("train", task.train), ("test", task.test)):
        for i, pair in enumerate(pairs):
            yield f"{split}[{i}].input", pair.input
            if pair.output is not None:
                yield f"{split}[{i}].output", pair.output


def check_task(task: Task, layout: Layout, perturbation: Perturbation = Perturbation(), height: int = 480, width: int = 480,
               seed: int = 0, token: int | None = None) -> CheckResult:
    """Render every grid with the task's plan, perturb, decode, compare. Anchored decoding infers the size.
    `token`: the token size in pixels that the token-aligned layout aligns cells to."""
    result = CheckResult()
    try:
        plan = plan_for_task(task, layout, height, width, token)
    except ArcvdmError as e:
        grids = list(labelled_grids(task))
        return CheckResult(len(grids), 0, [{"task": task.id, "pair": where, "reason": str(e)} for where, _ in grids])
    for index, (where, grid) in enumerate(labelled_grids(task)):
        result.grids += 1
        # Seeded per grid, so results do not depend on how tasks are split over processes.
        rng = np.random.default_rng([seed, zlib.crc32(task.id.encode()), index])
        try:
            frame = perturbation.apply(render(grid, plan), rng)
        except ArcvdmError as e:
            result.failures.append({"task": task.id, "pair": where, "reason": f"render: {e}"})
            continue
        decoded = decode(frame, plan, shape=grid.shape if layout in SHAPE_GIVEN else None)
        if decoded.grid == grid:
            result.exact += 1
            continue
        if decoded.grid is None:
            reason = decoded.reason
        elif decoded.grid.shape != grid.shape:
            reason = f"size inferred {decoded.grid.shape[0]}x{decoded.grid.shape[1]}, expected {grid.shape[0]}x{grid.shape[1]}"
        else:
            wrong = int((decoded.grid.array != grid.array).sum())
            reason = f"{wrong} of {grid.array.size} cells decoded wrong"
        result.failures.append({"task": task.id, "pair": where, "reason": reason})
    return result


def _check_chunk(args: tuple) -> CheckResult:
    tasks, layout, perturbation, height, width, seed, token = args
    total = CheckResult()
    for task in tasks:
        total.add(check_task(task, layout, perturbation, height, width, seed, token))
    return total


def check_tasks(tasks: list[Task], layout: Layout, perturbation: Perturbation = Perturbation(), height: int = 480, width: int = 480, seed: int = 0, workers: int | None = None,
                token: int | None = None) -> CheckResult:
    """`check_task` over many tasks, split across `workers` processes (default: the CPU count)."""
    workers = workers or os.cpu_count() or 1
    chunks = [tasks[i::workers] for i in range(workers)] if workers > 1 and len(tasks) > 8 else [tasks]
    jobs = [(chunk, layout, perturbation, height, width, seed, token) for chunk in chunks if chunk]
    total = CheckResult()
    if len(jobs) == 1:
        total.add(_check_chunk(jobs[0]))
    else:
        with ProcessPoolExecutor(len(jobs)) as pool:
            for part in pool.map(_check_chunk, jobs):
                total.add(part)
    order = {t.id: i for i, t in enumerate(tasks)}
    total.failures.sort(key=lambda f: order.get(f["task"], 0))
    return total


def reference_decode(frame: np.ndarray, plan: CanvasPlan, shape: tuple[int, int]) -> np.ndarray:
    """A straightforward per-cell Python decoder (the benchmark's baseline): median of each interior, nearest colour."""
    top, left, cell = plan.geometry(shape)
    margin = max(1, cell // 4)
    palette = [tuple(int(v) for v in colour) for colour in PALETTE]
    grid = []
    for r in range(shape[0]):
        row = []
        for c in range(shape[1]):
            y = top + LINE_PX + r * (cell + LINE_PX) + margin
            x = left + LINE_PX + c * (cell + LINE_PX) + margin
            interior = frame[y : y + cell - 2 * margin, x : x + cell - 2 * margin].reshape(-1, 3)
            colour = np.median(interior, axis=0)
            distances = [sum((float(colour[k]) - p[k]) ** 2 for k in range(3)) for p in palette]
            row.append(distances.index(min(distances)))
        grid.append(row)
    return np.array(grid, dtype=np.uint8)
