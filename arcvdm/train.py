"""LoRA on a frozen CogVideoX1.5 image-to-video model from a few transition videos: `LoraTrainer(backbone, videos, config).train(steps)`.

`train(steps, rows=[...])` trains on a subset of the encoded videos (leave-one-out holds a pair's videos
out of a chunk) without encoding anything again.

Reads top to bottom like a diffusers training script: check the inputs, encode every video once
(the VAE is 80-99% of an uncached step), add the adapter, then the loop. The objective is the one the
pipeline undoes at inference (see `CogVideoXImageToVideoPipeline.prepare_latents` and `__call__`):

- video in [-1, 1] -> VAE latents x scaling_factor, as [B, F, C, h, w];
- the first frame, with image noise sigma = exp(N(-3, 0.5)), -> image latents / scaling_factor
  (the 1.5 VAE's `invert_scale_latents` convention), followed by zero latents for the other frames;
- an odd latent frame count is padded to the temporal patch of 2 by a copy of the first latent
  frame, which the pipeline drops after denoising; rotary embeddings are built for the padded size;
- t ~ U{0, ..., 999}, x_t = scheduler.add_noise(x_0, noise, t), ofs = 2.0, and the transformer
  predicts v = scheduler.get_velocity(x_0, noise, t) under an MSE loss. Only the LoRA trains.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from arcvdm.config import RunConfig
from arcvdm.errors import ArcvdmError

ADAPTER = "arcvdm"
ADAPTER_FILE = "pytorch_lora_weights.safetensors"

_ATTENTION = {"to_q": r"attn1\.to_q", "to_k": r"attn1\.to_k", "to_v": r"attn1\.to_v", "to_out.0": r"attn1\.to_out\.0"}
LORA_TARGETS = {
    "qk": ["to_q", "to_k"],
    "vo": ["to_v", "to_out.0"],
    "qkvo": ["to_q", "to_k", "to_v", "to_out.0"],
    # Every linear layer inside the transformer blocks (attention, feed-forward, adaptive norms),
    # not the patch embedding or the output head.
    "all-linear": r"transformer_blocks\.\d+\.(attn1\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2)|norm[12]\.linear)",
}
IMAGE_NOISE_LOG_SIGMA = (-3.0, 0.5)  # mean and std of log sigma, as in CogVideoX's I2V training
OFS = 2.0  # the pipeline always passes ofs = 2.0; the output depends on it


def check_inputs(backbone, videos: list[np.ndarray], config: RunConfig) -> None:
    """Refuse bad shapes and settings before any encoding starts."""
    frames, height, width = config.video.frames, config.video.height, config.video.width
    backbone.check_video_shape(frames, height, width)
    if not videos:
        raise ArcvdmError("LoraTrainer: no training videos given")
    for i, video in enumerate(videos):
        if not isinstance(video, np.ndarray) or video.dtype != np.uint8 or video.shape != (frames, height, width, 3):
            got = f"{video.dtype} {video.shape}" if isinstance(video, np.ndarray) else type(video).__name__
            raise ArcvdmError(
                f"training video {i} is {got}; expected uint8 {(frames, height, width, 3)} from config.video"
            )


class LoraTrainer:
    """One LoRA on `backbone` for one problem. Constructing it removes any previous adapter."""

    def __init__(self, backbone, videos: list[np.ndarray], config: RunConfig):
        from diffusers.training_utils import cast_training_params
        from peft import LoraConfig

        check_inputs(backbone, videos, config)
        self.backbone, self.config = backbone, config
        self.pipe, self.transformer = backbone.pipe, backbone.transformer
        self.device, self.dtype = backbone.device, backbone.dtype
        # All randomness comes from one CPU generator: the same run on any device draws the same numbers.
        self.generator = torch.Generator().manual_seed(config.train.seed)
        self.step = 0

        # 1. Conditioning computed once: the neutral prompt (cached on the backbone) and the video latents.
        self.prompt_embeds = backbone.prompt_embeds(config.prompt)
        self.latents, self.image_latents = self.encode_videos(videos)
        self.rotary = backbone.rotary_embeds(config.video.height, config.video.width, self.latents.shape[1])
        self.ofs = torch.full((1,), OFS, device=self.device, dtype=self.dtype)

        # 2. The adapter: frozen base in the backbone dtype, LoRA weights in fp32 for the optimizer.
        backbone.reset_lora()
        with torch.random.fork_rng(devices=[]):  # seeded LoRA init without touching the caller's RNG
            torch.manual_seed(config.train.seed)
            self.transformer.add_adapter(
                LoraConfig(r=config.lora.rank, lora_alpha=config.lora.alpha, target_modules=LORA_TARGETS[config.lora.targets],
                           init_lora_weights=True),
                adapter_name=ADAPTER,
            )
        cast_training_params(self.transformer, dtype=torch.float32)
        if config.train.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        else:
            self.transformer.disable_gradient_checkpointing()
        self.params = [p for p in self.transformer.parameters() if p.requires_grad]

        # 3. AdamW at a constant learning rate.
        t = config.train
        self.optimizer = torch.optim.AdamW(self.params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay, eps=t.eps)
        self.rows: tuple[int, ...] = tuple(range(len(self.latents)))  # the videos batches are drawn from
        self._order: list[int] = []  # what is left of the current shuffled epoch over `rows`

    @torch.no_grad()
    def encode_videos(self, videos: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(video latents, image latents), both fp32 [N, padded latent frames, C, h, w], one video at a time."""
        vae = self.pipe.vae
        scale = vae.config.scaling_factor
        latents, image_latents = [], []
        for video in videos:
            pixels = torch.from_numpy(video).permute(3, 0, 1, 2)[None]  # [1, 3, F, H, W]
            pixels = (pixels.float() / 127.5 - 1.0).to(self.device, self.dtype)
            latent = vae.encode(pixels).latent_dist.sample(self.generator) * scale
            first = pixels[:, :, :1]
            sigma = math.exp(torch.normal(*IMAGE_NOISE_LOG_SIGMA, (1,), generator=self.generator).item())
            noise = torch.randn(first.shape, generator=self.generator).to(self.device, self.dtype)
            image = vae.encode(first + sigma * noise).latent_dist.sample(self.generator)
            image = image / scale if vae.config.invert_scale_latents else image * scale
            latents.append(latent.permute(0, 2, 1, 3, 4).float())  # [1, f, C, h, w]
            image_latents.append(image.permute(0, 2, 1, 3, 4).float())
        latents, image = torch.cat(latents), torch.cat(image_latents)

        n, padded = self.backbone.latent_frames(self.config.video.frames)
        latents = torch.cat([latents[:, :1].expand(-1, padded - n, -1, -1, -1), latents], dim=1)
        image = torch.cat([image, image.new_zeros(image.shape[0], padded - 1, *image.shape[2:])], dim=1)
        return latents, image

    def use_rows(self, rows: Sequence[int] | None) -> None:
        """Draw the next batches from the encoded videos `rows` only (None = all of them).

        A different subset starts a new shuffled epoch; the same one continues the current epoch. Every draw
        comes from the trainer's seeded generator, so the same sequence of calls gives the same batches.
        """
        n = len(self.latents)
        rows = tuple(range(n)) if rows is None else tuple(int(r) for r in rows)
        if not rows or not all(0 <= r < n for r in rows) or len(set(rows)) != len(rows):
            raise ArcvdmError(f"LoraTrainer: rows {list(rows)} must be distinct indices of the {n} encoded videos (0-{n - 1})")
        if rows != self.rows:
            self.rows, self._order = rows, []

    def draw_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(video indices, noise, timesteps) for the next step: videos of `rows` in shuffled epochs, t ~ U{0..999}."""
        b = self.config.train.batch_size
        indices = []
        while len(indices) < b:
            if not self._order:
                self._order = [self.rows[i] for i in torch.randperm(len(self.rows), generator=self.generator).tolist()]
            indices.append(self._order.pop())
        noise = torch.randn((b, *self.latents.shape[1:]), generator=self.generator)
        timesteps = torch.randint(0, self.pipe.scheduler.config.num_train_timesteps, (b,), generator=self.generator)
        return torch.tensor(indices), noise, timesteps

    def loss(self, indices: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The v-prediction MSE for these videos at these (noise, t)."""
        scheduler = self.pipe.scheduler
        latents = self.latents[indices].to(self.device)
        noise, timesteps = noise.to(self.device), timesteps.to(self.device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        model_input = torch.cat([noisy, self.image_latents[indices].to(self.device)], dim=2).to(self.dtype)
        prediction = self.transformer(
            hidden_states=model_input,
            encoder_hidden_states=self.prompt_embeds.expand(len(indices), -1, -1),
            timestep=timesteps,
            ofs=self.ofs,
            image_rotary_emb=self.rotary,
            return_dict=False,
        )[0]
        target = scheduler.get_velocity(latents, noise, timesteps)
        return F.mse_loss(prediction.float(), target.float())

    def train_step(self, indices: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> float:
        self.transformer.train()
        loss = self.loss(indices, noise, timesteps)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.config.train.max_grad_norm)
        self.optimizer.step()
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
        """Write `pytorch_lora_weights.safetensors` that stock diffusers loads with `pipe.load_lora_weights(directory)`.

        The adapter metadata carries lora_alpha: without it a reload scales by 1 instead of alpha / rank.
        """
        from diffusers import CogVideoXImageToVideoPipeline
        from peft.utils import get_peft_model_state_dict

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".adapter-") as tmp:  # written whole, then renamed
            CogVideoXImageToVideoPipeline.save_lora_weights(
                tmp,
                transformer_lora_layers=get_peft_model_state_dict(self.transformer, adapter_name=ADAPTER),
                transformer_lora_adapter_metadata=self.transformer.peft_config[ADAPTER].to_dict(),
                weight_name=ADAPTER_FILE,
                safe_serialization=True,
            )
            os.replace(Path(tmp) / ADAPTER_FILE, directory / ADAPTER_FILE)
        return directory / ADAPTER_FILE
