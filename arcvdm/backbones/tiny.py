"""Seeded random image-to-video pipelines built from configs alone (no download): tests and CPU demos.

`tiny` and `small` are CogVideoX1.5-shaped; every other family registers its own tiny builder here too."""

from __future__ import annotations

import string

import torch

from arcvdm.backbones.cogvideox import SCHEDULER_5B
from arcvdm.backbones.ltx import SCHEDULER_2B, VAE_2B
from arcvdm.config import NEUTRAL_PROMPT

# The diffusers test-suite's dummy VAE sizes plus the 1.5 latent convention (scale 0.7, inverted for images).
TINY_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("CogVideoXDownBlock3D",) * 4,
    up_block_types=("CogVideoXUpBlock3D",) * 4,
    block_out_channels=(8, 8, 8, 8),
    latent_channels=4,
    layers_per_block=1,
    norm_num_groups=2,
    temporal_compression_ratio=4,
    scaling_factor=0.7,
    invert_scale_latents=True,
)

TINY_TEXT_DIM = 32


def tiny_transformer_config(num_layers: int = 1, num_heads: int = 2, head_dim: int = 16) -> dict:
    """A CogVideoX1.5 I2V transformer config: same wiring as the 5B model (patch_t 2, ofs, rotary), toy widths."""
    latent_channels = TINY_VAE["latent_channels"]
    return dict(
        num_attention_heads=num_heads,
        attention_head_dim=head_dim,  # rotary embeddings split it three ways: keep it a multiple of 16
        in_channels=2 * latent_channels,  # noisy video latents + image latents, concatenated on channels
        out_channels=latent_channels,
        num_layers=num_layers,
        time_embed_dim=16,
        ofs_embed_dim=16,
        text_embed_dim=TINY_TEXT_DIM,
        max_text_seq_length=226,
        patch_size=2,
        patch_size_t=2,
        patch_bias=False,
        sample_width=300,
        sample_height=300,
        sample_frames=81,
        temporal_compression_ratio=4,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=False,
    )


def tiny_tokenizer():
    """A T5 tokenizer with an in-memory unigram vocabulary: the neutral prompt's words, then single characters."""
    from transformers import T5Tokenizer

    vocab, seen = [], set()
    words = ["▁" + w for w in NEUTRAL_PROMPT.lower().replace(".", " .").split()]
    for piece, score in [(p, 0.0) for p in ("<pad>", "</s>", "<unk>", "▁")] + [(w, -1.0) for w in words] + [
        (c, -10.0) for c in string.ascii_letters + string.digits + string.punctuation
    ]:
        if piece not in seen:  # a repeated piece would silently shadow an id
            seen.add(piece)
            vocab.append((piece, score))
    return T5Tokenizer(vocab=vocab, extra_ids=0)


TINY_T5 = dict(d_model=TINY_TEXT_DIM, d_ff=37, d_kv=8, num_layers=2, num_heads=4, relative_attention_num_buckets=8)


def tiny_t5(tokenizer, seed: int, sizes: dict = TINY_T5):
    """A small T5 encoder (2 layers of width TINY_TEXT_DIM by default) over `tokenizer`'s vocabulary, seeded with `seed`."""
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    return T5EncoderModel(T5Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                   eos_token_id=tokenizer.eos_token_id, **sizes))


def build_tiny_pipeline(num_layers: int = 1, num_heads: int = 2, head_dim: int = 16, seed: int = 0):
    """A fp32 CPU `CogVideoXImageToVideoPipeline` with seeded random weights, identical on every machine."""
    return seeded_pipeline(TINY_T5, TINY_VAE, tiny_transformer_config(num_layers, num_heads, head_dim), seed)


def seeded_pipeline(text_config: dict, vae_config: dict, transformer_config: dict, seed: int):
    """A fp32 `CogVideoXImageToVideoPipeline` from configs (T5 sizes, VAE, transformer), seeded random weights,
    the in-memory tokenizer and the 5B scheduler: the tiny backbones and the mini's pretraining start here."""
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDPMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    tokenizer = tiny_tokenizer()
    text_encoder = tiny_t5(tokenizer, seed, text_config)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLCogVideoX(**vae_config)
    torch.manual_seed(seed + 2)
    transformer = CogVideoXTransformer3DModel(**transformer_config)
    scheduler = CogVideoXDPMScheduler(**SCHEDULER_5B)
    pipe = CogVideoXImageToVideoPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )
    for model in (text_encoder, vae, transformer):
        model.eval()  # as from_pretrained leaves them: T5's dropout would otherwise perturb the prompt embedding
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- LTX-Video (`tiny-ltx`) ------------------------------------------------------------------------------------------

