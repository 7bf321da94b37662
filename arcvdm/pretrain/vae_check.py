"""Exact round trips through a VAE: each grid drawn with its task's plan, held for 9 frames, encoded (posterior mode),
decoded, and read back with `codec.decode` from the first and the last frame (the conditioning and the prediction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from arcvdm import codec
from arcvdm.pretrain.architecture import FRAMES, HEIGHT, WIDTH
from arcvdm.tasks import Grid, Task

BATCH = 8


@dataclass
class RoundTrip:
    grids: int = 0
    exact: int = 0
    tasks: int = 0
    skipped_grids: int = 0  # larger than the canvas draws (more than 10 cells a side at 64x64)
    failures: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        rate = self.exact / self.grids if self.grids else 0.0
        return {"grids": self.grids, "exact": self.exact, "rate": round(rate, 4), "tasks": self.tasks,
                "skipped_grids": self.skipped_grids, "failures": self.failures[:20]}


def fitting_grids(task: Task, height: int = HEIGHT, width: int = WIDTH) -> list[Grid]:
    """Every grid of the task (test outputs included) that the canvas can draw with cells of at least codec.MIN_CELL."""
    grids = [g for p in task.train + task.test for g in (p.input, p.output) if g is not None]
    return [g for g in grids if codec._fit(*g.shape, height, width) >= codec.MIN_CELL]


@torch.no_grad()
def round_trip_tasks(vae, tasks: list[Task], layout: codec.Layout = "centered", progress: bool = True) -> RoundTrip:
    from tqdm.auto import tqdm

    result = RoundTrip()
    items: list[tuple[str, Grid, codec.CanvasPlan]] = []
    for task in tasks:
        grids = fitting_grids(task)
        result.skipped_grids += sum(1 for p in task.train + task.test for g in (p.input, p.output) if g is not None) - len(grids)
        if layout == "anchored":
            grids = [g for g in grids if max(g.shape) < 10]  # the marker takes a row and a column
        if grids:
            result.tasks += 1
            plan = codec.plan_for_grids(grids, layout, HEIGHT, WIDTH)
            items += [(task.id, g, plan) for g in grids]
    vae_dtype = next(vae.parameters()).dtype
    for start in tqdm(range(0, len(items), BATCH), desc="VAE round trip", disable=None if progress else True, leave=False):
        chunk = items[start : start + BATCH]
        frames = np.stack([codec.render(g, plan) for _, g, plan in chunk])
        pixels = torch.from_numpy(frames).permute(0, 3, 1, 2)[:, :, None].float() / 127.5 - 1.0
        pixels = pixels.expand(-1, -1, FRAMES, -1, -1).contiguous().to(vae_dtype)
        recon = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.float()
        recon = ((recon.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()
        for (task_id, grid, plan), video in zip(chunk, recon):
            shape = grid.shape if layout == "centered" else None
            decoded = [codec.decode(video[f], plan, shape) for f in (0, FRAMES - 1)]
            result.grids += 1
            if all(d.grid == grid for d in decoded):
                result.exact += 1
            else:
                result.failures.append({"task": task_id, "shape": list(grid.shape), "cell": plan.cell_for(grid.shape),
                                        "reason": next((d.reason for d in decoded if d.reason), "wrong cells")})
    return result
