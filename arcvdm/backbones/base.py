"""The backbone interface: what every image-to-video family implements, and what stays the same across families.

A family module (`arcvdm/backbones/cogvideox.py`, `ltx.py`, `wan.py`, ...) subclasses `Backbone` and fills in
loading, latent encoding and conditioning, the training objective and generation. `LoraTrainer`
(`arcvdm/train.py`), `generate` (`arcvdm/sample.py`), the solver, selection, runner and vision suite call only
these methods, so they never learn which family they run:

    encoded = backbone.encode_videos(videos, generator)     # once per problem: per-video tensors, rows = videos
    draw = backbone.draw_noise(rows_of_encoded, generator)  # every step: noise, timesteps, conditioning noise
    loss = backbone.loss(rows_of_encoded, draw, prompt)     # the family's own denoising objective
    frames = backbone.generate(images, prompt, config, generators)   # the stock pipeline, last frame = prediction
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import zlib
from typing import Any, ClassVar

import numpy as np
import torch

from arcvdm.errors import ArcvdmError

# torch.compile's backend for `train.compile`; the loss-agreement test swaps in "aot_eager" (same capture, no C++
# code generation, which takes minutes on a CPU).
COMPILE_BACKEND = "inductor"


# diffusers names the attention projections alike in every family: these LoRA target sets (peft module-name
# suffixes) are shared; each family adds its feed-forward and block-linear sets (all-linear is peft's own string).
ATTENTION_TARGETS: dict[str, list[str]] = {
    "qk": ["to_q", "to_k"],
    "vo": ["to_v", "to_out.0"],
    "qkvo": ["to_q", "to_k", "to_v", "to_out.0"],
}


def stand_in_embeds(prompt: str, *shape: int) -> torch.Tensor:
    """Seeded random text embeddings for a full-size random model without a text encoder: the same prompt always
    gets the same tensor, and distinct prompts stay distinct."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(zlib.crc32(prompt.encode())))


def latent_mse(prediction: torch.Tensor, target: torch.Tensor, frame_weights: torch.Tensor | None = None,
               frame_dim: int = 1) -> torch.Tensor:
    """The families' denoising MSE. `frame_weights` [B, latent frames] (the mini's pretraining weights the answer's
    latents up; runs and the LoRA trainer pass none) multiplies each latent frame's squared errors along
    `frame_dim`, so a frame weighted 1 counts as unweighted."""
    if frame_weights is None:
        return torch.nn.functional.mse_loss(prediction.float(), target.float())
    shape = [len(frame_weights)] + [1] * (prediction.dim() - 1)
    shape[frame_dim] = frame_weights.shape[1]
    weights = frame_weights.to(prediction.device, torch.float32).view(shape)
    return (weights * (prediction.float() - target.float()) ** 2).mean()


def _nearest(value: int, valid) -> str:
    below = max((v for v in valid if v <= value), default=None)
    above = min((v for v in valid if v >= value), default=None)
    options = sorted({v for v in (below, above) if v is not None})
    return " or ".join(str(v) for v in options)


