"""Video backbones by name (or any hub id / local pipeline folder), wrapped in `Backbone`: one loaded model, many LoRAs."""

from __future__ import annotations

import zlib
from functools import partial
from pathlib import Path
from typing import Callable

import torch

from arcvdm.device import pick_device, pick_dtype
from arcvdm.errors import ArcvdmError
from arcvdm.registry import Registry
from arcvdm.trajectories import check_video_shape

# A builder takes (device, dtype) and returns a `CogVideoXImageToVideoPipeline` (placed later if it is not already).
BACKBONES: Registry[Callable] = Registry("backbone")


def _tiny(device: torch.device, dtype: torch.dtype, **sizes):
    from arcvdm.backbones.tiny import build_tiny_pipeline

    return build_tiny_pipeline(**sizes)


def _pretrained(device: torch.device, dtype: torch.dtype, name_or_path: str):
    from arcvdm.backbones.cogvideox import load_pretrained

    return load_pretrained(name_or_path, dtype)


def _random_5b(device: torch.device, dtype: torch.dtype):
    from arcvdm.backbones.cogvideox import build_random_5b

    return build_random_5b(device, dtype)


BACKBONES.add("tiny", _tiny)  # 1 layer, 2 heads x 16: tests and the CPU demo
BACKBONES.add("small", partial(_tiny, num_layers=4, num_heads=4, head_dim=64))  # 3.4 M parameters: CPU benchmarks
BACKBONES.add("cogvideox1.5-5b-i2v", partial(_pretrained, name_or_path="THUDM/CogVideoX1.5-5B-I2V"))
BACKBONES.add("cogvideox1.5-5b-i2v-random", _random_5b)


class Backbone:
    """A loaded image-to-video pipeline plus what every problem reuses: cached prompt embeddings and FLOP counts.

    The runner trains one LoRA per problem on one `Backbone`; `reset_lora()` returns it to the frozen base.
    """

    def __init__(self, pipe, name: str, device: torch.device, dtype: torch.dtype):
        self.pipe = pipe
        self.name = name
        self.device = device
        self.dtype = dtype
        self._prompt_embeds: dict[str, torch.Tensor] = {}
        self._flops: dict[tuple[int, int, int], float] = {}

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.pipe.transformer.parameters())
        return f"<Backbone {self.name} | transformer {n:,} params | {self.device} {str(self.dtype).removeprefix('torch.')}>"

    @property
    def transformer(self):
        return self.pipe.transformer

    def check_video_shape(self, frames: int, height: int, width: int) -> None:
        check_video_shape(frames, height, width)

    def latent_frames(self, frames: int) -> tuple[int, int]:
        """(latent frames, padded latent frames): 9 frames -> 3 latents, padded to 4 for the temporal patch of 2."""
        n = (frames - 1) // self.pipe.vae_scale_factor_temporal + 1
        p_t = self.transformer.config.patch_size_t or 1
        return n, n + (-n) % p_t

    def prompt_embeds(self, prompt: str) -> torch.Tensor:
        """[1, 226, text_dim] text embedding of `prompt`, encoded once and cached (the text encoder stays off the hot loop).

        A pipeline without a text encoder (the random 5B stand-in) gets seeded random embeddings of the right shape.
        """
        if prompt not in self._prompt_embeds:
            config = self.transformer.config
            if self.pipe.text_encoder is None:
                g = torch.Generator().manual_seed(zlib.crc32(prompt.encode()))  # distinct prompts stay distinct
                embeds = torch.randn(1, config.max_text_seq_length, config.text_embed_dim, generator=g)
            else:
                with torch.no_grad():
                    embeds, _ = self.pipe.encode_prompt(
                        prompt, do_classifier_free_guidance=False, max_sequence_length=config.max_text_seq_length,
                        device=self.device, dtype=self.dtype,
                    )
            self._prompt_embeds[prompt] = embeds.to(self.device, self.dtype)
        return self._prompt_embeds[prompt]

    def rotary_embeds(self, height: int, width: int, padded_latent_frames: int, device=None):
        """The rotary position embedding the pipeline uses for this (padded) size; without it the model has no positions."""
        return self.pipe._prepare_rotary_positional_embeddings(height, width, padded_latent_frames, device or self.device)

    def reset_lora(self) -> None:
        """Remove any LoRA so the next problem trains from the frozen base weights."""
        if getattr(self.transformer, "_hf_peft_config_loaded", False):
            self.transformer.unload_lora()
        self.transformer.requires_grad_(False)

    def forward_flops(self, frames: int, height: int, width: int) -> float:
        """FLOPs of one transformer forward at this video size (batch 1), counted once on a weightless meta copy."""
        key = (frames, height, width)
        if key not in self._flops:
            self._flops[key] = count_forward_flops(self, frames, height, width)
        return self._flops[key]


def count_forward_flops(backbone: Backbone, frames: int, height: int, width: int) -> float:
    from diffusers import CogVideoXTransformer3DModel
    from torch.utils.flop_counter import FlopCounterMode

    backbone.check_video_shape(frames, height, width)
    config = backbone.transformer.config
    with torch.device("meta"):
        transformer = CogVideoXTransformer3DModel.from_config(config)
    _, padded = backbone.latent_frames(frames)
    s = backbone.pipe.vae_scale_factor_spatial
    meta = torch.device("meta")
    latents = torch.empty(1, padded, config.in_channels, height // s, width // s, device=meta)
    text = torch.empty(1, config.max_text_seq_length, config.text_embed_dim, device=meta)
    rotary = tuple(r.to(meta) for r in backbone.rotary_embeds(height, width, padded, device="cpu"))
    ofs = torch.full((1,), 2.0, device=meta) if config.ofs_embed_dim else None
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        transformer(hidden_states=latents, encoder_hidden_states=text, timestep=torch.ones(1, device=meta),
                    ofs=ofs, image_rotary_emb=rotary, return_dict=False)
    return float(counter.get_total_flops())


def load_backbone(
    name_or_path: str, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None
) -> Backbone:
    """A registered backbone name, a local folder written by `save_pretrained`, or a hub id, placed on device/dtype."""
    device = pick_device(device)
    dtype = pick_dtype(device, dtype)
    if name_or_path in BACKBONES:
        pipe = BACKBONES.get(name_or_path)(device, dtype)
    elif Path(name_or_path).exists() or name_or_path.count("/") == 1:
        pipe = _pretrained(device, dtype, name_or_path)
    else:
        hint = ", or a local pipeline folder, or a hub id owner/name"
        raise ArcvdmError(BACKBONES.unknown_message(name_or_path) + hint)
    if device.type != "meta":
        pipe.to(device)
        if pipe.transformer.dtype != dtype or pipe.vae.dtype != dtype:
            pipe.to(dtype=dtype)  # one dtype for the whole pipeline: diffusers refuses a mixed VAE/transformer
    if device.type == "cuda":
        pipe.vae.enable_slicing()
    pipe.transformer.requires_grad_(False)
    pipe.vae.requires_grad_(False)
    if pipe.text_encoder is not None:
        pipe.text_encoder.requires_grad_(False)
    return Backbone(pipe, name_or_path, device, dtype)