# The 2B model's VAE wiring (x32 in space, x8 in time, causal encoder) at toy widths, so the shape rules are the
# real ones: 9 x 64 x 64 videos -> 2 x 2 x 2 latents of 8 channels.
TINY_LTX_VAE = {
    **VAE_2B,
    "latent_channels": 8,
    "block_out_channels": (8,) * 4,
    "decoder_block_out_channels": (8,) * 4,
    "layers_per_block": (1,) * 5,
    "decoder_layers_per_block": (1,) * 5,
}

TINY_LTX_TRANSFORMER = dict(
    in_channels=8,
    out_channels=8,
    patch_size=1,
    patch_size_t=1,
    num_attention_heads=2,
    attention_head_dim=16,
    cross_attention_dim=32,
    num_layers=1,
    caption_channels=TINY_TEXT_DIM,
)


def build_tiny_ltx_pipeline(seed: int = 0):
    """A fp32 CPU `LTXImageToVideoPipeline` with seeded random weights, identical on every machine.

    The VAE's latents_mean / latents_std are seeded random too (the real ones are not 0 / 1), so tests see the
    pipeline's latent normalisation at work."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )

    tokenizer = tiny_tokenizer()
    text_encoder = tiny_t5(tokenizer, seed)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLLTXVideo(**TINY_LTX_VAE)
    vae.latents_mean.normal_(0.0, 0.1)
    vae.latents_std.uniform_(0.5, 1.5)
    torch.manual_seed(seed + 2)
    transformer = LTXVideoTransformer3DModel(**TINY_LTX_TRANSFORMER)
    pipe = LTXImageToVideoPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                                   scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_2B))
    for model in (text_encoder, vae, transformer):
        model.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- Wan2.1 and Wan2.2 image-to-video (arcvdm/backbones/wan.py, wan22.py) -------------------------------------------

TINY_WAN_TEXT_DIM = 32
TINY_WAN_IMAGE_DIM = 8  # the CLIP vision width; the transformer's image projection reads it


def tiny_umt5(tokenizer, seed: int):
    """A 2-layer UMT5 encoder (Wan's text encoder class) over `tokenizer`'s vocabulary."""
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    return UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=TINY_WAN_TEXT_DIM, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )).eval()


def tiny_wan_transformer(in_channels: int, out_channels: int, image_dim: int | None):
    """Wan's transformer wiring (patch 1x2x2, RMS q/k norm, cross-attention norm; image cross-attention when
    `image_dim` is set), toy widths: 1 layer, 2 heads x 16."""
    from diffusers import WanTransformer3DModel

    heads, head_dim = 2, 16
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim, in_channels=in_channels,
        out_channels=out_channels, text_dim=TINY_WAN_TEXT_DIM, freq_dim=32, ffn_dim=32, num_layers=1,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", image_dim=image_dim,
        added_kv_proj_dim=heads * head_dim if image_dim else None, rope_max_seq_len=32,
    ).eval()


def build_tiny_wan(seed: int = 0):
    """A fp32 CPU Wan2.1 `WanImageToVideoPipeline`: tiny UMT5, CLIP vision encoder and image processor, the 2.1 VAE
    layout (z 16, x8 spatial) at toy widths, the 480P scheduler; seeded, identical on every machine."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    from arcvdm.backbones.wan import SCHEDULER_WAN21_480P

    tokenizer = tiny_tokenizer()
    text_encoder = tiny_umt5(tokenizer, seed)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True]).eval()
    torch.manual_seed(seed + 2)
    z = vae.config.z_dim
    # noisy latents + (4 mask channels + image latents), concatenated on channels as prepare_latents builds them
    transformer = tiny_wan_transformer(2 * z + vae.config.scale_factor_temporal, z, TINY_WAN_IMAGE_DIM)
    torch.manual_seed(seed + 3)
    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=TINY_WAN_IMAGE_DIM, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, patch_size=8, projection_dim=TINY_WAN_IMAGE_DIM)).eval()
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
        scheduler=UniPCMultistepScheduler(**SCHEDULER_WAN21_480P), image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_tiny_wan22(seed: int = 0):
    """A fp32 CPU Wan2.2 TI2V `WanImageToVideoPipeline` (expand_timesteps, no image encoder): tiny UMT5, the 2.2 VAE
    layout (z 48, pixel patch 2, residual, x16 spatial) at toy widths, the TI2V-5B scheduler; seeded."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline

    from arcvdm.backbones.wan22 import SCHEDULER_TI2V_5B, VAE_22

    tokenizer = tiny_tokenizer()
    text_encoder = tiny_umt5(tokenizer, seed)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLWan(**{**VAE_22, "base_dim": 4, "decoder_base_dim": 4, "dim_mult": [1, 1, 1, 1],
                              "num_res_blocks": 1}).eval()
    torch.manual_seed(seed + 2)
    z = vae.config.z_dim
    transformer = tiny_wan_transformer(z, z, None)  # the first frame's clean latents replace the noisy ones
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
        scheduler=UniPCMultistepScheduler(**SCHEDULER_TI2V_5B), expand_timesteps=True,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
