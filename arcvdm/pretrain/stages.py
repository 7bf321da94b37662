"""`arcvdm backbone pretrain-mini`: stage 1 trains the VAE to reconstruct rendered frames, stage 1b trains its
decoder alone on transition videos and some grids held still (the encoder, and so every latent, is fixed from there
on), stage 2 trains the whole transformer with the LoRA trainer's objective (the backbone's `encode_videos` /
`draw_noise` / `loss`), VAE frozen; then the pipeline is written with `save_pretrained` in fp16 plus its model card
(`arcvdm.pretrain.card`).

The state (weights, optimizer, step, elapsed time) is checkpointed atomically under `DIR/.pretrain/` every
`CHECKPOINT_EVERY_S` seconds and at each stage's end; rerunning the same command after a kill continues
from it. Every data draw is seeded by (seed, stage, step), so a resumed run sees the data it would have seen.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from arcvdm.errors import ArcvdmError
from arcvdm.pretrain.data import decoder_video, random_task, stream_rng, task_videos, vae_video

STATE_DIR = ".pretrain"
STATE_FILE = "state.pt"
CHECKPOINT_EVERY_S = 120.0
DEFAULT_MINUTES = 30.0  # the budget the default recipe is sized for (the model card records the real time)


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

    def scaled(self, minutes: float) -> "Recipe":
        """The same recipe with step counts (and stage-2 pools) scaled to about `minutes` on an idle 2-core CPU."""
        f = minutes / DEFAULT_MINUTES
        chunk = max(1, round(self.chunk_steps * min(f, 1.0)))
        return replace(self, vae_steps=max(1, round(self.vae_steps * f)), decoder_steps=max(1, round(self.decoder_steps * f)),
                       transformer_steps=max(1, round(self.transformer_steps * f)),
                       chunk_steps=chunk, pool_videos=max(self.transformer_batch, round(self.pool_videos * min(f, 1.0))),
                       warmup_steps=max(1, round(self.warmup_steps * min(f, 1.0))),
                       vae_eval_tasks=max(1, round(self.vae_eval_tasks * min(f, 1.0))))


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
    grey and its encoder drops colour (README: the pretrained mini backbone). Weighted, it keeps colour from the start."""
    grey_distance = (pixels - pixels.mean(dim=1, keepdim=True)).abs().sum(dim=1, keepdim=True)
    return 1 + weight * (grey_distance > 0.2).float()


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
        from arcvdm.pretrain.card import CARD_JSON

        what = "a finished pretraining" if CARD_JSON in entries else f"{len(entries)} other entries ({', '.join(sorted(entries)[:3])}...)"
        raise ArcvdmError(f"--out {out}: holds {what}; nothing was overwritten: choose a new or empty folder")
    return False


