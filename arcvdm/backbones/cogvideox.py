"""CogVideoX1.5-5B image-to-video: the real weights (hub id or local folder) and a same-shape random stand-in."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from arcvdm.backbones.tiny import SCHEDULER_5B
from arcvdm.errors import ArcvdmError

# CogVideoX1.5-5B-I2V transformer/config.json: 5.57 B parameters.
TRANSFORMER_5B = dict(
    num_attention_heads=48,
    attention_head_dim=64,
    in_channels=32,
    out_channels=16,
    num_layers=42,
    time_embed_dim=512,
    ofs_embed_dim=512,
    text_embed_dim=4096,
    max_text_seq_length=226,
    patch_size=2,
    patch_size_t=2,
    patch_bias=False,
    sample_width=300,
    sample_height=300,
    sample_frames=81,
    temporal_compression_ratio=4,
    spatial_interpolation_scale=1.875,
    temporal_interpolation_scale=1.0,
    use_rotary_positional_embeddings=True,
    use_learned_positional_embeddings=False,
    activation_fn="gelu-approximate",
    timestep_activation_fn="silu",
    flip_sin_to_cos=True,
    freq_shift=0,
    attention_bias=True,
    norm_eps=1e-5,
)

# CogVideoX1.5-5B-I2V vae/config.json.
VAE_5B = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("CogVideoXDownBlock3D",) * 4,
    up_block_types=("CogVideoXUpBlock3D",) * 4,
    block_out_channels=(128, 256, 256, 512),
    latent_channels=16,
    layers_per_block=3,
    norm_num_groups=32,
    norm_eps=1e-6,
    temporal_compression_ratio=4,
    sample_height=480,
    sample_width=720,
    scaling_factor=0.7,
    invert_scale_latents=True,
    use_quant_conv=False,
    use_post_quant_conv=False,
)


def load_pretrained(name_or_path: str, dtype: torch.dtype):
    """`CogVideoXImageToVideoPipeline.from_pretrained` on a hub id or a folder written by `save_pretrained`."""
    from diffusers import CogVideoXImageToVideoPipeline

    path = Path(name_or_path)
    if path.exists() and not (path / "model_index.json").is_file():
        raise ArcvdmError(f"{path}: no model_index.json here; pass a folder written by save_pretrained or a hub id")
    try:
        pipe = CogVideoXImageToVideoPipeline.from_pretrained(name_or_path, dtype=dtype)
    except OSError as e:
        offline = ""
        if os.environ.get("HF_HUB_OFFLINE"):
            offline = " (HF_HUB_OFFLINE is set: download it on a machine with access, or pass a local folder)"
        raise ArcvdmError(f"cannot load backbone {name_or_path!r}: {str(e).splitlines()[0]}{offline}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_random_5b(device: torch.device, dtype: torch.dtype, seed: int = 0):
    """The full-size transformer and VAE with random weights, allocated directly on `device` in `dtype`.

    For speed and memory benchmarks without a download. On the `meta` device nothing is allocated,
    which is enough to count FLOPs. There is no text encoder: feed prompt embeddings [1, 226, 4096].
    """
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDPMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(seed)
    with torch.device(device), _default_dtype(dtype):  # never materialise 22 GB of fp32 weights first
        transformer = CogVideoXTransformer3DModel(**TRANSFORMER_5B)
        vae = AutoencoderKLCogVideoX(**VAE_5B)
    pipe = CogVideoXImageToVideoPipeline(
        tokenizer=None, text_encoder=None, vae=vae.eval(), transformer=transformer.eval(),
        scheduler=CogVideoXDPMScheduler(**SCHEDULER_5B),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
