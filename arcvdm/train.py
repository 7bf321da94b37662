"""LoRA on a frozen image-to-video model from a few transition videos: `LoraTrainer(backbone, videos, config).train(steps)`.

`train(steps, rows=[...])` trains on a subset of the encoded videos (leave-one-out holds a pair's videos
out of a chunk) without encoding anything again.

Reads top to bottom like a diffusers training script: check the inputs, encode every video once
(the VAE is 80-99% of an uncached step), add the adapter, then the loop. The loop is the same for every
family; the objective is the backbone family's own (`backbone.draw_noise` and `backbone.loss`, see
`arcvdm/backbones/base.py` and e.g. `arcvdm/backbones/cogvideox.py`). Only the LoRA trains.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from arcvdm.config import RunConfig, TrainConfig
from arcvdm.errors import ArcvdmError

ADAPTER = "arcvdm"
ADAPTER_FILE = "pytorch_lora_weights.safetensors"
# The adapter file's header key naming arcvdm's target set (lora.targets): peft's own config in the header records
# the module names it wrapped, not which set they came from.
TARGETS_KEY = "arcvdm_lora_targets"
ENCODE_BAR_FROM = 8  # show a progress bar when a problem has at least this many videos to encode


def check_inputs(backbone, videos: list[np.ndarray], config: RunConfig) -> None:
    """Refuse bad shapes and settings before any encoding starts."""
    frames, height, width = config.video.frames, config.video.height, config.video.width
    backbone.check_video_shape(frames, height, width)
    backbone.lora_target_modules(config.lora.targets)
    backbone.check_training_choices(config.train.model_copy())  # a hub id's family is known only once loaded
    if not videos:
        raise ArcvdmError("LoraTrainer: no training videos given")
    for i, video in enumerate(videos):
        if not isinstance(video, np.ndarray) or video.dtype != np.uint8 or video.shape != (frames, height, width, 3):
            got = f"{video.dtype} {video.shape}" if isinstance(video, np.ndarray) else type(video).__name__
            raise ArcvdmError(
                f"training video {i} is {got}; expected uint8 {(frames, height, width, 3)} from config.video"
            )


def lr_factor(step: int, train: TrainConfig) -> float:
    """The learning rate of optimizer step `step` (0-based) as a fraction of train.lr.

    A linear warm-up over train.warmup_steps (step 0 already at 1/warmup_steps), then 1 (`constant`) or a cosine from 1
    at the warm-up's end to 0 at train.steps (`cosine`: diffusers' `get_cosine_schedule_with_warmup` after the warm-up;
    its own warm-up starts at 0, which would change the `constant` schedule's). It depends on the step and the config
    alone, so chunked training, early stopping and leave-one-out see the same rate at the same step.
    """
    warm = min(1.0, (step + 1) / train.warmup_steps) if train.warmup_steps else 1.0
    if train.lr_schedule == "constant":
        return warm
    progress = min(1.0, max(0, step - train.warmup_steps) / max(1, train.steps - train.warmup_steps))
    return warm * 0.5 * (1.0 + math.cos(math.pi * progress))


class LoraTrainer:
    """One LoRA on `backbone` for one problem. Constructing it removes any previous adapter."""

    def __init__(self, backbone, videos: list[np.ndarray], config: RunConfig, progress: bool = False,
                 prompts: Sequence[str] | None = None):
        from diffusers.training_utils import cast_training_params
        from peft import LoraConfig

        check_inputs(backbone, videos, config)
        self.backbone, self.config = backbone, config
        self.transformer = backbone.transformer
        backbone.use_training(config.train)  # the family's trainer choices (first frame, sigma sampling)
        # All randomness comes from one CPU generator: the same run on any device draws the same numbers.
        self.generator = torch.Generator().manual_seed(config.train.seed)
        self.step = 0

        # 1. Conditioning computed once: the neutral prompt (cached on the backbone) and what the objective needs
        #    of every video (latents, clean first frames, ...), one video at a time. `prompts`: each video's own
        #    prompt (augment.view_prompts), each distinct one encoded once; None = config.prompt for every video.
        self.prompt_texts, self.prompt_of_video = self.index_prompts(prompts, len(videos))
        self.prompts = [backbone.prompt_embeds(text) for text in self.prompt_texts]
        self.encoded = self.encode_videos(videos, progress)
        self.n_videos = len(videos)

        # 2. The adapter: frozen base in the backbone dtype (bf16 on CUDA by default), LoRA weights in fp32 for the
        #    optimizer (AdamW updates of 1e-4 vanish in bf16's 8-bit mantissa).
        backbone.reset_lora()
        with torch.random.fork_rng(devices=[]):  # seeded LoRA init without touching the caller's RNG
            torch.manual_seed(config.train.seed)
            self.transformer.add_adapter(
                LoraConfig(r=config.lora.rank, lora_alpha=config.lora.alpha,
                           target_modules=backbone.lora_target_modules(config.lora.targets), init_lora_weights=True),
                adapter_name=ADAPTER,
            )
        cast_training_params(self.transformer, dtype=torch.float32)
        if config.train.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        else:
            self.transformer.disable_gradient_checkpointing()
        backbone.use_compile(config.train.compile)  # after add_adapter: the LoRA layers are in the compiled graph
        self.params = [p for p in self.transformer.parameters() if p.requires_grad]

        # 3. AdamW after an optional linear warm-up (Wan2.1's recipe warms up 1000 steps), then constant (the paper)
        #    or a cosine decay (train.lr_schedule). LambdaLR counts the optimizer steps this trainer took.
        t = config.train
        self.optimizer = torch.optim.AdamW(self.params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay, eps=t.eps)
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, partial(lr_factor, train=t))
        self.rows: tuple[int, ...] = tuple(range(self.n_videos))  # the videos batches are drawn from
        self._order: list[int] = []  # what is left of the current shuffled epoch over `rows`

    def index_prompts(self, prompts: Sequence[str] | None, n: int) -> tuple[list[str], list[int]]:
        """(the distinct prompts, each video's index into them); refuses prompts the text encoder cannot tell apart
        (truncated to the same tokens: each view would silently share one embedding)."""
        if prompts is None:
            return [self.config.prompt], [0] * n
        if len(prompts) != n:
            raise ArcvdmError(f"LoraTrainer: {len(prompts)} prompts for {n} training videos; give one per video")
        texts = list(dict.fromkeys(prompts))
        embeds = [self.backbone.prompt_embeds(text)["prompt_embeds"] for text in texts]
        for i, j in itertools.combinations(range(len(texts)), 2):
            if torch.equal(embeds[i], embeds[j]):
                raise ArcvdmError(f"prompts {texts[i]!r} and {texts[j]!r} encode to the same embedding "
                                  f"({self.backbone.name}'s text encoder truncates them alike): use a shorter `prompt` "
                                  "or fewer augment.color_maps")
        return texts, [texts.index(p) for p in prompts]

    def encode_videos(self, videos: list[np.ndarray], progress: bool) -> dict[str, torch.Tensor]:
        from tqdm.auto import tqdm

        bar = tqdm(videos, desc="encode videos", leave=False, disable=None if progress and len(videos) >= ENCODE_BAR_FROM else True)
        with self.backbone.using(*self.backbone.encoding_parts):  # moved once for all the videos, not per video
            parts = [self.backbone.encode_videos([video], self.generator) for video in bar]
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}

    def use_rows(self, rows: Sequence[int] | None) -> None:
        """Draw the next batches from the encoded videos `rows` only (None = all of them).

        A different subset starts a new shuffled epoch; the same one continues the current epoch. Every draw
        comes from the trainer's seeded generator, so the same sequence of calls gives the same batches.
        """
        n = self.n_videos
        rows = tuple(range(n)) if rows is None else tuple(int(r) for r in rows)
        if not rows or not all(0 <= r < n for r in rows) or len(set(rows)) != len(rows):
            raise ArcvdmError(f"LoraTrainer: rows {list(rows)} must be distinct indices of the {n} encoded videos (0-{n - 1})")
        if rows != self.rows:
            self.rows, self._order = rows, []

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return {key: value[indices] for key, value in self.encoded.items()}

    def draw_batch(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(video indices, the family's noise draw) for the next step: videos of `rows` in shuffled epochs."""
        b = self.config.train.batch_size
        indices = []
        while len(indices) < b:
            if not self._order:
                self._order = [self.rows[i] for i in torch.randperm(len(self.rows), generator=self.generator).tolist()]
            indices.append(self._order.pop())
        indices = torch.tensor(indices)
        return indices, self.backbone.draw_noise(self.batch(indices), self.generator)

    def loss(self, indices: torch.Tensor, draw: dict[str, torch.Tensor]) -> torch.Tensor:
        """The backbone family's denoising loss for these videos under this draw."""
        return self.backbone.loss(self.batch(indices), draw, self.batch_prompt(indices))

    def batch_prompt(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """The videos' prompt embeddings: batch 1 when they share one (as every family expands it), else one row per
        video, which every family's `loss` takes alike."""
        rows = [self.prompt_of_video[i] for i in indices.tolist()]
        if len(set(rows)) == 1:
            return self.prompts[rows[0]]
        return {key: torch.cat([self.prompts[r][key] for r in rows]) for key in self.prompts[rows[0]]}

    def train_step(self, indices: torch.Tensor, draw: dict[str, torch.Tensor]) -> float:
        self.transformer.train()
        return self.update(self.loss(indices, draw))

    def update(self, loss: torch.Tensor) -> float:
        """The backward pass, gradient clipping and one optimizer step on `loss` (benchmarks time it on its own)."""
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.config.train.max_grad_norm)
        self.optimizer.step()
        self.lr_schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return loss.item()

    def train(self, steps: int, progress: bool = True, rows: Sequence[int] | None = None) -> list[float]:
        """Run `steps` more optimizer steps (continuing from `self.step`) on the encoded videos `rows`
        (None = all; see `use_rows`); returns their losses."""
        from tqdm.auto import tqdm

        self.use_rows(rows)
        losses = []
        # One bar over the whole schedule across chunked calls; off in logs (disable=None: only on a terminal).
        bar = tqdm(total=max(self.config.train.steps, self.step + steps), initial=self.step,
                   desc=f"train {self.backbone.name}", disable=None if progress else True, leave=False)
        for _ in range(steps):
            losses.append(self.train_step(*self.draw_batch()))
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        bar.close()
        self.transformer.eval()
        return losses

    def save_adapter(self, directory: str | Path) -> Path:
        """Write `pytorch_lora_weights.safetensors` that the stock pipeline of the backbone's family loads with
        `pipe.load_lora_weights(directory)`.

        The header carries diffusers' adapter metadata (peft's config: lora_alpha, without which a reload scales by
        1 instead of alpha / rank, and the wrapped modules) as diffusers writes it, plus `TARGETS_KEY`: the
        lora.targets set they came from.
        """
        import json

        import safetensors.torch
        from diffusers.loaders.lora_base import LORA_ADAPTER_METADATA_KEY
        from peft.utils import get_peft_model_state_dict

        peft_config = {f"transformer.{key}": sorted(value) if isinstance(value, set) else value
                       for key, value in self.transformer.peft_config[ADAPTER].to_dict().items()}
        header = {"format": "pt", LORA_ADAPTER_METADATA_KEY: json.dumps(peft_config, indent=2, sort_keys=True),
                  TARGETS_KEY: self.config.lora.targets}
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".adapter-") as tmp:  # written whole, then renamed
            type(self.backbone.pipe).save_lora_weights(
                tmp,
                transformer_lora_layers=get_peft_model_state_dict(self.transformer, adapter_name=ADAPTER),
                weight_name=ADAPTER_FILE,
                save_function=lambda weights, path: safetensors.torch.save_file(weights, path, metadata=header),
                safe_serialization=True,
            )
            os.replace(Path(tmp) / ADAPTER_FILE, directory / ADAPTER_FILE)
        return directory / ADAPTER_FILE
