"""Compute accounting per problem: transformer forward passes spent training and sampling, and the FLOPs they cost.

Counts are in forward-pass equivalents of one video through the transformer (the backbone's
`forward_flops(frames, height, width)`); the VAE and text encoder run once per video and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from arcvdm.config import RunConfig
from arcvdm.errors import ArcvdmError
from arcvdm.selection import schedule_steps

# A training step runs a forward and a backward pass; the backward costs about two forwards.
TRAIN_STEP_FORWARDS = 3


def guidance_factor(guidance_scale: float) -> int:
    """Classifier-free guidance (scale > 1) runs a conditional and an unconditional forward per sampling step."""
    return 2 if guidance_scale > 1.0 else 1


@dataclass(frozen=True)
class ForwardPasses:
    """Forward-pass equivalents: `train` = steps x batch x 3, `sample` = videos x sampling steps x CFG factor (the NFE)."""

    train: int
    sample: int

    @property
    def total(self) -> int:
        return self.train + self.sample

    def flops(self, per_forward_flops: float) -> float:
        return self.total * per_forward_flops

    def to_json(self, per_forward_flops: float | None = None) -> dict[str, float | int | None]:
        return {
            "train_forwards": self.train,
            "sample_forwards": self.sample,
            "total_forwards": self.total,
            "forward_flops": None if per_forward_flops is None else self.flops(per_forward_flops),
        }


def forward_passes(
    train_steps: int, batch_size: int, sampler_calls: int, sampling_steps: int, guidance_scale: float = 1.0
) -> ForwardPasses:
    """What a problem actually spent: `sampler_calls` counts generated videos (one per input, view and checkpoint)."""
    counts = {"train_steps": train_steps, "batch_size": batch_size, "sampler_calls": sampler_calls, "sampling_steps": sampling_steps}
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ArcvdmError(f"forward_passes: {name} = {value!r}, must be a non-negative integer")
    return ForwardPasses(
        train=train_steps * batch_size * TRAIN_STEP_FORWARDS,
        sample=sampler_calls * sampling_steps * guidance_factor(guidance_scale),
    )


def compute_record(train_steps: int, videos: int, config: RunConfig, per_forward: float | None) -> dict:
    """The compute fields of a problem's result file (ARC and vision alike): videos generated (`sampler_calls`),
    transformer evaluations spent sampling (`nfe`), forward passes by kind, and FLOPs when the per-forward
    figure is known."""
    passes = forward_passes(train_steps, config.train.batch_size, videos, config.sample.steps, config.sample.guidance_scale)
    return {
        "sampler_calls": videos,
        "nfe": passes.sample,
        "forward_passes": passes.to_json(per_forward),
        "forward_flops": None if per_forward is None else passes.flops(per_forward),
    }


def planned_forward_passes(config: RunConfig, n_train: int, n_test: int, train_steps: int | None = None) -> ForwardPasses:
    """The budget of one problem under `config` before running it (docs/benchmarks.md, the forward-pass table).

    Assumes the solver's schedule (`selection.schedule_steps`): a checkpoint every `train.eval_every` steps
    and at `train_steps` itself (default `train.steps`; pass fewer for early stopping), and at each one a video
    per train input (one view, the selection signal) and `augment.views` videos per test input.
    """
    steps = config.train.steps if train_steps is None else train_steps
    checkpoints = len(schedule_steps(steps, config.train.eval_every))
    videos = checkpoints * (n_train + n_test * config.augment.views)
    return forward_passes(steps, config.train.batch_size, videos, config.sample.steps, config.sample.guidance_scale)
