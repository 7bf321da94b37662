"""The `mini` pipeline's architecture: CogVideoX1.5-5B-I2V's classes and wiring at a 9x64x64 canvas, seeded random
init (pretrained by `arcvdm/pretrain/`, shipped in `arcvdm/backbones/mini/`).

Why these sizes: every grid up to 10x10 fits 64x64 with 4-px cells (the codec's minimum) and 2-px lines.
A VAE of three blocks compresses space x4 (`vae_scale_factor_spatial = 2 ** (len(block_out_channels) - 1)`)
instead of the real model's x8, so a 4-px cell keeps a latent of its own: 9x64x64 -> 3 latent frames of
8x16x16, and with the transformer's 2x2 (and temporal 2) patches 2 x 8 x 8 = 128 video tokens. The text
sequence is 16 tokens, enough for the neutral prompt, so attention stays on the video.
"""

from __future__ import annotations

from arcvdm.backbones.tiny import seeded_pipeline

FRAMES, HEIGHT, WIDTH = 9, 64, 64
TEXT_DIM = 64
TEXT_TOKENS = 16

MINI_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("CogVideoXDownBlock3D",) * 3,
    up_block_types=("CogVideoXUpBlock3D",) * 3,
    block_out_channels=(16, 32, 64),  # 16 channels at full resolution: the decoder's cost is there
    latent_channels=8,
    layers_per_block=1,
    norm_num_groups=8,
    temporal_compression_ratio=4,
    scaling_factor=0.7,  # CogVideoX1.5's latent convention: x0.7, and image latents divided (inverted)
    invert_scale_latents=True,
)
VAE_FACTOR = 2 ** (len(MINI_VAE["block_out_channels"]) - 1)  # pixels a side per latent: a halving per later block

MINI_TRANSFORMER = dict(
    num_attention_heads=4,
    attention_head_dim=32,  # rotary embeddings split it into temporal and two spatial parts: a multiple of 16
    in_channels=2 * MINI_VAE["latent_channels"],  # noisy video latents + image latents
    out_channels=MINI_VAE["latent_channels"],
    num_layers=6,
    time_embed_dim=64,
    ofs_embed_dim=64,
    text_embed_dim=TEXT_DIM,
    max_text_seq_length=TEXT_TOKENS,
    patch_size=2,
    patch_size_t=2,
    patch_bias=False,
    sample_width=WIDTH // VAE_FACTOR,  # latent size (the rotary embedding's base grid)
    sample_height=HEIGHT // VAE_FACTOR,
    sample_frames=FRAMES,
    temporal_compression_ratio=4,
    use_rotary_positional_embeddings=True,
    use_learned_positional_embeddings=False,
)

# Pixels a side per video token (Backbone.token_size of the built pipeline): the VAE's x4 times the 2x2 patch, 8.
TOKEN = VAE_FACTOR * MINI_TRANSFORMER["patch_size"]


def build_mini_pipeline(seed: int, canvas: int = HEIGHT, **transformer):
    """A fp32 `CogVideoXImageToVideoPipeline` of the mini architecture with seeded random weights (pretraining starts
    here); `canvas`: the square canvas its rotary table covers (80 for the token-aligned layout's 10x10 grids);
    `transformer` overrides MINI_TRANSFORMER's sizes (the GPU recipe's wider, deeper one)."""
    text = dict(d_model=TEXT_DIM, d_ff=128, d_kv=16, num_layers=2, num_heads=4, relative_attention_num_buckets=8)
    positions = dict(sample_height=canvas // VAE_FACTOR, sample_width=canvas // VAE_FACTOR)
    return seeded_pipeline(text, MINI_VAE, {**MINI_TRANSFORMER, **positions, **transformer}, seed)
