"""Exact round trips through a VAE, encoded (posterior mode), decoded and read back with `codec.decode` from the first
and the last frame (the conditioning and the prediction), every video drawn with its task's plan:
- grids: each grid held still for 9 frames;
- pairs: each input -> output pair as the discrete transition a run trains on; the first frame must give the input
  back and the last the output. This is the harder test: the causal decoder sees the input when it draws the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from arcvdm import codec
from arcvdm.backbones.mini_architecture import FRAMES, HEIGHT, TOKEN, WIDTH
from arcvdm.errors import ArcvdmError
from arcvdm.tasks import Grid, Task

BATCH = 8


@dataclass
class RoundTrip:
    unit: str = "grids"  # or "pairs"
    checked: int = 0
    exact: int = 0
    tasks: int = 0
    skipped_grids: int = 0  # larger than the canvas draws (more than 10 cells a side at 64x64)
    failures: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        rate = self.exact / self.checked if self.checked else 0.0
        return {self.unit: self.checked, "exact": self.exact, "rate": round(rate, 4), "tasks": self.tasks,
                "skipped_grids": self.skipped_grids, "failures": self.failures[:20]}


def fitting_grids(task: Task, layout: codec.Layout = "centered", height: int = HEIGHT, width: int = WIDTH,
                  token: int | None = None) -> list[Grid]:
    """Every grid of the task (test outputs included) that the canvas can draw in `layout` with cells of at least
    codec.MIN_CELL."""
    fits = []
    for g in (g for p in task.train + task.test for g in (p.input, p.output) if g is not None):
        try:
            codec.plan_for_grids([g], "centered" if layout == "anchored" else layout, height, width, token)
            fits.append(g)
        except ArcvdmError:
            pass
    return fits


@torch.no_grad()
def round_trip_tasks(vae, tasks: list[Task], layout: codec.Layout = "centered", progress: bool = True,
                     pairs: bool = False, size: int = HEIGHT) -> RoundTrip:
    """`size`: the square canvas; the token-aligned layout uses the mini's token (TOKEN)."""
    from tqdm.auto import tqdm

    from arcvdm.trajectories import make_video

    result = RoundTrip(unit="pairs" if pairs else "grids")
    items: list[tuple[str, tuple[Grid, Grid], codec.CanvasPlan]] = []  # (task, (first, last), plan)
    for task in tasks:
        token = TOKEN if layout == "token-aligned" else None
        grids = fitting_grids(task, layout, size, size, token)
        result.skipped_grids += sum(1 for p in task.train + task.test for g in (p.input, p.output) if g is not None) - len(grids)
        if layout == "anchored":
            grids = [g for g in grids if max(g.shape) < 10]  # the marker takes a row and a column
        if grids:
            result.tasks += 1
            plan = codec.plan_for_grids(grids, layout, size, size, token)
            if pairs:  # pairs whose two grids are both drawn (drawing depends on the shape alone)
                items += [(task.id, (p.input, p.output), plan) for p in task.train + task.test
                          if p.output is not None and p.input in grids and p.output in grids]
            else:
                items += [(task.id, (g, g), plan) for g in grids]
    vae_dtype, vae_device = next(vae.parameters()).dtype, next(vae.parameters()).device
    for start in tqdm(range(0, len(items), BATCH), desc="VAE round trip", disable=None if progress else True, leave=False):
        chunk = items[start : start + BATCH]
        videos = np.stack([make_video(codec.render(a, plan), codec.render(b, plan), FRAMES, "discrete")
                           for _, (a, b), plan in chunk])
        pixels = (torch.from_numpy(videos).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0).to(vae_device, vae_dtype)
        recon = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.float()
        recon = ((recon.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()
        for (task_id, grids, plan), video in zip(chunk, recon):
            decoded = [codec.decode(video[f], plan, g.shape if layout in codec.SHAPE_GIVEN else None)
                       for f, g in zip((0, FRAMES - 1), grids)]
            result.checked += 1
            if all(d.grid == g for d, g in zip(decoded, grids)):
                result.exact += 1
            else:
                result.failures.append({"task": task_id, "shape": list(grids[1].shape), "cell": plan.cell_for(grids[1].shape),
                                        "reason": next((d.reason for d in decoded if d.reason), "wrong cells")})
    return result
