"""`arcvdm backbone pretrain-mini`: stage 1 trains the VAE to reconstruct rendered frames, stage 1b trains its
decoder alone on transition videos and some grids held still (the encoder, and so every latent, is fixed from there
on), stage 2 trains the whole transformer with the LoRA trainer's objective (the backbone's `encode_videos` /
`draw_noise` / `loss`), VAE frozen; then the pipeline is written with `save_pretrained` in fp16 plus its model card
(`arcvdm.pretrain.card`).

The state (weights, optimizer, step, elapsed time) is checkpointed atomically under `DIR/.pretrain/` every
`CHECKPOINT_EVERY_S` seconds and at each stage's end; rerunning the same command after a kill continues
from it. Every data draw is seeded by (seed, stage, step), so a resumed run sees the data it would have seen,
and worker processes (`workers`) draw exactly what the main process would.

Two recipes: `Recipe()` (the shipped `mini`, 2 CPU cores, about 30 minutes) and `gpu_recipe()` (one H200, a wider
and deeper transformer, large batches, fresh videos, the 80x80 token-aligned geometry). The options towards a prior
that generalises (`fresh_videos`, `answer_weight`, `ema_decay`, `caption_share`), the geometry (`canvas`, `layout`)
and a kept VAE (`vae_from`) are recipe fields; docs/mini.md says what each is and what it measured.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from arcvdm.errors import ArcvdmError
from arcvdm.pretrain.data import (Geometry, captioned_videos, decoder_video, random_task, step_data, stream_rng,
                                  vae_video)

STATE_DIR = ".pretrain"
STATE_FILE = "state.pt"
CHECKPOINT_EVERY_S = 120.0
DEFAULT_MINUTES = 30.0  # the budget the default recipe is sized for (the model card records the real time)
GPU_MINUTES = 7.0  # the budget gpu_recipe is sized for: one H200, wall time


@dataclass
class Recipe:
    """Everything that decides the weights; written to the model card. The defaults are the shipped `mini`."""

    seed: int = 0
    vae_steps: int = 1200
    vae_batch: int = 2  # 9-frame videos, every `vae_video_every`-th step: the temporal compression's path
    vae_frames_batch: int = 8  # single frames on the other steps: a ninth of the cost, more colours per second
    vae_video_every: int = 4
    vae_lr: float = 5e-4
    vae_kl_weight: float = 1e-4
    vae_colour_weight: float = 10.0
    vae_logvar_init: float = -8.0
    decoder_steps: int = 2500  # stage 1b: 9-frame videos, encoder frozen
    decoder_batch: int = 2
    decoder_still: float = 0.25  # share of them holding one grid still; the rest are transitions
    decoder_lr: float = 1e-3
    transformer_steps: int = 5500
    transformer_batch: int = 8
    transformer_lr: float = 1e-3
    chunk_steps: int = 500  # stage 2 trains on a fresh pool of generated videos every chunk
    pool_videos: int = 200
    warmup_steps: int = 100
    vae_eval_tasks: int = 66  # fresh generated tasks (about 400 grids) for the card's VAE round-trip rate
    # The transformer's size (the mini's MINI_TRANSFORMER; gpu_recipe's is wider and deeper).
    transformer_layers: int = 6
    transformer_heads: int = 4
    transformer_head_dim: int = 32
    # Towards a prior that generalises (docs/mini.md); these defaults are the shipped recipe.
    fresh_videos: bool = False  # stage 2 draws and encodes new videos every step instead of reusing a chunk's pool
    answer_weight: float = 1.0  # stage 2's loss weight on the last latent frame (the answer's); the others weigh 1
    ema_decay: float = 0.0  # > 0: the transformer saved is this exponential moving average of its weights
    caption_share: float = 0.0  # share of stage-2 tasks prompted with their rule (the family's name); the rest neutral
    # The geometry (docs/mini.md): the square canvas (the rotary table covers it) and the layout of every video.
    canvas: int = 64
    layout: str = "centered"  # centered (a quarter anchored, as shipped) | token-aligned (one cell per 8-px token)
    vae_from: str | None = None  # a mini folder whose VAE (convolutional: any canvas) is kept; stages 1 and 1b skipped
    budget_minutes: float = DEFAULT_MINUTES  # what the step counts are sized for; `scaled` scales from it

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.canvas, self.layout)

    def scaled(self, minutes: float) -> "Recipe":
        """The same recipe with step counts (and stage-2 pools) scaled to about `minutes` of the machine it is sized
        for (the default: an idle 2-core CPU)."""
        f = minutes / self.budget_minutes
        chunk = max(1, round(self.chunk_steps * min(f, 1.0)))
        return replace(self, vae_steps=max(1, round(self.vae_steps * f)), decoder_steps=max(1, round(self.decoder_steps * f)),
                       transformer_steps=max(1, round(self.transformer_steps * f)),
                       chunk_steps=chunk, pool_videos=max(self.transformer_batch, round(self.pool_videos * min(f, 1.0))),
                       warmup_steps=max(1, round(self.warmup_steps * min(f, 1.0))),
                       vae_eval_tasks=max(1, round(self.vae_eval_tasks * min(f, 1.0))))

    def toy(self) -> "Recipe":
        """This recipe at toy size (a step or two per stage, batches of 1-2, two transformer layers): checks in
        seconds on a CPU that it runs end to end and writes a loadable folder."""
        return replace(self, vae_steps=1, vae_batch=1, vae_frames_batch=2, decoder_steps=1, decoder_batch=1,
                       transformer_steps=2, transformer_batch=2, chunk_steps=1, pool_videos=2, warmup_steps=1,
                       vae_eval_tasks=1, transformer_layers=min(2, self.transformer_layers))


def gpu_recipe(seed: int = 0) -> Recipe:
    """Sized for one H200 in at most GPU_MINUTES of wall time, by estimate (no H200 has run it yet: docs/mini.md).
    A transformer of 9 layers x 4 heads x 64 (9.0 M parameters; the folder's fp16 weights come to about 22 MB, under
    the 24 MB cap), batches 4-16x the CPU's, every stage-2 video fresh (drawn by worker processes, `--workers`; each
    is then VAE-encoded on the GPU, a step's batch a call), on the 80x80 token-aligned geometry (one cell per token:
    what the CPU candidates measured to help; the EMA, which did not, is left out)."""
    return Recipe(seed=seed, vae_steps=3000, vae_batch=8, vae_frames_batch=32, decoder_steps=3000, decoder_batch=8,
                  transformer_steps=3000, transformer_batch=128, transformer_lr=5e-4, warmup_steps=200,
                  transformer_layers=9, transformer_heads=4, transformer_head_dim=64, fresh_videos=True,
                  canvas=80, layout="token-aligned", budget_minutes=GPU_MINUTES)


def check_geometry(canvas: int, layout: str) -> None:
    """Refuse a canvas or layout on which the generated tasks (grids up to MAX_SIDE a side) cannot all be drawn."""
    from arcvdm import codec
    from arcvdm.backbones.mini_architecture import TOKEN
    from arcvdm.pretrain.data import PRETRAIN_LAYOUTS
    from arcvdm.pretrain.generator import MAX_SIDE

    if layout not in PRETRAIN_LAYOUTS:
        raise ArcvdmError(f"--layout {layout!r}: use {' or '.join(PRETRAIN_LAYOUTS)}")
    need = codec.smallest_canvas((MAX_SIDE, MAX_SIDE), layout, TOKEN if layout == "token-aligned" else None)  # type: ignore[arg-type]
    step = codec.CANVAS_MULTIPLE
    if canvas < max(need) or canvas % step:
        raise ArcvdmError(f"--canvas {canvas}: the {layout} layout draws the generated {MAX_SIDE}x{MAX_SIDE} grids on a "
                          f"multiple of {step} px from {max(need)} up, e.g. --canvas {max(need) + -max(need) % step}")


RECIPES = {"cpu": Recipe, "gpu": gpu_recipe}  # `arcvdm backbone pretrain-mini --recipe NAME`: seed -> Recipe


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))


def to_pixels(videos: list[np.ndarray]) -> torch.Tensor:
    """uint8 [F, H, W, 3] videos -> float [B, 3, F, H, W] in [-1, 1], the VAE's input."""
    return torch.from_numpy(np.stack(videos)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def colour_weights(pixels: torch.Tensor, weight: float) -> torch.Tensor:
    """1 + `weight` on coloured pixels (far from their grey level), 1 on black, grey, white and the grid lines.

    Coloured cells cover a few percent of a frame; with every pixel weighted alike the VAE first learns shapes in
    grey and its encoder drops colour (docs/mini.md). Weighted, it keeps colour from the start."""
    grey_distance = (pixels - pixels.mean(dim=1, keepdim=True)).abs().sum(dim=1, keepdim=True)
    return 1 + weight * (grey_distance > 0.2).float()


class WeightAverage:
    """An exponential moving average of a module's parameters (fp32, on the module's device)."""

    def __init__(self, module: torch.nn.Module, decay: float, state: dict | None = None):
        self.decay = decay
        self.average = {name: p.detach().float().clone() for name, p in module.named_parameters()}
        if state is not None:
            for name, value in state.items():
                self.average[name].copy_(value)

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        for name, p in module.named_parameters():
            self.average[name].lerp_(p.detach().float(), 1.0 - self.decay)

    @torch.no_grad()
    def copy_to(self, module: torch.nn.Module) -> None:
        for name, p in module.named_parameters():
            p.copy_(self.average[name])


def answer_weights(rows: int, latent_frames: int, weight: float) -> torch.Tensor:
    """[rows, latent_frames]: `weight` on the last latent frame (every frame it decodes shows the answer in a
    `discrete` video, and the end of the transition in the others), 1 on the rest."""
    weights = torch.ones(rows, latent_frames)
    weights[:, -1] = weight
    return weights


def vae_step_data(recipe: Recipe, i: int) -> tuple[np.ndarray, int]:
    """Stage 1's pixels for step `i` (uint8 [B, F, H, W, 3]; single frames on most steps) and the posterior seed."""
    rng = stream_rng("vae", recipe.seed, i)
    if i % recipe.vae_video_every == 0:
        videos = np.stack([vae_video(rng, recipe.geometry) for _ in range(recipe.vae_batch)])
    else:
        drawn = [vae_video(rng, recipe.geometry) for _ in range(recipe.vae_frames_batch)]
        videos = np.stack([v[rng.randrange(len(v))][None] for v in drawn])
    return videos, rng.randrange(2**31)


def decoder_step_data(recipe: Recipe, i: int) -> tuple[np.ndarray, int]:
    """Stage 1b's videos for step `i` and the posterior seed."""
    rng = stream_rng("decoder", recipe.seed, i)
    videos = [decoder_video(rng, recipe.decoder_still, recipe.geometry) for _ in range(recipe.decoder_batch)]
    return np.stack(videos), rng.randrange(2**31)


def fresh_step_data(recipe: Recipe, i: int) -> tuple[np.ndarray, list[str | None], int]:
    """Stage 2's new videos for step `i` (fresh_videos), their captions (None: the neutral prompt) and the seed of
    their encoding and noise."""
    rng = stream_rng("transformer-fresh", recipe.seed, i)
    videos, captions = captioned_videos(rng, recipe.transformer_batch, recipe.caption_share, recipe.geometry)
    return np.stack(videos), captions, rng.randrange(2**31)


def check_out_dir(out: Path) -> bool:
    """True if `out` holds an unfinished pretraining to resume; refuse a folder holding anything else."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise ArcvdmError(f"--out {out}: exists and is not a folder; choose a new folder")
    if (out / STATE_DIR / STATE_FILE).is_file():
        return True
    entries = [p.name for p in out.iterdir()]
    if entries:
        from arcvdm.backbones.mini_card import CARD_JSON

        what = "a finished pretraining" if CARD_JSON in entries else f"{len(entries)} other entries ({', '.join(sorted(entries)[:3])}...)"
        raise ArcvdmError(f"--out {out}: holds {what}; nothing was overwritten: choose a new or empty folder")
    return False


class Pretrainer:
    """One pretraining into `out`: `Pretrainer(out, recipe).run()`; resumes from `out/.pretrain/state.pt`."""

    def __init__(self, out: Path, recipe: Recipe, progress: bool = True, device: str = "cpu", workers: int = 0,
                 command: str | None = None):
        """`device`: where the weights train (cpu, cuda); `workers`: processes generating the data ahead of use
        (0: the main process); `command`: the command line that rebuilds this folder, for its model card."""
        from arcvdm.backbones.mini_architecture import build_mini_pipeline

        self.out, self.recipe, self.progress = Path(out), recipe, progress
        self.device, self.workers, self.command = torch.device(device), workers, command
        resume = check_out_dir(self.out)
        self.state_path = self.out / STATE_DIR / STATE_FILE
        self.pipe = build_mini_pipeline(recipe.seed, recipe.canvas, num_layers=recipe.transformer_layers,
                                        num_attention_heads=recipe.transformer_heads,
                                        attention_head_dim=recipe.transformer_head_dim)
        self.stage, self.step, self.elapsed = "vae", 0, 0.0
        self.losses: dict[str, list[float]] = {}  # per stage
        self.metrics: dict = {}
        self._optimizer_state = None
        self._ema_state = None
        if resume:
            self._load()
        self.pipe.to(self.device)

    # --- checkpoints -------------------------------------------------------------------------------------------

    def _load(self) -> None:
        state = torch.load(self.state_path, map_location="cpu", weights_only=False)
        # A state saved before a recipe field existed holds that field's default (the recipe it trained with).
        if {**asdict(Recipe()), **state["recipe"]} != asdict(self.recipe):
            raise ArcvdmError(f"{self.state_path}: an unfinished pretraining with another recipe "
                              f"(seed {state['recipe']['seed']}): rerun it with the same flags, or use a new --out")
        self.pipe.vae.load_state_dict(state["vae"])
        self.pipe.transformer.load_state_dict(state["transformer"])
        self.stage, self.step, self.elapsed = state["stage"], state["step"], state["elapsed"]
        self.losses, self.metrics = state["losses"], state["metrics"]
        self._optimizer_state, self._ema_state = state["optimizer"], state.get("ema")

    def _save(self, optimizer, ema: WeightAverage | None = None) -> None:
        from arcvdm.io import atomic_write_bytes

        buffer = io.BytesIO()
        torch.save({"recipe": asdict(self.recipe), "stage": self.stage, "step": self.step, "elapsed": self.elapsed,
                    "vae": self.pipe.vae.state_dict(), "transformer": self.pipe.transformer.state_dict(),
                    "optimizer": None if optimizer is None else optimizer.state_dict(),
                    "losses": self.losses, "metrics": self.metrics,
                    "ema": None if ema is None else ema.average}, buffer)
        atomic_write_bytes(self.state_path, buffer.getvalue())

    # --- the stages --------------------------------------------------------------------------------------------

    def run(self) -> Path:
        r = self.recipe
        if self.stage == "vae":
            if r.vae_from:
                self._copy_vae(Path(r.vae_from))
            else:
                self._train_vae()
            self._next_stage("decoder")
        if self.stage == "decoder":
            if not r.vae_from:
                self._train_decoder()
            self.metrics.update(self._vae_round_trips())
            self._next_stage("transformer")
        if self.stage == "transformer":
            self._train_transformer()
            self.stage = "done"
            self._save(None)
        from arcvdm.pretrain.card import write_pipeline

        return write_pipeline(self)

    def _next_stage(self, name: str) -> None:
        self.stage, self.step, self._optimizer_state = name, 0, None
        self._save(None)

    def _loop(self, name: str, steps: int, params: list, lr: float, step_fn, clip: float | None = None,
              data=None, ema: WeightAverage | None = None, module: torch.nn.Module | None = None) -> None:
        """Train `params` for the stage's remaining steps: `step_fn(step, item)` returns the loss, `item` being
        `data(step)` drawn ahead by the worker processes (None without `data`); `ema` follows `module`."""
        from tqdm.auto import tqdm

        optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=1e-3)
        if self._optimizer_state is not None:
            optimizer.load_state_dict(self._optimizer_state)
            self._optimizer_state = None
        bar = tqdm(total=steps, initial=self.step, desc=f"pretrain mini: {name}", disable=None if self.progress else True)
        last_save = time.monotonic()
        items = None if data is None else step_data(data, self.step, steps, self.workers)
        while self.step < steps:
            start = time.monotonic()
            item = None if items is None else next(items)
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_factor(self.step, steps, self.recipe.warmup_steps)
            with torch.autocast(self.device.type, dtype=torch.bfloat16):  # bf16 matmuls and convolutions, fp32 weights
                loss = step_fn(self.step, item)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(module)
            self.losses.setdefault(name, []).append(loss.item())
            self.step += 1
            self.elapsed += time.monotonic() - start
            bar.update()
            bar.set_postfix(loss=f"{np.mean(self.losses[name][-50:]):.4f}", refresh=False)
            if time.monotonic() - last_save > CHECKPOINT_EVERY_S or self.step == steps:
                self._save(optimizer, ema)
                last_save = time.monotonic()
        bar.close()

    def _reconstruction(self, pixels: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction loss: MSE + L1 with coloured pixels weighted up, the KL term per latent value) of `pixels`
        through the VAE, decoding a posterior sample as the pipeline's image latents do."""
        vae = self.pipe.vae
        pixels = pixels.to(self.device)
        posterior = vae.encode(pixels).latent_dist
        z = posterior.sample(torch.Generator().manual_seed(seed))
        error = vae.decode(z).sample.float() - pixels
        weights = colour_weights(pixels, self.recipe.vae_colour_weight)
        return (weights * (error**2 + error.abs())).mean() / weights.mean(), posterior.kl().mean() / z[0].numel()

    def _copy_vae(self, folder: Path) -> None:
        """Stages 1 and 1b replaced by another mini's VAE (fully convolutional, so any canvas): for experiments on the
        transformer's stage alone, in half the time."""
        from diffusers import AutoencoderKLCogVideoX

        try:
            vae = AutoencoderKLCogVideoX.from_pretrained(folder / "vae")
        except (OSError, ValueError) as error:
            raise ArcvdmError(f"--vae-from {folder}: no mini VAE there ({error}); give a pretrained mini folder, "
                              "e.g. arcvdm/backbones/mini") from None
        self.pipe.vae.load_state_dict(vae.float().state_dict())
        self.pipe.vae.eval().requires_grad_(False)

    def _train_vae(self) -> None:
        """Stage 1: reconstruction with a small KL term keeping the latents near unit scale. Most steps see single
        frames; every `vae_video_every`-th a batch of 9-frame videos."""
        vae, r = self.pipe.vae, self.recipe
        if self.step == 0 and self._optimizer_state is None:
            # The pipeline samples image latents from the posterior: start with a small std (log-variance
            # channels are the second half of the encoder's output) instead of drowning the decoder in noise.
            with torch.no_grad():
                vae.encoder.conv_out.conv.bias[vae.config.latent_channels :] = r.vae_logvar_init
        vae.train().requires_grad_(True)

        def step(i: int, item: tuple[np.ndarray, int]) -> torch.Tensor:
            videos, seed = item
            reconstruction, kl = self._reconstruction(to_pixels(videos), seed)
            return reconstruction + r.vae_kl_weight * kl

        self._loop("vae", r.vae_steps, list(vae.parameters()), r.vae_lr, step, data=partial(vae_step_data, r))
        vae.eval().requires_grad_(False)

    def _train_decoder(self) -> None:
        """Stage 1b: the decoder alone on 9-frame videos, transitions and a share of grids held still. The causal
        decoder sees the earlier frames when it draws the last one; trained mostly on single frames it blends input
        into output, so a transition's last frame (the prediction) came back wrong even for latents the encoder got
        right (docs/mini.md). The grids held still keep it drawing those too. The encoder stays
        as stage 1 left it, so stage 2's latents do not depend on this stage."""
        vae, r = self.pipe.vae, self.recipe
        vae.eval().requires_grad_(False)
        vae.decoder.train().requires_grad_(True)

        def step(i: int, item: tuple[np.ndarray, int]) -> torch.Tensor:
            videos, seed = item
            return self._reconstruction(to_pixels(videos), seed)[0]

        self._loop("decoder", r.decoder_steps, list(vae.decoder.parameters()), r.decoder_lr, step,
                   data=partial(decoder_step_data, r))
        vae.eval().requires_grad_(False)

    def _vae_round_trips(self) -> dict:
        """Exact round trips of fresh generated tasks (a stream pretraining never trains on) through the VAE and the
        codec: every grid held still, and every pair as the transition a run draws."""
        from arcvdm.pretrain.vae_check import round_trip_tasks

        r = self.recipe
        rng = stream_rng("vae-eval", r.seed, 0)
        tasks = [random_task(rng) for _ in range(r.vae_eval_tasks)]
        return {f"vae_round_trip{suffix}": round_trip_tasks(self.pipe.vae, tasks, r.layout, self.progress, pairs,  # type: ignore[arg-type]
                                                            r.canvas).summary()
                for suffix, pairs in (("", False), ("_transitions", True))}

    def _train_transformer(self) -> None:
        """Stage 2: the whole transformer on the backbone objective, VAE frozen. By default videos come in chunks:
        each chunk's pool is generated and encoded once (seeded by the chunk), then sampled for `chunk_steps` steps,
        so a resumed run re-encodes its chunk and continues with the same data. With `fresh_videos` every step
        encodes videos of its own, drawn ahead by the worker processes. The answer weighting and the captions act
        here only: runs and the LoRA trainer keep the family's objective and the neutral prompt."""

        from arcvdm.backbones import family_class
        from arcvdm.config import NEUTRAL_PROMPT

        r = self.recipe
        backbone = family_class("cogvideox")(self.pipe, "mini-pretraining", self.device, torch.float32)
        if r.fresh_videos:  # a step's videos in one VAE call; the pool keeps one a call, so its latents stay as shipped
            backbone.encode_batch = r.transformer_batch
        transformer = self.pipe.transformer
        transformer.requires_grad_(True)
        self.pipe.vae.eval().requires_grad_(False)
        neutral = backbone.prompt_embeds(NEUTRAL_PROMPT)
        ema = WeightAverage(transformer, r.ema_decay, self._ema_state) if r.ema_decay > 0 else None
        pool: dict = {}

        def encode(videos, generator) -> dict[str, torch.Tensor]:
            with torch.no_grad(), torch.autocast(self.device.type, enabled=False):  # fp32, as LoraTrainer encodes
                return backbone.encode_videos(list(videos), generator)

        def prompts(captions: list[str | None]) -> dict[str, torch.Tensor]:
            if not any(captions):
                return neutral
            return {"prompt_embeds": torch.cat([backbone.prompt_embeds(c or NEUTRAL_PROMPT)["prompt_embeds"]
                                                for c in captions])}

        def fill_pool(chunk: int) -> None:
            rng = stream_rng("transformer-pool", r.seed, chunk)
            videos, captions = captioned_videos(rng, r.pool_videos, r.caption_share, r.geometry)
            generator = torch.Generator().manual_seed(rng.randrange(2**31))
            pool.update(chunk=chunk, encoded=encode(videos, generator), captions=captions)

        def loss(batch: dict[str, torch.Tensor], captions: list[str | None], generator) -> torch.Tensor:
            draw = backbone.draw_noise(batch, generator)
            if r.answer_weight != 1.0:
                batch = {**batch, "frame_weights": answer_weights(*batch["latents"].shape[:2], r.answer_weight)}
            transformer.train()
            return backbone.loss(batch, draw, prompts(captions))

        def pooled_step(i: int, item: None) -> torch.Tensor:
            if pool.get("chunk") != i // r.chunk_steps:
                fill_pool(i // r.chunk_steps)
            generator = torch.Generator().manual_seed(stream_rng("transformer", r.seed, i).randrange(2**31))
            rows = torch.randint(0, r.pool_videos, (r.transformer_batch,), generator=generator)
            batch = {key: value[rows] for key, value in pool["encoded"].items()}
            return loss(batch, [pool["captions"][j] for j in rows.tolist()], generator)

        def fresh_step(i: int, item: tuple[np.ndarray, list[str | None], int]) -> torch.Tensor:
            videos, captions, seed = item
            generator = torch.Generator().manual_seed(seed)
            return loss(encode(videos, generator), captions, generator)

        step, data = (fresh_step, partial(fresh_step_data, r)) if r.fresh_videos else (pooled_step, None)
        self._loop("transformer", r.transformer_steps, list(transformer.parameters()), r.transformer_lr, step, clip=1.0,
                   data=data, ema=ema, module=transformer)
        if ema is not None:
            ema.copy_to(transformer)  # the average is what gets saved
        transformer.eval().requires_grad_(False)
