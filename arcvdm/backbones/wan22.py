"""Wan2.2 TI2V-5B image-to-video (beyond the paper): the Wan2.1 module (`arcvdm/backbones/wan.py`) with Wan2.2's
first-frame conditioning; the real weights (hub id or local folder) and a same-shape random stand-in.

`WanImageToVideoPipeline` with `expand_timesteps=True` (diffusers 0.42 `prepare_latents` and `__call__`) conditions
differently from Wan2.1, and so does the objective here (as DiffSynth-Studio's `FlowMatchSFTLoss` trains TI2V-5B):

- no image encoder and no mask channels: the first frame alone is VAE-encoded (posterior mode, the 2.2 VAE: 48
  channels, x16 spatial with its pixel patch of 2), normalised, and replaces the first noisy latent frame;
- timesteps are per token: 0 on the first frame's tokens (clean), 1000 sigma on the others;
- the loss leaves the first latent frame out (the pipeline overwrites it with the condition after denoising).

Everything else (latents, target noise - x_0, UMT5 prompt, sampling, precision) is Wan2.1's, and so is the choice of
`train.sigma_sampling`: the draw is the same code, and a Wan recipe (`paper-wan`) then runs unchanged on Wan2.2. Its
default stays `shifted-uniform` with the shipped shift 5.0, closest to DiffSynth-Studio's shifted sigmas for TI2V-5B;
`logit-normal` is finetrainers' draw (no paper recipe trains Wan2.2). A TI2V folder may say `WanPipeline` (text and image to video share weights) or
`WanImageToVideoPipeline`; its `expand_timesteps` tells it from Wan2.1, and it loads as the image-to-video pipeline
(`pipeline_names[0]`).
"""

from __future__ import annotations

import torch

from arcvdm.backbones.wan import SCHEDULER_WAN21_480P, TRANSFORMER_14B_I2V, WanBackbone

# Wan-AI/Wan2.2-TI2V-5B-Diffusers transformer/config.json: Wan2.1's wiring, narrower and shallower, 48 latent
# channels in and out (no mask channels), no image cross-attention.
TRANSFORMER_TI2V_5B = {**TRANSFORMER_14B_I2V, "num_attention_heads": 24, "in_channels": 48, "out_channels": 48,
                       "ffn_dim": 14336, "num_layers": 30, "image_dim": None, "added_kv_proj_dim": None}

# Wan-AI/Wan2.2-TI2V-5B-Diffusers vae/config.json.
VAE_22 = dict(
    base_dim=160,
    decoder_base_dim=256,
    z_dim=48,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=2,
    attn_scales=[],
    temperal_downsample=[False, True, True],
    dropout=0.0,
    is_residual=True,
    in_channels=12,
    out_channels=12,
    patch_size=2,
    scale_factor_temporal=4,
    scale_factor_spatial=16,
    latents_mean=[
        -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813, 0.0891,
        0.157, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
        -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.123, -0.0313, -0.1649, 0.0117, 0.0723,
        -0.2839, -0.2083, -0.052, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
    ],
    latents_std=[
        0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.499, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
        0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
        0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
        0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.06, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
    ],
)

# Wan-AI/Wan2.2-TI2V-5B-Diffusers scheduler/scheduler_config.json: Wan2.1's UniPC on flow sigmas, shift 5.0.
SCHEDULER_TI2V_5B = {**SCHEDULER_WAN21_480P, "flow_shift": 5.0}


class Wan22Backbone(WanBackbone):
    family = "wan2.2"
    label = "Wan2.2 TI2V"
    pipeline_names = ("WanImageToVideoPipeline", "WanPipeline")
    side_multiple = 32  # VAE x16 (pixel patch 2 x 8), transformer patch x2
    fp32_parts = ("vae",)  # the stock Wan2.2 TI2V example loads the VAE in fp32; there is no image encoder

    @classmethod
    def claims(cls, index: dict) -> bool:
        return index.get("_class_name") in cls.pipeline_names and bool(index.get("expand_timesteps", False))

    def first_frame_mask(self, f: int, h: int, w: int) -> torch.Tensor:
        """[1, 1, f, h, w]: 0 on the first latent frame (the clean condition), 1 on the frames being denoised."""
        mask = torch.ones(1, 1, f, h, w)
        mask[:, :, 0] = 0
        return mask

    def token_timesteps(self, timesteps: torch.Tensor, f: int, h: int, w: int) -> torch.Tensor:
        """[B, tokens]: each video's timestep on the tokens being denoised, 0 on the first frame's."""
        _, p_h, p_w = self.transformer.config.patch_size
        tokens = self.first_frame_mask(f, h, w)[0, 0, :, ::p_h, ::p_w].flatten().to(timesteps)
        return timesteps[:, None] * tokens[None]

    def model_inputs(self, noisy: torch.Tensor, condition: torch.Tensor,
                     timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first noisy latent frame replaced by the clean condition, and per-token timesteps, as `__call__`."""
        mask = self.first_frame_mask(*noisy.shape[2:]).to(noisy)
        return (1 - mask) * condition + mask * noisy, self.token_timesteps(timesteps, *noisy.shape[2:])

    def loss_frames(self, prediction: torch.Tensor) -> torch.Tensor:
        return prediction[:, :, 1:]


def build_random_ti2v_5b(device: torch.device, dtype: torch.dtype, force: bool = False):
    """The full-size Wan2.2 TI2V-5B transformer and VAE with random weights, on `device` in `dtype` (nothing allocated
    on `meta`). No UMT5: prompt embeddings are seeded random [1, 512, 4096]."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    from arcvdm.backbones.memory import random_pipeline

    return random_pipeline(
        WanImageToVideoPipeline, "wan2.2-ti2v-5b-random",
        lambda: {"transformer": WanTransformer3DModel(**TRANSFORMER_TI2V_5B), "vae": AutoencoderKLWan(**VAE_22)},
        device, dtype, force, scheduler=UniPCMultistepScheduler(**SCHEDULER_TI2V_5B), expand_timesteps=True)
