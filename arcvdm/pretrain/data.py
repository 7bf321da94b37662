"""Pretraining videos: generated tasks drawn by the codec and turned into transition videos by the trajectories runs use.

Every draw comes from a `random.Random` seeded by a string naming its purpose (`stream_rng`), so a stream is
reproducible from the model card's seed, resumes exactly at any step, and never meets another stream
(`arcvdm mini-bench` seeds its own).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from arcvdm import codec
from arcvdm.backbones.mini_architecture import FRAMES, HEIGHT, TOKEN
from arcvdm.pretrain.generator import INSIDE, MAX_SIDE, make_task
from arcvdm.tasks import Task
from arcvdm.trajectories import make_video

# What a run trains on: the paper's layout and trajectory most of the time, the alternatives often enough
# that `--layout anchored` and `--trajectory linear|quadratic` start from something the model has seen.
LAYOUTS = (("centered", 0.75), ("anchored", 0.25))
TRAJECTORY_MIX = (("discrete", 0.7), ("linear", 0.15), ("quadratic", 0.15))
PRETRAIN_LAYOUTS = ("centered", "token-aligned")  # a recipe's `layout`: centered (with LAYOUTS' anchored share) or all aligned


@dataclass(frozen=True)
class Geometry:
    """The square canvas pretraining draws on and its layout: `centered` mixes in LAYOUTS' anchored share;
    `token-aligned` puts every grid on the mini's token grid (one cell per token: 80x80 holds 10x10)."""

    size: int = HEIGHT
    layout: str = "centered"

    def plan(self, grids: list, rng: random.Random) -> codec.CanvasPlan:
        """The plan a run would make; anchored needs a cell of room for its marker, so 10-cell grids stay centered."""
        if self.layout == "token-aligned":
            return codec.plan_for_grids(grids, "token-aligned", self.size, self.size, TOKEN)
        layout = _pick(rng, LAYOUTS)
        if layout == "anchored" and max(max(np.shape(g)) for g in grids) >= MAX_SIDE:
            layout = "centered"
        return codec.plan_for_grids(grids, layout, self.size, self.size)


SHIPPED = Geometry()


def stream_rng(purpose: str, seed: int, index: int) -> random.Random:
    return random.Random(f"arcvdm-mini/{purpose}/{seed}/{index}")


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    names, weights = zip(*weighted)
    return rng.choices(names, weights)[0]


def task_videos(task: Task, rng: random.Random, geometry: Geometry = SHIPPED) -> list[np.ndarray]:
    """One uint8 [9, size, size, 3] video per train pair, with the task's plan (as `arcvdm run` draws it)."""
    plan = geometry.plan([g.array for g in task.visible_grids()], rng)
    trajectory = _pick(rng, TRAJECTORY_MIX)
    return [make_video(codec.render(p.input, plan), codec.render(p.output, plan), FRAMES, trajectory, rng.randrange(2**31))
            for p in task.train]


def random_task(rng: random.Random, families: tuple[str, ...] = INSIDE) -> Task:
    """A task of a random family with 2-4 train pairs (the plan depends on all of them, as in a run)."""
    return family_task(rng, families)[1]


def family_task(rng: random.Random, families: tuple[str, ...] = INSIDE) -> tuple[str, Task]:
    """`random_task` with the family it drew (the same draws)."""
    name = rng.choice(families)
    return name, make_task(name, rng, "pretrain", train=rng.randint(2, 4), test=0)


def captioned_videos(rng: random.Random, count: int, caption_share: float,
                     geometry: Geometry = SHIPPED) -> tuple[list[np.ndarray], list[str | None]]:
    """`count` videos of fresh tasks, each with its caption: the family's name (the rule) for about `caption_share`
    of the tasks, None (the neutral prompt) for the rest. With `caption_share` 0 no extra draw is made."""
    videos: list[np.ndarray] = []
    captions: list[str | None] = []
    while len(videos) < count:
        name, task = family_task(rng)
        drawn = task_videos(task, rng, geometry)
        named = caption_share > 0 and rng.random() < caption_share
        videos += drawn
        captions += [name if named else None] * len(drawn)
    return videos[:count], captions[:count]


class StepData:
    """Map-style data by training step: item `i` is `make(i)`, which seeds itself from `i`, so worker processes
    (torch DataLoader) produce exactly what the main process would, in step order."""

    def __init__(self, make):
        self.make = make

    def __getitem__(self, step: int):
        return self.make(step)


def _as_is(item):
    return item  # the DataLoader's default would turn numpy arrays into tensors


def step_data(make, start: int, steps: int, workers: int):
    """`make(i)` for i in start..steps-1, in order; `workers` > 0 draws them in that many processes ahead of use."""
    if workers <= 0:
        return (make(i) for i in range(start, steps))
    from torch.utils.data import DataLoader

    return iter(DataLoader(StepData(make), batch_size=None, sampler=range(start, steps), num_workers=workers,
                           collate_fn=_as_is, prefetch_factor=4))


def dense_grid(rng: random.Random) -> np.ndarray:
    """Any grid up to 10x10 in all ten colours, from sparse to full: what the VAE must draw besides the families."""
    h, w = rng.randint(1, MAX_SIDE), rng.randint(1, MAX_SIDE)
    density = rng.uniform(0.3, 1.0)
    colours = rng.sample(range(10), rng.randint(2, 10))
    return np.array([[rng.choice(colours) if rng.random() < density else 0 for _ in range(w)] for _ in range(h)],
                    dtype=np.uint8)


def vae_video(rng: random.Random, geometry: Geometry = SHIPPED) -> np.ndarray:
    """A training video for the VAE: half the time a family task's pair, half a transition between dense random grids."""
    if rng.random() < 0.5:
        videos = task_videos(random_task(rng), rng, geometry)
        return videos[rng.randrange(len(videos))]
    a, b = dense_grid(rng), dense_grid(rng)
    plan = geometry.plan([a, b], rng)
    return make_video(codec.render(a, plan), codec.render(b, plan), FRAMES, _pick(rng, TRAJECTORY_MIX), rng.randrange(2**31))


def decoder_video(rng: random.Random, still: float, geometry: Geometry = SHIPPED) -> np.ndarray:
    """A `vae_video`, or with probability `still` one of its two grids held for every frame: the decoder must draw
    transitions (what runs predict) without losing grids that stay put (the conditioning frame, `vae-check`'s grids)."""
    video = vae_video(rng, geometry)
    if rng.random() < still:
        video = np.repeat(video[rng.choice((0, -1))][None], len(video), axis=0)
    return video