class Backbone(abc.ABC):
    """A loaded image-to-video pipeline of one family, plus what every problem reuses (prompt embeddings, FLOPs).

    The runner trains one LoRA per problem on one `Backbone`; `reset_lora()` returns it to the frozen base.
    """

    family: ClassVar[str]  # the registry key, e.g. "cogvideox"
    label: ClassVar[str]  # how errors name the family, e.g. "CogVideoX1.5"
    pipeline_names: ClassVar[tuple[str, ...]]  # model_index.json `_class_name`s of this family; the first is loaded
    frame_step: ClassVar[int]  # valid frame counts are frame_step * k + 1 (the VAE's temporal compression)
    side_multiple: ClassVar[int]  # valid heights and widths are multiples of this (VAE x patch)
    # LoRA target sets (config `lora.targets`) -> peft `target_modules` (module-name suffixes or one regex).
    lora_modules: ClassVar[dict[str, list[str] | str]]
    # Sampling schedulers by short name -> diffusers class name; the first one is the family's default.
    schedulers: ClassVar[dict[str, str]]
    min_sample_steps: ClassVar[int] = 1  # fewer denoising steps than this break the family's scheduler
    # Trainer choices of config.train where the trainers people use differ for this family (field -> its default,
    # which `check_training_choices` fills in); the family's objective reads them as attributes of the same name.
    training_choices: ClassVar[dict[str, str]] = {}
    # Components in fp32 whatever the backbone dtype (as the family's stock example loads them), and components that
    # wait on `park_device` while unused: only `using(...)` brings them to the training device.
    fp32_parts: ClassVar[tuple[str, ...]] = ()
    parked_parts: ClassVar[tuple[str, ...]] = ("text_encoder",)
    encoding_parts: ClassVar[tuple[str, ...]] = ()  # parked parts `encode_videos` needs: held over a whole batch of calls
    park_device: torch.device = torch.device("cpu")

    def __init__(self, pipe, name: str, device: torch.device, dtype: torch.dtype):
        self.pipe = pipe
        self.name = name
        self.device = device
        self.dtype = dtype
        for field, default in self.training_choices.items():
            setattr(self, field, default)
        self._prompts: dict[str, dict[str, torch.Tensor]] = {}
        self._in_use: dict[str, int] = {}  # parked part -> open `using` blocks
        self._flops: dict[tuple[int, int, int], float] = {}

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.transformer.parameters())
        return (f"<Backbone {self.name} | {self.label} | transformer {n:,} params | "
                f"{self.device} {str(self.dtype).removeprefix('torch.')}>")

    @property
    def transformer(self):
        return self.pipe.transformer

    @property
    def temporal_compression(self) -> int:
        """Frames per latent frame after the first: the last this many frames of a video decode from its last latent."""
        return self.pipe.vae_scale_factor_temporal

    @property
    def spatial_compression(self) -> int:
        """Pixels per latent pixel a side: the VAE's spatial factor, as the loaded pipeline computes it."""
        return self.pipe.vae_scale_factor_spatial

    @property
    def token_size(self) -> int:
        """Pixels per transformer token a side: the VAE's spatial factor x the transformer's spatial patch
        (the codec's `token-aligned` layout draws each cell on whole tokens of this size)."""
        patch = self.transformer.config.patch_size
        return self.spatial_compression * int(patch[-1] if isinstance(patch, (tuple, list)) else patch)

    # --- shapes, names, loading ---------------------------------------------------------------------------------

    @classmethod
    def check_video_shape(cls, frames: int, height: int, width: int) -> None:
        """Refuse shapes this family's VAE and patching cannot take, naming the nearest valid values
        (diffusers checks less and fails later with a reshape error)."""
        step, side = cls.frame_step, cls.side_multiple
        if not isinstance(frames, (int, np.integer)) or frames < step + 1 or (frames - 1) % step:
            valid = [step * k + 1 for k in range(1, max(int(frames), 2) // step + 2)]
            raise ArcvdmError(f"video.frames = {frames}: {cls.label} needs F = {step}k+1 frames with k >= 1 "
                              f"(nearest: {_nearest(int(frames), valid)}); set video.frames")
        for what, size in (("height", height), ("width", width)):
            if size < side or size % side:
                valid = [side * k for k in range(1, max(int(size), 1) // side + 2)]
                raise ArcvdmError(f"video.{what} = {size}: {cls.label} needs a positive multiple of {side} "
                                  f"(nearest: {_nearest(int(size), valid)}); set video.{what}")

    @classmethod
    def largest_canvas(cls, transformer: dict, vae: dict) -> tuple[int, int] | None:
        """The largest (height, width) a pipeline with these component configs (their config.json) can draw, where
        its weights bound it below the family's shape rule; None = no such bound."""
        return None

    @classmethod
    def check_sample_steps(cls, steps: int) -> None:
        if steps < cls.min_sample_steps:
            raise ArcvdmError(f"sample.steps = {steps}: {cls.label} samples with at least {cls.min_sample_steps} "
                              "denoising steps; set sample.steps")

    @classmethod
    def claims(cls, index: dict) -> bool:
        """Whether a pipeline folder's model_index.json (or a hub id's) is of this family: by default its
        `_class_name`; families sharing a pipeline class tell themselves apart by its config."""
        return index.get("_class_name") in cls.pipeline_names

    @classmethod
    def pipeline_class(cls):
        return getattr(importlib.import_module("diffusers"), cls.pipeline_names[0])

    @classmethod
    def load_pretrained(cls, name_or_path: str, dtype: torch.dtype):
        """The stock pipeline from a hub id or a `save_pretrained` folder, in `dtype` (diffusers >= 0.40 honours it;
        `fp32_parts` in fp32, a per-component dtype as diffusers takes it)."""
        dtypes = {"default": dtype, **{part: torch.float32 for part in cls.fp32_parts}}
        pipe = cls.pipeline_class().from_pretrained(name_or_path, dtype=dtypes)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    @classmethod
    def scheduler_class_name(cls, name: str | None) -> str:
        """The diffusers class of sampling scheduler `name` (a short name or a class name; None = the default)."""
        if name is None:
            return next(iter(cls.schedulers.values()))
        if name in cls.schedulers.values():
            return name
        if name not in cls.schedulers:
            choices = ", ".join(f"{k} ({v})" for k, v in cls.schedulers.items())
            raise ArcvdmError(f"sample.scheduler = {name!r} is not a {cls.label} scheduler; use one of {choices}")
        return cls.schedulers[name]

    def use_scheduler(self, name: str | None) -> None:
        """Sample with scheduler `name`, built from the loaded scheduler's own config (betas, shift, spacing)."""
        wanted = self.scheduler_class_name(name)
        if type(self.pipe.scheduler).__name__ != wanted:
            scheduler_class = getattr(importlib.import_module("diffusers"), wanted)
            self.pipe.scheduler = scheduler_class.from_config(self.pipe.scheduler.config, **self.scheduler_settings(wanted))

    def scheduler_settings(self, class_name: str) -> dict[str, Any]:
        """Settings that `class_name` spells differently from the loaded scheduler's config (none by default)."""
        return {}

    @classmethod
    def check_training_choices(cls, train) -> None:
        """Fill in this family's defaults for the trainer choices of `train` it offers; refuse one it does not."""
        for field in ("first_frame", "sigma_sampling"):
            value = getattr(train, field)
            if field in cls.training_choices:
                setattr(train, field, value or cls.training_choices[field])
            elif value is not None:
                offered = ", ".join(f"train.{f}" for f in cls.training_choices) or "no trainer choice"
                raise ArcvdmError(f"train.{field} = {value!r} is not a {cls.label} setting ({cls.label} offers "
                                  f"{offered}): leave it unset, or use a preset of this backbone's family")

    def use_training(self, train) -> None:
        """Train with the trainer choices of `train` (a TrainConfig) this family offers."""
        for field, default in self.training_choices.items():
            setattr(self, field, getattr(train, field) or default)

    @classmethod
    def place(cls, pipe, device: torch.device, dtype: torch.dtype) -> None:
        """Cast every component to `dtype` (`fp32_parts` to fp32; the modules its library keeps in fp32 stay so) and
        move it to `device`, except `parked_parts`, which go to `park_device` (nothing moves on `meta`)."""
        from arcvdm.backbones.precision import cast_like_from_pretrained

        for name, part in pipe.components.items():
            if isinstance(part, torch.nn.Module):
                cast_like_from_pretrained(part, torch.float32 if name in cls.fp32_parts else dtype)
                if device.type != "meta":
                    part.to(cls.park_device if name in cls.parked_parts else device)

    @contextlib.contextmanager
    def using(self, *parts: str):
        """The parked components `parts` on the training device for the block, back on `park_device` after it.
        Blocks nest: a part moves on entering the outermost block that names it and back on leaving it."""
        parts = tuple(p for p in parts if getattr(self.pipe, p, None) is not None and self.device.type != "meta")
        for part in parts:
            self._in_use[part] = self._in_use.get(part, 0) + 1
            if self._in_use[part] == 1:
                getattr(self.pipe, part).to(self.device)
        try:
            yield
        finally:
            for part in parts:
                self._in_use[part] -= 1
                if not self._in_use[part]:
                    getattr(self.pipe, part).to(self.park_device)

    @classmethod
    def lora_target_modules(cls, targets: str) -> list[str] | str:
        if targets not in cls.lora_modules:
            raise ArcvdmError(f"lora.targets = {targets!r} is not available for {cls.label}; "
                              f"use one of {', '.join(cls.lora_modules)}")
        return cls.lora_modules[targets]

    def use_compile(self, enabled: bool) -> None:
        """Run the transformer's forward through `torch.compile` (training and sampling alike) or eagerly again.

        `nn.Module.compile` wraps the module's call in place, so the LoRA layers peft adds or removes later are
        traced too: a new adapter per problem only costs a recompilation, never a stale graph. diffusers'
        `compile_repeated_blocks` would compile less, but each family names its blocks differently.
        """
        compiled = self.transformer._compiled_call_impl is not None
        if enabled and not compiled:
            self.transformer.compile(backend=COMPILE_BACKEND)
        elif not enabled and compiled:
            self.transformer._compiled_call_impl = None  # what nn.Module.compile set: back to the eager call

    def reset_lora(self) -> None:
        """Remove any LoRA so the next problem trains from the frozen base weights."""
        if getattr(self.transformer, "_hf_peft_config_loaded", False):
            self.transformer.unload_lora()
        self.transformer.requires_grad_(False)

    # --- conditioning and objective (the family's own) -----------------------------------------------------------

    def prompt_embeds(self, prompt: str) -> dict[str, torch.Tensor]:
        """The family's text conditioning for `prompt` (batch 1), encoded once and cached: the text encoder comes to
        the training device for it and leaves again. Without a text encoder (full-size random stand-ins), seeded
        random embeddings."""
        if prompt not in self._prompts:
            with self.using("text_encoder"), torch.no_grad():
                embeds = self.encode_prompt(prompt)
            self._prompts[prompt] = {k: v.to(self.device) for k, v in embeds.items()}
        return self._prompts[prompt]

    @abc.abstractmethod
    def encode_prompt(self, prompt: str) -> dict[str, torch.Tensor]:
        """Text conditioning tensors of batch 1, as the pipeline's own `encode_prompt` makes them."""

    @abc.abstractmethod
    def encode_videos(self, videos: list[np.ndarray], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """What the objective needs of each uint8 [F, H, W, 3] video, computed once: fp32 CPU tensors whose first
        dimension indexes the videos (clean latents, clean first frames, image embeddings...)."""

    @abc.abstractmethod
    def draw_noise(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Every random number one training step of `batch` needs, drawn from `generator` (CPU tensors)."""

    @abc.abstractmethod
    def loss(self, batch: dict[str, torch.Tensor], draw: dict[str, torch.Tensor],
             prompt: dict[str, torch.Tensor]) -> torch.Tensor:
        """The family's denoising loss on `batch` under `draw`; gradients reach whichever weights require them.
        `prompt`'s tensors have batch 1 (one prompt for every video) or one row per video (augment.view_prompts)."""

    @abc.abstractmethod
    def generate(self, images: torch.Tensor, prompt: dict[str, torch.Tensor], config,
                 generators: list[torch.Generator]) -> np.ndarray:
        """Float [B, F, H, W, 3] videos in [0, 1] from first frames `images` (fp32 [B, 3, H, W] in [0, 1]) through
        the stock pipeline at config.video's shape and config.sample's steps, guidance and scheduler."""

    @staticmethod
    def shape_and_steps(config) -> dict[str, Any]:
        """The pipeline-call arguments every family's `generate` shares: config.video's shape, config.sample's steps
        and guidance, and numpy frames in [0, 1] returned as a plain tuple."""
        v, s = config.video, config.sample
        return dict(height=v.height, width=v.width, num_frames=v.frames, num_inference_steps=s.steps,
                    guidance_scale=s.guidance_scale, output_type="np", return_dict=False)

    @abc.abstractmethod
    def forward_inputs(self, frames: int, height: int, width: int, device: torch.device) -> dict[str, Any]:
        """Keyword arguments of one transformer forward (batch 1) at this video size, on `device` (FLOP counting)."""

    # --- costs ---------------------------------------------------------------------------------------------------

    def forward_flops(self, frames: int, height: int, width: int) -> float:
        """FLOPs of one transformer forward at this video size (batch 1), counted once on a weightless meta copy."""
        key = (frames, height, width)
        if key not in self._flops:
            from torch.utils.flop_counter import FlopCounterMode

            self.check_video_shape(frames, height, width)
            meta = torch.device("meta")
            with meta:
                transformer = type(self.transformer).from_config(self.transformer.config)
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                transformer(**self.forward_inputs(frames, height, width, meta), return_dict=False)
            self._flops[key] = float(counter.get_total_flops())
        return self._flops[key]
