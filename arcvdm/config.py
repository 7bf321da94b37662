"""One pydantic config per run, from a named preset or a YAML/JSON file, overridable by flags, saved beside every result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from arcvdm.codec import smallest_canvas
from arcvdm.errors import ArcvdmError
from arcvdm.registry import Registry
from arcvdm.render import MAX_CANVAS_SIDE
from arcvdm.tasks import MAX_SIDE

# The paper conditions every video on one fixed, task-agnostic prompt; its exact wording was not
# published, so this is ours (documented in docs/decisions.md and saved in every run's config.json).
NEUTRAL_PROMPT = "A smooth transition from the first frame to the last frame."


class _Section(BaseModel):
    # NaN or infinity in any number (--lr nan) is refused like a wrong name: every problem would fail on it.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Seed = Annotated[int, Field(ge=0, lt=2**32)]  # numpy's seed range (every problem seeds numpy with train.seed)
Beta = Annotated[float, Field(ge=0, lt=1)]


class VideoConfig(_Section):
    frames: int = 9
    height: int = Field(480, ge=16, le=MAX_CANVAS_SIDE)
    width: int = Field(480, ge=16, le=MAX_CANVAS_SIDE)
    trajectory: str = "discrete"

    @model_validator(mode="after")
    def _check(self) -> "VideoConfig":
        # Settings every problem would fail on fail here, once, before any model or data is loaded.
        # (ArcvdmError is not a ValueError, so pydantic lets it through as the one-line message.)
        # The backbone's own shape rule is checked by `arcvdm.backbones.check_config`, before any model loads.
        from arcvdm.trajectories import TRAJECTORIES, check_frames

        check_frames(self.frames)
        TRAJECTORIES.get(self.trajectory)
        return self


class LoraConfig(_Section):
    rank: int = Field(64, ge=1)
    alpha: int = Field(32, ge=1)
    # Module sets, mapped to each family's module names by its `lora_modules` (arcvdm/backbones/cogvideox.py, ...):
    # qkvo-ff = attention plus feed-forward (Wan2.1's recipe), block-linear = every linear layer in the blocks,
    # all-linear = peft's own `all-linear` (every linear layer of the transformer, embeddings and head included).
    targets: Literal["qk", "vo", "qkvo", "qkvo-ff", "block-linear", "all-linear"] = "qkvo"


class TrainConfig(_Section):
    steps: int = Field(1800, ge=1)
    eval_every: int = Field(300, ge=1)
    lr: float = Field(1e-4, gt=0)
    betas: tuple[Beta, Beta] = (0.9, 0.95)
    weight_decay: float = Field(1e-3, ge=0)
    eps: float = Field(1e-8, gt=0)
    batch_size: int = Field(2, ge=1)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: Seed = 42
    warmup_steps: int = Field(0, ge=0)  # linear learning-rate warm-up; 0 = constant from the first step (the paper)
    # After the warm-up: constant (the paper) or a cosine decay to 0 at `steps` (arcvdm/train.py `lr_factor`).
    lr_schedule: Literal["constant", "cosine"] = "constant"
    gradient_checkpointing: bool = False
    # Which trainer's objective a family follows where trainers differ (docs/backbones.md); None = the family's
    # default, resolved by `arcvdm.backbones.check_config`; a family without the choice refuses it there.
    first_frame: Literal["clean", "finetrainers"] | None = None  # LTX-Video: LTX-Video-Trainer's or finetrainers'
    sigma_sampling: Literal["shifted-uniform", "logit-normal"] | None = None  # Wan: the sampler's shift or finetrainers'
    early_stop: bool = True  # stop once no later checkpoint can change the attempts
    # torch.compile the transformer (with the LoRA in place) for training and sampling (arcvdm/backbones/base.py
    # `use_compile`). Off: compiling costs minutes per worker, and its gain on a GPU has not been measured yet.
    compile: bool = False


class SampleConfig(_Section):
    steps: int = Field(50, ge=1)
    guidance_scale: float = Field(1.0, ge=1)  # 1.0 = no classifier-free guidance (diffusers: below 1 is the same)
    seed: Seed = 42
    batch_size: int = Field(4, ge=1)
    # The sampling scheduler's diffusers class, e.g. CogVideoXDPMScheduler; a family's short name (dpm, ddim, ...)
    # is accepted; None = the family's default. Resolved when the config loads, so config.json records the class.
    scheduler: str | None = None
    # Which generated frames make the prediction: "last" (the paper) or "target-frames", the pixel mean of the
    # frames that the trajectory draws as the target and that decode from the last latent frame (`discrete`, 9
    # frames, a x4 temporal VAE: frames 5-8; linear, quadratic, tiles: the last only), which averages out the
    # decoder's per-frame noise (arcvdm/sample.py `read_out`; docs/mini.md).
    readout: Literal["last", "target-frames"] = "last"


class CodecConfig(_Section):
    layout: Literal["centered", "anchored", "token-aligned"] = "centered"  # token-aligned: arcvdm/codec.py
    color_correction: bool = True


class SelectionConfig(_Section):
    attempts: int = Field(2, ge=1)  # k in pass@k: 2 for ARC-AGI, 3 for ConceptARC
    rule: Literal["paper", "leave-one-out"] = "paper"
    # Attempts are the first k distinct decodable predictions along the rule's checkpoint order
    # (arcvdm/selection.py); False = the literal reading, duplicates and undecodable ones kept.
    distinct: bool = True


class AugmentConfig(_Section):
    symmetries: int = Field(1, ge=1, le=8)  # how many of the 8 symmetries of the square (1 = identity only)
    color_maps: int = Field(1, ge=1)  # colour permutations keeping 0 fixed (1 = identity only)
    views: int = Field(1, ge=1)  # inference views per test input; > 1 votes on the decoded grids
    # Training videos per train pair and transform, each under its own seeded re-drawn anchored placement
    # (cell size and origin; the first is the standard plan), encoded once: translation and scale variety
    # across epochs. 1 = the fixed plan. Needs codec.layout=anchored; inference always uses the standard plan.
    placements: int = Field(1, ge=1)
    seed: Seed = 0
    # Each view trains and samples under its own prompt (the prompt + a 2-character view code; the identity keeps
    # the prompt), so conjugated rules do not share one: arcvdm/augment.py `view_prompts`, docs/augmentation.md.
    view_prompts: bool = False
    # Keep only the views the train pairs show to commute with the task (arcvdm/augment.py `commutation`).
    commuting_views: bool = False
    # Draw the color_maps - 1 colour maps among those that permute only the colours the train pairs leave alone
    # (arcvdm/augment.py `commuting_color_maps`), not at random: views of the same task under the one prompt, which
    # show the rule on colours the train inputs do not (docs/augmentation.md).
    commuting_colors: bool = False
    # Show each test input to the adapter with the colours no train input shows swapped for familiar ones that the
    # pairs leave alone, and map the output back (arcvdm/augment.py `familiar_color_map`): inference only.
    familiar_colors: bool = False

    @model_validator(mode="after")
    def _commuting_colors_share_the_prompt(self) -> "AugmentConfig":
        if self.commuting_colors and self.view_prompts:
            raise ArcvdmError("augment.commuting_colors draws views of the same task, which share the prompt: drop "
                              "augment.view_prompts (or set augment.commuting_colors=false)")
        return self


class SlurmConfig(_Section):
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    time_min: int = Field(240, ge=1)
    gpus_per_node: int = Field(1, ge=0)
    cpus_per_task: int = Field(8, ge=1)
    mem_gb: int = Field(64, ge=1)
    array_parallelism: int = Field(64, ge=1)


class RunConfig(_Section):
    preset: str = "custom"
    family: str = "arc"
    backbone: str = "cogvideox1.5-5b-i2v"
    prompt: str = NEUTRAL_PROMPT
    device: str | None = None  # None = pick automatically (cuda > mps > cpu)
    dtype: str | None = None  # None = bf16 on GPU, fp32 on CPU
    video: VideoConfig = Field(default_factory=VideoConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    codec: CodecConfig = Field(default_factory=CodecConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    # Problems run at once on each GPU (on CPU: processes), each its own worker process with its own copy of the
    # backbone; with SLURM, each array task solves this many problems concurrently on its GPU within slurm.time_min
    # (arcvdm/executors.py). Results are a one-worker run's: every problem is seeded from the config alone.
    workers_per_gpu: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _placements_need_anchored(self) -> "RunConfig":
        # ArcvdmError passes through pydantic unwrapped: one line naming the fix, before any problem runs.
        placements = self.augment.placements
        if placements > 1 and self.codec.layout != "anchored":
            raise ArcvdmError(f"augment.placements = {placements} re-draws the anchored placement, but codec.layout is "
                              f"{self.codec.layout!r}: add --layout anchored (or set augment.placements=1)")
        return self


PRESETS: Registry[dict[str, Any]] = Registry("preset")
PRESETS.add("paper-arc", {})  # the defaults are the paper's ARC-AGI settings
PRESETS.add("paper-conceptarc", {"train": {"steps": 600, "eval_every": 100}, "selection": {"attempts": 3}})
# The tiny random backbone on CPU: seconds per sample task (tasks_json/; grids up to 10x10 fit 64x64).
# It exercises the whole pipeline; a random model scores about zero.
SMOKE: dict[str, Any] = {
    "backbone": "tiny",
    "video": {"height": 64, "width": 64},
    "lora": {"rank": 8, "alpha": 8},
    "train": {"steps": 20, "eval_every": 5, "lr": 1e-3},
    "sample": {"steps": 4, "batch_size": 8},
}
PRESETS.add("smoke", SMOKE)
# The same on any ARC grid: the smallest canvas (a multiple of 16) that draws 30x30 grids with 4-px cells in
# both layouts, 192x192 (codec.smallest_canvas); about 9x the pixels of `smoke`, so slower per step.
_ANY_GRID = smallest_canvas((MAX_SIDE, MAX_SIDE), "anchored")
PRESETS.add("smoke-arc", {**SMOKE, "video": {"height": _ANY_GRID[0], "width": _ANY_GRID[1]}})
# Beyond the paper: the paper's schedule on the train pairs under 8 symmetries x 3 colour maps
# (24 videos per pair; leave-one-out drops one pair from each chunk, rotating), 8 inference views per test
# input voted on whole grids, and leave-one-out checkpoint selection. Per problem with 3 train pairs and 1 test
# input, in forward passes (arcvdm/flops.py): paper-arc 10,800 train + 1,200 sample = 12,000; arcvdm-aug
# 10,800 + 3,300 = 14,100 (x1.18). Early stopping at the earliest (the second checkpoint) cuts either to a third.
# The layout stays the paper's centered one; opt in to translation and scale augmentation with
# `--layout anchored --set augment.placements=3` (3x the training videos, encoded once; same step budget).
AUGMENTED: dict[str, Any] = {
    "augment": {"symmetries": 8, "color_maps": 3, "views": 8},
    "selection": {"rule": "leave-one-out"},
}
PRESETS.add("arcvdm-aug", AUGMENTED)
# The paper's LTX-Video recipe (its Table 3), for ARC and, through `arcvdm vision run --preset paper-ltx`, the
# vision suite: "All linear" at rank 64 / alpha 32, 9x480x704 linear (convex) trajectories,
# batch 16, AdamW 1e-3 (0.9, 0.99) without weight decay at a constant rate, 3000 steps evaluated every 200.
# Table 3's optimizer flags are finetrainers' (LTX-Video-Trainer calls AdamW with its defaults), so the objective is
# finetrainers' LTX one and "All linear" is what its `--target_modules all-linear` hands peft (docs/backbones.md).
# The paper names no guidance scale for LTX-Video (it says none for the other two backbones): we sample with the
# LTX pipeline's default of 3.
PAPER_LTX: dict[str, Any] = {
    "backbone": "ltx-video-2b-i2v",
    "video": {"frames": 9, "height": 480, "width": 704, "trajectory": "linear"},
    "lora": {"rank": 64, "alpha": 32, "targets": "all-linear"},
    "train": {"steps": 3000, "eval_every": 200, "lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.0,
              "batch_size": 16, "max_grad_norm": 1.0, "first_frame": "finetrainers"},
    "sample": {"guidance_scale": 3.0},
}
PRESETS.add("paper-ltx", PAPER_LTX)
PRESETS.add("smoke-aug", {**SMOKE, "augment": {"symmetries": 2, "color_maps": 2, "views": 4},
                          "selection": {"rule": "leave-one-out"}})
# The pretrained mini backbone on CPU: the paper's schedule shape (checkpoints along a fixed schedule, pass@2,
# centered layout, discrete trajectory) scaled to 9x64x64 and a 2-core budget: 200 steps evaluated every 50 at a
# higher learning rate, 10 sampling steps. The LoRA is the paper's Wan2.1 one (Q/K/V/O and feed-forward, rank 128 /
# alpha 128): sampled with DPM, it reproduced the train pairs of 4 of the six samples where rank 64 / alpha 32 on
# Q/K/V/O reproduced 1. It samples with DDIM (the scheduler the hub's CogVideoX1.5-5B-I2V ships), not the family's
# DPM: at 10 steps the same LoRAs reproduce 5 samples where DPM reproduced 2 (docs/mini.md).
MINI: dict[str, Any] = {
    "backbone": "mini",
    "video": {"height": 64, "width": 64},
    "lora": {"rank": 128, "alpha": 128, "targets": "qkvo-ff"},
    "train": {"steps": 200, "eval_every": 50, "lr": 2e-3},
    "sample": {"steps": 10, "batch_size": 8, "scheduler": "ddim"},
}
PRESETS.add("mini", MINI)
# mini-aug adds the readout measured to help the mini (docs/mini.md); on the full-size
# backbones it is unmeasured, so arcvdm-aug keeps the paper's last frame.
PRESETS.add("mini-aug", {**MINI, **AUGMENTED, "sample": {**MINI["sample"], "readout": "target-frames"}})

# The paper's Wan2.1 recipe (its Table 3), for ARC and, through `arcvdm vision run --preset paper-wan`, the vision
# suite: LoRA on Q/K/V/O plus feed-forward at rank 128 / alpha 128; 9x480x720 linear transition videos; batch 1;
# AdamW lr 2e-5, betas (0.9, 0.99), weight decay 1e-4, constant after 1000 linear warm-up steps; 4000 steps
# evaluated every 1000; no CFG. One forward of the 14B transformer at 9x480x720: 116.1 TFLOP. Like paper-ltx, the
# finetrainers reading: logit-normal sigmas; gradient checkpointing keeps the 14B step within 80 GB
# (docs/backbones.md, the memory table).
PAPER_WAN: dict[str, Any] = {
    "backbone": "wan2.1-i2v-14b-480p",
    "video": {"frames": 9, "height": 480, "width": 720, "trajectory": "linear"},
    "lora": {"rank": 128, "alpha": 128, "targets": "qkvo-ff"},
    "train": {"steps": 4000, "eval_every": 1000, "lr": 2e-5, "betas": (0.9, 0.99), "weight_decay": 1e-4,
              "batch_size": 1, "warmup_steps": 1000, "sigma_sampling": "logit-normal", "gradient_checkpointing": True},
    "sample": {"guidance_scale": 1.0},
}
PRESETS.add("paper-wan", PAPER_WAN)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(preset: str = "paper-arc", overrides: dict[str, Any] | None = None) -> RunConfig:
    """Build a RunConfig from a preset name or a YAML/JSON file, then apply dotted overrides.

    `overrides` maps dotted keys to values, e.g. {"train.steps": 100, "backbone": "tiny"}.
    """
    path = Path(preset)
    if preset not in PRESETS and path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ArcvdmError(f"config {preset!r}: not valid YAML/JSON ({str(e).splitlines()[0]}): fix the file") from None
        except RecursionError:
            raise ArcvdmError(f"config {preset!r}: nested too deeply (thousands of levels) to be a config: fix the file") from None
        if not isinstance(data, dict):
            raise ArcvdmError(f"config {preset!r}: the top level must be a mapping of sections, got {type(data).__name__}: fix the file")
        data.setdefault("preset", path.stem)
    else:
        data = {**PRESETS.get(preset), "preset": preset}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node: dict[str, Any] = {}
        *parents, leaf = dotted.split(".")
        cursor = node
        for p in parents:
            cursor = cursor.setdefault(p, {})
        cursor[leaf] = value
        data = _merge(data, node)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ArcvdmError(f"config {preset!r}: {where}: {first['msg']} (check the preset file or the flag)") from None