class Pretrainer:
    """One pretraining into `out`: `Pretrainer(out, recipe).run()`; resumes from `out/.pretrain/state.pt`."""

    def __init__(self, out: Path, recipe: Recipe, progress: bool = True):
        from arcvdm.pretrain.architecture import build_mini_pipeline

        self.out, self.recipe, self.progress = Path(out), recipe, progress
        resume = check_out_dir(self.out)
        self.state_path = self.out / STATE_DIR / STATE_FILE
        self.pipe = build_mini_pipeline(recipe.seed)
        self.stage, self.step, self.elapsed = "vae", 0, 0.0
        self.losses: dict[str, list[float]] = {}  # per stage
        self.metrics: dict = {}
        self._optimizer_state = None
        if resume:
            self._load()

    # --- checkpoints -------------------------------------------------------------------------------------------

    def _load(self) -> None:
        state = torch.load(self.state_path, map_location="cpu", weights_only=False)
        if state["recipe"] != asdict(self.recipe):
            raise ArcvdmError(f"{self.state_path}: an unfinished pretraining with another recipe "
                              f"(seed {state['recipe']['seed']}): rerun it with the same flags, or use a new --out")
        self.pipe.vae.load_state_dict(state["vae"])
        self.pipe.transformer.load_state_dict(state["transformer"])
        self.stage, self.step, self.elapsed = state["stage"], state["step"], state["elapsed"]
        self.losses, self.metrics = state["losses"], state["metrics"]
        self._optimizer_state = state["optimizer"]

    def _save(self, optimizer) -> None:
        from arcvdm.io import atomic_write_bytes

        buffer = io.BytesIO()
        torch.save({"recipe": asdict(self.recipe), "stage": self.stage, "step": self.step, "elapsed": self.elapsed,
                    "vae": self.pipe.vae.state_dict(), "transformer": self.pipe.transformer.state_dict(),
                    "optimizer": None if optimizer is None else optimizer.state_dict(),
                    "losses": self.losses, "metrics": self.metrics}, buffer)
        atomic_write_bytes(self.state_path, buffer.getvalue())

    # --- the stages --------------------------------------------------------------------------------------------

    def run(self) -> Path:
        r = self.recipe
        if self.stage == "vae":
            self._train_vae()
            self._next_stage("decoder")
        if self.stage == "decoder":
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

    def _loop(self, name: str, steps: int, params: list, lr: float, step_fn, clip: float | None = None) -> None:
        from tqdm.auto import tqdm

        optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=1e-3)
        if self._optimizer_state is not None:
            optimizer.load_state_dict(self._optimizer_state)
            self._optimizer_state = None
        bar = tqdm(total=steps, initial=self.step, desc=f"pretrain mini: {name}", disable=None if self.progress else True)
        last_save = time.monotonic()
        while self.step < steps:
            start = time.monotonic()
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_factor(self.step, steps, self.recipe.warmup_steps)
            with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 matmuls and convolutions, fp32 weights
                loss = step_fn(self.step)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            self.losses.setdefault(name, []).append(loss.item())
            self.step += 1
            self.elapsed += time.monotonic() - start
            bar.update()
            bar.set_postfix(loss=f"{np.mean(self.losses[name][-50:]):.4f}", refresh=False)
            if time.monotonic() - last_save > CHECKPOINT_EVERY_S or self.step == steps:
                self._save(optimizer)
                last_save = time.monotonic()
        bar.close()

    def _reconstruction(self, pixels: torch.Tensor, rng) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction loss: MSE + L1 with coloured pixels weighted up, the KL term per latent value) of `pixels`
        through the VAE, decoding a posterior sample as the pipeline's image latents do."""
        vae = self.pipe.vae
        posterior = vae.encode(pixels).latent_dist
        z = posterior.sample(torch.Generator().manual_seed(rng.randrange(2**31)))
        error = vae.decode(z).sample.float() - pixels
        weights = colour_weights(pixels, self.recipe.vae_colour_weight)
        return (weights * (error**2 + error.abs())).mean() / weights.mean(), posterior.kl().mean() / z[0].numel()

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

        def step(i: int) -> torch.Tensor:
            rng = stream_rng("vae", r.seed, i)
            if i % r.vae_video_every == 0:
                pixels = to_pixels([vae_video(rng) for _ in range(r.vae_batch)])
            else:
                videos = [vae_video(rng) for _ in range(r.vae_frames_batch)]
                pixels = to_pixels([v[rng.randrange(len(v))][None] for v in videos])
            reconstruction, kl = self._reconstruction(pixels, rng)
            return reconstruction + r.vae_kl_weight * kl

        self._loop("vae", r.vae_steps, list(vae.parameters()), r.vae_lr, step)
        vae.eval().requires_grad_(False)

    def _train_decoder(self) -> None:
        """Stage 1b: the decoder alone on 9-frame videos, transitions and a share of grids held still. The causal
        decoder sees the earlier frames when it draws the last one; trained mostly on single frames it blends input
        into output, so a transition's last frame (the prediction) came back wrong even for latents the encoder got
        right (README: the pretrained mini backbone). The grids held still keep it drawing those too. The encoder stays
        as stage 1 left it, so stage 2's latents do not depend on this stage."""
        vae, r = self.pipe.vae, self.recipe
        vae.eval().requires_grad_(False)
        vae.decoder.train().requires_grad_(True)

        def step(i: int) -> torch.Tensor:
            rng = stream_rng("decoder", r.seed, i)
            return self._reconstruction(to_pixels([decoder_video(rng, r.decoder_still) for _ in range(r.decoder_batch)]), rng)[0]

        self._loop("decoder", r.decoder_steps, list(vae.decoder.parameters()), r.decoder_lr, step)
        vae.eval().requires_grad_(False)

    def _vae_round_trips(self) -> dict:
        """Exact round trips of fresh generated tasks (a stream pretraining never trains on) through the VAE and the
        codec: every grid held still, and every pair as the transition a run draws."""
        from arcvdm.pretrain.vae_check import round_trip_tasks

        rng = stream_rng("vae-eval", self.recipe.seed, 0)
        tasks = [random_task(rng) for _ in range(self.recipe.vae_eval_tasks)]
        return {f"vae_round_trip{suffix}": round_trip_tasks(self.pipe.vae, tasks, progress=self.progress, pairs=pairs).summary()
                for suffix, pairs in (("", False), ("_transitions", True))}

    def _train_transformer(self) -> None:
        """Stage 2: the whole transformer on the backbone objective, VAE frozen. Videos come in chunks: each chunk's
        pool is generated and encoded once (seeded by the chunk), then sampled for `chunk_steps` steps, so a resumed
        run re-encodes its chunk and continues with the same data."""

        from arcvdm.backbones import family_class
        from arcvdm.config import NEUTRAL_PROMPT

        r = self.recipe
        backbone = family_class("cogvideox")(self.pipe, "mini-pretraining", torch.device("cpu"), torch.float32)
        transformer = self.pipe.transformer
        transformer.requires_grad_(True)
        self.pipe.vae.eval().requires_grad_(False)
        prompt = backbone.prompt_embeds(NEUTRAL_PROMPT)
        pool: dict = {}

        def fill_pool(chunk: int) -> None:
            rng = stream_rng("transformer-pool", r.seed, chunk)
            videos: list[np.ndarray] = []
            while len(videos) < r.pool_videos:
                videos += task_videos(random_task(rng), rng)
            generator = torch.Generator().manual_seed(rng.randrange(2**31))
            with torch.no_grad(), torch.autocast("cpu", enabled=False):  # encoded in fp32, as LoraTrainer does
                pool.update(chunk=chunk, encoded=backbone.encode_videos(videos[: r.pool_videos], generator))

        def step(i: int) -> torch.Tensor:
            if pool.get("chunk") != i // r.chunk_steps:
                fill_pool(i // r.chunk_steps)
            generator = torch.Generator().manual_seed(stream_rng("transformer", r.seed, i).randrange(2**31))
            rows = torch.randint(0, r.pool_videos, (r.transformer_batch,), generator=generator)
            batch = {key: value[rows] for key, value in pool["encoded"].items()}
            transformer.train()
            return backbone.loss(batch, backbone.draw_noise(batch, generator), prompt)

        self._loop("transformer", r.transformer_steps, list(transformer.parameters()), r.transformer_lr, step, clip=1.0)
        transformer.eval().requires_grad_(False)
